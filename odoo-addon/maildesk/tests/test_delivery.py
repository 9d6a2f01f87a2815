# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import MaildeskCase

REASON = "You are not allowed to access 'Currency' (res.currency) records."


@tagged("post_install", "-at_install")
class TestDeliveryFailures(MaildeskCase):
    """Messages Odoo refused are shown on the mailbox with a Retry failed button (issue 12 item 7)."""

    def _answer_get(self, failed, reason=""):
        self.sidecar.answers["mailbox.get"] = lambda params: {
            "id": params["mailbox_id"],
            "state": "connected",
            "delivery": {"delayed": False, "failed": failed, "failed_reason": reason},
        }

    def test_failed_count_and_reason_from_the_sidecar(self):
        self._answer_get(3, REASON)
        self.mailbox.with_user(self.admin_user).action_refresh()
        self.assertEqual(self.mailbox.delivery_failed, 3)
        self.assertEqual(self.mailbox.delivery_failed_reason, REASON)
        # Opening the form shows the sidecar's current figures.
        self._answer_get(4, REASON + " (again)")
        self.mailbox.user_ids = [(4, self.bob.id)]
        row = (
            self.mailbox.with_user(self.bob)
            .with_context(maildesk_refresh_on_open=True)
            .web_read({"delivery_failed": {}, "delivery_failed_reason": {}})[0]
        )
        self.assertEqual(row["delivery_failed"], 4)
        self.assertEqual(row["delivery_failed_reason"], REASON + " (again)")
        # The cron's mailbox.list answer updates them too, and 0 clears the reason.
        self.sidecar.answers["mailbox.list"] = [
            {"id": self.mailbox.sidecar_id, "state": "connected", "delivery": {"failed": 0, "failed_reason": ""}}
        ]
        self.env["maildesk.mailbox"]._cron_refresh_state()
        self.assertEqual(self.mailbox.delivery_failed, 0)
        self.assertFalse(self.mailbox.delivery_failed_reason)

    def test_retry_failed_as_assigned_user(self):
        self._answer_get(2, REASON)
        self.mailbox.with_user(self.admin_user).action_refresh()
        # Bob is neither owner nor assigned: no retry, and the sidecar is not asked.
        self.sidecar.calls.clear()
        with self.assertRaises(AccessError):
            self.mailbox.with_user(self.bob).action_retry_failed()
        self.assertNotIn("mailbox.retry_failed", self.sidecar.methods())
        # Assigned, he may.
        self.mailbox.user_ids = [(4, self.bob.id)]
        self.sidecar.answers["mailbox.retry_failed"] = {"requeued": 2}
        self._answer_get(0)
        action = self.mailbox.with_user(self.bob).action_retry_failed()
        self.assertIn(("mailbox.retry_failed", {"mailbox_id": self.mailbox.sidecar_id}), self.sidecar.calls)
        self.assertEqual(self.sidecar.methods()[-1], "mailbox.get", "the mailbox is refreshed after the retry")
        self.assertEqual(action["tag"], "display_notification")
        self.assertIn("2", action["params"]["message"])
        self.assertEqual(self.mailbox.delivery_failed, 0)
        self.assertFalse(self.mailbox.delivery_failed_reason)

    def test_retry_failed_as_maildesk_admin(self):
        self._answer_get(5, REASON)
        self.mailbox.with_user(self.admin_user).action_refresh()
        self.sidecar.answers["mailbox.retry_failed"] = {"requeued": 5}
        self._answer_get(0)
        self.mailbox.with_user(self.admin_user).action_retry_failed()
        self.assertIn(("mailbox.retry_failed", {"mailbox_id": self.mailbox.sidecar_id}), self.sidecar.calls)
        self.assertEqual(self.mailbox.delivery_failed, 0)

    def test_form_shows_count_reason_and_button_only_when_failed(self):
        self.mailbox.user_ids = [(4, self.bob.id)]
        arch = self.env["maildesk.mailbox"].with_user(self.bob).get_views([(False, "form")])["views"]["form"]["arch"]
        self.assertIn('name="action_retry_failed"', arch)
        self.assertIn('name="delivery_failed_reason"', arch)
        self.assertIn("delivery_failed &lt;= 0", arch)
