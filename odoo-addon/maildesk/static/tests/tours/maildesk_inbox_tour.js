/** @odoo-module **/
// Walks the inbox against a patched sidecar (see tests/test_inbox_ui.py).
import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("maildesk_inbox_tour", {
    steps: () => [
        { trigger: ".o_maildesk_mailbox:contains(tour@contoso.example)" },
        { trigger: ".o_maildesk_systray .o_maildesk_systray_counter:contains(3)" },
        { trigger: ".o_maildesk_folder:contains(Inbox)" },
        { trigger: ".o_maildesk_row.fw-bold:contains(Tour subject)", run: "click" },
        { trigger: ".o_maildesk_reader h4:contains(Tour subject)" },
        { trigger: ".o_maildesk_reader .alert:contains(remote images were blocked)" },
        { trigger: ".o_maildesk_reader a:contains(quote.pdf)" },
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
        { trigger: "select.o_maildesk_log", run: "select res.partner" },
        { trigger: ".modal .o_data_row .o_data_cell:contains(Tour Customer)", run: "click" },
        { trigger: ".o_notification:contains(Logged on the record's chatter)" },
    ],
});
