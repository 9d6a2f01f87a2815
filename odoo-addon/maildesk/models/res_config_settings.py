# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import logging

from odoo import _, api, fields, models, tools
from odoo.exceptions import UserError, ValidationError

from .. import compat
from ..lib import routing
from .maildesk_ingest import ALLOWED_MODELS_PARAM
from .maildesk_routing import INTERNAL_DOMAINS_PARAM

_logger = logging.getLogger(__name__)

BRIDGE_LOGIN = "maildesk-bridge"
CALLBACK_PATH = "/maildesk/oauth/callback"


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    maildesk_sidecar_url = fields.Char("Sidecar URL", config_parameter="maildesk.sidecar_url")
    maildesk_shared_secret = fields.Char("Shared secret", config_parameter="maildesk.shared_secret")
    maildesk_odoo_url = fields.Char(
        "Odoo URL for the sidecar",
        config_parameter="maildesk.odoo_url",
        help="How the sidecar reaches this Odoo; empty means web.base.url.",
    )
    # The Azure app lives in the sidecar only: these fields are neither stored
    # here nor in ir.config_parameter; their inverse hands them to the sidecar.
    maildesk_azure_tenant = fields.Char(
        "Tenant", compute="_compute_maildesk_azure", inverse="_inverse_maildesk_azure", store=False
    )
    maildesk_azure_client_id = fields.Char(
        "Client ID", compute="_compute_maildesk_azure", inverse="_inverse_maildesk_azure", store=False
    )
    maildesk_azure_client_secret = fields.Char(
        "Client secret", compute="_compute_maildesk_azure", inverse="_inverse_maildesk_azure", store=False
    )
    maildesk_azure_secret_set = fields.Boolean(compute="_compute_maildesk_azure", store=False)
    maildesk_redirect_uri = fields.Char("Redirect URI", compute="_compute_maildesk_redirect_uri")
    maildesk_bridge_user_id = fields.Many2one("res.users", compute="_compute_maildesk_bridge_user_id")

    # company_id: any dependency, so the settings form's onchange computes it
    @api.depends("company_id")
    def _compute_maildesk_redirect_uri(self):
        for settings in self:
            settings.maildesk_redirect_uri = settings.get_base_url().rstrip("/") + CALLBACK_PATH

    # company_id: any dependency, so the settings form's onchange computes it
    @api.depends("company_id")
    def _compute_maildesk_bridge_user_id(self):
        user = self.env["res.users"].sudo().with_context(active_test=False).search(
            [("login", "=", BRIDGE_LOGIN)], limit=1
        )
        for settings in self:
            settings.maildesk_bridge_user_id = user

    def _maildesk_sidecar_settings(self):
        if not (
            tools.config.get("maildesk_sidecar_url")
            or self.env["ir.config_parameter"].sudo().get_param("maildesk.sidecar_url")
        ):
            return {}
        try:
            result = self.env["maildesk.sidecar"]._call("settings.get")
            return result if isinstance(result, dict) else {}
        except Exception as exc:  # noqa: BLE001 - settings must open with the sidecar down
            _logger.info("MailDesk: settings.get failed: %s", exc)
            return {}

    # company_id: any dependency, so the settings form's onchange computes it
    @api.depends("company_id")
    def _compute_maildesk_azure(self):
        azure = (self._maildesk_sidecar_settings().get("azure") or {}) if self else {}
        secret = azure.get("client_secret")
        for settings in self:
            settings.maildesk_azure_tenant = azure.get("tenant") or False
            settings.maildesk_azure_client_id = azure.get("client_id") or False
            settings.maildesk_azure_client_secret = False
            settings.maildesk_azure_secret_set = bool(isinstance(secret, dict) and secret.get("set"))

    def _maildesk_save_connection_params(self):
        """Write this save's sidecar URL and shared secret before the Azure app goes out.

        The web client creates the settings record (running the inverses
        below) before ``execute`` writes the config parameters: without this,
        URL, secret and Azure app could not be saved in one go ("Set the
        MailDesk sidecar URL first"), or the app would go to the old URL.
        ``set_values`` writes the same values again, which changes nothing.
        """
        self.ensure_one()
        icp = self.env["ir.config_parameter"].sudo()
        for name, key in (
            ("maildesk_sidecar_url", "maildesk.sidecar_url"),
            ("maildesk_shared_secret", "maildesk.shared_secret"),
        ):
            value = (self[name] or "").strip() or False
            if value and (icp.get_param(key) or False) != value:
                icp.set_param(key, value)

    def _inverse_maildesk_azure(self):
        for settings in self:
            azure = {}
            if settings.maildesk_azure_tenant:
                azure["tenant"] = settings.maildesk_azure_tenant.strip()
            if settings.maildesk_azure_client_id:
                azure["client_id"] = settings.maildesk_azure_client_id.strip()
            if settings.maildesk_azure_client_secret:
                azure["client_secret"] = settings.maildesk_azure_client_secret.strip()
            if not azure:
                continue
            settings._maildesk_check_admin()
            settings._maildesk_save_connection_params()
            current = settings._maildesk_sidecar_settings().get("azure") or {}
            if (
                "client_secret" not in azure
                and azure.get("tenant") == current.get("tenant")
                and azure.get("client_id") == current.get("client_id")
            ):
                continue
            azure["redirect_uri"] = settings.get_base_url().rstrip("/") + CALLBACK_PATH
            self.env["maildesk.sidecar"]._call("settings.set", azure=azure)

    # Models "Log to record" may put mail on (maildesk.ingest._allowed_models).
    maildesk_allowed_model_ids = fields.Many2many(
        "ir.model",
        string="Models mail may be logged on",
        compute="_compute_maildesk_allowed_models",
        inverse="_inverse_maildesk_allowed_models",
        store=False,
        domain=[("is_mail_thread", "=", True), ("transient", "=", False), ("model", "not like", "maildesk.%")],
        help="Users may log a mail from the inbox only on records of these models; the sidecar cannot put "
        "mail anywhere else. A gateway mailbox's own model is always allowed for that mailbox.",
    )

    # company_id: any dependency, so the settings form's onchange computes it
    @api.depends("company_id")
    def _compute_maildesk_allowed_models(self):
        names = self.env["maildesk.ingest"]._allowed_models()
        found = self.env["ir.model"].sudo().search([("model", "in", sorted(names))])
        for settings in self:
            settings.maildesk_allowed_model_ids = found

    def _inverse_maildesk_allowed_models(self):
        for settings in self:
            models_ = settings.maildesk_allowed_model_ids.sudo()
            for model in models_:
                if (
                    not model.is_mail_thread
                    or model.transient
                    or model.model.startswith("maildesk.")
                    or model.model not in self.env
                ):
                    raise ValidationError(
                        _("MailDesk cannot log mail on %(model)s (%(name)s): it has no chatter.",
                          model=model.name, name=model.model)
                    )
            chosen = set(models_.mapped("model"))
            if chosen == self.env["maildesk.ingest"]._allowed_models():
                continue  # unchanged (unset stays unset: the defaults follow installed apps)
            # "," stands for an empty choice (unset means the defaults).
            self.env["ir.config_parameter"].sudo().set_param(ALLOWED_MODELS_PARAM, ",".join(sorted(chosen)) or ",")

    # The company's own domains: mail among them only is internal, never logged.
    maildesk_internal_domains = fields.Char(
        "Internal domains",
        compute="_compute_maildesk_internal_domains",
        inverse="_inverse_maildesk_internal_domains",
        store=False,
        help="Mail whose every participant is in these domains (or their subdomains) is internal and never "
        "logged. Empty: the domains of the companies', mailboxes' and employees' addresses (public webmail "
        "such as gmail.com left out).",
    )

    # company_id: any dependency, so the settings form's onchange computes it
    @api.depends("company_id")
    def _compute_maildesk_internal_domains(self):
        value = ", ".join(sorted(self.env["maildesk.mailbox"]._internal_domains()))
        for settings in self:
            settings.maildesk_internal_domains = value

    def _inverse_maildesk_internal_domains(self):
        for settings in self:
            domains, bad = routing.parse_domains(settings.maildesk_internal_domains)
            if bad:
                raise ValidationError(
                    _("Internal domains: not a domain name: %s (write example.com, without @ or http://)",
                      ", ".join(bad))
                )
            if set(domains) == self.env["maildesk.mailbox"]._internal_domains():
                continue  # unchanged: unset stays unset (the defaults follow new users and companies)
            self.env["ir.config_parameter"].sudo().set_param(INTERNAL_DOMAINS_PARAM, ", ".join(domains))

    @api.model
    def _maildesk_check_admin(self):
        if not (self.env.is_system() or self.env.user.has_group("maildesk.group_maildesk_admin")):
            raise UserError(_("Only MailDesk administrators can do this."))

    def action_maildesk_test_connection(self):
        self._maildesk_check_admin()
        sidecar = self.env["maildesk.sidecar"]
        version = sidecar._call("system.version") or {}
        health = sidecar._call("system.health") or {}
        mailboxes = health.get("mailboxes") or {}
        message = _(
            "Sidecar %(version)s (%(commit)s)%(simulate)s: %(status)s. Mailboxes connected: %(connected)s, "
            "needing sign-in: %(reauth)s, in error: %(error)s.",
            version=version.get("version") or "?",
            commit=version.get("commit") or "?",
            simulate=_(", simulated Microsoft 365") if version.get("simulate") else "",
            status=health.get("status") or "?",
            connected=mailboxes.get("connected", 0),
            reauth=mailboxes.get("reauth_required", 0),
            error=mailboxes.get("error", 0),
        )
        ok = health.get("status") in ("ok", "healthy", "pass", "up")
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("MailDesk sidecar"),
                "message": message,
                "type": "success" if ok else "warning",
                "sticky": not ok,
            },
        }

    def action_maildesk_admin_consent(self):
        self._maildesk_check_admin()
        params = {}
        tenant = self.maildesk_azure_tenant
        if tenant:
            params["tenant"] = tenant
        result = self.env["maildesk.sidecar"]._call("consent.admin_url", **params) or {}
        if not result.get("url"):
            raise UserError(_("The sidecar gave no consent link: set the Azure app first."))
        return {"type": "ir.actions.act_url", "url": result["url"], "target": "new"}

    def action_maildesk_pair(self):
        """Create the bridge user and its API key, and hand them to the sidecar."""
        self._maildesk_check_admin()
        users = self.env["res.users"].sudo().with_context(active_test=False, no_reset_password=True)
        group = self.env.ref("maildesk.group_maildesk_bridge")
        tech = users.search([("login", "=", BRIDGE_LOGIN)], limit=1)
        if not tech:
            tech = users.create(
                {
                    "name": "MailDesk Bridge",
                    "login": BRIDGE_LOGIN,
                    "email": False,
                    # Only the bridge group: no internal-user rights at all.
                    compat.USER_GROUPS: [(6, 0, [group.id])],
                }
            )
        else:
            tech.write({"active": True, compat.USER_GROUPS: [(6, 0, [group.id])]})
        apikeys = self.env["res.users.apikeys"].sudo()
        apikeys.search([("user_id", "=", tech.id)])._remove()
        # _generate works on env.user; sudo lets a key live without expiry.
        # Scope "rpc": good for /jsonrpc and, on 19.0, JSON-2.
        key = compat.generate_api_key(self.env["res.users.apikeys"].with_user(tech).sudo(), "rpc", "MailDesk sidecar")
        icp = self.env["ir.config_parameter"].sudo()
        odoo_url = (icp.get_param("maildesk.odoo_url") or self.get_base_url()).rstrip("/")
        self.env["maildesk.sidecar"]._call(
            "settings.set",
            odoo={
                "url": odoo_url,
                "db": self.env.cr.dbname,
                "login": BRIDGE_LOGIN,
                "api_key": key,
                # JSON-2 from 19.0 on (bearer API key), /jsonrpc before.
                "protocol": compat.ODOO_PROTOCOL,
            },
        )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("Paired"),
                "message": _("The sidecar now reaches %(url)s, database %(db)s, as %(login)s.",
                             url=odoo_url, db=self.env.cr.dbname, login=BRIDGE_LOGIN),
                "type": "success",
                "sticky": False,
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }
