# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import _, fields, models


class ResPartner(models.Model):
    _inherit = "res.partner"

    maildesk_message_count = fields.Integer(compute="_compute_maildesk_message_count", string="Emails")

    def _compute_maildesk_message_count(self):
        counts = {}
        if self.ids:
            groups = self.env["mail.message"].sudo()._read_group(
                [("model", "=", "res.partner"), ("res_id", "in", self.ids), ("maildesk_graph_id", "!=", False)],
                ["res_id"],
                ["__count"],
            )
            counts = dict(groups)
        for partner in self:
            partner.maildesk_message_count = counts.get(partner.id, 0)

    def action_maildesk_emails(self):
        """Open the MailDesk inbox filtered to this contact's address."""
        self.ensure_one()
        return {
            "type": "ir.actions.client",
            "tag": "maildesk.inbox",
            "name": _("Emails with %s", self.display_name),
            "params": {"query": self.email_normalized or self.email or self.name},
        }
