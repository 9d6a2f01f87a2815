# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import logging

from odoo import _, api, fields, models

_logger = logging.getLogger(__name__)

# The Emails button counts at most this many mails (one sidecar page).
EMAILS_COUNT_CAP = 200


class ResPartner(models.Model):
    _inherit = "res.partner"

    maildesk_message_count = fields.Integer(compute="_compute_maildesk_message_count", string="Emails")

    @api.depends_context("uid")
    def _compute_maildesk_message_count(self):
        """The mails with this contact the user may see, received and sent,
        in all their mailboxes: what the Emails button lists (the sidecar
        counts them from its index, up to 200). Only for one partner at a
        time (its form): a list of partners does not ask the sidecar."""
        may = self.env.user.has_group("maildesk.group_maildesk_user")
        for partner in self:
            count = 0
            address = partner.email_normalized
            if may and address and len(self) == 1 and partner._origin.id:
                try:
                    res = self.env["maildesk.mailbox"].maildesk_inbox_combined(address=address, limit=EMAILS_COUNT_CAP)
                    count = len(res["messages"])
                except Exception as exc:  # noqa: BLE001 - the form opens without the count
                    _logger.info("MailDesk: counting the mails with %s failed: %s", address, exc)
            partner.maildesk_message_count = count

    def action_maildesk_emails(self):
        """Open the MailDesk inbox on the mail with this contact, all mailboxes."""
        self.ensure_one()
        return {
            "type": "ir.actions.client",
            "tag": "maildesk.inbox",
            "name": _("Emails with %s", self.display_name),
            "params": {"address": self.email_normalized or self.email or "", "partner_name": self.display_name},
        }
