# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo import models

from .. import compat


class ResUsers(models.Model):
    _inherit = "res.users"

    if compat.SERIES >= 18:  # 17.0 has no res.users._bus_send (see below)

        def _bus_send(self, notification_type, message, /, *, subchannel=None):
            # mail.activity.create tells the assigned user's browser that an
            # activity was created; the done "Email - Outbox" activities MailDesk
            # books for mail sent from Outlook are no news (a backfill would send
            # hundreds). Only that notification is held back, only for them.
            if notification_type == "mail.activity/updated" and self.env.context.get("maildesk_no_activity_bus"):
                return
            return super()._bus_send(notification_type, message, subchannel=subchannel)


if compat.SERIES < 18:

    class BusBus(models.Model):
        _inherit = "bus.bus"

        def _sendmany(self, notifications):
            # 17.0 has no res.users._bus_send: mail.activity.create sends its
            # notification here (same hold, same notification only).
            if self.env.context.get("maildesk_no_activity_bus"):
                notifications = [n for n in notifications if n[1] != "mail.activity/updated"]
            return super()._sendmany(notifications)
