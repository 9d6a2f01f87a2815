# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The sync tells no one and is no one (found by the real-Odoo e2e test).

Ingest runs as the bridge user, as the sidecar calls it.
"""
from unittest.mock import patch

from odoo.tests import tagged

from odoo.addons.maildesk import compat

from .common import MaildeskCase


@tagged("post_install", "-at_install")
class TestQuietSync(MaildeskCase):
    def bus_spy(self):
        """The notification types sent on the bus while the patch is on."""
        sent = []
        Bus = type(self.env["bus.bus"])
        if compat.SERIES < 18:
            # 17.0: everything goes through _sendmany, where MailDesk filters
            # (models/res_users.py): spy on the bus module's own, behind it.
            from odoo.addons.bus.models.bus import ImBus

            original_many = ImBus._sendmany

            def spy_many(bus, notifications):
                sent.extend(n[1] for n in notifications)
                return original_many(bus, notifications)

            return sent, patch.object(ImBus, "_sendmany", spy_many)
        original = Bus._sendone

        def spy(bus, target, notification_type, message):
            sent.append(notification_type)
            return original(bus, target, notification_type, message)

        return sent, patch.object(Bus, "_sendone", spy)

    def test_created_contacts_are_not_the_bridge_users(self):
        """create_contacts: the bridge user neither follows the new contact
        nor authors its 'Contact created' note."""
        self.mailbox.create_contacts = True
        self.env.invalidate_all()
        res = self.ingest([self.item("q1", from_={"name": "Eve Quiet", "email": "eve.quiet@new.example"})])
        self.assertEqual(res[0]["status"], "posted", res)
        partner = self.env["res.partner"].browse(res[0]["records"][0][1])
        self.assertEqual(partner.email_normalized, "eve.quiet@new.example")
        bridge_partner = self.bridge.partner_id
        self.assertNotIn(bridge_partner, partner.message_follower_ids.partner_id)
        self.assertNotIn(bridge_partner, partner.message_ids.author_id)
        self.assertNotEqual(partner.create_uid, self.bridge)

    def test_outbox_activities_send_no_bus_message(self):
        """Mail sent from Outlook books a done activity for the main user:
        no 'mail.activity/updated' reaches their browser (one per mail before)."""
        sent, spy = self.bus_spy()
        items = [
            self.item("q%d" % n, direction="out", from_={"name": "Anna", "email": "anna@contoso.example"},
                      to=[{"name": "Carl", "email": "carl@customer.example"}])
            for n in range(2, 5)
        ]
        with spy:
            res = self.ingest(items)
        self.assertTrue(all(r["activity_id"] for r in res), res)
        self.assertNotIn("mail.activity/updated", sent)

    def test_other_activities_still_notify(self):
        """The hold is only for MailDesk's done activities: an ordinary
        activity for another user still tells their browser."""
        sent, spy = self.bus_spy()
        with spy:
            self.customer.activity_schedule("mail.mail_activity_data_todo", user_id=self.anna.id, summary="Call")
        self.assertIn("mail.activity/updated", sent)
