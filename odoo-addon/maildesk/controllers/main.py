# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import base64
import logging

from werkzeug.exceptions import NotFound

from odoo import _, http
from odoo.exceptions import AccessError, MissingError, UserError
from odoo.http import content_disposition, request

from .. import compat

_logger = logging.getLogger(__name__)


class MaildeskController(http.Controller):
    @http.route("/maildesk/oauth/callback", type="http", auth="public", methods=["GET"], csrf=False, sitemap=False)
    def oauth_callback(self, code=None, state=None, error=None, error_description=None, **kwargs):
        """Microsoft redirects the mailbox owner here; the single-use state is the proof."""
        values = {"ok": False, "email": "", "message": "", "hint": ""}
        if kwargs.get("admin_consent"):
            # The return from "Grant admin consent": Microsoft issues no code,
            # there is no mailbox to connect; say what happened.
            if error:
                values["message"] = _(
                    "Admin consent was not granted: %s", (error_description or error).splitlines()[0]
                )
                values["hint"] = _("Sign in as a Global Administrator or Cloud Application Administrator and try again.")
                return request.render("maildesk.oauth_result", values, status=400)
            values["ok"] = True
            values["message"] = _("Admin consent granted. Mailbox owners can now connect their mailboxes.")
            values["hint"] = _("You can close this page.")
            return request.render("maildesk.oauth_result", values)
        if not state:
            values["message"] = _("This link is incomplete: it carries no sign-in state.")
            values["hint"] = _("Start again with the Connect button on the mailbox in Odoo.")
            return request.render("maildesk.oauth_result", values, status=400)
        params = {"state": state}
        if error:
            params.update({"error": error, "error_description": error_description or ""})
        else:
            params["code"] = code or ""
        sidecar = request.env["maildesk.sidecar"].sudo()
        try:
            result = sidecar._call("oauth.complete", **params) or {}
        except (UserError, AccessError, MissingError) as exc:
            values["message"] = str(exc)
            code_ = getattr(exc, "maildesk_code", "")
            if code_ == "consent_missing":
                values["hint"] = _("An administrator must first grant admin consent (Settings > MailDesk).")
            else:
                values["hint"] = _("Press Connect on the mailbox in Odoo again to get a new sign-in link.")
            return request.render("maildesk.oauth_result", values, status=400)
        mailbox = request.env["maildesk.mailbox"].sudo()
        if result.get("id"):
            mailbox = mailbox.search([("sidecar_id", "=", result["id"])], limit=1)
        if mailbox:
            mailbox._apply_sidecar(result)
            # Signed in again: the reminder has done its job.
            mailbox.activity_ids.filtered(
                lambda a: a.activity_type_id == request.env.ref("maildesk.mail_activity_type_reauth")
            ).unlink()
        values.update({"ok": True, "email": result.get("email") or mailbox.email or ""})
        values["message"] = _("The mailbox %s is connected. Its mail will appear in Odoo shortly.", values["email"])
        values["hint"] = _("You can close this page.")
        return request.render("maildesk.oauth_result", values)

    @http.route(
        "/maildesk/attachment/<int:mailbox_id>/<string:message_id>/<string:attachment_id>",
        type="http",
        auth="user",
        methods=["GET"],
    )
    def attachment(self, mailbox_id, message_id, attachment_id, **kwargs):
        mailbox = request.env["maildesk.mailbox"].browse(mailbox_id).exists()
        # Not the user's mailbox: answer as if it did not exist.
        if not mailbox or not compat.has_access(mailbox, "read"):
            raise NotFound()
        try:
            data = mailbox._inbox_attachment(message_id, attachment_id)
        except MissingError as exc:
            # Deleted in Outlook meanwhile (or no such attachment): a 404 that says so.
            raise NotFound(str(exc)) from None
        content = base64.b64decode(data.get("data_base64") or "")
        name = data.get("name") or "attachment"
        headers = [
            ("Content-Type", data.get("content_type") or "application/octet-stream"),
            ("Content-Length", str(len(content))),
            ("Content-Disposition", content_disposition(name)),
            ("X-Content-Type-Options", "nosniff"),
            # Mail attachments are untrusted: never a page of Odoo's origin
            # (the file viewer loads images through <img> and PDFs through
            # pdf.js, neither needs more).
            ("Content-Security-Policy", "default-src 'none'; sandbox"),
        ]
        return request.make_response(content, headers)
