# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from unittest.mock import patch

from odoo.tests import HttpCase, new_test_user, tagged

from .common import FakeSidecar


@tagged("post_install", "-at_install")
class TestInboxUi(HttpCase):
    """The OWL inbox in a real browser, the sidecar patched on the server side."""

    def setUp(self):
        super().setUp()
        self.sidecar = FakeSidecar()
        self.startPatcher(
            patch.object(type(self.env["maildesk.sidecar"]), "_call", autospec=True, side_effect=self.sidecar)
        )
        admin = self.env.ref("base.user_admin")
        self.mailbox = self.env["maildesk.mailbox"].create({"email": "tour@contoso.example", "owner_id": admin.id})
        self.mailbox.with_context(maildesk_from_sidecar=True).unread_count = 3
        self.customer = self.env["res.partner"].create({"name": "Tour Customer", "email": "tc@customer.example"})
        self.sidecar.answers.update(
            {
                "folder.list": [
                    {"id": "f-inbox", "name": "Inbox", "well_known": "inbox", "unread": 3, "total": 3},
                    {"id": "f-sent", "name": "Sent Items", "well_known": "sentitems", "unread": 0, "total": 0},
                ],
                "message.list": {
                    "messages": [
                        {
                            "id": "AAMk-tour-1",
                            "internet_message_id": "<tour-1@customer.example>",
                            "subject": "Tour subject",
                            "from": {"name": "Stranger", "email": "stranger@unknown.example"},
                            "to": [{"email": "tour@contoso.example"}],
                            "received_at": "2026-11-20T10:00:00Z",
                            "is_read": False,
                            "has_attachments": True,
                            "snippet": "Hello from the tour",
                        }
                    ],
                    "next_cursor": None,
                },
                "message.get": {
                    "id": "AAMk-tour-1",
                    "internet_message_id": "<tour-1@customer.example>",
                    "subject": "Tour subject",
                    "from": {"name": "Stranger", "email": "stranger@unknown.example"},
                    "to": [{"email": "tour@contoso.example"}],
                    "cc": [],
                    "received_at": "2026-11-20T10:00:00Z",
                    "body_html": '<p>Hello from the tour<img src="https://tracker.example/p.gif"></p>',
                    "attachments": [
                        {"id": "att1", "name": "quote.pdf", "content_type": "application/pdf", "size": 10,
                         "is_inline": False}
                    ],
                },
            }
        )

    def test_inbox_tour(self):
        self.start_tour("/odoo/action-maildesk.maildesk_inbox_action", "maildesk_inbox_tour", login="admin")
        methods = self.sidecar.methods()
        self.assertIn("folder.list", methods)
        self.assertIn("message.list", methods)
        self.assertIn("message.mark_read", methods)
        logged = [p for m, p in self.sidecar.calls if m == "message.log_to_record"]
        self.assertEqual(logged, [{"mailbox_id": self.mailbox.sidecar_id, "message_id": "AAMk-tour-1",
                                   "model": "res.partner", "res_id": self.customer.id}])
        shown = [p for m, p in self.sidecar.calls if m == "message.get"]
        self.assertEqual(len(shown), 3, "opened, shown once with images, reopened after logging")

    def test_inbox_tour_as_plain_owner(self):
        """The same tour as the people who use the inbox: a plain internal
        user who owns the mailbox (MailDesk User, not an administrator)."""
        owner = new_test_user(
            self.env, login="md_tour_owner", name="Tour Owner",
            groups="base.group_user,base.group_partner_manager,maildesk.group_maildesk_user",
        )
        self.mailbox.owner_id = owner
        self.start_tour("/odoo/action-maildesk.maildesk_inbox_action", "maildesk_inbox_tour", login="md_tour_owner")
        logged = [p for m, p in self.sidecar.calls if m == "message.log_to_record"]
        self.assertEqual(logged, [{"mailbox_id": self.mailbox.sidecar_id, "message_id": "AAMk-tour-1",
                                   "model": "res.partner", "res_id": self.customer.id}])
        self.assertFalse(owner.has_group("maildesk.group_maildesk_admin"))

    def test_settings_and_mailbox_form_render(self):
        self.sidecar.answers["settings.get"] = {"azure": {"tenant": "t1", "client_id": "c1",
                                                          "client_secret": {"set": True}}}
        self.env["ir.config_parameter"].sudo().set_param("maildesk.sidecar_url", "http://127.0.0.1:9")
        self.start_tour("/odoo/action-maildesk.maildesk_settings_action", "maildesk_settings_tour", login="admin")
        box = self.env["maildesk.mailbox"].create({"email": "form@contoso.example"})
        self.start_tour(
            "/odoo/action-maildesk.maildesk_mailbox_action/%s" % box.id, "maildesk_mailbox_form_tour", login="admin"
        )
        self.assertIn("mailbox.get", self.sidecar.methods(), "the form refreshes the state on open")
