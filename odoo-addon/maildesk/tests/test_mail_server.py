# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import base64
from contextlib import ExitStack
from unittest.mock import patch

from odoo.addons.base.models.ir_mail_server import MailDeliveryException
from odoo.exceptions import UserError
from odoo.tests import tagged

from odoo.addons.maildesk import compat

from .common import MaildeskCase


@tagged("post_install", "-at_install")
class TestMailServer(MaildeskCase):
    def _send(self, user=None):
        # Sent by Anna, the mailbox's owner (others may not: test_send_rights).
        IrMailServer = self.env["ir.mail_server"].with_user(user or self.anna)
        message = compat.build_email(IrMailServer, 
            email_from="Anna <anna@contoso.example>",
            email_to=["carl@customer.example"],
            email_bcc=["boss@contoso.example"],
            subject="Offer",
            body="<p>Here it is</p>",
            subtype="html",
            message_id="<offer-42@contoso.example>",
        )
        # Odoo never connects in test mode; pretend we are not in a test
        # (17.0 asks ir.mail_server._is_test_mode).
        with ExitStack() as stack:
            stack.enter_context(patch("odoo.modules.module.current_test", False))
            if compat.SERIES < 18:
                stack.enter_context(patch.object(type(IrMailServer), "_is_test_mode", lambda self: False))
            return IrMailServer.send_email(message)

    def test_send_goes_through_sidecar_with_raw_mime(self):
        self.sidecar.answers["message.send"] = {"internet_message_id": "<offer-42@contoso.example>"}
        message_id = self._send()
        self.assertEqual(message_id, "<offer-42@contoso.example>")
        method, params = self.sidecar.calls[-1]
        self.assertEqual(method, "message.send")
        self.assertEqual(params["mailbox_id"], self.mailbox.sidecar_id)
        # Asked as Anna, not as the superuser (the sidecar audits that user).
        self.assertEqual((params["user_login"], params["user_name"]), (self.anna.login, self.anna.name))
        # Idempotency key from the Message-Id: a retry of this mail is the same request.
        self.assertTrue(params["request_id"].startswith("offer-42@contoso.example#"), params["request_id"])
        # The same mail again (Odoo's retry) is the same request.
        self._send()
        self.assertEqual(self.sidecar.calls[-1][1]["request_id"], params["request_id"])
        raw = base64.b64decode(params["mime_base64"])
        self.assertIn(b"Message-Id: <offer-42@contoso.example>", raw)
        self.assertIn(b"Bcc: boss@contoso.example", raw)

    def test_other_senders_never_use_a_mailbox(self):
        IrMailServer = self.env["ir.mail_server"]
        server = self.mailbox.mail_server_id
        self.assertEqual(IrMailServer._find_mail_server("Anna <ANNA@contoso.example>")[0], server)
        # Same domain, another address: not Anna's mailbox.
        self.assertNotEqual(IrMailServer._find_mail_server("ben@contoso.example")[0], server)
        # Anyone else, even when MailDesk servers are the only ones: Odoo's own
        # fallback (first server / CLI SMTP), never a mailbox.
        IrMailServer.search([("smtp_authentication", "!=", "maildesk")]).active = False
        self.assertFalse(IrMailServer._find_mail_server("odoobot@example.com")[0])
        self.assertFalse(IrMailServer._find_mail_server("ben@contoso.example")[0])
        # A plain SMTP server still takes the rest.
        smtp = IrMailServer.create({"name": "SMTP", "smtp_host": "smtp.example.com"})
        self.assertEqual(IrMailServer._find_mail_server("odoobot@example.com")[0], smtp)

    def test_send_failure_is_a_delivery_exception(self):
        self.sidecar.errors["message.send"] = UserError("Mailbox anna@contoso.example needs its owner to sign in again.")
        with self.assertRaises(MailDeliveryException) as ctx:
            self._send()
        self.assertIn("sign in again", str(ctx.exception.args))

    def test_request_id_is_derived_from_message_id(self):
        from ..models.ir_mail_server import send_request_id
        to = ["carl@customer.example"]
        self.assertEqual(send_request_id("<a@b>", to), send_request_id(" <a@b> ", ["Carl@Customer.example"]))
        self.assertNotEqual(send_request_id("<a@b>", to), send_request_id("<c@b>", to))
        # One chatter post = several mail.mail with one Message-Id, one per
        # recipient group: each is its own request, none is a replay.
        self.assertNotEqual(send_request_id("<a@b>", to), send_request_id("<a@b>", ["admin@example.com"]))
        self.assertEqual(send_request_id("<a@b>", ["x@y.z", "a@b.c"]), send_request_id("<a@b>", ["a@b.c", "x@y.z"]))
        long_id = "<" + "x" * 300 + "@contoso.example>"
        self.assertLessEqual(len(send_request_id(long_id, to)), 200)
        self.assertEqual(send_request_id(long_id, to), send_request_id(long_id, to))
        self.assertEqual(send_request_id(None, to), "")

    def test_superuser_does_not_send_as_a_mailbox(self):
        """Code running as the superuser is not Anna: it needs "Anyone may send from this address"."""
        with self.assertRaises(MailDeliveryException) as ctx:
            self._send(user=self.env.ref("base.user_root"))
        self.assertIn("may not send e-mail as anna@contoso.example", str(ctx.exception))
        self.assertNotIn("message.send", self.sidecar.methods())
        self.mailbox.anyone_may_send = True
        self._send(user=self.env.ref("base.user_root"))
        self.assertEqual(self.sidecar.methods()[-1], "message.send")
