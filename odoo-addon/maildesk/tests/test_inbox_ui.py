# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from unittest.mock import patch

from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.maildesk import compat

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
        self.company = self.env["res.partner"].create({"name": "Tour Company", "is_company": True})
        self.other = self.env["res.partner"].create({"name": "Tour Other"})
        self.logged = self._ingest_logged_mail()
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
                            "delivery": "unrouted",
                        },
                        dict(self.LOGGED_SUMMARY, delivery="posted"),
                        {
                            "id": "AAMk-tour-3",
                            "internet_message_id": "<tour-3@customer.example>",
                            "subject": "Tour private mail",
                            "from": {"name": "Carl", "email": "tc@customer.example"},
                            "to": [{"email": "tour@contoso.example"}],
                            "received_at": "2026-11-19T10:00:00Z",
                            "is_read": True,
                            "delivery": "excluded",
                            "delivery_error": "not logged: private (Outlook sensitivity)",
                        },
                    ],
                    "next_cursor": None,
                },
                "message.get": lambda params: (
                    dict(self.LOGGED_SUMMARY, cc=[], body_html="<p>Logged for the tour</p>", attachments=[])
                    if params["message_id"] == "AAMk-tour-2" else self.TOUR_1
                ),
            }
        )

    LOGGED_SUMMARY = {
        "id": "AAMk-tour-2",
        "internet_message_id": "<tour-2@customer.example>",
        "conversation_id": "conv-tour-2",
        "subject": "Tour logged mail",
        "from": {"name": "Tour Customer", "email": "tc@customer.example"},
        "to": [{"email": "tour@contoso.example"}],
        "received_at": "2026-11-20T09:00:00Z",
        "is_read": True,
        "snippet": "Logged for the tour",
    }

    def _ingest_logged_mail(self):
        """A mail the bridge logged on Tour Customer, where routing also
        found Tour Company's documents (as ingest of the bridge user does)."""
        bridge = new_test_user(self.env, login="md_tour_bridge", groups="maildesk.group_maildesk_bridge")
        item = {
            "graph_id": "AAMk-tour-2", "mailbox": self.mailbox.sidecar_id, "folder": "inbox", "direction": "in",
            "internet_message_id": "<tour-2@customer.example>", "conversation_id": "conv-tour-2",
            "received_at": "2026-11-20T09:00:00Z", "subject": "Tour logged mail",
            "from": {"name": "Tour Customer", "email": "tc@customer.example"},
            "to": [{"email": "tour@contoso.example"}], "body_html": "<p>Logged for the tour</p>",
        }
        res = self.mailbox.with_user(bridge).maildesk_ingest([item], options={})
        self.assertEqual(res[0]["records"], [["res.partner", self.customer.id]], res)
        logged = self.env["mail.message"].browse(res[0]["odoo_message_ids"])
        logged.sudo().maildesk_candidates = "res.partner,%s" % self.company.id
        return logged

    def assertTourMovedAndExcluded(self, user):
        """What the tour did, in the database."""
        exclusion = self.env["maildesk.exclusion"].search([("mailbox_id", "=", self.mailbox.id)])
        self.assertEqual((exclusion.kind, exclusion.value, exclusion.label, exclusion.create_uid),
                         ("conversation", "conv-tour-2", "Tour logged mail", user))
        self.assertFalse(self.env["mail.message"].search([("maildesk_graph_id", "=", "AAMk-tour-2")]),
                         "moved twice, then removed when the conversation was excluded")

    # The stranger's mail (not in Odoo) as message.get answers it.
    TOUR_1 = {
        "id": "AAMk-tour-1",
        "internet_message_id": "<tour-1@customer.example>",
        "subject": "Tour subject",
        "from": {"name": "Stranger", "email": "stranger@unknown.example"},
        "to": [{"email": "tour@contoso.example"}],
        "cc": [],
        "received_at": "2026-11-20T10:00:00Z",
        "delivery": "unrouted",
        "body_html": '<p>Hello from the tour<img src="https://tracker.example/p.gif"></p>',
        "attachments": [
            {"id": "att1", "name": "quote.pdf", "content_type": "application/pdf", "size": 10,
             "is_inline": False}
        ],
    }

    def test_inbox_tour(self):
        self.start_tour(compat.action_path("maildesk.maildesk_inbox_action"), "maildesk_inbox_tour", login="admin")
        methods = self.sidecar.methods()
        self.assertIn("folder.list", methods)
        self.assertIn("message.list", methods)
        self.assertIn("message.mark_read", methods)
        logged = [p for m, p in self.sidecar.calls if m == "message.log_to_record"]
        self.assertEqual(logged, [{"mailbox_id": self.mailbox.sidecar_id, "message_id": "AAMk-tour-1",
                                   "model": "res.partner", "res_id": self.customer.id}])
        shown = [p for m, p in self.sidecar.calls if m == "message.get" and p["message_id"] == "AAMk-tour-1"]
        self.assertEqual(len(shown), 3, "opened, shown once with images, reopened after logging")
        self.assertTourMovedAndExcluded(self.env.ref("base.user_admin"))

    def test_inbox_tour_as_plain_owner(self):
        """The same tour as the people who use the inbox: a plain internal
        user who owns the mailbox (MailDesk User, not an administrator)."""
        owner = new_test_user(
            self.env, login="md_tour_owner", name="Tour Owner",
            groups="base.group_user,base.group_partner_manager,maildesk.group_maildesk_user",
        )
        self.mailbox.owner_id = owner
        self.start_tour(compat.action_path("maildesk.maildesk_inbox_action"), "maildesk_inbox_tour", login="md_tour_owner")
        logged = [p for m, p in self.sidecar.calls if m == "message.log_to_record"]
        self.assertEqual(logged, [{"mailbox_id": self.mailbox.sidecar_id, "message_id": "AAMk-tour-1",
                                   "model": "res.partner", "res_id": self.customer.id}])
        self.assertFalse(owner.has_group("maildesk.group_maildesk_admin"))
        self.assertTourMovedAndExcluded(owner)

    def test_chatter_says_which_mailbox(self):
        """Any internal user who reads the contact (not a MailDesk user) sees
        "via tour@contoso.example" on the logged mail, not on a note."""
        reader = new_test_user(self.env, login="md_tour_reader", name="Tour Reader", groups="base.group_user")
        self.customer.message_post(body="A note", message_type="comment", subtype_xmlid="mail.mt_note")
        self.start_tour(compat.record_path("res.partner", self.customer.id), "maildesk_chatter_tour", login="md_tour_reader")
        self.assertFalse(reader.has_group("maildesk.group_maildesk_user"))

    def test_preview_routing_wizard_as_plain_owner(self):
        """The owner (a plain MailDesk user) opens the preview from the mailbox
        form; nothing is written."""
        owner = new_test_user(self.env, login="md_preview_owner", groups="maildesk.group_maildesk_user",
                              name="Preview Owner", password="md_preview_owner")
        box = self.env["maildesk.mailbox"].create({"email": "preview@contoso.example", "owner_id": owner.id})
        customer = self.env["res.partner"].create({"name": "Preview Customer", "email": "pc@customer.example"})
        item = {
            "graph_id": "AAMk-prev-1", "mailbox": box.sidecar_id, "folder": "inbox", "direction": "in",
            "internet_message_id": "<prev-1@customer.example>", "received_at": "2026-11-20T10:00:00Z",
            "subject": "Preview quote", "from": {"name": "PC", "email": "pc@customer.example"},
            "to": [{"email": "preview@contoso.example"}], "headers": {}, "options": {"mode": "log"},
        }
        private = dict(item, graph_id="AAMk-prev-2", internet_message_id="<prev-2@customer.example>",
                       subject="Private matter", sensitivity="private")
        self.sidecar.answers["mailbox.preview_items"] = {"items": [item, private], "truncated": False, "total": 2}
        # The form's routing rules must not make the owner's browser read
        # documents it may not (with crm: the lead rule's record count).
        with self.assertNoLogs("odoo.http", level="WARNING"):
            self.start_tour(compat.action_path("maildesk.maildesk_mailbox_action", box.id), "maildesk_preview_tour",
                            login="md_preview_owner")
        self.assertIn("mailbox.preview_items", self.sidecar.methods())
        self.assertFalse(self.env["mail.message"].search([("maildesk_graph_id", "in", ["AAMk-prev-1", "AAMk-prev-2"])]))
        self.assertFalse(customer.message_ids.filtered(lambda m: m.message_type == "email"))

    def test_settings_and_mailbox_form_render(self):
        self.sidecar.answers["settings.get"] = {"azure": {"tenant": "t1", "client_id": "c1",
                                                          "client_secret": {"set": True}}}
        self.env["ir.config_parameter"].sudo().set_param("maildesk.sidecar_url", "http://127.0.0.1:9")
        self.start_tour(compat.action_path("maildesk.maildesk_settings_action"), "maildesk_settings_tour", login="admin")
        box = self.env["maildesk.mailbox"].create({"email": "form@contoso.example"})
        self.start_tour(
            compat.action_path("maildesk.maildesk_mailbox_action", box.id), "maildesk_mailbox_form_tour", login="admin"
        )
        self.assertIn("mailbox.get", self.sidecar.methods(), "the form refreshes the state on open")
