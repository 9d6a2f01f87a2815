# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import api, fields, models, tools

from .. import compat


class MaildeskTrustedSender(models.Model):
    """Senders whose remote images a user chose to load ("trust sender")."""

    _name = "maildesk.trusted.sender"
    _description = "MailDesk trusted sender"
    _rec_name = "email"

    user_id = fields.Many2one(
        "res.users", required=True, default=lambda self: self.env.user, ondelete="cascade", index=True
    )
    email = fields.Char(required=True)

    # 19.0 declares SQL constraints as model.Constraint attributes.
    if compat.SERIES >= 19:
        _user_email_uniq = models.Constraint("unique(user_id, email)", "This sender is already trusted.")
    else:
        _sql_constraints = [("user_email_uniq", "unique(user_id, email)", "This sender is already trusted.")]

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            vals["email"] = tools.email_normalize(vals.get("email") or "") or vals.get("email")
        return super().create(vals_list)
