# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from collections import defaultdict

from odoo import models

from .ir_mail_server import SEND_AS_KEY, SendAs


class MailMail(models.Model):
    _inherit = "mail.mail"

    def _maildesk_senders(self):
        """{mail id: res.users} — who caused each mail.

        ``create_uid``: the user whose action created the mail (a chatter
        post, a composer, a template) or the user an automation runs for
        (a cron's user, the user whose change triggered an automated action).
        The ORM sets it and no caller can choose it, unlike the author, which
        ``message_post(email_from=...)`` derives from the very address asked
        for. Mail is often sent later, by the mail queue or after commit, as
        the superuser: that does not make the superuser its sender.
        """
        return {mail.id: mail.create_uid for mail in self.sudo().with_context(active_test=False).exists()}

    def _split_by_mail_configuration(self):
        """Mail routed to a MailDesk mailbox its creator may not use goes elsewhere.

        Where the admin configured another server that carries the address it
        goes there; otherwise it stays on the MailDesk server, whose
        ``send_email`` fails it with the reason (mail.mail in exception).
        A server the mail itself names is kept.
        """
        IrMailServer = self.env["ir.mail_server"].sudo()
        mail_servers = None
        for mail_server_id, alias_domain_id, smtp_from, batch_ids in super()._split_by_mail_configuration():
            server = IrMailServer.browse(mail_server_id) if mail_server_id else IrMailServer
            if not server or server.smtp_authentication != "maildesk":
                yield mail_server_id, alias_domain_id, smtp_from, batch_ids
                continue
            mails = self.browse(batch_ids).sudo()
            senders = mails._maildesk_senders()
            refused = mails.filtered(
                lambda m: not m.mail_server_id and server._maildesk_send_refusal(senders.get(m.id))
            )
            if not refused:
                yield mail_server_id, alias_domain_id, smtp_from, batch_ids
                continue
            if mail_servers is None:
                mail_servers = IrMailServer.search([], order="sequence, id")
            Router = IrMailServer
            if alias_domain_id:
                alias_domain = self.env["mail.alias.domain"].sudo().browse(alias_domain_id)
                Router = Router.with_context(
                    domain_notifications_email=alias_domain.default_from_email,
                    domain_bounce_address=alias_domain.bounce_email,
                )
            fallback = Router._maildesk_fallback_server(smtp_from, mail_servers)
            if not fallback:
                yield mail_server_id, alias_domain_id, smtp_from, batch_ids
                continue
            refused_ids = set(refused.ids)
            kept = [mid for mid in batch_ids if mid not in refused_ids]
            if kept:
                yield mail_server_id, alias_domain_id, smtp_from, kept
            yield fallback.id, alias_domain_id, smtp_from, refused.ids

    def _send(self, auto_commit=False, raise_exception=False, smtp_session=None, alias_domain_id=False,
              **kwargs):
        """Send each mail for the user who caused it (see ``_maildesk_senders``).
        (``mail_server`` and ``post_send_callback`` come in ``kwargs`` from 18.0 on.)"""
        senders = self._maildesk_senders()
        groups = defaultdict(list)
        for mail_id in self.ids:
            groups[senders.get(mail_id).id if senders.get(mail_id) else 0].append(mail_id)
        for uid, mail_ids in groups.items():
            batch = self.browse(mail_ids).with_context(**{SEND_AS_KEY: SendAs(uid)})
            super(MailMail, batch)._send(
                auto_commit=auto_commit,
                raise_exception=raise_exception,
                smtp_session=smtp_session,
                alias_domain_id=alias_domain_id,
                **kwargs,
            )
        return True
