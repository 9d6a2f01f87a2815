// Hoot unit tests of the inbox's actions: the keyboard map, the folders of
// "Move to…", the file viewer's files, and the inbox component itself
// against a mocked server (selection, action bar, shortcuts, a message
// deleted in Outlook). Run by tests/test_inbox_hoot.py (tag "maildesk").
import { after, describe, expect, test } from "@odoo/hoot";
import { click, keyDown } from "@odoo/hoot-dom";
import { animationFrame } from "@odoo/hoot-mock";
import { reactive } from "@odoo/owl";
import { mountWithCleanup, onRpc, patchTranslations } from "@web/../tests/web_test_helpers";
import { registry } from "@web/core/registry";
import { defineMailModels } from "@mail/../tests/mail_test_helpers";

import { MailDeskInbox } from "@maildesk/inbox/inbox";
import { folderOptions, groupByMailbox, shortcutFor, viewerFile } from "@maildesk/inbox/inbox_actions";

describe.current.tags("maildesk");
// The inbox runs in a web client with Discuss (its services ask for mail's models).
defineMailModels();

function key(k, extra = {}) {
    return { key: k, target: document.body, ...extra };
}

test("shortcuts: the keys of issue 14, never while typing, with a modifier or in a dialog", () => {
    expect(["j", "ArrowDown", "k", "ArrowUp", "r", "a", "f", "e", "Delete", "#", "?"].map((k) => shortcutFor(key(k)))).toEqual([
        "next", "next", "previous", "previous", "reply", "reply_all", "forward", "archive", "delete", "delete", "help",
    ]);
    expect(shortcutFor(key("q"))).toBe("");
    expect(shortcutFor(key("r", { ctrlKey: true }))).toBe("");
    expect(shortcutFor(key("e", { metaKey: true }))).toBe("");
    expect(shortcutFor(key("j"), { dialogOpen: true })).toBe("");
    const input = document.createElement("input");
    document.body.appendChild(input);
    after(() => input.remove());
    expect(shortcutFor(key("r", { target: input }))).toBe("");
});

test("Move to… offers the mailbox's whole tree, indented, without the folder shown", () => {
    const tree = [
        { id: "inbox", name: "Inbox", well_known: "inbox", depth: 0, path: "Inbox" },
        { id: "AQMk-c", name: "Customers", well_known: "", depth: 1, path: "Inbox/Customers" },
        { id: "AQMk-d", name: "Deep", well_known: "", depth: 9, path: "Inbox/Customers/…/Deep" },
        { id: "archive", name: "Archive", well_known: "archive", depth: 0, path: "Archive" },
    ];
    expect(folderOptions(tree, "inbox").map((f) => [f.id, f.depth])).toEqual([
        ["AQMk-c", 1],
        ["AQMk-d", 6],
        ["archive", 0],
    ]);
    expect(folderOptions(undefined, "inbox")).toEqual([]);
});

test("the selection is acted on per mailbox", () => {
    const groups = groupByMailbox([{ id: "a", mailbox_id: 1 }, { id: "b", mailbox_id: 2 }, { id: "c", mailbox_id: 1 }, { id: "d" }], 7);
    expect([...groups.entries()].map(([box, rows]) => [box, rows.map((m) => m.id)])).toEqual([
        [1, ["a", "c"]],
        [2, ["b"]],
        [7, ["d"]],
    ]);
});

test("the file viewer shows images and PDFs from the MailDesk route, not SVG", () => {
    const url = "/maildesk/attachment/3/AAMk1/att1";
    const pdf = viewerFile({ id: "att1", name: "q.pdf", content_type: "application/pdf", url });
    expect(pdf.isViewable).toBe(true);
    expect(pdf.defaultSource).toBe(`/web/static/lib/pdfjs/web/viewer.html?file=${encodeURIComponent(url)}#pagemode=none`);
    expect(pdf.downloadUrl).toBe(url);
    const png = viewerFile({ id: "att2", name: "p.png", content_type: "image/png; name=p.png", url });
    expect([png.isImage, png.isViewable, png.defaultSource]).toEqual([true, true, url]);
    expect(viewerFile({ id: "s", name: "x.svg", content_type: "image/svg+xml", url }).isViewable).toBe(false);
    expect(viewerFile({ id: "z", name: "x.zip", content_type: "application/zip", url }).isViewable).toBe(false);
});

/**
 * Hoot 19's fixture hands every iframe put in it to setupEventActions with the
 * frame's window (web/static/lib/hoot/core/fixture.js, _lookForIframes), which
 * reads that window's constructor. The reading pane's frame is sandboxed
 * without allow-same-origin, so the read throws a SecurityError and fails the
 * test (Hoot 18 does not look at iframes). For these tests such a frame shows
 * no window (null, which Hoot takes for the test's own window, whose event
 * actions are set up already); the inbox itself never reads it.
 */
function hideSandboxedFrameWindows() {
    const proto = HTMLIFrameElement.prototype;
    const original = Object.getOwnPropertyDescriptor(proto, "contentWindow");
    Object.defineProperty(proto, "contentWindow", {
        ...original,
        get() {
            const sandbox = this.getAttribute("sandbox");
            if (sandbox !== null && !sandbox.split(/\s+/).includes("allow-same-origin")) {
                return null;
            }
            return original.get.call(this);
        },
    });
    after(() => Object.defineProperty(proto, "contentWindow", original));
}

/** The inbox mounted on one mailbox of three messages; returns what the server was asked. */
async function mountInbox({ deleted = [] } = {}) {
    patchTranslations();
    hideSandboxedFrameWindows();
    const services = registry.category("services");
    const original = services.get("maildesk_live");
    services.add(
        "maildesk_live",
        {
            start() {
                const state = reactive({ unread: {}, total: 0 });
                return {
                    state,
                    onNotice: () => () => {},
                    setMailboxes(list) {
                        for (const m of list) {
                            state.unread[m.id] = m.unread;
                        }
                    },
                };
            },
        },
        { force: true }
    );
    after(() => services.add("maildesk_live", original, { force: true }));
    const asked = [];
    const rows = [1, 2, 3].map((n) => ({
        id: `AAMk${n}`,
        subject: `Subject ${n}`,
        from: { name: `Sender ${n}`, email: `s${n}@customer.example` },
        received_at: `2026-11-2${n}T10:00:00Z`,
        is_read: n !== 1,
        flagged: false,
        snippet: `snippet ${n}`,
        linked: [],
    }));
    // Opening: the mailboxes and the first page in one call.
    onRpc("maildesk_inbox_start", () => ({
        mailboxes: [{ id: 5, email: "anna@contoso.example", state: "connected", unread: 1 }],
        view: { mailbox_id: 5 },
        page: { messages: rows.map((r) => ({ ...r, mailbox_id: 5 })), next_cursor: false },
    }));
    onRpc("maildesk_inbox_folders", () => [{ id: "f-inbox", name: "Inbox", well_known: "inbox", unread: 1, total: 3 }]);
    onRpc("maildesk_inbox_messages", () => ({ messages: rows.map((r) => ({ ...r })), next_cursor: false }));
    onRpc("maildesk_loggable_models", () => []);
    onRpc("maildesk_inbox_open", ({ args }) => {
        asked.push(["open", args[1]]);
        if (deleted.includes(args[1])) {
            return { id: args[1], deleted: true, notice: "This message was deleted in Outlook." };
        }
        const row = rows.find((r) => r.id === args[1]);
        return { ...row, to: [], cc: [], body_html: "<p>hello</p>", attachments: [], linked: [] };
    });
    onRpc("maildesk_inbox_mark_read", () => ({ unread: 0 }));
    onRpc("maildesk_inbox_act", ({ args, kwargs }) => {
        asked.push([args[2], args[1], kwargs.folder || false, kwargs.inbox_unread]);
        return { done: args[1].length, unread: 0 };
    });
    onRpc("maildesk_inbox_folder_tree", () => [
        { id: "inbox", name: "Inbox", well_known: "inbox", depth: 0, path: "Inbox" },
        { id: "AQMk-c", name: "Customers", well_known: "", depth: 1, path: "Inbox/Customers" },
    ]);
    await mountWithCleanup(MailDeskInbox, { props: { action: { params: {} } } });
    await animationFrame();
    return asked;
}

test("select all, then archive: one call with every id, the rows leave the list", async () => {
    const asked = await mountInbox();
    expect(".o_maildesk_row").toHaveCount(3);
    await click(".o_maildesk_check_all");
    await animationFrame();
    expect(".o_maildesk_checked_count").toHaveText("3 selected");
    await click(".o_maildesk_act_archive");
    await animationFrame();
    expect(asked).toEqual([["archive", ["AAMk1", "AAMk2", "AAMk3"], false, 1]]);
    expect(".o_maildesk_row").toHaveCount(0);
});

test("flag two checked rows; move one to a subfolder from Graph's tree", async () => {
    const asked = await mountInbox();
    await click(".o_maildesk_row:nth-child(2) .o_maildesk_check");
    await click(".o_maildesk_row:nth-child(3) .o_maildesk_check");
    await animationFrame();
    await click(".o_maildesk_act_flag");
    await animationFrame();
    expect(".o_maildesk_flagged").toHaveCount(2);
    await click(".o_maildesk_row:nth-child(3) .o_maildesk_check");
    await animationFrame();
    await click(".o_maildesk_act_move");
    await animationFrame();
    expect(".o_maildesk_move_target").toHaveCount(1); // Inbox itself is not offered
    await click(".o_maildesk_move_target:contains(Customers)");
    await animationFrame();
    expect(asked).toEqual([
        ["flag", ["AAMk2", "AAMk3"], false, 0],
        ["move", ["AAMk2"], "AQMk-c", 0],
    ]);
    expect(".o_maildesk_row").toHaveCount(2);
});

test("keyboard: j opens the next message, e archives it and opens the one after, ? lists the shortcuts", async () => {
    const asked = await mountInbox();
    await keyDown("j");
    await animationFrame();
    expect(".o_maildesk_reader h4").toHaveText("Subject 1");
    await keyDown("j");
    await animationFrame();
    expect(".o_maildesk_reader h4").toHaveText("Subject 2");
    await keyDown("e");
    await animationFrame();
    await animationFrame();
    expect(".o_maildesk_reader h4").toHaveText("Subject 3");
    expect(asked.filter((a) => a[0] === "archive")).toEqual([["archive", ["AAMk2"], false, 0]]);
    await keyDown("?");
    await animationFrame();
    expect(".o_maildesk_shortcuts").toHaveCount(1);
    expect(".o_maildesk_shortcuts").toHaveText(/Reply all/);
    await keyDown("Escape");
    await animationFrame();
    expect(".o_maildesk_shortcuts").toHaveCount(0);
});

test("a message deleted in Outlook: the pane says so and the row goes, no error", async () => {
    await mountInbox({ deleted: ["AAMk2"] });
    await click(".o_maildesk_row:nth-child(2)");
    await animationFrame();
    expect(".o_maildesk_deleted").toHaveText("This message was deleted in Outlook.");
    expect(".o_maildesk_row").toHaveCount(2);
    expect(".o_maildesk_row:contains(Subject 2)").toHaveCount(0);
    expect(".o_error_dialog").toHaveCount(0);
});
