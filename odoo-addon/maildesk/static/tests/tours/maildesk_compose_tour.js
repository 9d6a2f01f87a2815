/** @odoo-module **/
// The composer as a mailbox's plain owner (see tests/test_compose_ui.py).
import { registry } from "@web/core/registry";

function frameBody(selector) {
    const frame = document.querySelector(selector);
    return frame && frame.contentDocument && frame.contentDocument.body;
}

// Waits for the editing frame to hold its document, then checks it is inert.
function editorReady(selector, mustContain) {
    return {
        trigger: `${selector}:iframe body[contenteditable]:contains(${mustContain})`,
        run() {
            const frame = document.querySelector(selector);
            const sandbox = frame.getAttribute("sandbox") || "";
            if (sandbox.includes("allow-scripts")) {
                throw new Error("the editor frame must not run scripts");
            }
        },
    };
}

function fill(selector, value) {
    return { trigger: selector, run: `edit ${value}` };
}

registry.category("web_tour.tours").add("maildesk_compose_tour", {
    steps: () => [
        { trigger: ".o_maildesk_mailbox:contains(owner@contoso.example)" },
        // The owner sets the mailbox's signature.
        { trigger: ".o_maildesk_signature_entry", run: "click" },
        { trigger: ".modal iframe.o_maildesk_signature_editor:iframe body[contenteditable]",
            run() {
                const body = frameBody(".modal iframe.o_maildesk_signature_editor");
                if (!body) {
                    throw new Error("signature editor not ready");
                }
                body.innerHTML = "<p>Compose Owner, Sales<script>window.top.maildeskPwned=1</script></p>";
            },
        },
        { trigger: ".modal .o_maildesk_signature_save", run: "click" },
        { trigger: ".o_notification:contains(Signature saved)" },
        // New mail: the signature is in the body; saved as a draft.
        { trigger: ".o_maildesk_new_mail", run: "click" },
        editorReady(".modal iframe.o_maildesk_editor", "Compose Owner"),
        fill(".modal .o_maildesk_to", "dora@partner.example"),
        fill(".modal .o_maildesk_subject", "Tour draft"),
        { trigger: ".modal .o_maildesk_save_draft", run: "click" },
        { trigger: ".o_notification:contains(Draft saved in Drafts)" },
        { trigger: ".modal .o_maildesk_saved" },
        { trigger: ".modal .btn:contains(Close)", run: "click" },
        { trigger: "body:not(:has(.modal))" },
        // Reopened from the Drafts folder and sent.
        { trigger: ".o_maildesk_drafts", run: "click" },
        { trigger: ".o_maildesk_row:contains(Tour draft)", run: "click" },
        editorReady(".modal iframe.o_maildesk_editor", "Compose Owner"),
        { trigger: ".modal .o_maildesk_subject:value(Tour draft)" },
        { trigger: ".modal .o_maildesk_send", run: "click" },
        { trigger: ".o_notification:contains(Sent.)" },
        { trigger: "body:not(:has(.modal))" },
        // Forward keeps the original's attachment; the quote stays inert.
        { trigger: ".o_maildesk_folder:contains(Inbox)", run: "click" },
        { trigger: ".o_maildesk_row:contains(Offer 42)", run: "click" },
        { trigger: ".o_maildesk_reader h4:contains(Offer 42)" },
        { trigger: ".o_maildesk_reader button:contains(Forward)", run: "click" },
        { trigger: ".modal .o_maildesk_composer_attachment:contains(quote.pdf)" },
        editorReady(".modal iframe.o_maildesk_editor", "Please see the offer"),
        { trigger: ".modal iframe.o_maildesk_editor",
            run() {
                const html = frameBody(".modal iframe.o_maildesk_editor").innerHTML;
                if (html.includes("<script") || html.includes("onmouseover") || window.maildeskPwned) {
                    throw new Error("hostile quote in the composer: " + html);
                }
            },
        },
        fill(".modal .o_maildesk_to", "dora@partner.example"),
        { trigger: ".modal .o_maildesk_send", run: "click" },
        { trigger: ".o_notification:contains(Sent.)" },
        { trigger: "body:not(:has(.modal))" },
        // Search: the index answers (nothing), Microsoft 365 finds old mail.
        fill(".o_maildesk_list input[type=search]", "zebracrossing"),
        {
            trigger: ".o_maildesk_list input[type=search]",
            run() {
                const input = document.querySelector(".o_maildesk_list input[type=search]");
                input.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
            },
        },
        { trigger: ".o_maildesk_row:contains(Ancient contract) .o_maildesk_from_graph" },
        { trigger: ".o_maildesk_row:contains(Ancient contract)", run: "click" },
        { trigger: ".o_maildesk_reader h4:contains(Ancient contract)" },
        {
            trigger: "body",
            run() {
                if (window.maildeskPwned) {
                    throw new Error("hostile content ran a script");
                }
            },
        },
    ],
});
