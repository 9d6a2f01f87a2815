# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import logging

from odoo import api, models

from ..lib import gateway_cache

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

    def _notify_thread(self, message, msg_vals=False, **kwargs):
        # Backfilled mail notifies nobody: no recipients are computed, so no
        # mail.notification, no bus message, no mail.mail, no push.
        if self.env.context.get("maildesk_no_notify"):
            return []
        return super()._notify_thread(message, msg_vals=msg_vals, **kwargs)

    def _message_subscribe(self, partner_ids=None, subtype_ids=None, customer_ids=None):
        # Synced mail and its "Email - Outbox" activities subscribe no one
        # (mail.activity.create subscribes the assigned user otherwise).
        if self.env.context.get("maildesk_nosubscribe"):
            return True
        return super()._message_subscribe(partner_ids=partner_ids, subtype_ids=subtype_ids, customer_ids=customer_ids)

    @api.model
    def fields_get(self, allfields=None, attributes=None):
        # Odoo's message_new describes every field of the model for each
        # record it creates (to know whether it has a name field), about
        # 12 ms for a lead; in a gateway ingest batch it is described once
        # (lib/gateway_cache.py), and each caller gets its own copy.
        cache = gateway_cache.active(self.env)
        key = cache is not None and gateway_cache.fields_key(self, allfields, attributes)
        if not key:
            return super().fields_get(allfields, attributes)
        description = gateway_cache.recall_fields(cache, key)
        if description is None:
            description = super().fields_get(allfields, attributes)
            gateway_cache.remember_fields(cache, key, description)
        return description
