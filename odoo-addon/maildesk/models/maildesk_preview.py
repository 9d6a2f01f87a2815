# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The "Preview routing" wizard: what the last days of a mailbox's mail would do."""

from markupsafe import Markup

from odoo import _, api, fields, models

from ..lib import routing

OUTCOMES = [
    (routing.RECORD, "On a record"),
    (routing.NEW, "On a new record"),
    (routing.UNROUTED, "Unrouted (stays in the inbox)"),
    (routing.EXCLUDED, "Not logged"),
    ("gateway", "Odoo's mail gateway"),
    ("error", "Cannot be routed"),
]


class MaildeskPreviewWizard(models.TransientModel):
    _name = "maildesk.preview.wizard"
    _description = "MailDesk: preview routing"

    mailbox_id = fields.Many2one("maildesk.mailbox", required=True, ondelete="cascade", readonly=True)
    days = fields.Integer(default=30, help="How many days of past mail to preview.")
    line_ids = fields.One2many("maildesk.preview.line", "wizard_id", readonly=True)
    summary = fields.Html(readonly=True, sanitize=True)
    truncated = fields.Boolean(readonly=True)

    def action_run(self):
        self.ensure_one()
        preview = self.mailbox_id.preview_routing(days=self.days)
        self.line_ids.unlink()
        models_ = {m.model: m.name for m in self.env["ir.model"].sudo().search([])}
        lines = []
        for line in preview["lines"]:
            lines.append(
                {
                    "wizard_id": self.id,
                    "graph_id": line["graph_id"],
                    "received_at": line["received_at"],
                    "direction": line["direction"],
                    "subject": line["subject"],
                    "correspondents": line["correspondents"],
                    "outcome": line["outcome"],
                    "res_model": line["model"] or False,
                    "model_name": models_.get(line["model"], line["model"]) if line["model"] else False,
                    "res_id": line["res_id"] or 0,
                    "target_name": ", ".join(t["name"] for t in line["targets"]) or False,
                    "rule": line["rule"] or False,
                    "reason": line["reason"] or False,
                    "candidates": len(line["candidates"]),
                }
            )
        self.env["maildesk.preview.line"].create(lines)
        self.summary = self._summary_html(preview, models_)
        self.truncated = preview["truncated"]
        return self._action()

    def _summary_html(self, preview, models_):
        labels = dict(OUTCOMES)
        rows = Markup()
        for key, count in preview["totals"].items():
            outcome, _sep, model = key.partition(":")
            label = labels.get(outcome, outcome)
            if model:
                label = "%s: %s" % (label, models_.get(model, model))
            rows += Markup("<tr><td>%s</td><td class='text-end'>%s</td></tr>") % (label, count)
        note = Markup()
        if preview["truncated"]:
            note = Markup("<p class='text-warning'>%s</p>") % _(
                "Only the newest %(shown)s of %(total)s messages are shown.",
                shown=len(preview["lines"]), total=preview["total"],
            )
        return Markup("<p>%s</p><table class='table table-sm w-auto'>%s</table>%s") % (
            _("%(count)s messages of the last %(days)s days, routed by the current rules:",
              count=len(preview["lines"]), days=preview["days"]),
            rows,
            note,
        )

    def _action(self):
        return {
            "type": "ir.actions.act_window",
            "name": _("Preview routing of %s", self.mailbox_id.email),
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "new",
            "context": {"dialog_size": "extra-large"},
        }


class MaildeskPreviewLine(models.TransientModel):
    _name = "maildesk.preview.line"
    _description = "MailDesk: one message of a routing preview"
    _order = "received_at desc, id"

    wizard_id = fields.Many2one("maildesk.preview.wizard", required=True, ondelete="cascade")
    graph_id = fields.Char()
    received_at = fields.Datetime("Date")
    direction = fields.Selection([("in", "Received"), ("out", "Sent")])
    subject = fields.Char()
    correspondents = fields.Char()
    outcome = fields.Selection(OUTCOMES)
    res_model = fields.Char("Model name")
    model_name = fields.Char("Lands on")
    res_id = fields.Integer()
    target_name = fields.Char("Record")
    rule = fields.Char("Decided by")
    reason = fields.Char("Why not logged")
    candidates = fields.Integer("Other candidates")

    def action_open_target(self):
        self.ensure_one()
        if not self.res_model or not self.res_id or self.res_model not in self.env:
            return False
        return {
            "type": "ir.actions.act_window",
            "res_model": self.res_model,
            "res_id": self.res_id,
            "view_mode": "form",
            "target": "current",
        }

    @api.model
    def _outcome_labels(self):
        return dict(OUTCOMES)
