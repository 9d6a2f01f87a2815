# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import base64
import hashlib
import logging

from odoo import _, api, fields, models, modules, tools
from odoo.addons.base.models.ir_mail_server import MailDeliveryException
from odoo.exceptions import AccessError, UserError

from .. import compat
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


# Context key holding the user who caused a mail (a SendAs object, so no
# JSON-RPC caller can put one in a context: JSON has no such type).
SEND_AS_KEY = "maildesk_send_as"


class SendAs:
    """The Odoo user on whose behalf a mail goes out (see ``mail.mail._send``)."""

    __slots__ = ("uid",)

    def __init__(self, uid):
        self.uid = int(uid or 0)

    def __eq__(self, other):
        return isinstance(other, SendAs) and other.uid == self.uid

    def __hash__(self):
        return hash((SendAs, self.uid))

    def __repr__(self):
        return "SendAs(%d)" % self.uid


def sending_user(env):
    """The Odoo user a mail sent from ``env`` is sent for.

    ``mail.mail._send`` puts the mail's creator in the context (a SendAs
    object); anything else (a direct ``ir.mail_server.send_email`` call) is
    sent for the environment's user — sudo() keeps it, only code that
    switches to the superuser sends as the superuser.
    """
    send_as = env.context.get(SEND_AS_KEY)
    uid = send_as.uid if isinstance(send_as, SendAs) else env.uid
    return env["res.users"].sudo().with_context(active_test=False).browse(uid or []).exists()


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
        # Who sends; ``ir.mail_server.send_email`` sets it for each mail.
        self.sender = sending_user(env)

    def send_message(self, message, smtp_from=None, smtp_to_list=None):
        mailbox = self.mail_server.sudo().maildesk_mailbox_id
        if not mailbox or not mailbox.sidecar_id:
            raise UserError(_("Mail server %s is not linked to a connected MailDesk mailbox.", self.mail_server.name))
        refusal = self.mail_server._maildesk_send_refusal(self.sender)
        if refusal:
            raise AccessError(refusal)
        raw = message.as_bytes()
        bcc = mailparts.envelope_bcc(smtp_to_list, message.get("To"), message.get("Cc"))
        raw = mailparts.add_bcc_header(raw, bcc)
        # Asked as the user who sends, never as the superuser: the sidecar
        # checks the same rule and audits that user.
        result = self.env["maildesk.sidecar"].with_user(self.sender)._call(
            "message.send",
            mailbox_id=mailbox.sidecar_id,
            request_id=send_request_id(message.get("Message-Id"), smtp_to_list or []),
            mime_base64=base64.b64encode(raw).decode("ascii"),
            user_login=self.sender.login or "",
            user_name=self.sender.name or "",
        )
        _logger.info(
            "MailDesk: handed %s to the sidecar for %s, sent by user #%s",
            message.get("Message-Id"), mailbox.email, self.sender.id,
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

    def _maildesk_send_refusal(self, user):
        """Why ``user`` may not send through this MailDesk server, or None.

        The mailbox's owner and assigned users may; anyone else only when the
        mailbox allows everyone ("Anyone may send from this address").
        Seeing the mailbox (main user, MailDesk administrator) is not enough:
        from_filter says which server can carry an address, not who may use it.
        """
        self.ensure_one()
        mailbox = self.sudo().with_context(active_test=False).maildesk_mailbox_id
        if not mailbox:
            return _("Mail server %s is not linked to a MailDesk mailbox.", self.sudo().name)
        return mailbox._send_refusal(user)

    def _maildesk_fallback_server(self, email_from, mail_servers=None):
        """A non-MailDesk server that carries ``email_from`` as it is, or an empty recordset.

        Odoo's own routing among the other outgoing servers, kept only when
        that server's FROM filter covers the address (the address, its
        domain, or no filter) and the From stays: Odoo's last resorts (a
        server for another domain, the notifications address) do not count.
        """
        if mail_servers is None:
            mail_servers = self.sudo().search([], order="sequence, id")
        others = mail_servers.filtered(lambda s: s.active and s.smtp_authentication != "maildesk")
        if not others or not tools.email_normalize(email_from or ""):
            return self.browse()
        server, smtp_from = self._find_mail_server(email_from, mail_servers=others)
        if (
            server
            and self._match_from_filter(email_from, server.from_filter)
            and tools.email_normalize(smtp_from or "") == tools.email_normalize(email_from)
        ):
            return server
        return self.browse()

    @api.model
    def _maildesk_server_of(self, message, mail_server_id=None, smtp_server=None, smtp_session=None):
        """The MailDesk server ``send_email`` would use for ``message``, or None."""
        if isinstance(smtp_session, MaildeskSendSession):
            return smtp_session.mail_server
        if smtp_session or smtp_server:
            return None
        if mail_server_id:
            server = self.sudo().browse(mail_server_id)
        else:
            server = self.sudo()._find_mail_server(message["From"])[0]
        if server and server.smtp_authentication == "maildesk":
            return server
        return None

    @api.model
    def send_email(self, message, mail_server_id=None, smtp_server=None, smtp_port=None,
                   smtp_user=None, smtp_password=None, smtp_encryption=None,
                   smtp_ssl_certificate=None, smtp_ssl_private_key=None,
                   smtp_debug=False, smtp_session=None):
        """Mail goes through a MailDesk mailbox only for the users who may use it.

        Everyone else's mail goes through another server that carries the
        address when the admin configured one (and the caller did not pick
        the server), else fails naming the mailbox and the reason.
        """
        kwargs = dict(
            mail_server_id=mail_server_id, smtp_server=smtp_server, smtp_port=smtp_port, smtp_user=smtp_user,
            smtp_password=smtp_password, smtp_encryption=smtp_encryption,
            smtp_ssl_certificate=smtp_ssl_certificate, smtp_ssl_private_key=smtp_ssl_private_key,
            smtp_debug=smtp_debug, smtp_session=smtp_session,
        )
        server = self._maildesk_server_of(message, mail_server_id, smtp_server, smtp_session)
        if server:
            user = sending_user(self.env)
            refusal = server._maildesk_send_refusal(user)
            if refusal:
                if not smtp_session and not mail_server_id:
                    fallback = self._maildesk_fallback_server(message["From"])
                    if fallback:
                        _logger.info(
                            "MailDesk: user #%s may not use %s; sending through %s instead",
                            user.id, server.name, fallback.name,
                        )
                        kwargs["mail_server_id"] = fallback.id
                        return super().send_email(message, **kwargs)
                _logger.info("MailDesk: refused to send as %s for user #%s", server.from_filter, user.id)
                raise MailDeliveryException(refusal)
            if isinstance(smtp_session, MaildeskSendSession):
                smtp_session.sender = user
        return super().send_email(message, **kwargs)

    def _maildesk_no_sending(self):
        """Odoo sends no mail (tests), asked as the series' own code asks (and
        its tests' SMTP mocks patch): 19.0 ``_disable_send``, 18.0
        ``current_test``, 17.0 ``_is_test_mode``."""
        if compat.SERIES >= 19:
            return self._disable_send()
        if compat.SERIES >= 18:
            return modules.module.current_test
        return self._is_test_mode()

    def _maildesk_connect(self, host=None, port=None, user=None, password=None, encryption=None,
                          smtp_from=None, ssl_certificate=None, ssl_private_key=None, smtp_debug=False,
                          mail_server_id=None, allow_archived=False):
        """``connect`` (``_connect__`` on 19.0): a MailDesk server's session
        sends through the sidecar."""
        if not self._maildesk_no_sending() and not host:
            if mail_server_id:
                server = self.sudo().browse(mail_server_id)
                if not allow_archived and not server.active:
                    server = self.browse()
            else:
                server, smtp_from = self.sudo()._find_mail_server(smtp_from)
            if server and server.smtp_authentication == "maildesk":
                return MaildeskSendSession(self.env, server, smtp_from)
        return getattr(super(), compat.MAIL_SERVER_CONNECT)(
            host=host, port=port, user=user, password=password, encryption=encryption,
            smtp_from=smtp_from, ssl_certificate=ssl_certificate, ssl_private_key=ssl_private_key,
            smtp_debug=smtp_debug, mail_server_id=mail_server_id, allow_archived=allow_archived,
        )

    if compat.SERIES >= 19:
        _connect__ = _maildesk_connect
    else:
        connect = _maildesk_connect

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
