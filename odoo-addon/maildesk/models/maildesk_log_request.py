# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Requests to log a mail on a record, as Odoo recorded them.

When a user presses "Log to record" in the inbox, Odoo records who asked to
put which message of which mailbox on which record, then asks the sidecar.
The sidecar later pushes the message with that target through
``maildesk_ingest``; ingest accepts a target only when it matches such a
request and consumes it. A leaked bridge key therefore cannot choose where
mail lands.
"""

import datetime
import logging

from odoo import SUPERUSER_ID, api, fields, models

from .. import compat

_logger = logging.getLogger(__name__)

# A request the sidecar never delivered (Odoo down for weeks, mailbox
# deleted in the sidecar) stops being accepted after this long.
REQUEST_TTL = datetime.timedelta(days=30)


class MaildeskLogRequest(models.Model):
    _name = "maildesk.log.request"
    _description = "MailDesk log-to-record request"
    _order = "id"

    mailbox_id = fields.Many2one("maildesk.mailbox", required=True, ondelete="cascade", index=True)
    graph_id = fields.Char("Graph message id", required=True, index=True)
    model = fields.Char(required=True)
    res_id = fields.Many2oneReference(model_field="model", required=True)
    user_id = fields.Many2one("res.users", "Requested by", required=True, ondelete="cascade")
    # Consumed by the ingest that posted it; kept so a replay of the same
    # item answers "duplicate" instead of an error.
    done = fields.Boolean(index=True)

    @api.model
    def _record(self, mailbox, graph_id, model, res_id):
        """Record the request in its own committed transaction.

        The sidecar may push the message before the caller's transaction
        commits; the request must already be visible to that ingest call.
        Returns the request id.
        """
        vals = {
            "mailbox_id": mailbox.id,
            "graph_id": graph_id,
            "model": model,
            "res_id": res_id,
            "user_id": self.env.uid,
        }
        registry = self.env.registry
        if compat.running_tests() and not compat.registry_in_test_mode(registry):
            # A plain TransactionCase: another real cursor could not see the
            # test's uncommitted mailbox; the test's own cursor serves.
            return self.sudo().create(vals).id
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            Request = env[self._name]
            Request.search([("create_date", "<", fields.Datetime.now() - REQUEST_TTL)]).unlink()
            return Request.create(vals).id

    @api.model
    def _forget(self, request_id):
        """Drop a request the sidecar refused (same transaction rules as _record)."""
        registry = self.env.registry
        if compat.running_tests() and not compat.registry_in_test_mode(registry):
            self.sudo().browse(request_id).exists().unlink()
            return
        with registry.cursor() as cr:
            api.Environment(cr, SUPERUSER_ID, {})[self._name].browse(request_id).exists().unlink()

    @api.model
    def _matching(self, mailbox, graph_id, model, res_id):
        """Requests (open and done) for exactly this mailbox, message and record."""
        if not (graph_id and model and res_id):
            return self.sudo().browse()
        return self.sudo().search(
            [
                ("mailbox_id", "=", mailbox.id),
                ("graph_id", "=", graph_id),
                ("model", "=", model),
                ("res_id", "=", res_id),
                ("create_date", ">=", fields.Datetime.now() - REQUEST_TTL),
            ]
        )
