# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import fields, models


class MaildeskMailbox(models.Model):
    _inherit = "maildesk.mailbox"

    gateway_team_id = fields.Many2one(
        "crm.team",
        string="Sales Team",
        ondelete="set null",
        help="Sales team of every record MailDesk creates for this mailbox's mail (the gateway's, or "
        "\"create a record\" for mail that matches nothing), when its model has a sales team.",
    )

    def _custom_values_for(self, model):
        values = super()._custom_values_for(model)
        field = self.env[model]._fields.get("team_id") if model and model in self.env else None
        if self.gateway_team_id and field and field.comodel_name == "crm.team":
            values.setdefault("team_id", self.gateway_team_id.id)
        return values
