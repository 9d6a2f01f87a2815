/** @odoo-module **/
// The inbox's actions, shortcuts, attachments and a hostile message, as a
// plain user who owns the mailbox (see tests/test_inbox_actions_ui.py).
import { registry } from "@web/core/registry";
import { pick } from "@maildesk/../tests/tours/maildesk_inbox_tour";

/** A key pressed on the page (not in a field), as the inbox hears it. */
function press(key, trigger = ".o_maildesk_list") {
    return {
        trigger,
        run() {
            document.body.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true, cancelable: true }));
        },
    };
}

registry.category("web_tour.tours").add("maildesk_inbox_actions_tour", {
    steps: () => [
        {
            trigger: ".o_maildesk_row:contains(Quarterly report)",
            run() {
                // Opening the inbox → first rows on screen, measured from the menu's action.
                const nav = performance.getEntriesByType("navigation")[0];
                console.info(`maildesk: inbox rows on screen ${Math.round(performance.now() - (nav ? nav.startTime : 0))} ms after the page started loading`);
            },
        },
        // Select all on the page, flag them: one call, six flags.
        { trigger: "input.o_maildesk_check_all", run: "click" },
        { trigger: ".o_maildesk_checked_count:contains(6 selected)" },
        { trigger: "button.o_maildesk_act_flag", run: "click" },
        { trigger: ".o_maildesk_row:contains(Gone already) .o_maildesk_flagged" },
        { trigger: "input.o_maildesk_check_all", run: "click" },
        { trigger: ".o_maildesk_actionbar:not(:has(.o_maildesk_checked_count))" },
        // Attachments: Odoo's file viewer for the image and the PDF, then save one to a record.
        { trigger: ".o_maildesk_row:contains(Quarterly report)", run: "click" },
        { trigger: ".o_maildesk_reader h4:contains(Quarterly report)" },
        { trigger: ".o_maildesk_att_preview:contains(chart.png)", run: "click" },
        { trigger: ".o-FileViewer img[src*='/maildesk/attachment/']" },
        { trigger: ".o-FileViewer-headerButton[title='Close (Esc)']", run: "click" },
        { trigger: ".o_maildesk_inbox:not(:has(.o-FileViewer))" },
        { trigger: ".o_maildesk_att_preview:contains(report.pdf)", run: "click" },
        { trigger: ".o-FileViewer iframe[src*='pdfjs'][src*='maildesk']" },
        { trigger: ".o-FileViewer-headerButton[title='Close (Esc)']", run: "click" },
        { trigger: "body:not(:has(.o-FileViewer))" },
        { trigger: ".o_maildesk_attachment:contains(report.pdf) a.o_maildesk_att_download[href*='/maildesk/attachment/']" },
        pick(".o_maildesk_attachment:nth-child(2) select.o_maildesk_att_save", "pick:res.partner"),
        { trigger: ".modal .o_data_row .o_data_cell:contains(Act Customer)", run: "click" },
        { trigger: ".o_notification:contains(report.pdf saved on Act Customer)" },
        // Shortcuts: the help popover, next/previous, archive, delete.
        press("?"),
        { trigger: ".o_maildesk_shortcuts:contains(Reply all):contains(Archive)" },
        press("Escape"),
        { trigger: ".o_maildesk_list:not(:has(.o_maildesk_shortcuts))" },
        press("e"),
        { trigger: ".o_notification:contains(Archived: 1 message)" },
        { trigger: ".o_maildesk_list:not(:has(.o_maildesk_row:contains(Quarterly report)))" },
        { trigger: ".o_maildesk_reader h4:contains(Plain one)" },
        press("j"),
        { trigger: ".o_maildesk_reader h4:contains(Plain two)" },
        press("k"),
        { trigger: ".o_maildesk_reader h4:contains(Plain one)" },
        press("#"),
        { trigger: ".o_notification:contains(Deleted: 1 message)" },
        { trigger: ".o_maildesk_reader h4:contains(Plain two)" },
        // Move one checked message to a subfolder (Graph's folder tree).
        { trigger: ".o_maildesk_row:contains(Plain three) input.o_maildesk_check", run: "click" },
        { trigger: ".o_maildesk_checked_count:contains(1 selected)" },
        { trigger: "button.o_maildesk_act_move", run: "click" },
        { trigger: ".o_maildesk_move_menu .o_maildesk_move_target:contains(Customers)", run: "click" },
        { trigger: ".o_notification:contains(Moved: 1 message)" },
        { trigger: ".o_maildesk_list:not(:has(.o_maildesk_row:contains(Plain three)))" },
        // Deleted in Outlook meanwhile: said in the pane, the row goes, no error dialog.
        { trigger: ".o_maildesk_row:contains(Gone already)", run: "click" },
        { trigger: ".o_maildesk_deleted:contains(This message was deleted in Outlook)" },
        {
            trigger: ".o_maildesk_list:not(:has(.o_maildesk_row:contains(Gone already)))",
            run() {
                if (document.querySelector(".o_error_dialog, .o_dialog_error")) {
                    throw new Error("an error dialog was shown for a deleted message");
                }
            },
        },
    ],
});

/** Nothing of the hostile mail ran in this page. */
function assertNothingRan() {
    if (window.__maildeskPwned || (window.top && window.top.__maildeskPwned)) {
        throw new Error("a script of the hostile mail ran");
    }
    if (document.querySelector(".o_maildesk_inbox img[src*='/maildesk-remote/'], .modal img[src*='/maildesk-remote/']")) {
        throw new Error("a remote image is in the page");
    }
}

registry.category("web_tour.tours").add("maildesk_hostile_tour", {
    steps: () => [
        // The list shows subject and snippet as text.
        {
            trigger: ".o_maildesk_row:contains(Hostile) .o_maildesk_row_subject:contains(onerror=alert)",
            run() {
                const row = document.querySelector(".o_maildesk_row");
                if (row.querySelector("img, script")) {
                    throw new Error("the list rendered the hostile subject or snippet as HTML");
                }
                assertNothingRan();
            },
        },
        { trigger: ".o_maildesk_row:contains(Hostile)", run: "click" },
        { trigger: ".o_maildesk_reader .alert:contains(remote images were blocked)" },
        {
            trigger: "iframe.o_maildesk_frame",
            run() {
                const frame = document.querySelector("iframe.o_maildesk_frame");
                const sandbox = frame.getAttribute("sandbox") || "";
                if (!frame.hasAttribute("sandbox") || /allow-scripts|allow-same-origin|allow-forms|allow-top-navigation/.test(sandbox)) {
                    throw new Error("the mail frame must be sandboxed without scripts, forms, navigation or our origin: " + sandbox);
                }
                const doc = frame.getAttribute("srcdoc") || "";
                if (!doc.includes("default-src 'none'") || !doc.includes("Hostile hello")) {
                    throw new Error("the frame lacks its CSP or the mail");
                }
                if (frame.contentDocument) {
                    throw new Error("the page can reach into the mail frame (same origin)");
                }
                assertNothingRan();
            },
        },
        // The quote in the MailDesk composer (an inert frame of its own).
        { trigger: ".o_maildesk_reader button:contains(Reply)", run: "click" },
        { trigger: ".modal iframe.o_maildesk_editor",
            async run() {
                const frame = document.querySelector(".modal iframe.o_maildesk_editor");
                if (/allow-scripts/.test(frame.getAttribute("sandbox") || "")) {
                    throw new Error("the composer's frame may run scripts");
                }
                // The quote is the frame's srcdoc, set once the dialog is
                // mounted: the step can run before that document has loaded.
                const loaded = () => {
                    const d = frame.contentDocument;
                    return d && d.URL === "about:srcdoc" && d.readyState === "complete";
                };
                while (!loaded()) {
                    await new Promise((resolve) => frame.addEventListener("load", resolve, { once: true }));
                }
                const doc = frame.contentDocument;
                if (!doc.body || !doc.body.textContent.includes("Hostile hello")) {
                    throw new Error("the reply does not quote the mail");
                }
                if (doc.body.querySelector("script, iframe, object, embed, form, link, [onclick], [onerror], [onload], a[href^='javascript'], img[src*='/maildesk-remote/']")) {
                    throw new Error("the composer kept active content: " + doc.body.innerHTML.slice(0, 500));
                }
                assertNothingRan();
            },
        },
        { trigger: ".modal button:contains(Close)", run: "click" },
        {
            trigger: "body:not(:has(.modal))",
            run() {
                assertNothingRan();
            },
        },
    ],
});
