# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo.exceptions import AccessError, MissingError, UserError
from odoo.tests import tagged

from odoo.addons.maildesk.compat import USER_GROUPS

from .common import MaildeskCase


@tagged("post_install", "-at_install")
class TestMailbox(MaildeskCase):
    def test_create_registers_in_sidecar_with_odoo_id(self):
        box = self.env["maildesk.mailbox"].create({"email": " Team@Contoso.example ", "owner_id": self.bob.id})
        method, params = self.sidecar.calls[0]
        self.assertEqual(method, "mailbox.create")
        self.assertEqual(params["odoo_id"], box.id)
        self.assertEqual(params["email"], "team@contoso.example")
        self.assertEqual(params["owner_uid"], self.bob.id)
        self.assertEqual(params["folders"], ["inbox", "sentitems"])
        self.assertNotIn("main_user_id", params, "unset users are left out")
        self.assertEqual(params["gateway_model"], "")
        self.assertTrue(box.sidecar_id.startswith("mbx_"))
        self.assertEqual(box.state, "draft")
        # Sending through Microsoft 365: one MailDesk server routed by from_filter.
        self.assertEqual(box.mail_server_id.smtp_authentication, "maildesk")
        self.assertEqual(box.mail_server_id.from_filter, "team@contoso.example")

    def test_update_and_delete_reach_the_sidecar(self):
        box = self.env["maildesk.mailbox"].create({"email": "x@contoso.example"})
        self.sidecar.calls.clear()
        box.write({"user_ids": [(6, 0, [self.anna.id, self.bob.id])]})
        self.assertEqual(self.sidecar.methods(), ["mailbox.update"])
        self.assertEqual(sorted(self.sidecar.calls[0][1]["user_ids"]), sorted([self.anna.id, self.bob.id]))
        server = box.mail_server_id
        self.sidecar.errors["mailbox.delete"] = MissingError("gone")
        box.unlink()
        self.assertFalse(server.exists())

    def test_record_rules(self):
        Mailbox = self.env["maildesk.mailbox"]
        self.assertEqual(Mailbox.with_user(self.anna).search([("id", "=", self.mailbox.id)]), self.mailbox)
        self.assertFalse(Mailbox.with_user(self.bob).search([("id", "=", self.mailbox.id)]))
        with self.assertRaises(AccessError):
            self.mailbox.with_user(self.bob).read(["email"])
        with self.assertRaises(AccessError):
            self.mailbox.with_user(self.bob).maildesk_inbox_folders()
        self.assertNotIn(self.mailbox.id, [m["id"] for m in Mailbox.with_user(self.bob).maildesk_inbox_mailboxes()])
        self.mailbox.user_ids = [(4, self.bob.id)]
        self.assertEqual(Mailbox.with_user(self.bob).search([("id", "=", self.mailbox.id)]), self.mailbox)
        # Users cannot create or edit mailboxes; MailDesk administrators can.
        with self.assertRaises(AccessError):
            Mailbox.with_user(self.anna).create({"email": "nope@contoso.example"})
        Mailbox.with_user(self.admin_user).create({"email": "ok@contoso.example"})

    def test_connect_sync_disconnect(self):
        self.sidecar.answers["mailbox.connect"] = {
            "auth_url": "https://login.example/authorize?state=abc",
            "expires_at": "2026-11-22T10:00:00Z",
        }
        action = self.mailbox.with_user(self.anna).action_connect()
        self.assertEqual(action["type"], "ir.actions.act_url")
        self.assertEqual(action["url"], "https://login.example/authorize?state=abc")
        self.assertEqual(self.mailbox.state, "connecting")
        # An admin connecting someone else's mailbox gets a link to send.
        action = self.mailbox.with_user(self.admin_user).action_connect()
        self.assertEqual(action["tag"], "display_notification")
        self.assertEqual(self.mailbox.connect_url, "https://login.example/authorize?state=abc")

        self.mailbox.with_user(self.anna).action_sync_now()
        self.assertEqual(self.sidecar.calls[-1], ("mailbox.sync_now", {"mailbox_id": self.mailbox.sidecar_id}))

        self.sidecar.answers["mailbox.disconnect"] = {"id": self.mailbox.sidecar_id, "state": "disconnected"}
        self.mailbox.with_user(self.admin_user).action_disconnect()
        self.assertEqual(self.mailbox.state, "disconnected")
        self.assertFalse(self.mailbox.connect_url)

    def test_cron_refreshes_state_and_progress(self):
        self.sidecar.answers["mailbox.list"] = [
            {
                "id": self.mailbox.sidecar_id,
                "state": "syncing",
                "last_sync_at": "2026-11-22T08:00:00Z",
                "error": "",
                "progress": {"done": 250, "total": 1000, "eta_s": 60},
                "counts": {"unread": 7},
            }
        ]
        other = self.env["maildesk.mailbox"].create({"email": "gone@contoso.example"})
        self.sidecar.calls.clear()
        self.env["maildesk.mailbox"]._cron_refresh_state()
        self.assertEqual(self.sidecar.methods(), ["mailbox.list"], "one call for all mailboxes")
        self.assertEqual(self.mailbox.state, "syncing")
        self.assertEqual(self.mailbox.progress, 25.0)
        self.assertEqual(self.mailbox.unread_count, 7)
        self.assertEqual(str(self.mailbox.last_sync_at), "2026-11-22 08:00:00")
        self.assertEqual(other.state, "disconnected", "not in the sidecar's list")

    def test_cron_falls_back_to_get_and_reminds_reauth(self):
        self.sidecar.errors["mailbox.list"] = UserError("old sidecar")
        self.sidecar.answers["mailbox.get"] = lambda p: {"id": p["mailbox_id"], "state": "reauth_required",
                                                         "error": "invalid_grant"}
        self.env["maildesk.mailbox"]._cron_refresh_state()
        self.assertEqual(self.mailbox.state, "reauth_required")
        reminder = self.mailbox.activity_ids.filtered(
            lambda a: a.activity_type_id == self.env.ref("maildesk.mail_activity_type_reauth")
        )
        self.assertEqual(len(reminder), 1)
        self.assertEqual(reminder.user_id, self.anna)
        self.env["maildesk.mailbox"]._cron_refresh_state()
        self.assertEqual(len(self.mailbox.activity_ids), 1, "one reminder, not one per run")
        # One failing mailbox does not stop the cron.
        self.sidecar.answers.clear()
        self.sidecar.errors["mailbox.get"] = UserError("sidecar down")
        with self.assertLogs("odoo.addons.maildesk.models.maildesk_mailbox", level="WARNING") as logs:
            self.env["maildesk.mailbox"]._cron_refresh_state()
        self.assertIn("sidecar down", logs.output[0])

    def test_unknown_state_is_shown_as_unknown(self):
        self.mailbox._apply_sidecar({"state": "brand_new_state"})
        self.assertEqual(self.mailbox.state, "unknown")
        self.mailbox._apply_sidecar({"state": "pending_consent"})
        self.assertEqual(self.mailbox.state, "connecting")
        self.mailbox._apply_sidecar({"state": "connected", "error": "",
                                     "delivery": {"delayed": True, "last_error": "Odoo down"}})
        self.assertIn("Odoo down", self.mailbox.error)

    def test_config_file_wins_over_settings(self):
        from unittest.mock import patch as mpatch

        from odoo import tools

        icp = self.env["ir.config_parameter"].sudo()
        icp.set_param("maildesk.sidecar_url", "http://db.example:1")
        icp.set_param("maildesk.shared_secret", "from-db")
        client = self.env["maildesk.sidecar"]._client()
        self.assertEqual((client.url, client.secret), ("http://db.example:1", "from-db"))
        with mpatch.dict(tools.config.options, {"maildesk_sidecar_url": "http://conf.example:2",
                                                "maildesk_shared_secret": "from-conf"}):
            client = self.env["maildesk.sidecar"]._client()
        self.assertEqual((client.url, client.secret), ("http://conf.example:2", "from-conf"))

    def test_rpc_context_names_the_acting_user(self):
        ctx = self.env["maildesk.sidecar"].with_user(self.anna)._rpc_context()
        self.assertEqual(ctx["uid"], self.anna.id)
        self.assertFalse(ctx["maildesk_admin"])
        self.assertTrue(self.env["maildesk.sidecar"].with_user(self.admin_user)._rpc_context()["maildesk_admin"])

    def test_sidecar_errors_surface_as_odoo_exceptions(self):
        from odoo.addons.maildesk.lib.sidecar_client import SidecarError

        sidecar = self.env["maildesk.sidecar"]
        cases = {
            "AccessDenied": "AccessDenied",
            "AccessError": "AccessError",
            "ValidationError": "ValidationError",
            "MissingError": "MissingError",
            "UserError": "UserError",
            "NotFound": "UserError",
            "InternalError": "UserError",
            "Unreachable": "UserError",
        }
        for kind, expected in cases.items():
            if kind == "InternalError":  # logged as a warning: it is a sidecar bug
                with self.assertLogs("odoo.addons.maildesk.models.maildesk_sidecar", level="WARNING"):
                    exc = sidecar._to_odoo_exception("mailbox.get", SidecarError(kind, "boom", code="c_" + kind))
            else:
                exc = sidecar._to_odoo_exception("mailbox.get", SidecarError(kind, "boom", code="c_" + kind))
            self.assertEqual(type(exc).__name__, expected, kind)
            self.assertEqual(exc.maildesk_code, "c_" + kind)

    def test_inbox_blocks_remote_images_of_unknown_senders(self):
        self.sidecar.answers["message.get"] = {
            "id": "m1",
            "subject": "Hi",
            "from": {"name": "Stranger", "email": "stranger@unknown.example"},
            "to": [],
            "body_html": '<p>x<img src="https://tracker.example/p.gif"><script>alert(1)</script></p>',
            "attachments": [{"id": "a1", "name": "f.txt", "content_type": "text/plain", "size": 3}],
        }
        data = self.mailbox.with_user(self.anna).maildesk_inbox_message("m1")
        self.assertEqual(data["images_blocked"], 1)
        self.assertNotIn("<script", data["body_html"])
        self.assertIn('<img data-maildesk-src="https://tracker.example/p.gif"', data["body_html"])
        self.assertEqual(data["attachments"][0]["url"], "/maildesk/attachment/%s/m1/a1" % self.mailbox.id)
        shown = self.mailbox.with_user(self.anna).maildesk_inbox_message("m1", show_images=True)
        self.assertEqual(shown["images_blocked"], 0)
        # A contact made of logged mail (as ingest makes it: the superuser,
        # or the bridge user) is no reason to trust its images; one a person
        # made is.
        for maker in (self.env.ref("base.user_root"), self.bridge):
            made = self.env["res.partner"].with_user(maker).sudo().create(
                {"name": "Stranger", "email": "stranger@unknown.example"})
            data = self.mailbox.with_user(self.anna).maildesk_inbox_message("m1")
            self.assertEqual((data["images_blocked"], data["sender_trusted"]), (1, False), maker.login)
            made.unlink()
        self.env["res.partner"].with_user(self.env.ref("base.user_admin")).create(
            {"name": "Known", "email": "known@unknown.example"})
        self.sidecar.answers["message.get"] = dict(
            self.sidecar.answers["message.get"], **{"from": {"name": "Known", "email": "known@unknown.example"}})
        data = self.mailbox.with_user(self.anna).maildesk_inbox_message("m1")
        self.assertEqual((data["images_blocked"], data["sender_trusted"]), (0, True))
        self.sidecar.answers["message.get"] = dict(
            self.sidecar.answers["message.get"], **{"from": {"name": "Stranger", "email": "stranger@unknown.example"}})
        self.mailbox.with_user(self.anna).maildesk_trust_sender("stranger@unknown.example")
        trusted = self.mailbox.with_user(self.anna).maildesk_inbox_message("m1")
        self.assertEqual(trusted["images_blocked"], 0)
        # Trust is per user.
        self.mailbox.user_ids = [(4, self.bob.id)]
        self.assertEqual(self.mailbox.with_user(self.bob).maildesk_inbox_message("m1")["images_blocked"], 1)

    def test_partner_emails_button_opens_the_filtered_inbox(self):
        # The mail with the contact in all the user's mailboxes, received and
        # sent; its count and list: test_inbox_combined.
        action = self.customer.with_user(self.anna).action_maildesk_emails()
        self.assertEqual(action["tag"], "maildesk.inbox")
        self.assertEqual(action["params"], {"address": "carl@customer.example", "partner_name": "Carl Customer"})

    def test_inline_images_become_data_uris(self):
        self.sidecar.answers["message.get"] = {
            "id": "m5", "subject": "Logo", "from": {"email": "carl@customer.example"},
            "body_html": '<p><img src="cid:logo@x"><img src="cid:evil@x"></p>',
            "attachments": [
                {"id": "a1", "name": "logo.png", "content_type": "image/png", "size": 3, "is_inline": True,
                 "content_id": "<logo@x>"},
                {"id": "a2", "name": "evil.html", "content_type": "text/html", "size": 3, "is_inline": True,
                 "content_id": "evil@x"},
            ],
        }
        self.sidecar.answers["message.attachment"] = {"name": "logo.png", "content_type": "image/png",
                                                      "data_base64": "iVBORw0K"}
        data = self.mailbox.with_user(self.anna).maildesk_inbox_message("m5")
        self.assertIn('src="data:image/png;base64,iVBORw0K"', data["body_html"])
        self.assertNotIn("text/html", data["body_html"])
        self.assertEqual(self.sidecar.methods().count("message.attachment"), 1)

    def test_inbox_links_messages_odoo_holds(self):
        self.ingest([self.item("g-link", message_id="<linked@customer.example>")])
        self.sidecar.answers["message.list"] = {
            "messages": [{"id": "m9", "internet_message_id": "<linked@customer.example>", "subject": "x"}],
            "next_cursor": None,
        }
        res = self.mailbox.with_user(self.anna).maildesk_inbox_messages(folder="inbox")
        self.assertEqual(res["messages"][0]["linked"][0]["model"], "res.partner")
        self.assertEqual(res["messages"][0]["linked"][0]["res_id"], self.customer.id)
        self.assertEqual(res["messages"][0]["mailbox_id"], self.mailbox.id)

    def test_reply_opens_the_composer_on_the_sender(self):
        self.sidecar.answers["message.get"] = {
            "id": "m2",
            "subject": "Question",
            "from": {"name": "Carl", "email": "carl@customer.example"},
            "to": [{"email": "anna@contoso.example"}],
            "cc": [{"name": "Dan", "email": "dan@customer.example"}],
            "body_html": "<p>?</p>",
        }
        action = self.mailbox.with_user(self.anna).maildesk_compose_action("m2", mode="reply_all")
        ctx = action["context"]
        self.assertEqual(action["res_model"], "mail.compose.message")
        self.assertEqual(ctx["default_model"], "res.partner")
        self.assertEqual(ctx["default_res_ids"], [self.customer.id])
        self.assertEqual(ctx["default_subject"], "Re: Question")
        self.assertEqual(len(ctx["default_partner_ids"]), 2)
        self.assertIn("anna@contoso.example", ctx["default_email_from"])
        self.assertNotIn("default_parent_id", ctx)

    def test_reply_to_a_message_odoo_holds_threads_on_it(self):
        res = self.ingest([self.item("g-reply", message_id="<held@customer.example>")])
        self.sidecar.answers["message.get"] = {
            "id": "m4", "subject": "Quote", "internet_message_id": "<held@customer.example>",
            "from": {"email": "carl@customer.example"}, "body_html": "<p>x</p>",
        }
        ctx = self.mailbox.with_user(self.anna).maildesk_compose_action("m4")["context"]
        self.assertEqual(ctx["default_parent_id"], res[0]["odoo_message_ids"][0])
        self.assertEqual((ctx["default_model"], ctx["default_res_ids"]), ("res.partner", [self.customer.id]))
        # Odoo's own composer takes these defaults and posts the reply.
        self.anna[USER_GROUPS] = [(4, self.env.ref("base.group_partner_manager").id)]
        composer = self.env["mail.compose.message"].with_user(self.anna).with_context(ctx, mail_notify_force_send=False).create({})
        self.assertEqual(composer.subject, "Re: Quote")
        self.assertEqual(composer.parent_id.id, ctx["default_parent_id"])
        composer._action_send_mail()
        reply = self.env["mail.message"].search(
            [("model", "=", "res.partner"), ("res_id", "=", self.customer.id), ("subject", "=", "Re: Quote")]
        )
        self.assertEqual(len(reply), 1)
        self.assertEqual(reply.parent_id.id, ctx["default_parent_id"])
        self.assertIn("anna@contoso.example", reply.email_from)
        mail = self.env["mail.mail"].sudo().search([("mail_message_id", "=", reply.id)])
        self.assertIn("<held@customer.example>", mail.references or "")

    def test_log_to_record_checks_access(self):
        self.sidecar.answers["message.log_to_record"] = {"odoo_message_id": 1}
        with self.assertRaises(AccessError):  # not her mailbox
            self.mailbox.with_user(self.bob).maildesk_log_to_record("m3", "res.partner", self.customer.id)
        with self.assertRaises(AccessError):  # may not post on contacts
            self.mailbox.with_user(self.anna).maildesk_log_to_record("m3", "res.partner", self.customer.id)
        self.anna[USER_GROUPS] = [(4, self.env.ref("base.group_partner_manager").id)]
        res = self.mailbox.with_user(self.anna).maildesk_log_to_record("m3", "res.partner", self.customer.id)
        self.assertEqual(res, {"odoo_message_id": 1})
        self.assertEqual(
            self.sidecar.calls[-1][1],
            {"mailbox_id": self.mailbox.sidecar_id, "message_id": "m3", "model": "res.partner",
             "res_id": self.customer.id},
        )
