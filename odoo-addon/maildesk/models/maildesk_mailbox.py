# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import ast
import datetime
import logging

from markupsafe import Markup

from odoo import SUPERUSER_ID, _, api, fields, models, tools
from odoo.exceptions import AccessError, MissingError, UserError, ValidationError

from .. import compat
from ..lib import mailparts

_logger = logging.getLogger(__name__)

STATES = [
    ("draft", "New"),
    ("connecting", "Waiting for sign-in"),
    ("connected", "Connected"),
    ("syncing", "Syncing"),
    ("backfilling", "Backfilling"),
    ("reauth_required", "Sign-in required"),
    ("error", "Error"),
    ("disconnected", "Disconnected"),
    ("unknown", "Unknown"),
]
_STATE_KEYS = {key for key, _label in STATES}
# Names a sidecar may use for the same states.
_STATE_ALIASES = {
    "new": "draft",
    "created": "draft",
    "pending": "connecting",
    "pending_consent": "connecting",
    "awaiting_signin": "connecting",
    "awaiting_consent": "connecting",
    "idle": "connected",
    "ok": "connected",
    "active": "connected",
    "throttled": "connected",
    "backfill": "backfilling",
    "reauth": "reauth_required",
    "failed": "error",
}
# Fields the sidecar also holds; a change is pushed with mailbox.update.
SIDECAR_FIELDS = (
    "email",
    "kind",
    "owner_id",
    "user_ids",
    "main_user_id",
    "mode",
    "gateway_model_id",
    "folders",
    "backfill_days",
    "log_sent_as_activity",
    "create_contacts",
    "anyone_may_send",
)


class MaildeskMailbox(models.Model):
    _name = "maildesk.mailbox"
    _description = "MailDesk mailbox"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _rec_name = "email"
    _order = "email"

    email = fields.Char(required=True, tracking=True, help="Address of the Microsoft 365 mailbox.")
    kind = fields.Selection(
        [("personal", "Personal"), ("shared", "Shared")], default="personal", required=True, tracking=True
    )
    owner_id = fields.Many2one(
        "res.users",
        string="Owner",
        default=lambda self: self.env.user,
        tracking=True,
        help="Signs in on Microsoft's page to connect the mailbox.",
    )
    user_ids = fields.Many2many(
        "res.users",
        "maildesk_mailbox_res_users_rel",
        "mailbox_id",
        "user_id",
        string="Assigned users",
        help="Users who may read this mailbox in Odoo.",
    )
    main_user_id = fields.Many2one(
        "res.users",
        string="Main user",
        tracking=True,
        help="Gets the activities for mail sent from Outlook and the sign-in reminders.",
    )
    mode = fields.Selection(
        [("log", "Log on chatter"), ("gateway", "Mail gateway")],
        default="log",
        required=True,
        tracking=True,
        help="Log: post mail on the replied record or the matching contacts.\n"
        "Gateway: route incoming mail like Odoo's mail gateway, creating records of the chosen model.",
    )
    gateway_model_id = fields.Many2one(
        "ir.model",
        string="Gateway model",
        domain=[("is_mail_thread", "=", True), ("transient", "=", False)],
        ondelete="set null",
    )
    gateway_model = fields.Char(related="gateway_model_id.model", string="Gateway model name")
    gateway_user_id = fields.Many2one(
        "res.users",
        string="Responsible of new records",
        domain=[("share", "=", False)],
        ondelete="set null",
        help="Salesperson (or responsible) set on every record the gateway creates, "
        "when the model has a responsible user field (user_id).",
    )
    gateway_defaults = fields.Text(
        "Default values of new records",
        default="{}",
        help="A Python dictionary, like a mail alias's default values, applied to every record "
        "the gateway creates, e.g. {'tag_ids': [(4, 3)]}.",
    )
    folders = fields.Char(default="inbox,sentitems", help="Comma-separated folders to sync.")
    backfill_days = fields.Integer(default=30, help="How many days of past mail to bring in.")
    log_sent_as_activity = fields.Boolean(
        string="Log sent mail as activity",
        default=True,
        help="Mail sent from Outlook also becomes a done 'Email - Outbox' activity of the main user.",
    )
    create_contacts = fields.Boolean(help="Create a contact for unknown correspondents (log mode).")
    anyone_may_send = fields.Boolean(
        "Anyone may send from this address",
        default=False,
        tracking=True,
        help="Off: only the owner and the assigned users may send Odoo mail from this address through "
        "Microsoft 365; anyone else's mail goes through another outgoing server for this address, or fails. "
        "On: every user and automated mail may (for a shared address such as info@ used by automated mail).",
    )
    send_through_maildesk = fields.Boolean(
        "Send through MailDesk",
        default=True,
        help="Odoo mail from this address is sent through Microsoft 365 instead of SMTP.",
    )
    mail_server_id = fields.Many2one("ir.mail_server", readonly=True, copy=False, ondelete="set null")
    sidecar_id = fields.Char("Sidecar id", readonly=True, copy=False, index=True)
    state = fields.Selection(STATES, default="draft", readonly=True, copy=False, tracking=True)
    last_sync_at = fields.Datetime("Last sync", readonly=True, copy=False)
    error = fields.Text(readonly=True, copy=False)
    progress_done = fields.Integer(readonly=True, copy=False)
    progress_total = fields.Integer(readonly=True, copy=False)
    progress = fields.Float(compute="_compute_progress", string="Backfill progress")
    eta_s = fields.Integer("Backfill ETA (s)", readonly=True, copy=False)
    unread_count = fields.Integer(readonly=True, copy=False)
    delivery_failed = fields.Integer(
        "Failed messages",
        readonly=True,
        copy=False,
        help="Messages Odoo refused the same way several times: MailDesk keeps them and stops retrying "
        "until you press Retry failed.",
    )
    delivery_failed_reason = fields.Text("Odoo's reason", readonly=True, copy=False)
    connect_url = fields.Char(
        "Sign-in link", readonly=True, copy=False, help="Send it to the owner; valid for 15 minutes."
    )
    connect_url_expires = fields.Datetime(readonly=True, copy=False)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one("res.company", default=lambda self: self.env.company)

    # 19.0 declares SQL constraints as model.Constraint attributes.
    if compat.SERIES >= 19:
        _email_uniq = models.Constraint("unique(email)", "A mailbox with this address already exists.")
    else:
        _sql_constraints = [("email_uniq", "unique(email)", "A mailbox with this address already exists.")]

    @api.depends("progress_done", "progress_total")
    def _compute_progress(self):
        for mailbox in self:
            total = mailbox.progress_total
            mailbox.progress = min(100.0, 100.0 * mailbox.progress_done / total) if total else 0.0

    @api.constrains("email")
    def _check_email(self):
        for mailbox in self:
            if not tools.email_normalize(mailbox.email or ""):
                raise ValidationError(_("%s is not a valid e-mail address.", mailbox.email))

    @api.constrains("mode", "gateway_model_id")
    def _check_gateway_model(self):
        for mailbox in self:
            if mailbox.mode == "gateway" and not mailbox.gateway_model_id:
                raise ValidationError(_("Choose the model the gateway creates records of."))

    @api.constrains("gateway_defaults", "gateway_model_id", "gateway_user_id")
    def _check_gateway_defaults(self):
        for mailbox in self:
            mailbox._gateway_custom_values()

    def _gateway_custom_values(self):
        """Values for every record the gateway creates (like ``mail.alias.alias_defaults``)."""
        self.ensure_one()
        return self._custom_values_for(self.gateway_model_id.model)

    def _custom_values_for(self, model):
        """The mailbox's default values (and responsible) for a new record of ``model``."""
        self.ensure_one()
        try:
            values = dict(ast.literal_eval(self.gateway_defaults or "{}"))
        except Exception as exc:
            raise ValidationError(
                _(
                    "Default values of new records of %(mailbox)s must be a literal Python dictionary, "
                    "e.g. {'field': 'value'}.",
                    mailbox=self.email,
                )
            ) from exc
        if model and model in self.env:
            unknown = sorted(str(key) for key in values if key not in self.env[model]._fields)
            if unknown:
                raise ValidationError(
                    _(
                        "Default values of %(mailbox)s name fields that %(model)s does not have: %(fields)s.",
                        mailbox=self.email,
                        model=self.env["ir.model"]._get(model).name or model,
                        fields=", ".join(unknown),
                    )
                )
            if self.gateway_user_id and "user_id" not in values:
                field = self.env[model]._fields.get("user_id")
                if field and field.type == "many2one" and field.comodel_name == "res.users":
                    values["user_id"] = self.gateway_user_id.id
        return values

    # ------------------------------------------------------------------
    # Sidecar lifecycle
    # ------------------------------------------------------------------

    def _sidecar(self):
        return self.env["maildesk.sidecar"]

    def _sidecar_params(self):
        """mailbox.create/update params; unset users are left out (the sidecar wants positive ids)."""
        self.ensure_one()
        params = {
            "email": tools.email_normalize(self.email) or self.email,
            "kind": self.kind,
            "user_ids": self.user_ids.ids,
            "mode": self.mode,
            "gateway_model": self.gateway_model_id.model if self.mode == "gateway" else "",
            "folders": [f.strip() for f in (self.folders or "").split(",") if f.strip()],
            "backfill_days": self.backfill_days,
            "log_sent_as_activity": self.log_sent_as_activity,
            "create_contacts": self.create_contacts,
            "anyone_may_send": self.anyone_may_send,
        }
        if self.owner_id:
            params["owner_uid"] = self.owner_id.id
        if self.main_user_id:
            params["main_user_id"] = self.main_user_id.id
        return params

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("email"):
                vals["email"] = vals["email"].strip().lower()
        mailboxes = super().create(vals_list)
        for mailbox in mailboxes:
            result = self._sidecar()._call("mailbox.create", odoo_id=mailbox.id, **mailbox._sidecar_params())
            mailbox.sudo()._apply_sidecar(result)
        mailboxes._sync_mail_servers()
        return mailboxes

    def write(self, vals):
        if vals.get("email"):
            vals["email"] = vals["email"].strip().lower()
        res = super().write(vals)
        if not self.env.context.get("maildesk_from_sidecar") and any(f in vals for f in SIDECAR_FIELDS):
            for mailbox in self.filtered("sidecar_id"):
                result = self._sidecar()._call(
                    "mailbox.update", mailbox_id=mailbox.sidecar_id, **mailbox._sidecar_params()
                )
                mailbox.sudo()._apply_sidecar(result)
        if {"email", "send_through_maildesk", "active"} & set(vals):
            self._sync_mail_servers()
        return res

    def unlink(self):
        for mailbox in self.filtered("sidecar_id"):
            try:
                self._sidecar()._call("mailbox.delete", mailbox_id=mailbox.sidecar_id)
            except MissingError:
                _logger.info("MailDesk mailbox %s was already gone in the sidecar", mailbox.sidecar_id)
        servers = self.sudo().mapped("mail_server_id")
        res = super().unlink()
        servers.unlink()
        return res

    def _apply_sidecar(self, data):
        """Copy a sidecar mailbox object (create/get/update answers) onto the record."""
        self.ensure_one()
        vals = self._sidecar_vals(data)
        changed = {k: v for k, v in vals.items() if self[k] != v}
        if changed:
            self.with_context(maildesk_from_sidecar=True).write(changed)

    def _sidecar_vals(self, data):
        if not isinstance(data, dict):
            return {}
        vals = {}
        if data.get("id"):
            vals["sidecar_id"] = data["id"]
        if "state" in data:
            vals["state"] = self._map_state(data.get("state"))
        if "last_sync_at" in data:
            vals["last_sync_at"] = mailparts.parse_datetime(data.get("last_sync_at")) or False
        if "error" in data:
            err = data.get("error")
            if isinstance(err, dict):
                err = err.get("message") or str(err)
            vals["error"] = err or False
        delivery = data.get("delivery")
        if isinstance(delivery, dict) and delivery.get("delayed") and not vals.get("error"):
            vals["error"] = _(
                "Delivery to Odoo is delayed: %s", delivery.get("last_error") or delivery.get("reason") or "?"
            )
        if isinstance(delivery, dict) and "failed" in delivery:
            vals["delivery_failed"] = int(delivery.get("failed") or 0)
            failed = vals["delivery_failed"]
            vals["delivery_failed_reason"] = (delivery.get("failed_reason") or False) if failed else False
        progress = data.get("progress")
        if isinstance(progress, dict):
            vals["progress_done"] = int(progress.get("done") or 0)
            vals["progress_total"] = int(progress.get("total") or 0)
            vals["eta_s"] = int(progress.get("eta_s") or 0)
        counts = data.get("counts")
        if isinstance(counts, dict) and "unread" in counts:
            vals["unread_count"] = int(counts.get("unread") or 0)
        return vals

    @api.model
    def _map_state(self, state):
        state = (state or "").strip().lower()
        state = _STATE_ALIASES.get(state, state)
        return state if state in _STATE_KEYS else "unknown"

    def _sync_mail_servers(self):
        """One outgoing server of type MailDesk per mailbox, routed by from_filter."""
        servers = self.env["ir.mail_server"].sudo()
        for mailbox in self.sudo().with_context(active_test=False):
            wanted = mailbox.active and mailbox.send_through_maildesk
            server = mailbox.mail_server_id
            if wanted:
                vals = {
                    "name": _("MailDesk: %s", mailbox.email),
                    "from_filter": mailbox.email,
                    "smtp_authentication": "maildesk",
                    "smtp_host": "maildesk",
                    "smtp_port": 443,
                    "smtp_encryption": "none",
                    "maildesk_mailbox_id": mailbox.id,
                    "active": True,
                }
                if server:
                    server.write(vals)
                else:
                    mailbox.with_context(maildesk_from_sidecar=True).mail_server_id = servers.create(vals)
            elif server and server.active:
                server.active = False

    def _refresh_from_sidecar(self):
        for mailbox in self.filtered("sidecar_id"):
            data = self._sidecar()._call("mailbox.get", mailbox_id=mailbox.sidecar_id)
            mailbox.sudo()._apply_sidecar(data)

    def web_read(self, specification):
        """"State refreshed on open": the form's action sets ``maildesk_refresh_on_open``.

        web_read runs in a read-only transaction in Odoo 18, so the fresh
        state is laid over the answer (and stored only when the cursor may
        write; the cron stores it anyway).
        """
        result = super().web_read(specification)
        if len(self) != 1 or not self.env.context.get("maildesk_refresh_on_open") or not self.sidecar_id:
            return result
        try:
            data = self._sidecar()._call("mailbox.get", mailbox_id=self.sidecar_id)
        except (UserError, AccessError) as exc:
            _logger.info("MailDesk: could not refresh %s on open: %s", self.email, exc)
            return result
        vals = self._sidecar_vals(data)
        vals.pop("sidecar_id", None)
        row = result[0]
        for name, value in vals.items():
            if name in specification:
                if isinstance(value, datetime.datetime):
                    value = fields.Datetime.to_string(value)
                row[name] = value
        if "progress" in specification and vals.get("progress_total"):
            row["progress"] = min(100.0, 100.0 * vals.get("progress_done", 0) / vals["progress_total"])
        if not getattr(self.env.cr, "readonly", False):
            self.sudo()._apply_sidecar(data)
        return result

    @api.model
    def _cron_refresh_state(self):
        """One mailbox.list for all mailboxes (per-mailbox get as fallback)."""
        mailboxes = self.sudo().search([("sidecar_id", "!=", False)])
        if not mailboxes:
            return
        try:
            listed = self._sidecar().sudo()._call("mailbox.list") or []
        except Exception as exc:  # noqa: BLE001 - fall back to one call per mailbox
            _logger.info("MailDesk: mailbox.list failed (%s), refreshing one by one", exc)
            listed = None
        by_id = {m.get("id"): m for m in listed or [] if isinstance(m, dict)}
        for mailbox in mailboxes:
            try:
                if listed is not None:
                    data = by_id.get(mailbox.sidecar_id)
                    if data is None:
                        data = {"state": "disconnected", "error": _("Unknown to the sidecar.")}
                    mailbox._apply_sidecar(data)
                else:
                    mailbox._refresh_from_sidecar()
            except MissingError:
                mailbox._apply_sidecar({"state": "disconnected", "error": _("Unknown to the sidecar.")})
            except Exception as exc:  # noqa: BLE001 - one mailbox must not stop the others
                _logger.warning("MailDesk: refreshing %s failed: %s", mailbox.email, exc)
            if mailbox.state == "reauth_required":
                # In case the sidecar's notice did not reach Odoo.
                mailbox._schedule_reauth_activity(mailbox.error)

    # ------------------------------------------------------------------
    # Buttons
    # ------------------------------------------------------------------

    def _ensure_sidecar_id(self):
        self.ensure_one()
        if not self.sidecar_id:
            result = self._sidecar()._call("mailbox.create", odoo_id=self.id, **self._sidecar_params())
            self.sudo()._apply_sidecar(result)
        return self.sidecar_id

    def action_connect(self):
        self.ensure_one()
        result = self._sidecar()._call("mailbox.connect", mailbox_id=self._ensure_sidecar_id()) or {}
        url = result.get("auth_url")
        if not url:
            raise UserError(_("The sidecar gave no sign-in link."))
        self.sudo().with_context(maildesk_from_sidecar=True).write(
            {
                "connect_url": url,
                "connect_url_expires": mailparts.parse_datetime(result.get("expires_at")) or False,
                "state": "connecting",
                "error": False,
            }
        )
        if not self.owner_id or self.owner_id == self.env.user:
            return {"type": "ir.actions.act_url", "url": url, "target": "new"}
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("Sign-in link ready"),
                "message": _(
                    "Send the sign-in link shown on the mailbox to %(owner)s; it is valid for 15 minutes.",
                    owner=self.owner_id.name,
                ),
                "sticky": False,
                "type": "info",
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def action_sync_now(self):
        for mailbox in self:
            self._sidecar()._call("mailbox.sync_now", mailbox_id=mailbox._ensure_sidecar_id())
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {"message": _("Sync queued."), "type": "success", "sticky": False},
        }

    def action_disconnect(self):
        for mailbox in self.filtered("sidecar_id"):
            result = self._sidecar()._call("mailbox.disconnect", mailbox_id=mailbox.sidecar_id)
            mailbox.sudo()._apply_sidecar(result if isinstance(result, dict) else {"state": "disconnected"})
            mailbox.sudo().with_context(maildesk_from_sidecar=True).write(
                {"connect_url": False, "state": "disconnected"}
            )
        return True

    def action_refresh(self):
        self._refresh_from_sidecar()
        return True

    def action_retry_failed(self):
        """Queue the messages Odoo refused again (mailbox.retry_failed), then refresh."""
        self.ensure_one()
        compat.check_access(self, "read")
        if not self.sidecar_id:
            raise UserError(_("Mailbox %s is not created in the sidecar yet: press Connect.", self.email))
        result = self._sidecar()._call("mailbox.retry_failed", mailbox_id=self.sidecar_id) or {}
        requeued = int(result.get("requeued") or 0) if isinstance(result, dict) else 0
        self._refresh_from_sidecar()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "message": _(
                    "%(count)s failed messages of %(mailbox)s are queued again for Odoo.",
                    count=requeued,
                    mailbox=self.email,
                ),
                "type": "success",
                "sticky": False,
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    def action_open_inbox(self):
        self.ensure_one()
        return {
            "type": "ir.actions.client",
            "tag": "maildesk.inbox",
            "name": _("Inbox"),
            "params": {"mailbox_id": self.id},
        }

    # ------------------------------------------------------------------
    # Sidecar -> Odoo (the technical bridge user calls these over RPC)
    # ------------------------------------------------------------------

    def _check_bridge_caller(self):
        if not (self.env.su or self.env.user.has_group("maildesk.group_maildesk_bridge") or self.env.is_system()):
            raise AccessError(_("Only the MailDesk bridge user may push mail into Odoo."))

    def maildesk_ingest(self, items, options=None):
        """Batched, idempotent ingest; one result per item, in order (see API.md)."""
        self._check_bridge_caller()
        mailbox = self.sudo().with_context(active_test=False).exists()
        if len(mailbox) != 1:
            raise MissingError(_("Call maildesk_ingest on exactly one existing mailbox."))
        if items is None:
            items = []
        if not isinstance(items, list):
            raise ValidationError(_("maildesk_ingest takes a list of items, not %s.", type(items).__name__))
        if options is not None and not isinstance(options, dict):
            raise ValidationError(_("maildesk_ingest options must be an object, not %s.", type(options).__name__))
        return self.env["maildesk.ingest"].sudo()._ingest(mailbox, items, options or {})

    def maildesk_notify(self, notices):
        """Notices from the sidecar, e.g. ``{"kind": "reauth_required", "mailbox", "email", "reason"}``."""
        self._check_bridge_caller()
        results = []
        for notice in notices or []:
            try:
                results.append(self.sudo()._maildesk_handle_notice(notice))
            except Exception as exc:  # noqa: BLE001 - answered per notice
                _logger.warning("MailDesk notice failed: %s", exc)
                results.append({"status": "error", "error": str(exc)})
        return results

    def _maildesk_handle_notice(self, notice):
        notice = notice if isinstance(notice, dict) else {}
        mailbox = self.browse()
        if notice.get("mailbox"):
            mailbox = self.with_context(active_test=False).search([("sidecar_id", "=", notice["mailbox"])], limit=1)
        if not mailbox and notice.get("email"):
            mailbox = self.search([("email", "=", tools.email_normalize(notice["email"]) or "")], limit=1)
        if not mailbox:
            mailbox = self.exists()[:1]
        if not mailbox:
            return {"status": "ignored", "error": "unknown mailbox"}
        if notice.get("kind") != "reauth_required":
            return {"status": "ignored", "error": "unknown kind %s" % notice.get("kind")}
        mailbox.with_context(maildesk_from_sidecar=True).write(
            {"state": "reauth_required", "error": notice.get("reason") or False}
        )
        activity = mailbox._schedule_reauth_activity(notice.get("reason"))
        return {"status": "done", "activity_id": activity.id}

    def _schedule_reauth_activity(self, reason=None):
        self.ensure_one()
        activity_type = self.env.ref("maildesk.mail_activity_type_reauth")
        existing = self.env["mail.activity"].search(
            [
                ("res_model", "=", self._name),
                ("res_id", "=", self.id),
                ("activity_type_id", "=", activity_type.id),
            ],
            limit=1,
        )
        if existing:
            return existing
        user = self.owner_id or self.main_user_id or self.env.ref("base.user_admin")
        base_url = self.get_base_url()
        link = base_url + compat.record_path("maildesk.mailbox", self.id)
        # An HTML template whose values Markup escapes (17.0's _() escapes the
        # template itself when a value is Markup).
        note = Markup(_(
            "<p>Microsoft asks the owner of %(email)s to sign in again%(reason)s.</p>"
            '<p>Open <a href="%(link)s">the mailbox</a> and press <b>Connect</b>.</p>'
        )) % {
            "email": self.email,
            "reason": (" (%s)" % reason) if reason else "",
            "link": link,
        }
        # Queue the assignment mail instead of sending it inside the sidecar's call.
        return self.with_context(mail_notify_force_send=False).activity_schedule(
            act_type_xmlid="maildesk.mail_activity_type_reauth",
            summary=_("Sign in again to %s", self.email),
            note=note,
            user_id=user.id,
        )

    # ------------------------------------------------------------------
    # Inbox (the OWL client action calls these through the ORM; the browser
    # never talks to the sidecar, the shared secret stays on the server)
    # ------------------------------------------------------------------

    @api.model
    def maildesk_inbox_mailboxes(self):
        mailboxes = self.search([])
        return [
            {
                "id": m.id,
                "email": m.email,
                "state": m.state,
                "state_label": dict(STATES).get(m.state, m.state),
                "unread": m.unread_count,
                "kind": m.kind,
            }
            for m in mailboxes
        ]

    def _inbox_check(self):
        self.ensure_one()
        compat.check_access(self, "read")
        if not self.sidecar_id:
            raise UserError(_("Mailbox %s is not created in the sidecar yet: press Connect.", self.email))
        return self.sidecar_id

    def maildesk_inbox_folders(self):
        sid = self._inbox_check()
        folders = self._sidecar()._call("folder.list", mailbox_id=sid) or []
        unread = sum(int(f.get("unread") or 0) for f in folders if (f.get("well_known") or f.get("id")) == "inbox")
        if unread != self.unread_count:
            self.sudo().with_context(maildesk_from_sidecar=True).write({"unread_count": unread})
        return folders

    def maildesk_inbox_messages(self, folder="inbox", cursor=None, query=None, unread_only=False, limit=50):
        sid = self._inbox_check()
        params = {"mailbox_id": sid, "folder": folder or "inbox", "limit": max(1, min(int(limit or 50), 200))}
        if cursor:
            params["cursor"] = cursor
        if query:
            params["query"] = query
        if unread_only:
            params["unread_only"] = True
        result = self._sidecar()._call("message.list", **params) or {}
        messages = result.get("messages") or []
        linked = self._linked_records([m.get("internet_message_id") for m in messages])
        for message in messages:
            message["linked"] = linked.get(message.get("internet_message_id"), [])
            # A row knows its mailbox, as the combined list's rows do: one
            # clicked while the inbox switches lists still opens in it.
            message["mailbox_id"] = self.id
        return {"messages": messages, "next_cursor": result.get("next_cursor") or False}

    def _linked_records(self, message_ids):
        """Records of this database that already hold these Message-Ids (one search)."""
        message_ids = [m for m in message_ids if m]
        if not message_ids:
            return {}
        rows = self.env["mail.message"].search_read(
            [("message_id", "in", message_ids), ("model", "!=", False), ("res_id", "!=", False)],
            ["message_id", "model", "res_id", "record_name"],
        )
        out = {}
        for row in rows:
            entry = {"model": row["model"], "res_id": row["res_id"], "name": row["record_name"] or row["model"]}
            entries = out.setdefault(row["message_id"], [])
            if not any((e["model"], e["res_id"]) == (entry["model"], entry["res_id"]) for e in entries):
                entry["message"] = row["id"]
                entries.append(entry)
        return out

    def _sender_is_known(self, address):
        address = tools.email_normalize(address or "")
        if not address:
            return False
        if self.env["maildesk.trusted.sender"].search_count(
            [("user_id", "=", self.env.uid), ("email", "=", address)], limit=1
        ):
            return True
        # A contact counts when a person made it. The contacts made of
        # incoming mail (log mode's "create contacts" and the gateway's
        # records, made as the superuser as Odoo's own gateway does, or by the
        # bridge user) would trust every stranger whose mail was logged.
        # One query: opening a message runs this.
        bridge = self.env.ref("maildesk.group_maildesk_bridge")
        domain = [
            ("email_normalized", "=", address),
            ("create_uid", "!=", SUPERUSER_ID),
            ("create_uid.%s" % compat.USER_GROUPS, "not in", bridge.ids),
        ]
        return bool(self.env["res.partner"].sudo().search_count(domain, limit=1))

    def maildesk_inbox_message(self, message_id, show_images=False):
        sid = self._inbox_check()
        data = dict(self._sidecar()._call("message.get", mailbox_id=sid, message_id=message_id) or {})
        sender = data.get("from") or {}
        sender_email = mailparts.normalize_email(sender)
        # The sidecar sanitises too; sanitise again here, Odoo's way.
        body = tools.html_sanitize(data.get("body_html") or "", sanitize_style=True, strip_classes=True)
        body = mailparts.sidecar_remote_images(str(body))
        # Open-tracking pixels never load, not even for trusted senders.
        body, data["trackers_removed"] = mailparts.strip_tracking_images(str(body))
        blocked = 0
        trusted = self._sender_is_known(sender_email)
        if not show_images and not trusted:
            body, blocked = mailparts.block_remote_images(body)
        body = self._inline_images(message_id, str(body), data.get("attachments") or [])
        data["body_html"] = body
        data["images_blocked"] = blocked
        data["sender_trusted"] = trusted
        data["sender_email"] = sender_email
        data["linked"] = self._linked_records([data.get("internet_message_id")]).get(
            data.get("internet_message_id"), []
        )
        for att in data.get("attachments") or []:
            att["url"] = "/maildesk/attachment/%s/%s/%s" % (self.id, message_id, att.get("id"))
        return data

    # Inline images travel as data: URIs: the sandboxed frame has no cookies
    # to fetch them from Odoo, and its CSP allows data: images only.
    INLINE_IMAGES_BUDGET = 2 * 1024 * 1024

    def _inline_images(self, message_id, body, attachments):
        budget = self.INLINE_IMAGES_BUDGET
        for att in attachments:
            cid = (att.get("content_id") or "").strip().strip("<>")
            ctype = (att.get("content_type") or "").lower()
            if not cid or "cid:" + cid not in body or not ctype.startswith("image/") or ctype == "image/svg+xml":
                continue
            try:
                data = self._inbox_attachment(message_id, att.get("id"))
            except (UserError, MissingError) as exc:
                _logger.info("MailDesk: inline image %s not loaded: %s", cid, exc)
                continue
            b64 = (data.get("data_base64") or "").strip()
            if not b64 or len(b64) > budget:
                continue
            budget -= len(b64)
            body = body.replace("cid:" + cid, "data:%s;base64,%s" % (ctype, b64))
        return body

    def _inbox_attachment(self, message_id, attachment_id):
        sid = self._inbox_check()
        return self._sidecar()._call(
            "message.attachment", mailbox_id=sid, message_id=message_id, attachment_id=attachment_id
        ) or {}

    @api.model
    def maildesk_trust_sender(self, address):
        address = tools.email_normalize(address or "")
        if not address:
            raise ValidationError(_("No sender address to trust."))
        trusted = self.env["maildesk.trusted.sender"]
        if not trusted.search_count([("user_id", "=", self.env.uid), ("email", "=", address)]):
            trusted.create({"email": address})
        return True

    def maildesk_mark_read(self, message_ids, read=True):
        sid = self._inbox_check()
        return self._sidecar()._call("message.mark_read", mailbox_id=sid, message_ids=list(message_ids), read=bool(read))

    def maildesk_move(self, message_ids, folder):
        sid = self._inbox_check()
        return self._sidecar()._call("message.move", mailbox_id=sid, message_ids=list(message_ids), folder=folder)

    @api.model
    def maildesk_loggable_models(self):
        models_ = self.env["ir.model"].sudo().search(
            [("is_mail_thread", "=", True), ("transient", "=", False), ("model", "not like", "maildesk.%")]
        )
        # Only the models the admin allows (any mailbox's gateway model too).
        allowed = self.env["maildesk.ingest"]._allowed_models()
        allowed |= set(self.search([]).sudo().mapped("gateway_model_id.model"))
        out = []
        for model in models_:
            Model = self.env.get(model.model)
            if model.model not in allowed:
                continue
            if Model is not None and compat.has_access(Model, getattr(Model, "_mail_post_access", "write")):
                out.append({"model": model.model, "name": model.name})
        return sorted(out, key=lambda m: m["name"])

    def _check_target(self, model, res_id):
        """The record a user may put this mailbox's mail on (the rights of
        Log to record): a chatter model MailDesk may log on, and the user's
        right to post on that record."""
        if not isinstance(model, str) or model not in self.env or not isinstance(
            self.env[model], self.pool["mail.thread"]
        ):
            raise ValidationError(_("%s has no chatter.", model))
        if model not in self.env["maildesk.ingest"]._allowed_models(self.sudo()):
            raise ValidationError(
                _(
                    "MailDesk may not log mail on %(model)s records. A MailDesk administrator can allow "
                    "them in Settings → MailDesk → Models mail may be logged on.",
                    model=self.env["ir.model"]._get(model).name or model,
                )
            )
        try:
            record = self.env[model].browse(int(res_id)).exists()
        except (TypeError, ValueError):
            record = None
        if not record:
            raise MissingError(_("That record no longer exists."))
        compat.check_access(record, getattr(record, "_mail_post_access", "write"))
        return record

    def maildesk_log_to_record(self, message_id, model, res_id):
        sid = self._inbox_check()
        if not isinstance(message_id, str) or not message_id.strip():
            raise ValidationError(_("Choose a message to log."))
        record = self._check_target(model, res_id)
        # Recorded (and committed) before the sidecar is asked: ingest accepts
        # this target only for a request Odoo itself recorded.
        requests = self.env["maildesk.log.request"]
        request_id = requests._record(self, message_id.strip(), model, record.id)
        try:
            return self._sidecar()._call(
                "message.log_to_record", mailbox_id=sid, message_id=message_id, model=model, res_id=record.id
            )
        except Exception:
            requests._forget(request_id)
            raise

    def maildesk_compose_action(self, message_id, mode="reply"):
        """Reply / reply all / forward through Odoo's own composer."""
        # The quote keeps remote content blocked as the inbox does (unknown
        # senders' remote images do not load in the composer either).
        data = self.maildesk_inbox_message(message_id)
        own = tools.email_normalize(self.email)
        sender = mailparts.normalize_email(data.get("from") or {})
        # Replying to someone makes them a contact, as Odoo's composer would.
        partners = self.env["res.partner"].sudo()
        if mode in ("reply", "reply_all") and sender and sender != own:
            partners |= partners.find_or_create(mailparts.format_address(data.get("from") or {}))
        if mode == "reply_all":
            for entry in (data.get("to") or []) + (data.get("cc") or []):
                address = mailparts.normalize_email(entry)
                if address and address != own:
                    partners |= partners.find_or_create(mailparts.format_address(entry))
        linked = data.get("linked") or []
        if linked and linked[0]["model"] in self.env:
            model, res_id = linked[0]["model"], linked[0]["res_id"]
        elif partners:
            model, res_id = "res.partner", partners[0].id
        else:
            model, res_id = "res.partner", self.env.user.partner_id.id
        subject = data.get("subject") or ""
        prefix = "Fwd: " if mode == "forward" else "Re: "
        if not subject.lower().startswith(prefix.lower().strip()):
            subject = prefix + subject
        quoted = Markup("<br/><br/><blockquote>%s</blockquote>") % Markup(data.get("body_html") or "")
        context = {
            "default_model": model,
            "default_res_ids": [res_id],
            "default_composition_mode": "comment",
            "default_subject": subject,
            "default_body": quoted,
            "default_partner_ids": partners.ids,
            "default_email_from": tools.formataddr((self.env.user.name, self.email)),
            "default_message_type": "comment",
            "default_subtype_xmlid": "mail.mt_comment",
        }
        if linked and mode != "forward" and linked[0].get("message"):
            # Odoo then sends References/In-Reply-To: the reply threads at the recipient.
            context["default_parent_id"] = linked[0]["message"]
        return {
            "type": "ir.actions.act_window",
            "res_model": "mail.compose.message",
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
            "context": context,
        }
