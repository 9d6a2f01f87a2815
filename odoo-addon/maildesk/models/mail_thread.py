# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import logging

from odoo import api, models

_logger = logging.getLogger(__name__)


class MailThread(models.AbstractModel):
    _inherit = "mail.thread"

    @api.model
    def _routing_create_bounce_email(self, email_from, body_html, message, **mail_values):
        # Mail pushed by MailDesk was already delivered to a Microsoft 365
        # mailbox: Odoo must never answer it with a bounce (loop detection,
        # catchall, alias errors), least of all during a backfill.
        if self.env.context.get("maildesk_ingest"):
            _logger.info("MailDesk ingest: not sending a bounce to %s", email_from)
            return
        return super()._routing_create_bounce_email(email_from, body_html, message, **mail_values)
