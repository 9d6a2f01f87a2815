// Hoot unit tests of the inbox's pieces that need no server: the mail
// frame's document and the live service (bus notices → counts, listeners,
// desktop notifications). Run by tests/test_inbox_hoot.py (tag "maildesk").
import { after, describe, expect, test } from "@odoo/hoot";
import { patchTranslations, patchWithCleanup } from "@web/../tests/web_test_helpers";
import { browser } from "@web/core/browser/browser";

import { buildFrameDoc } from "@maildesk/inbox/inbox";
import { BUS_TYPE, maildeskLiveService } from "@maildesk/inbox/live_service";

describe.current.tags("maildesk");

test("the mail frame runs no script and loads no remote image until allowed", () => {
    const doc = buildFrameDoc('<p onclick="x()">Hi<img src="https://t.example/p.gif"></p>', false);
    expect(doc).toInclude("default-src 'none'");
    expect(doc).toInclude("img-src data: cid: 'self'");
    expect(doc).not.toInclude("script-src");
    expect(buildFrameDoc("<p>Hi</p>", true)).toInclude("img-src data: cid: https: http:");
});

/** The service started against a fake bus; returns it and the bus's handler. */
function startLive({ mainTab = true } = {}) {
    const subscribed = {};
    const bus = { subscribe: (type, callback) => (subscribed[type] = callback) };
    const live = maildeskLiveService.start({}, { bus_service: bus, multi_tab: { isOnMainTab: () => mainTab } });
    return { live, push: (notice) => subscribed[BUS_TYPE](notice) };
}

/** Browser notifications allowed, the page hidden: collects what is shown. */
function allowDesktop(hidden = true) {
    patchTranslations();
    const shown = [];
    class FakeNotification {
        static permission = "granted";
        constructor(title, options) {
            shown.push([title, options.body]);
        }
    }
    patchWithCleanup(browser, { Notification: FakeNotification });
    const before = Object.getOwnPropertyDescriptor(document, "hidden");
    Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
    after(() => {
        if (before) {
            Object.defineProperty(document, "hidden", before);
        } else {
            delete document.hidden;
        }
    });
    return shown;
}

test("notices set the counts and reach the inbox's listeners", () => {
    const { live, push } = startLive();
    live.setMailboxes([
        { id: 1, unread: 2 },
        { id: 2, unread: 3 },
    ]);
    expect(live.state.total).toBe(5);
    const heard = [];
    const stop = live.onNotice((notice) => heard.push([notice.kind, notice.mailbox_id]));
    push({ kind: "new_mail", mailbox_id: 1, email: "a@x.example", folder: "inbox", count: 2, unread: 4 });
    expect(live.state.unread[1]).toBe(4);
    expect(live.state.total).toBe(7);
    push({ kind: "unread", mailbox_id: 2, email: "b@x.example", folder: "inbox", count: 0, unread: 0 });
    expect(live.state.total).toBe(4);
    expect(heard).toEqual([
        ["new_mail", 1],
        ["unread", 2],
    ]);
    stop();
    push({ kind: "new_mail", mailbox_id: 2, count: 1, unread: 1 });
    expect(heard.length).toBe(2);
    expect(live.state.total).toBe(5);
});

test("a desktop notification for new mail when allowed and the page is hidden", () => {
    const shown = allowDesktop(true);
    const { push } = startLive();
    push({ kind: "new_mail", mailbox_id: 1, email: "a@x.example", count: 1, unread: 1 });
    push({ kind: "new_mail", mailbox_id: 1, email: "a@x.example", count: 3, unread: 4 });
    push({ kind: "unread", mailbox_id: 1, email: "a@x.example", count: 0, unread: 0 });
    expect(shown).toEqual([
        ["New mail", "1 new message in a@x.example"],
        ["New mail", "3 new messages in a@x.example"],
    ]);
});

test("no desktop notification while the page is looked at, or from another tab", () => {
    const shown = allowDesktop(false);
    startLive().push({ kind: "new_mail", mailbox_id: 1, email: "a@x.example", count: 1, unread: 1 });
    expect(shown).toEqual([]);
    Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
    startLive({ mainTab: false }).push({ kind: "new_mail", mailbox_id: 1, email: "a@x.example", count: 1, unread: 1 });
    expect(shown).toEqual([]);
});
