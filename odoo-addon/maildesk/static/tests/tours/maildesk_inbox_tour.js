/** @odoo-module **/
// Walks the inbox against a patched sidecar (see tests/test_inbox_ui.py).
import { registry } from "@web/core/registry";

// Picks an option of a <select> the way a user's pick reaches the inbox (a
// change event); the tour's own "select" action is 18.0+, this runs on 17.0 too.
export function pick(selector, value) {
    return {
        trigger: selector,
        run() {
            const el = document.querySelector(selector);
            el.value = value;
            el.dispatchEvent(new Event("change", { bubbles: true }));
        },
    };
}

registry.category("web_tour.tours").add("maildesk_inbox_tour", {
    steps: () => [
        { trigger: ".o_maildesk_mailbox:contains(tour@contoso.example)" },
        { trigger: ".o_maildesk_systray .o_maildesk_systray_counter:contains(3)" },
        { trigger: ".o_maildesk_folder:contains(Inbox)" },
        { trigger: ".o_maildesk_row.fw-bold:contains(Tour subject)", run: "click" },
        { trigger: ".o_maildesk_reader h4:contains(Tour subject)" },
        { trigger: ".o_maildesk_reader .alert:contains(remote images were blocked)" },
        { trigger: ".o_maildesk_reader .o_maildesk_att_preview:contains(quote.pdf)" },
        {
            trigger: "iframe.o_maildesk_frame",
            run() {
                const frame = document.querySelector("iframe.o_maildesk_frame");
                const doc = frame.getAttribute("srcdoc") || "";
                if (!frame.getAttribute("sandbox") || frame.getAttribute("sandbox").includes("allow-scripts")) {
                    throw new Error("the mail frame must be sandboxed without scripts");
                }
                if (!doc.includes("Hello from the tour") || doc.includes('<img src="https://tracker')) {
                    throw new Error("unexpected frame content: " + doc);
                }
            },
        },
        { trigger: ".o_maildesk_row:not(.fw-bold):contains(Tour subject)" },
        { trigger: ".o_maildesk_reader button:contains(Show once)", run: "click" },
        { trigger: ".o_maildesk_reader:not(:has(.alert:contains(remote images were blocked)))" },
        pick("select.o_maildesk_log", "res.partner"),
        { trigger: ".modal .o_data_row .o_data_cell:contains(Tour Customer)", run: "click" },
        { trigger: ".o_notification:contains(Logged on the record's chatter)" },
        // Where each mail went: unrouted, not logged (and why), logged (on what).
        { trigger: ".o_maildesk_row:contains(Tour subject) .o_maildesk_row_placement:contains(Unrouted)" },
        {
            trigger:
                ".o_maildesk_row:contains(Tour private mail) .o_maildesk_row_placement:contains(Not logged: private (Outlook sensitivity))",
        },
        { trigger: ".o_maildesk_row:contains(Tour logged mail) .o_maildesk_row_placement:contains(Tour Customer)" },
        { trigger: ".o_maildesk_row:contains(Tour logged mail)", run: "click" },
        { trigger: ".o_maildesk_reader h4:contains(Tour logged mail)" },
        { trigger: ".o_maildesk_placement a.o_maildesk_placed:contains(Tour Customer)" },
        // Routing found documents of several customers: one click moves it.
        { trigger: ".o_maildesk_placement button.o_maildesk_candidate:contains(Move to Tour Company)", run: "click" },
        { trigger: ".o_notification:contains(Moved to Tour Company)" },
        { trigger: ".o_maildesk_placement a.o_maildesk_placed:contains(Tour Company)" },
        { trigger: ".o_maildesk_placement:not(:has(a.o_maildesk_placed:contains(Tour Customer)))" },
        // Move to… with the record picker of Log to record.
        pick("select.o_maildesk_move_record", "res.partner"),
        { trigger: ".modal .o_data_row .o_data_cell:contains(Tour Other)", run: "click" },
        { trigger: ".o_notification:contains(Moved to Tour Other)" },
        { trigger: ".o_maildesk_placement a.o_maildesk_placed:contains(Tour Other)" },
        { trigger: ".o_maildesk_placement:not(:has(a.o_maildesk_placed:contains(Tour Company)))" },
        // Don't log this conversation, and remove what was logged of it.
        { trigger: "button.o_maildesk_exclude_conversation", run: "click" },
        { trigger: ".modal:contains(Also remove the 1 mails already logged?)" },
        { trigger: ".modal button:contains(Remove them)", run: "click" },
        { trigger: ".o_notification:contains(1 logged mails were removed)" },
        { trigger: ".o_maildesk_placement:contains(Not logged: excluded conversation)" },
        { trigger: ".o_maildesk_excluded_entry", run: "click" },
        { trigger: ".o_maildesk_exclusions .o_maildesk_exclusion:contains(Tour logged mail)" },
    ],
});

// Everyone who reads a record sees which mailbox a logged mail came from.
registry.category("web_tour.tours").add("maildesk_chatter_tour", {
    steps: () => [
        // (an e-mail's body sits in a shadow root: find it by its "via")
        { trigger: ".o-mail-Message .o_maildesk_via:contains(via tour@contoso.example)" },
        {
            trigger: ".o-mail-Message:has(.o-mail-Message-body:contains(A note)):not(:has(.o_maildesk_via))",
            run() {
                const vias = document.querySelectorAll(".o-mail-Message .o_maildesk_via");
                if (vias.length !== 1) {
                    throw new Error(`one logged mail says "via", not ${vias.length}`);
                }
            },
        },
    ],
});
