/** @odoo-module **/
// Opens the settings page and a mailbox form: the views must render.
import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("maildesk_settings_tour", {
    steps: () => [
        { trigger: ".app_settings_block[data-key='maildesk'], .o_settings_container" },
        { trigger: "button[name='action_maildesk_pair']" },
        { trigger: "button[name='action_maildesk_test_connection']" },
        { trigger: "button[name='action_maildesk_admin_consent']" },
        { trigger: "div[name='maildesk_redirect_uri']:contains(/maildesk/oauth/callback)" },
        {
            // (no :value() pseudo-selector in 17.0's tours)
            trigger: "div[name='maildesk_azure_client_id'] input",
            run() {
                const value = document.querySelector("div[name='maildesk_azure_client_id'] input").value;
                if (value !== "c1") {
                    throw new Error(`the client id field shows ${value}, not c1`);
                }
            },
        },
        { trigger: "div:contains(A client secret is set in the sidecar)" },
    ],
});

registry.category("web_tour.tours").add("maildesk_mailbox_form_tour", {
    steps: () => [
        { trigger: ".o_form_view div[name='email']:contains(form@contoso.example), .o_form_view input#email_0" },
        { trigger: ".o_form_view .o_statusbar_status" },
        // the patched sidecar says "connected": refreshed on open
        // (a narrow 17.0 form folds the status bar into a dropdown showing the current state)
        {
            trigger:
                ".o_form_view .o_statusbar_status button.o_arrow_button_current:contains(Connected), " +
                ".o_form_view .o_statusbar_status button.dropdown-toggle:contains(Connected)",
        },
        { trigger: ".o_form_view button[name='action_sync_now']" },
        { trigger: ".o_form_view .o_field_progressbar" },
        { trigger: ".o_form_view .o-mail-Chatter" },
    ],
});

// The owner previews a mailbox's routing: a dialog lists each message with
// where it would land, and totals.
registry.category("web_tour.tours").add("maildesk_preview_tour", {
    steps: () => [
        { trigger: ".o_form_view button[name='action_preview_routing']", run: "click" },
        { trigger: ".modal:contains(Preview routing of preview@contoso.example)" },
        { trigger: ".modal div[name='summary']:contains(2 messages of the last)" },
        { trigger: ".modal .o_data_row:contains(Preview quote):contains(On a record):contains(Preview Customer)" },
        { trigger: ".modal .o_data_row:contains(Private matter):contains(Not logged):contains(private)" },
        { trigger: ".modal footer button:contains(Close)", run: "click" },
        { trigger: ".o_form_view:not(:has(.modal))" },
    ],
});
