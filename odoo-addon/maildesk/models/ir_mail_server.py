# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import base64
import hashlib
import logging

from odoo import _, api, fields, models, modules, tools
from odoo.exceptions import UserError

from ..lib import mailparts

_logger = logging.getLogger(__name__)


def send_request_id(message_id, recipients=()):
    """The idempotency key for ``message.send``: Message-Id plus envelope.

    Odoo retries a mail.mail with the same Message-Id and recipients, so the
    sidecar answers a retry with the first attempt's result instead of sending
    twice. One chatter message becomes several mail.mail with the SAME
    Message-Id (one per recipient group), so the recipients are part of the
    key, else the sidecar would drop all but the first as a replay. The
    sidecar takes at most 200 characters: longer keys are hashed.
    """
    mid = (message_id or "").strip().strip("<>").strip()
    if not mid:
        return ""
    rcpts = sorted({tools.email_normalize(r) or (r or "").strip().lower() for r in recipients or ()} - {""})
    digest = hashlib.sha256("\n".join([mid] + rcpts).encode("utf-8")).hexdigest()
    key = "%s#%s" % (mid, digest[:16])
    if len(key) > 200:
        return "sha256:" + digest
    return key


class MaildeskSendSession:
    """Stands in for an SMTP connection: ``send_email`` hands it the message.

    ``send_message`` posts Odoo's raw MIME (Message-Id kept) to the sidecar's
    ``message.send``; any error propagates, and ``send_email`` turns it into
    the usual ``MailDeliveryException``, so the mail shows as failed with the
    sidecar's message.
    """

    def __init__(self, env, mail_server, smtp_from):
        self.env = env
        self.mail_server = mail_server
        self.smtp_from = smtp_from
        self.from_filter = mail_server.from_filter

    def send_message(self, message, smtp_from=None, smtp_to_list=None):
        mailbox = self.mail_server.maildesk_mailbox_id
        if not mailbox or not mailbox.sidecar_id:
            raise UserError(_("Mail server %s is not linked to a connected MailDesk mailbox.", self.mail_server.name))
        raw = message.as_bytes()
        bcc = mailparts.envelope_bcc(smtp_to_list, message.get("To"), message.get("Cc"))
        raw = mailparts.add_bcc_header(raw, bcc)
        # Odoo already decided who may send as this address: ask as the system.
        result = self.env["maildesk.sidecar"].sudo()._call(
            "message.send",
            mailbox_id=mailbox.sidecar_id,
            request_id=send_request_id(message.get("Message-Id"), smtp_to_list or []),
            mime_base64=base64.b64encode(raw).decode("ascii"),
        )
        _logger.info(
            "MailDesk: handed %s to the sidecar for %s", message.get("Message-Id"), mailbox.email
        )
        return result

    def quit(self):
        return None

    close = quit


class IrMailServer(models.Model):
    _inherit = "ir.mail_server"

    smtp_authentication = fields.Selection(
        selection_add=[("maildesk", "MailDesk (Microsoft 365)")],
        ondelete={"maildesk": "set default"},
    )
    maildesk_mailbox_id = fields.Many2one("maildesk.mailbox", "MailDesk mailbox", ondelete="cascade")

    @api.depends("smtp_authentication")
    def _compute_smtp_authentication_info(self):
        maildesk = self.filtered(lambda s: s.smtp_authentication == "maildesk")
        maildesk.smtp_authentication_info = _(
            "Mail from this server's FROM filtering address is sent through Microsoft 365 by the MailDesk "
            "sidecar, with Odoo's own MIME and Message-Id."
        )
        return super(IrMailServer, self - maildesk)._compute_smtp_authentication_info()

    def _find_mail_server(self, email_from, mail_servers=None):
        """A MailDesk server sends only mail from its own mailbox's address.

        Odoo's fallbacks (same domain, "first server without from_filter",
        "first server at all") must never route other mail through someone's
        Microsoft 365 mailbox, so MailDesk servers are matched here on the exact
        address and left out of Odoo's own search.
        """
        if mail_servers is None:
            mail_servers = self.sudo().search([], order="sequence")
        maildesk = mail_servers.filtered(lambda s: s.smtp_authentication == "maildesk")
        if maildesk:
            sender = tools.email_normalize(email_from or "")
            for server in maildesk.filtered("active"):
                allowed = {tools.email_normalize(a.strip()) for a in (server.from_filter or "").split(",")}
                if sender and sender in allowed:
                    return server, email_from
        return super()._find_mail_server(email_from, mail_servers=mail_servers - maildesk)

    def connect(self, host=None, port=None, user=None, password=None, encryption=None,
                smtp_from=None, ssl_certificate=None, ssl_private_key=None, smtp_debug=False,
                mail_server_id=None, allow_archived=False):
        if not modules.module.current_test and not host:
            if mail_server_id:
                server = self.sudo().browse(mail_server_id)
                if not allow_archived and not server.active:
                    server = self.browse()
            else:
                server, smtp_from = self.sudo()._find_mail_server(smtp_from)
            if server and server.smtp_authentication == "maildesk":
                return MaildeskSendSession(self.env, server, smtp_from)
        return super().connect(
            host=host, port=port, user=user, password=password, encryption=encryption,
            smtp_from=smtp_from, ssl_certificate=ssl_certificate, ssl_private_key=ssl_private_key,
            smtp_debug=smtp_debug, mail_server_id=mail_server_id, allow_archived=allow_archived,
        )

    def test_smtp_connection(self, autodetect_max_email_size=False):
        maildesk = self.filtered(lambda s: s.smtp_authentication == "maildesk")
        for server in maildesk:
            mailbox = server.maildesk_mailbox_id
            if not mailbox.sidecar_id:
                raise UserError(_("%s is not linked to a MailDesk mailbox.", server.name))
            mailbox._refresh_from_sidecar()
            if mailbox.state not in ("connected", "syncing", "backfilling"):
                raise UserError(_("Mailbox %(email)s is %(state)s.", email=mailbox.email, state=mailbox.state))
        if self - maildesk:
            return super(IrMailServer, self - maildesk).test_smtp_connection(autodetect_max_email_size)
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {"message": _("Connection Test Successful!"), "type": "success", "sticky": False},
        }
