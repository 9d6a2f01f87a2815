# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Where logged mail goes (routing rules) and what is never logged (privacy).

The decisions themselves are made in ``maildesk.ingest._route_log``: the same
code answers ingest and the preview (a dry run that writes nothing).
"""

from odoo import _, api, fields, models, tools
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools.safe_eval import safe_eval

from .. import compat
from ..lib import routing

INTERNAL_DOMAINS_PARAM = "maildesk.internal_domains"

# Open business documents, in their default order, for the models installed.
# (model, domain, partner field); helpdesk.ticket is Odoo Enterprise's.
DEFAULT_RULES = (
    # Lost leads are archived (active_test leaves them out); won ones sit in a won stage.
    ("crm.lead", "[('stage_id.is_won', '=', False)]", "partner_id"),
    ("sale.order", "[('state', 'in', ['draft', 'sent', 'sale']), ('locked', '=', False)]", "partner_id"),
    ("helpdesk.ticket", "[('stage_id.fold', '=', False)]", "partner_id"),
    ("project.task", "[('state', 'not in', ['1_done', '1_canceled'])]", "partner_id"),
)


class MaildeskRouteRule(models.Model):
    _name = "maildesk.route.rule"
    _description = "MailDesk routing rule"
    _order = "mailbox_id, sequence, id"

    mailbox_id = fields.Many2one("maildesk.mailbox", required=True, ondelete="cascade", index=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    model_id = fields.Many2one(
        "ir.model",
        string="Documents",
        required=True,
        ondelete="cascade",
        domain=[("is_mail_thread", "=", True), ("transient", "=", False)],
        help="Open documents of this model whose customer is the correspondent or their company.",
    )
    model = fields.Char(related="model_id.model", store=True, string="Model name")
    domain = fields.Char(
        "Which ones",
        default="[]",
        required=True,
        help="An Odoo domain the documents must match, e.g. [('stage_id.is_won', '=', False)] for open "
        "opportunities (lost ones are archived and never match).",
    )
    partner_field = fields.Char(
        "Customer field",
        default="partner_id",
        required=True,
        help="The field of the document that holds the customer (a contact).",
    )

    @api.constrains("model_id", "domain", "partner_field", "mailbox_id")
    def _check_rule(self):
        for rule in self:
            rule._validate()

    def _validate(self):
        """Refuse, with the reason, a rule ingest could not apply."""
        self.ensure_one()
        model = self.model_id.model
        label = self.model_id.name or model
        if not model or model not in self.env:
            raise ValidationError(_("Routing rule: the model %s is not installed.", label))
        allowed = self.env["maildesk.ingest"]._allowed_models(self.mailbox_id)
        if model not in allowed:
            raise ValidationError(
                _(
                    "Routing rule: MailDesk may not log mail on %(model)s records. Allow them in Settings → "
                    "MailDesk → Models mail may be logged on, or choose another model.",
                    model=label,
                )
            )
        field = self.env[model]._fields.get(self.partner_field or "")
        if not field or field.type != "many2one" or field.comodel_name != "res.partner":
            raise ValidationError(
                _(
                    "Routing rule on %(model)s: %(field)s is not a field of %(model)s that holds a contact.",
                    model=label,
                    field=self.partner_field or _("(empty)"),
                )
            )
        try:
            domain = self._eval_domain()
            self.env[model].sudo().search_count(domain, limit=1)
        except Exception as exc:  # noqa: BLE001 - any parse or field error is the admin's to fix
            raise ValidationError(
                _("Routing rule on %(model)s: the domain %(domain)s does not work: %(error)s",
                  model=label, domain=self.domain, error=exc)
            ) from exc

    def _eval_domain(self):
        self.ensure_one()
        domain = safe_eval(self.domain or "[]", {"context_today": fields.Date.context_today(self)})
        if not isinstance(domain, (list, tuple)):
            raise ValueError(_("a domain is a list, e.g. [('active', '=', True)]"))
        return list(domain)

    @api.depends("model_id", "domain")
    def _compute_display_name(self):
        for rule in self:
            rule.display_name = "%s %s" % (rule.model_id.name or "", rule.domain or "[]")


class MaildeskExclusion(models.Model):
    _name = "maildesk.exclusion"
    _description = "MailDesk: mail never logged"
    _order = "id desc"

    mailbox_id = fields.Many2one("maildesk.mailbox", required=True, ondelete="cascade", index=True)
    kind = fields.Selection(
        [("address", "Correspondent"), ("conversation", "Conversation")], required=True, default="address"
    )
    value = fields.Char(required=True, help="The address, or Outlook's conversation id.")
    label = fields.Char(help="What the user saw: the subject of the conversation or the correspondent's name.")
    user_id = fields.Many2one("res.users", default=lambda self: self.env.user, readonly=True, string="Set by")

    # 19.0 declares SQL constraints as model.Constraint attributes.
    if compat.SERIES >= 19:
        _exclusion_uniq = models.Constraint("unique(mailbox_id, kind, value)", "This is already excluded.")
    else:
        _sql_constraints = [("exclusion_uniq", "unique(mailbox_id, kind, value)", "This is already excluded.")]

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("kind", "address") == "address":
                address = tools.email_normalize(vals.get("value") or "")
                if not address:
                    raise ValidationError(_("%s is not a valid e-mail address.", vals.get("value") or ""))
                vals["value"] = address
        return super().create(vals_list)


class MaildeskMailbox(models.Model):
    _inherit = "maildesk.mailbox"

    log_scope = fields.Selection(
        [("auto", "Log automatically, by the rules"), ("manual", "Log only what I choose")],
        string="What is logged",
        default="auto",
        required=True,
        tracking=True,
        help="Log only what I choose: nothing is logged automatically; use Log to record in the inbox.",
    )
    excluded_addresses = fields.Text(
        help="Mail with any of these addresses is never logged (one per line, or separated by commas)."
    )
    excluded_domains = fields.Text(
        help="Mail with anyone of these domains is never logged (one per line, or separated by commas), "
        "e.g. bank.example."
    )
    route_rule_ids = fields.One2many(
        "maildesk.route.rule", "mailbox_id", string="Routing rules", context={"active_test": False}
    )
    exclusion_ids = fields.One2many("maildesk.exclusion", "mailbox_id", string="Excluded by users")
    unrouted_action = fields.Selection(
        [("keep", "Keep it in the MailDesk inbox"), ("create", "Create a record")],
        string="Mail that matches nothing",
        default="keep",
        required=True,
        help="Create a record: an unknown sender's mail becomes a new record (e.g. a lead) with this "
        "mailbox's responsible and team; the next mail of the conversation lands on it.",
    )
    new_record_model_id = fields.Many2one(
        "ir.model",
        string="Record to create",
        domain=[("is_mail_thread", "=", True), ("transient", "=", False)],
        ondelete="set null",
    )

    @api.constrains("excluded_addresses")
    def _check_excluded_addresses(self):
        for mailbox in self:
            _valid, bad = routing.parse_addresses(mailbox.excluded_addresses)
            if bad:
                raise ValidationError(
                    _("Excluded addresses of %(mailbox)s: not an e-mail address: %(bad)s",
                      mailbox=mailbox.email, bad=", ".join(bad))
                )

    @api.constrains("excluded_domains")
    def _check_excluded_domains(self):
        for mailbox in self:
            _valid, bad = routing.parse_domains(mailbox.excluded_domains)
            if bad:
                raise ValidationError(
                    _("Excluded domains of %(mailbox)s: not a domain name: %(bad)s (write bank.example, "
                      "without @ or http://)", mailbox=mailbox.email, bad=", ".join(bad))
                )

    @api.constrains("unrouted_action", "new_record_model_id")
    def _check_new_record_model(self):
        for mailbox in self:
            if mailbox.unrouted_action != "create":
                continue
            model = mailbox.new_record_model_id.model
            if not model:
                raise ValidationError(_("Choose the record MailDesk creates for mail that matches nothing."))
            if model not in self.env["maildesk.ingest"]._allowed_models(mailbox):
                raise ValidationError(
                    _("MailDesk may not log mail on %s records: allow them in Settings → MailDesk first.",
                      mailbox.new_record_model_id.name)
                )
            mailbox._new_record_values(model)

    def _new_record_values(self, model):
        """Values of every record created for mail (the gateway's and "create a record")."""
        self.ensure_one()
        return self._custom_values_for(model)

    @api.model_create_multi
    def create(self, vals_list):
        mailboxes = super().create(vals_list)
        for mailbox in mailboxes:
            if not mailbox.route_rule_ids:
                mailbox._create_default_rules()
        return mailboxes

    def _create_default_rules(self):
        self.ensure_one()
        allowed = self.env["maildesk.ingest"]._allowed_models(self)
        vals = []
        for sequence, (model, domain, partner_field) in enumerate(DEFAULT_RULES, start=1):
            if model not in allowed or partner_field not in self.env[model]._fields:
                continue
            fields_ = self.env[model]._fields
            if any(name not in fields_ for name in routing.domain_fields(domain)):
                continue
            vals.append(
                {
                    "mailbox_id": self.id,
                    "sequence": sequence * 10,
                    "model_id": self.env["ir.model"]._get_id(model),
                    "domain": domain,
                    "partner_field": partner_field,
                }
            )
        self.env["maildesk.route.rule"].sudo().create(vals)

    def write(self, vals):
        scope_on = vals.get("log_scope") == "auto" and self.filtered(lambda m: m.log_scope == "manual")
        res = super().write(vals)
        if scope_on:
            # Switched on: the mail kept back ("log only what I choose") is
            # routed now, by the same rules the preview showed.
            scope_on._redeliver_kept_mail()
        return res

    def _redeliver_kept_mail(self):
        for mailbox in self.filtered("sidecar_id"):
            self._sidecar()._call(
                "mailbox.redeliver", mailbox_id=mailbox.sidecar_id, statuses=["excluded", "unrouted"]
            )

    def action_apply_rules_to_past_mail(self):
        """Route again the mail that was kept back or matched nothing."""
        compat.check_access(self, "write")
        self._redeliver_kept_mail()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "message": _("MailDesk routes the past mail of %s again with the current rules.",
                             ", ".join(self.mapped("email"))),
            },
        }

    # ------------------------------------------------------------------
    # Preview
    # ------------------------------------------------------------------

    def _check_preview_access(self):
        self.ensure_one()
        compat.check_access(self, "read")
        if self.env.user != self.owner_id and not self.env.user.has_group("maildesk.group_maildesk_admin"):
            raise AccessError(_("Only the owner of %s or a MailDesk administrator may preview its routing.",
                                self.email))

    def preview_routing(self, days=None, limit=500):
        """What the last ``days`` days of this mailbox's mail would do now.

        One line per message: the record it would land on, a record that
        would be created, unrouted, or excluded and why; with totals. It runs
        the decisions ingest runs, and writes nothing.
        """
        self._check_preview_access()
        if not self.sidecar_id:
            raise UserError(_("Mailbox %s is not created in the sidecar yet: press Connect.", self.email))
        days = int(days or self.backfill_days or 30)
        if not 1 <= days <= 3650:
            raise ValidationError(_("Preview between 1 and 3650 days."))
        limit = max(1, min(int(limit or 500), 5000))
        answer = self._sidecar()._call("mailbox.preview_items", mailbox_id=self.sidecar_id, days=days, limit=limit)
        answer = answer if isinstance(answer, dict) else {}
        lines = self.env["maildesk.ingest"].sudo()._preview(self.sudo(), answer.get("items") or [])
        return {
            "mailbox": self.email,
            "days": days,
            "lines": lines,
            "totals": routing.totals(lines),
            "truncated": bool(answer.get("truncated")),
            "total": int(answer.get("total") or len(lines)),
        }

    def action_preview_routing(self):
        self._check_preview_access()
        wizard = self.env["maildesk.preview.wizard"].create({"mailbox_id": self.id, "days": self.backfill_days or 30})
        wizard.action_run()
        return wizard._action()

    @api.model
    def _internal_domains_listed(self):
        """The admin listed the internal domains (subdomains count too)."""
        return bool(self.env["ir.config_parameter"].sudo().get_param(INTERNAL_DOMAINS_PARAM))

    @api.model
    def _internal_domains(self):
        """The company's own domains: set in Settings, else from the companies',
        mailboxes' and internal users' addresses (public webmail and placeholder
        domains such as example.com left out; those match exactly)."""
        value = self.env["ir.config_parameter"].sudo().get_param(INTERNAL_DOMAINS_PARAM)
        if value:
            return set(routing.parse_domains(value)[0])
        return set(self._default_internal_domains())

    @api.model
    def _default_internal_domains(self):
        # search_fetch: only the e-mail is read (ingest asks this every batch).
        addresses = self.env["res.company"].sudo().search_fetch([], ["email"]).mapped("email")
        addresses += self.sudo().with_context(active_test=False).search_fetch([], ["email"]).mapped("email")
        users = self.env["res.users"].sudo().search_fetch([("share", "=", False)], ["partner_id"])
        addresses += users.partner_id.mapped("email")
        return routing.company_domains(addresses)
