/** @odoo-module **/
// A user who only sees a shared mailbox: no Signature entry under it
// (tests/test_signature_ui.py).
import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("maildesk_signature_hidden_tour", {
    steps: () => [
        { trigger: ".o_maildesk_mailbox:contains(team@contoso.example)" },
        { trigger: ".o_maildesk_row:contains(For the team)" },
        { trigger: ".o_maildesk_folder:contains(Inbox)" },
        {
            trigger: ".o_maildesk_excluded_entry",
            run() {
                if (document.querySelector(".o_maildesk_signature_entry")) {
                    throw new Error("a user of the shared mailbox sees its Signature entry");
                }
            },
        },
    ],
});
