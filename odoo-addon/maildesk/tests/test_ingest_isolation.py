# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from unittest.mock import patch

from odoo.tests import tagged

from .common import MaildeskCase


@tagged("post_install", "-at_install")
class TestIngestBatchIsolation(MaildeskCase):
    def test_a_failing_item_rolls_back_alone(self):
        """The batch runs in one savepoint; when an item fails it runs again
        with a savepoint per item: the others land once, the failing one
        leaves nothing behind."""
        Ingest = type(self.env["maildesk.ingest"])
        original = Ingest._create_attachments

        def failing(self_, record, attachments):
            if any(a["name"] == "boom.pdf" for a in attachments):
                self_.env["res.partner"].sudo().create({"name": "half-written", "email": "half@written.example"})
                raise RuntimeError("disk full")
            return original(self_, record, attachments)

        boom = [{"name": "boom.pdf", "content_type": "application/pdf", "data_base64": "JVBERg=="}]
        with patch.object(Ingest, "_create_attachments", failing):
            res = self.ingest([self.item("b1"), self.item("b2", attachments=boom), self.item("b3")])
        self.assertEqual([r["status"] for r in res], ["posted", "error", "posted"], res)
        self.assertIn("disk full", res[1]["error"])
        self.assertEqual(self.env["mail.message"].search_count([("maildesk_graph_id", "in", ["b1", "b3"])]), 2)
        self.assertFalse(self.env["mail.message"].search([("maildesk_graph_id", "=", "b2")]))
        self.assertFalse(self.env["res.partner"].search([("email", "=", "half@written.example")]))
