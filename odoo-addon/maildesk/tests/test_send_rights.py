# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import email
from unittest.mock import patch

from odoo.addons.base.models.ir_mail_server import MailDeliveryException
from odoo.addons.base.tests.common import MockSmtplibCase
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from odoo.addons.maildesk import compat
from odoo.addons.maildesk.compat import USER_GROUPS

from .common import MaildeskCase

ANNA = "Anna <anna@contoso.example>"


@tagged("post_install", "-at_install")
class TestSendRights(MaildeskCase, MockSmtplibCase):
    """Who may send as a connected mailbox (issue 12, item 1).

    Every mail is caused by a plain internal user (or an automation running
    as one) and really goes through Odoo's mail queue: message_post, mail.mail,
    ir.mail_server routing and send_email, with smtplib mocked and only the
    sidecar call patched.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        partner_manager = cls.env.ref("base.group_partner_manager")
        # Internal users may post on contacts, as in a default database.
        (cls.anna | cls.bob).write({USER_GROUPS: [(4, partner_manager.id)]})
        # Any internal user: no MailDesk group at all.
        cls.carol = new_test_user(
            cls.env, login="md_carol", groups="base.group_user,base.group_partner_manager", name="Carol Colleague"
        )
        cls.server = cls.mailbox.mail_server_id
        # Anna's own address is her mailbox's, as in the issue.
        cls.anna.email = "anna@contoso.example"
        # Only the servers each test creates (no catch-all server from the database).
        cls.env["ir.mail_server"].search([("smtp_authentication", "!=", "maildesk")]).active = False

    def setUp(self):
        super().setUp()
        self.sends = []
        fake = self.sidecar

        def recorder(model, method, **params):
            if method == "message.send":
                # The context the sidecar would get, from the environment _call runs in.
                self.sends.append({"uid": model.env.uid, "context": model._rpc_context(), "params": params})
            return fake(model, method, **params)

        # A plain function: the class's _call is already a mock (MaildeskCase).
        patcher = patch.object(type(self.env["maildesk.sidecar"]), "_call", recorder)
        patcher.start()
        self.addCleanup(patcher.stop)

    def _post(self, user, body="Offer", **kw):
        """A chatter post by ``user`` from Anna's address to the customer; returns its mail.mail."""
        Mail = self.env["mail.mail"].sudo()
        before = Mail.search([]).ids
        message = self.customer.with_user(user).message_post(
            body=body,
            email_from=ANNA,
            partner_ids=self.customer.ids,
            message_type="comment",
            subtype_xmlid="mail.mt_comment",
            mail_auto_delete=False,  # keep sent mail.mail to look at
            **kw,
        )
        # message_post takes the author from email_from: Anna, whoever posts.
        self.assertEqual(message.author_id, self.anna.partner_id)
        # (followers from earlier posts get mail.mail of their own)
        mail = Mail.search([("id", "not in", before), ("recipient_ids", "in", self.customer.ids)])
        self.assertEqual(len(mail), 1, "one mail.mail for the customer")
        self.assertEqual(mail.create_uid, user)
        return mail

    def _notification(self, mail):
        return self.env["mail.notification"].sudo().search([("mail_mail_id", "=", mail.id)])

    def assertSentAs(self, user, count=None):
        """Every message.send so far (at least ``count``, default one) was asked as ``user``."""
        self.assertGreaterEqual(len(self.sends), count or 1, "message.send calls: %s" % self.sends)
        for send in self.sends:
            self.assertEqual(send["uid"], user.id)
            self.assertEqual(send["context"]["uid"], user.id)
            self.assertFalse(send["context"]["maildesk_admin"], "sent with the superuser's rights")
            self.assertEqual(send["params"]["mailbox_id"], self.mailbox.sidecar_id)
            self.assertEqual(send["params"]["user_login"], user.login)
            self.assertEqual(send["params"]["user_name"], user.name)

    # ------------------------------------------------------------------

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_other_user_cannot_send_as_mailbox(self):
        with self.mock_smtplib_connection():
            mail = self._post(self.carol)
        self.assertEqual(self.sends, [], "Carol's mail went out through Anna's mailbox")
        self.assertNotIn("message.send", self.sidecar.methods())
        self.assertEqual(self.emails, [], "no other server should have carried it either")
        self.assertEqual(mail.state, "exception")
        self.assertIn("Carol Colleague may not send e-mail as anna@contoso.example", mail.failure_reason)
        self.assertIn("owner and its assigned users", mail.failure_reason)
        # The author sees why in the chatter (the notification's failure).
        notif = self._notification(mail)
        self.assertEqual(notif.notification_status, "exception")
        self.assertIn("anna@contoso.example", notif.failure_reason)
        # A main user sees the mailbox but may not send as it either.
        self.mailbox.main_user_id = self.carol
        with self.mock_smtplib_connection():
            mail = self._post(self.carol, body="again")
        self.assertEqual((mail.state, self.sends), ("exception", []))

    def test_owner_sends_as_herself(self):
        with self.mock_smtplib_connection():
            mail = self._post(self.anna)
        self.assertSentAs(self.anna)
        self.assertNotEqual(mail.state, "exception", mail.failure_reason)

    def test_assigned_user_sends(self):
        self.mailbox.user_ids = [(4, self.bob.id)]
        with self.mock_smtplib_connection():
            mail = self._post(self.bob)
        self.assertSentAs(self.bob)
        self.assertNotEqual(mail.state, "exception", mail.failure_reason)

    def test_anyone_may_send_option(self):
        self.assertFalse(self.mailbox.anyone_may_send, "must be off by default")
        self.mailbox.with_user(self.admin_user).anyone_may_send = True
        update = [p for m, p in self.sidecar.calls if m == "mailbox.update"][-1]
        self.assertIs(update["anyone_may_send"], True)
        with self.mock_smtplib_connection():
            mail = self._post(self.carol)
        self.assertSentAs(self.carol)
        self.assertNotEqual(mail.state, "exception", mail.failure_reason)

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_automated_mail_follows_the_automation_user(self):
        """A cron posts as its user; the mail queue sends it later as the superuser."""
        code = (
            "env['res.partner'].with_context(mail_notify_force_send=False).browse(%d).message_post("
            "body='Your reminder', email_from=%r, partner_ids=[%d], message_type='comment', "
            "subtype_xmlid='mail.mt_comment', mail_auto_delete=False)" % (self.customer.id, ANNA, self.customer.id)
        )
        Mail = self.env["mail.mail"].sudo()
        for user, allowed in ((self.carol, False), (self.anna, True)):
            self.sends.clear()
            cron = self.env["ir.cron"].create({
                "name": "Reminders as %s" % user.name,
                "model_id": self.env.ref("base.model_res_partner").id,
                "state": "code",
                "code": code,
                "user_id": user.id,
                "interval_number": 1,
                "interval_type": "days",
                "active": False,
            })
            before = Mail.search([]).ids
            # What the cron worker does (ir.cron._callback): the job's action in the cron user's
            # env (19.0's _callback also commits, which a test may not).
            cron.ir_actions_server_id.with_user(user).with_context(lastcall=False, cron_id=cron.id).run()
            self.env.flush_all()
            mail = Mail.search([("id", "not in", before), ("recipient_ids", "in", self.customer.ids)])
            self.assertEqual(len(mail), 1)
            self.assertEqual(mail.author_id, self.anna.partner_id)
            self.assertEqual((mail.state, mail.create_uid), ("outgoing", user))
            # The mail queue's cron runs as the superuser.
            with self.mock_smtplib_connection():
                # (positional: 19.0 renamed the argument ids to email_ids)
                self.env["mail.mail"].process_email_queue(Mail.search([("id", "not in", before)]).ids)
            if allowed:
                self.assertSentAs(self.anna)
                self.assertNotEqual(mail.state, "exception", mail.failure_reason)
            else:
                self.assertEqual(self.sends, [], "the queue sent the cron's mail as the superuser")
                self.assertEqual(mail.state, "exception")
                self.assertIn("Carol Colleague may not send e-mail as anna@contoso.example", mail.failure_reason)

    @mute_logger("odoo.addons.mail.models.mail_mail")
    def test_superuser_automation_needs_the_option(self):
        """Mail created by code running as the superuser is not the superuser's to send as Anna."""
        mail = self.env["mail.mail"].create({
            "email_from": ANNA,
            "email_to": "carl@customer.example",
            "subject": "Automated",
            "body_html": "<p>Hi</p>",
        })
        with self.mock_smtplib_connection():
            mail.send()
        self.assertEqual((mail.state, self.sends), ("exception", []))
        self.mailbox.anyone_may_send = True
        mail.state = "outgoing"
        with self.mock_smtplib_connection():
            mail.send()
        self.assertEqual(len(self.sends), 1)
        self.assertEqual(self.sends[0]["context"]["uid"], self.env.ref("base.user_root").id)
        self.assertEqual(mail.state, "sent")

    def test_other_server_for_the_address_takes_refused_mail(self):
        smtp = self.env["ir.mail_server"].create({
            "name": "Company SMTP",
            "smtp_host": "smtp.contoso.example",
            "from_filter": "contoso.example",
            "sequence": 50,
        })
        with self.mock_smtplib_connection():
            mail = self._post(self.carol)
            self.assertEqual(self.sends, [])
            self.assertEqual(len(self.emails), 1, "Carol's mail should go through the company SMTP server")
            self.assertEqual(self.emails[0]["from_filter"], smtp.from_filter)
            # (17.0's SMTP mock keeps the message only, not its From apart)
            sent_from = email.message_from_string(self.emails[0]["message"])["From"]
            self.assertIn("anna@contoso.example", sent_from)
            self.assertNotEqual(mail.state, "exception", mail.failure_reason)
            # Anna's own mail still goes through her mailbox, not SMTP.
            self._post(self.anna)
            self.assertSentAs(self.anna)
            self.assertEqual(len(self.emails), 1, "Anna's mail went through SMTP")

    def test_server_that_would_rewrite_the_sender_is_no_fallback(self):
        """A server for another domain would send as someone else: the mail fails instead."""
        self.env["ir.mail_server"].create({
            "name": "Other SMTP", "smtp_host": "smtp.fabrikam.example", "from_filter": "fabrikam.example",
        })
        self.assertFalse(self.env["ir.mail_server"]._maildesk_fallback_server(ANNA))
        with self.mock_smtplib_connection(), mute_logger("odoo.addons.mail.models.mail_mail"):
            mail = self._post(self.carol)
        self.assertEqual((mail.state, self.sends, self.emails), ("exception", [], []))

    def _message(self):
        return compat.build_email(self.env["ir.mail_server"], 
            email_from=ANNA,
            email_to=["carl@customer.example"],
            subject="Direct",
            body="<p>direct</p>",
            subtype="html",
            message_id="<direct-1@contoso.example>",
        )

    def test_direct_send_email_is_checked(self):
        """ir.mail_server.send_email callers get the same rule, for the user of their environment."""
        with self.mock_smtplib_connection():
            for env_user in (self.carol, self.env.ref("base.user_root")):
                with self.assertRaises(MailDeliveryException) as ctx:
                    self.env["ir.mail_server"].with_user(env_user).sudo().send_email(self._message())
                self.assertIn("may not send e-mail as anna@contoso.example", str(ctx.exception))
            # A session opened for Anna's mailbox does not help.
            session = compat.mail_server_connect(self.env["ir.mail_server"], mail_server_id=self.server.id)
            with self.assertRaises(MailDeliveryException):
                self.env["ir.mail_server"].with_user(self.carol).send_email(self._message(), smtp_session=session)
            self.assertEqual(self.sends, [])
            self.env["ir.mail_server"].with_user(self.anna).send_email(self._message())
            self.assertSentAs(self.anna)
            # With another server for the address, the refused sender goes there.
            self.env["ir.mail_server"].create({"name": "SMTP", "smtp_host": "smtp.contoso.example",
                                               "from_filter": "anna@contoso.example", "sequence": 50})
            self.env["ir.mail_server"].with_user(self.carol).send_email(self._message())
            self.assertEqual(len(self.emails), 1)
            self.assertEqual(len(self.sends), 1)

    def test_session_refuses_a_user_who_may_not_send(self):
        """The MailDesk session checks again, whoever hands it a message."""
        with self.mock_smtplib_connection():
            session = compat.mail_server_connect(self.env["ir.mail_server"].with_user(self.carol), mail_server_id=self.server.id)
            with self.assertRaises(Exception) as ctx:
                session.send_message(self._message(), "anna@contoso.example", ["carl@customer.example"])
        self.assertIn("Carol Colleague may not send", str(ctx.exception))
        self.assertEqual(self.sends, [])
