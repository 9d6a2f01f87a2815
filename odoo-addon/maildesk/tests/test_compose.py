# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import base64
import json

from odoo.exceptions import AccessError, ValidationError
from odoo.tests import new_test_user, tagged

from .common import MaildeskCase

HOSTILE = (
    '<p onclick="alert(1)">Hello<script>alert("x")</script>'
    '<img src="https://tracker.example/pixel.gif" onerror="alert(2)">'
    '<a href="javascript:alert(3)">link</a></p>'
)


@tagged("post_install", "-at_install")
class TestCompose(MaildeskCase):
    """The inbox composer, signatures, drafts and search, called as the users
    who call them: the mailbox's owner (a plain MailDesk user) and its main
    user, who sees the mailbox but may not send as it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.carol = new_test_user(cls.env, login="md_carol_c", groups="maildesk.group_maildesk_user", name="Carol")
        cls.mailbox.write({"main_user_id": cls.carol.id})
        cls.shared = cls.env["maildesk.mailbox"].create(
            {"email": "info@contoso.example", "kind": "shared", "owner_id": cls.bob.id, "user_ids": [(6, 0, [cls.anna.id])]}
        )

    def setUp(self):
        super().setUp()
        self.sidecar.answers["message.get"] = self.fake_get
        self.sidecar.answers["message.save_draft"] = lambda p: {
            "draft_id": "draft-new", "internet_message_id": p["message_id"], "saved_at": "2026-12-06T01:00:00Z",
            "attachments": [{"id": "att-9", "name": "offer.pdf", "size": 10, "is_inline": False}],
        }
        self.sidecar.answers["message.send_draft"] = lambda p: {"internet_message_id": "<sent@x>", "sent_as": "self"}

    def fake_get(self, params):
        if params["message_id"] == "outlook-draft":
            return {
                "id": "outlook-draft", "internet_message_id": "<AM0PR01MB@eurprd01.prod.outlook.com>",
                "subject": "Typed in Outlook", "from": {"email": "anna@contoso.example"},
                "to": [{"name": "Carl", "email": "carl@customer.example"}], "cc": [],
                "bcc": [{"name": "Boss", "email": "boss@contoso.example"}, {"email": "files@contoso.example"}],
                "headers": {"in-reply-to": "<orig@customer.example>"}, "body_html": "<p>draft body</p>",
                "attachments": [{"id": "att-1", "name": "plan.xlsx", "size": 5, "is_inline": False}],
            }
        return {
            "id": params["message_id"], "internet_message_id": "<orig-7@customer.example>",
            "subject": "Offer 42", "received_at": "2026-11-02T09:14:03Z",
            "from": {"name": "Carl", "email": "carl@customer.example"},
            "to": [{"email": "anna@contoso.example"}, {"name": "Dora", "email": "dora@customer.example"}],
            "cc": [{"email": "eve@customer.example"}],
            "reply_to": [],
            "headers": {"references": "<root-1@customer.example>"},
            "body_html": HOSTILE,
            "attachments": [
                {"id": "att-1", "name": "offer.pdf", "size": 2048, "is_inline": False},
                {"id": "att-2", "name": "logo.png", "size": 10, "is_inline": True, "content_id": "logo"},
            ],
        }

    def box(self, user=None, mailbox=None):
        return (mailbox or self.mailbox).with_user(user or self.anna)

    def calls(self, method):
        return [p for m, p in self.sidecar.calls if m == method]

    # -- who may write -------------------------------------------------

    def test_senders_are_the_mailboxes_the_user_may_send_as(self):
        senders = self.env["maildesk.mailbox"].with_user(self.anna).maildesk_compose_senders()
        self.assertEqual(sorted(s["email"] for s in senders), ["anna@contoso.example", "info@contoso.example"])
        self.assertEqual(self.env["maildesk.mailbox"].with_user(self.carol).maildesk_compose_senders(), [],
                         "the main user sees the mailbox but may not send as it")

    def test_a_user_who_may_not_send_is_refused_clearly(self):
        for call in (
            lambda b: b.maildesk_compose_prepare("new"),
            lambda b: b.maildesk_draft_save({"to": "carl@customer.example", "subject": "x"}),
            lambda b: b.maildesk_draft_send({"to": "carl@customer.example", "subject": "x"}),
            lambda b: b.maildesk_draft_open("outlook-draft"),
        ):
            with self.assertRaisesRegex(AccessError, "Carol may not send e-mail as anna@contoso.example"):
                call(self.box(self.carol))
        self.assertFalse(self.calls("message.save_draft") + self.calls("message.send_draft"))

    # -- signature -----------------------------------------------------

    def test_owner_sets_a_sanitised_signature(self):
        stored = self.box().maildesk_set_signature(
            '<p>Anna <b>Example</b><script>alert(1)</script><img src="x" onerror="alert(2)"></p>'
        )
        self.assertIn("<b>Example</b>", stored)
        self.assertNotIn("script", stored)
        self.assertNotIn("onerror", stored)
        values = self.box().maildesk_compose_prepare("new")
        self.assertIn("Anna <b>Example</b>", values["body_html"])
        self.assertIn("-openerp-", values["message_id"], "the draft carries an Odoo Message-Id")

    def test_only_owner_or_admin_sets_the_signature(self):
        with self.assertRaisesRegex(AccessError, "Only the owner"):
            self.box(self.carol).maildesk_set_signature("<p>Not mine</p>")
        self.box(self.admin_user).maildesk_set_signature("<p>Set by the admin</p>")
        self.assertIn("Set by the admin", self.mailbox.signature)

    def test_signature_entry_only_for_who_may_set_it(self):
        """The inbox shows Signature under a mailbox only to its owner (and
        MailDesk administrators): not to its main user, nor to a user of a
        shared mailbox."""
        def entries(user):
            rows = self.env["maildesk.mailbox"].with_user(user).maildesk_inbox_mailboxes()
            return {r["email"]: r["can_edit_signature"] for r in rows if r["email"] in ("anna@contoso.example", "info@contoso.example")}
        self.assertEqual(entries(self.anna), {"anna@contoso.example": True, "info@contoso.example": False})
        self.assertEqual(entries(self.carol), {"anna@contoso.example": False})
        self.assertEqual(entries(self.bob), {"info@contoso.example": True})
        self.assertEqual(entries(self.admin_user), {"anna@contoso.example": True, "info@contoso.example": True})

    # -- reply, reply all, forward ----------------------------------------

    def test_reply_all_quotes_the_original_harmlessly(self):
        self.mailbox.signature = "<p>-- Anna</p>"
        values = self.box().maildesk_compose_prepare("reply_all", "orig-id")
        self.assertEqual(values["to"], "Carl <carl@customer.example>")
        self.assertIn("dora@customer.example", values["cc"])
        self.assertIn("eve@customer.example", values["cc"])
        self.assertNotIn("anna@contoso.example", values["cc"], "not to oneself")
        self.assertEqual(values["subject"], "Re: Offer 42")
        self.assertEqual(values["in_reply_to"], "<orig-7@customer.example>")
        self.assertEqual(values["references"], "<root-1@customer.example> <orig-7@customer.example>")
        body = values["body_html"]
        self.assertIn("-- Anna", body)
        for bad in ("<script", "onclick", "onerror", "javascript:", 'src="https://tracker.example'):
            self.assertNotIn(bad, body)
        self.assertEqual(values["attachments"], [])

    def test_forward_keeps_the_attachments(self):
        values = self.box().maildesk_compose_prepare("forward", "orig-id")
        self.assertEqual(values["subject"], "Fwd: Offer 42")
        self.assertEqual(values["to"], "")
        self.assertEqual([a["attachment_id"] for a in values["attachments"]], ["att-1"], "inline images are not attachments")
        self.box().maildesk_draft_send(dict(values, to="dora@partner.example"))
        saved = self.calls("message.save_draft")[0]
        self.assertEqual(saved["copy_attachments"], [{"message_id": "orig-id", "attachment_id": "att-1"}])
        self.assertEqual(saved["message_id"], values["message_id"])
        self.assertEqual(self.calls("message.send_draft")[0]["draft_id"], "draft-new")

    # -- drafts -----------------------------------------------------------

    def test_save_draft_sends_clean_fields_to_the_sidecar(self):
        res = self.box().maildesk_draft_save({
            "to": "Carl <carl@customer.example>; dora@customer.example", "subject": " Offer ",
            "body_html": HOSTILE, "draft_id": "draft-old",
            "new_attachments": [{"name": "a.txt", "content_type": "text/plain", "data_base64": "aGVsbG8="}],
        })
        self.assertEqual(res["draft_id"], "draft-new")
        self.assertEqual(res["attachments"], [{"message_id": "draft-new", "attachment_id": "att-9", "name": "offer.pdf", "size": 10}])
        p = self.calls("message.save_draft")[0]
        self.assertEqual(p["mailbox_id"], self.mailbox.sidecar_id)
        self.assertEqual(p["to"], ['"Carl" <carl@customer.example>', "dora@customer.example"])
        self.assertEqual(p["subject"], "Offer")
        self.assertEqual(p["draft_id"], "draft-old")
        self.assertEqual(p["attachments"][0]["name"], "a.txt")
        self.assertEqual(p["user_login"], "md_anna")
        for bad in ("<script", "onclick", "onerror", "javascript:"):
            self.assertNotIn(bad, p["body_html"])

    def test_bad_addresses_and_no_recipients_are_refused(self):
        with self.assertRaisesRegex(ValidationError, "not a valid e-mail address"):
            self.box().maildesk_draft_save({"to": "carl at customer", "subject": "x"})
        with self.assertRaisesRegex(ValidationError, "at least one recipient"):
            self.box().maildesk_draft_send({"to": "", "subject": "x"})
        self.assertFalse(self.calls("message.send_draft"))

    def test_forward_keeps_inline_images(self):
        """The original's cid: image shows in the composer (a data: URI) and is
        saved as an inline part the draft's body points at with cid:."""
        png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"logo" * 50).decode()
        self.sidecar.answers["message.get"] = lambda p: {
            "id": p["message_id"], "internet_message_id": "<logo@customer.example>", "subject": "Our new logo",
            "from": {"name": "Carl", "email": "carl@customer.example"}, "to": [{"email": "anna@contoso.example"}],
            "cc": [], "headers": {}, "body_html": '<p>Here it is: <img src="cid:logo.1@customer.example"></p>',
            "attachments": [
                {"id": "att-logo", "name": "logo.png", "content_type": "image/png", "size": 210, "is_inline": True,
                 "content_id": "logo.1@customer.example"},
                {"id": "att-1", "name": "offer.pdf", "content_type": "application/pdf", "size": 2048, "is_inline": False},
            ],
        }
        self.sidecar.answers["message.attachment"] = lambda p: {"data_base64": png, "content_type": "image/png"}
        values = self.box().maildesk_compose_prepare("forward", "orig-logo")
        self.assertIn("data:image/png;base64," + png, values["body_html"], "the composer shows the image")
        self.assertEqual([a["attachment_id"] for a in values["attachments"]], ["att-1"])
        self.box().maildesk_draft_save(dict(values, to="dora@partner.example"))
        saved = self.calls("message.save_draft")[-1]
        inline = [a for a in saved.get("attachments") or [] if a.get("is_inline")]
        self.assertEqual(len(inline), 1, saved.get("attachments"))
        self.assertEqual((inline[0]["data_base64"], inline[0]["content_type"]), (png, "image/png"))
        self.assertIn('src="cid:%s"' % inline[0]["content_id"], saved["body_html"])
        self.assertNotIn("data:image", saved["body_html"])
        self.assertEqual(saved["copy_attachments"], [{"message_id": "orig-logo", "attachment_id": "att-1"}])

    def test_reading_pane_shows_remote_images_only_when_allowed(self):
        """A body as the real sidecar answers it (a remote image's src moved to
        data-remote-src): blocked until the user shows images, then shown."""
        self.sidecar.answers["message.get"] = lambda p: {
            "id": p["message_id"], "internet_message_id": "<remote@unknown.example>", "subject": "Logo",
            "from": {"email": "stranger@unknown.example"}, "to": [], "cc": [], "headers": {}, "attachments": [],
            "body_html": '<p>Hi</p><img data-remote-src="https://cdn.unknown.example/logo.png" alt="logo">',
        }
        shown = self.box().maildesk_inbox_message("m-remote")
        self.assertEqual(shown["images_blocked"], 1)
        self.assertIn('data-maildesk-src="https://cdn.unknown.example/logo.png"', shown["body_html"])
        self.assertNotIn('src="https://', shown["body_html"].replace("data-maildesk-src=", ""))
        allowed = self.box().maildesk_inbox_message("m-remote", show_images=True)
        self.assertEqual(allowed["images_blocked"], 0)
        self.assertIn('src="https://cdn.unknown.example/logo.png"', allowed["body_html"])
        self.assertNotIn("data-remote-src", allowed["body_html"])

    def test_outlook_draft_opens_with_an_odoo_message_id(self):
        values = self.box().maildesk_draft_open("outlook-draft")
        self.assertEqual(values["draft_id"], "outlook-draft")
        self.assertEqual(values["subject"], "Typed in Outlook")
        self.assertEqual(values["to"], "Carl <carl@customer.example>")
        self.assertEqual(values["bcc"], "Boss <boss@contoso.example>, files@contoso.example",
                         "a draft saved with Bcc reopens with it")
        self.assertEqual(values["in_reply_to"], "<orig@customer.example>")
        self.assertIn("-openerp-", values["message_id"])
        self.assertEqual(values["attachments"][0]["attachment_id"], "att-1")

    # -- search -------------------------------------------------------------

    def test_search_merges_the_users_mailboxes(self):
        def answer(params):
            if params["mailbox_id"] == self.mailbox.sidecar_id:
                if params.get("cursor"):
                    return {"messages": [{"id": "a-old", "received_at": "2020-01-01T00:00:00Z"}], "next_cursor": ""}
                return {"messages": [{"id": "a-new", "received_at": "2026-11-03T00:00:00Z", "indexed": True}],
                        "next_cursor": "c2"}
            return {"messages": [{"id": "s-1", "received_at": "2026-11-04T00:00:00Z"}], "next_cursor": ""}

        self.sidecar.answers["message.search"] = answer
        Mailbox = self.env["maildesk.mailbox"].with_user(self.anna)
        res = Mailbox.maildesk_search("from:carl contract")
        self.assertEqual([m["id"] for m in res["messages"]], ["s-1", "a-new"])
        self.assertEqual({p["query"] for p in self.calls("message.search")}, {"from:carl contract"})
        more = Mailbox.maildesk_search("from:carl contract", cursor=res["next_cursor"])
        self.assertEqual([m["id"] for m in more["messages"]], ["a-old"])
        self.assertEqual(json.loads(res["next_cursor"]), {str(self.mailbox.id): "c2"})
        # Carol (main user of anna's mailbox only) searches only what she sees.
        self.sidecar.calls.clear()
        self.env["maildesk.mailbox"].with_user(self.carol).maildesk_search("contract")
        self.assertEqual([p["mailbox_id"] for p in self.calls("message.search")], [self.mailbox.sidecar_id])
        with self.assertRaises(ValidationError):
            Mailbox.maildesk_search("   ")
