# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import models


class ResUsers(models.Model):
    _inherit = "res.users"

    def _bus_send(self, notification_type, message, /, *, subchannel=None):
        # mail.activity.create tells the assigned user's browser that an
        # activity was created; the done "Email - Outbox" activities MailDesk
        # books for mail sent from Outlook are no news (a backfill would send
        # hundreds). Only that notification is held back, only for them.
        if notification_type == "mail.activity/updated" and self.env.context.get("maildesk_no_activity_bus"):
            return
        return super()._bus_send(notification_type, message, subchannel=subchannel)
