# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import fields, models


class MaildeskMailbox(models.Model):
    _inherit = "maildesk.mailbox"

    gateway_team_id = fields.Many2one(
        "crm.team",
        string="Sales Team",
        ondelete="set null",
        help="Sales team of every record the gateway creates (leads, or contacts), "
        "when its model has a sales team.",
    )

    def _gateway_custom_values(self):
        values = super()._gateway_custom_values()
        model = self.gateway_model_id.model
        field = self.env[model]._fields.get("team_id") if model and model in self.env else None
        if self.gateway_team_id and field and field.comodel_name == "crm.team":
            values.setdefault("team_id", self.gateway_team_id.id)
        return values
