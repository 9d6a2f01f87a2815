// Hoot unit tests of the composer's and search's pieces that need no
// server: the inert editing frame and the merge of the index's and
// Microsoft 365's search answers. Run by tests/test_inbox_hoot.py.
import { describe, expect, test } from "@odoo/hoot";

import { buildEditorDoc, splitRecipients } from "@maildesk/inbox/composer";
import { mergeSearchResults } from "@maildesk/inbox/search";

describe.current.tags("maildesk");

test("the editing frame runs no script and loads no remote image", () => {
    const doc = buildEditorDoc('<p onclick="x()">Hi<img src="https://t.example/logo.png"><script>x()</script></p>');
    expect(doc).toInclude("default-src 'none'");
    expect(doc).toInclude("img-src data: cid:;");
    expect(doc).not.toInclude("script-src");
    expect(doc).toInclude('<body contenteditable="true">');
    // The HTML itself is kept (a signature's logo is sent as written).
    expect(doc).toInclude('src="https://t.example/logo.png"');
});

test("recipients split on commas and semicolons", () => {
    expect(splitRecipients("Anna <a@x.example>, b@y.example; ,")).toEqual(["Anna <a@x.example>", "b@y.example"]);
    expect(splitRecipients("")).toEqual([]);
});

test("search merges the index's hits with Microsoft 365's, once each, newest first", () => {
    const local = [
        { id: "g1", mailbox_id: 1, internet_message_id: "<m1@x>", received_at: "2026-11-20T10:00:00Z", placement: { state: "logged" } },
    ];
    const remote = [
        { id: "g1", mailbox_id: 1, internet_message_id: "<m1@x>", received_at: "2026-11-20T10:00:00Z", indexed: true },
        { id: "g2", mailbox_id: 1, internet_message_id: "<m2@x>", received_at: "2021-01-01T00:00:00Z", indexed: false },
        { id: "g3", mailbox_id: 2, internet_message_id: "<m1@x>", received_at: "2026-11-21T00:00:00Z", indexed: false },
        { id: "other-id", mailbox_id: 1, internet_message_id: "<m1@x>", received_at: "2026-11-20T10:00:00Z" },
    ];
    const merged = mergeSearchResults(local, remote);
    expect(merged.map((m) => m.id)).toEqual(["g3", "g1", "g2"]);
    expect(merged[1].placement).toEqual({ state: "logged" }); // the index's row is kept
    expect(merged[2].from_graph).toBe(true);
    expect(mergeSearchResults([], [])).toEqual([]);
});
