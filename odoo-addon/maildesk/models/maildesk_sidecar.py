# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import logging

from odoo import _, api, models, tools
from odoo.exceptions import AccessDenied, AccessError, MissingError, UserError, ValidationError

from ..lib.sidecar_client import SidecarClient, SidecarError

_logger = logging.getLogger(__name__)

# The sidecar names the Odoo exception in error.data.name; re-raise that one.
EXCEPTION_CLASSES = {
    "AccessDenied": AccessDenied,
    "AccessError": AccessError,
    "ValidationError": ValidationError,
    "MissingError": MissingError,
    "UserError": UserError,
}


class MaildeskSidecar(models.AbstractModel):
    """The one place the addon talks to the sidecar (tests patch ``_call``)."""

    _name = "maildesk.sidecar"
    _description = "MailDesk sidecar client"

    @api.model
    def _client(self):
        icp = self.env["ir.config_parameter"].sudo()
        # The Odoo server's config file may hold both, keeping the secret out
        # of the database ([options] maildesk_sidecar_url / maildesk_shared_secret).
        url = tools.config.get("maildesk_sidecar_url") or icp.get_param("maildesk.sidecar_url")
        if not url:
            raise UserError(_("Set the MailDesk sidecar URL first (Settings > MailDesk)."))
        try:
            timeout = float(icp.get_param("maildesk.sidecar_timeout") or 15)
        except ValueError:
            timeout = 15.0
        secret = tools.config.get("maildesk_shared_secret") or icp.get_param("maildesk.shared_secret")
        return SidecarClient(url, secret, timeout=timeout)

    @api.model
    def _rpc_context(self):
        user = self.env.user
        # The sidecar lets MailDesk administrators see every mailbox; Odoo's
        # own server-side work (cron, callback, sending) runs as superuser.
        # (never from the context: a browser can set context keys)
        admin = bool(self.env.su or user.has_group("maildesk.group_maildesk_admin"))
        return {
            "uid": self.env.uid,
            "lang": self.env.context.get("lang") or user.lang or "en_US",
            "tz": self.env.context.get("tz") or user.tz or "UTC",
            "maildesk_admin": admin,
        }

    @api.model
    def _call(self, method, **params):
        """Call a sidecar method; errors become the Odoo exception they name."""
        try:
            return self._client().call(method, params, context=self._rpc_context())
        except SidecarError as exc:
            raise self._to_odoo_exception(method, exc) from None

    @api.model
    def _to_odoo_exception(self, method, exc):
        cls = EXCEPTION_CLASSES.get(exc.kind)
        if exc.kind == "NotFound":
            error = UserError(
                _(
                    "The MailDesk sidecar does not know the method %(method)s: "
                    "update the sidecar or the addon so their versions match.",
                    method=method,
                )
            )
        elif cls is AccessDenied:
            error = AccessDenied(exc.message)
        elif cls is not None:
            error = cls(exc.message)
        elif exc.kind == "InternalError":
            _logger.warning("MailDesk sidecar internal error on %s: %s", method, exc.message)
            error = UserError(
                _("The MailDesk sidecar failed on %(method)s: %(message)s", method=method, message=exc.message)
            )
        else:
            error = UserError(exc.message)
        # Callers branch on the sidecar's code (reauth_required, not_found...).
        error.maildesk_code = exc.code
        return error
