# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from unittest.mock import patch

from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.maildesk import compat

from .common import FakeSidecar

HOSTILE_QUOTE = (
    '<p onmouseover="window.top.maildeskPwned=1">Please see the offer'
    '<script>window.top.maildeskPwned=1</script>'
    '<img src="https://tracker.example/pixel.gif"></p>'
)


@tagged("post_install", "-at_install")
class TestComposeUi(HttpCase):
    """The composer in a real browser as the mailbox's plain owner (MailDesk
    User): signature, new mail saved as a draft, the draft reopened from the
    Drafts folder and sent, a forward with the original's attachment, and a
    search that finds mail outside the synced window. The sidecar is a
    stateful fake on the server side."""

    def setUp(self):
        super().setUp()
        self.sidecar = FakeSidecar()
        self.startPatcher(
            patch.object(type(self.env["maildesk.sidecar"]), "_call", autospec=True, side_effect=self.sidecar)
        )
        self.owner = new_test_user(
            self.env, login="md_compose_owner", name="Compose Owner",
            groups="base.group_user,base.group_partner_manager,maildesk.group_maildesk_user",
        )
        self.mailbox = self.env["maildesk.mailbox"].create({"email": "owner@contoso.example", "owner_id": self.owner.id})
        self.drafts = {}
        self.sidecar.answers.update({
            "folder.list": [
                {"id": "f-inbox", "name": "Inbox", "well_known": "inbox", "unread": 0, "total": 1},
                {"id": "f-sent", "name": "Sent Items", "well_known": "sentitems", "unread": 0, "total": 0},
            ],
            "message.list": self.fake_list,
            "message.get": self.fake_get,
            "message.save_draft": self.fake_save,
            "message.send_draft": lambda p: {"internet_message_id": self.drafts[p["draft_id"]]["message_id"], "sent_as": "self"},
            "message.search": self.fake_search,
        })

    ORIGINAL = {
        "id": "AAMk-orig", "internet_message_id": "<orig@customer.example>", "subject": "Offer 42",
        "from": {"name": "Carl", "email": "carl@customer.example"}, "to": [{"email": "owner@contoso.example"}],
        "received_at": "2026-11-20T10:00:00Z", "is_read": True, "has_attachments": True, "snippet": "Please see",
    }
    OLD = {
        "id": "AAMk-old", "internet_message_id": "<old@customer.example>", "subject": "Ancient contract",
        "from": {"name": "Carl", "email": "carl@customer.example"}, "to": [{"email": "owner@contoso.example"}],
        "received_at": "2023-01-02T10:00:00Z", "is_read": True, "snippet": "zebracrossing", "indexed": False,
    }

    def fake_list(self, params):
        if params.get("query"):
            return {"messages": [], "next_cursor": ""}  # the index knows only the synced window
        return {"messages": [dict(self.ORIGINAL)] if params["folder"] == "inbox" else [], "next_cursor": ""}

    def fake_get(self, params):
        mid = params["message_id"]
        if mid in self.drafts:
            d = self.drafts[mid]
            return {"id": mid, "internet_message_id": d["message_id"], "subject": d["subject"],
                    "from": {"email": "owner@contoso.example"}, "to": [{"email": a} for a in d["to"]], "cc": [],
                    "headers": {}, "body_html": d["body_html"], "attachments": []}
        if mid == "AAMk-old":
            return dict(self.OLD, cc=[], headers={}, body_html="<p>zebracrossing</p>", attachments=[])
        return dict(self.ORIGINAL, cc=[], headers={}, body_html=HOSTILE_QUOTE, attachments=[
            {"id": "att-pdf", "name": "quote.pdf", "content_type": "application/pdf", "size": 2048, "is_inline": False},
        ])

    def fake_save(self, params):
        draft_id = "AAMk-draft-%d" % (len(self.drafts) + 1)
        self.drafts.pop(params.get("draft_id"), None)
        self.drafts[draft_id] = params
        return {"draft_id": draft_id, "internet_message_id": params["message_id"], "saved_at": "2026-12-06T01:00:00Z",
                "attachments": []}

    def fake_search(self, params):
        if params.get("folder") == "drafts":
            return {"messages": [
                {"id": k, "subject": v["subject"], "from": {"email": "owner@contoso.example"}, "to": [],
                 "received_at": "2026-12-06T01:00:00Z", "is_draft": True, "is_read": True}
                for k, v in self.drafts.items()
            ], "next_cursor": ""}
        if "zebra" in params.get("query", ""):
            return {"messages": [dict(self.OLD)], "next_cursor": ""}
        return {"messages": [], "next_cursor": ""}

    def test_compose_tour_as_plain_owner(self):
        self.start_tour(compat.action_path("maildesk.maildesk_inbox_action"), "maildesk_compose_tour", login="md_compose_owner")
        self.assertIn("Compose Owner, Sales", self.mailbox.signature)
        saves = [p for m, p in self.sidecar.calls if m == "message.save_draft"]
        sends = [p for m, p in self.sidecar.calls if m == "message.send_draft"]
        self.assertEqual(len(sends), 2, "the resumed draft, then the forward")
        first = saves[0]
        self.assertEqual(first["to"], ["dora@partner.example"])
        self.assertEqual(first["subject"], "Tour draft")
        self.assertIn("Compose Owner, Sales", first["body_html"], "the signature is in the new mail")
        self.assertIn("-openerp-", first["message_id"])
        resumed = saves[1]
        self.assertEqual(resumed["draft_id"], "AAMk-draft-1", "the reopened draft is saved over, not copied")
        self.assertEqual(resumed["message_id"], first["message_id"], "the same Odoo Message-Id")
        self.assertEqual(sends[0]["draft_id"], "AAMk-draft-2")
        forward = saves[2]
        self.assertEqual(forward["subject"], "Fwd: Offer 42")
        self.assertEqual(forward["copy_attachments"], [{"message_id": "AAMk-orig", "attachment_id": "att-pdf"}])
        for bad in ("<script", "onmouseover", 'src="https://tracker.example'):
            self.assertNotIn(bad, forward["body_html"])
        self.assertTrue(any(m == "message.search" and p.get("query") == "zebracrossing" for m, p in self.sidecar.calls))
