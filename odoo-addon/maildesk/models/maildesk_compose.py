# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The inbox's composer and search: new mail, reply, reply all, forward
(with the original's attachments), a signature per mailbox, drafts kept in
the mailbox's Drafts folder through Graph, and search through Graph.

Drafts live in Microsoft 365 only (``message.save_draft``), so Outlook
sees them and a draft made in Outlook opens here. A draft carries Odoo's
Message-Id; the sent mail's Sent Items copy reaches Odoo through sync and is
logged by the mailbox's rules like mail sent from Outlook (Odoo's Message-Id
check keeps it to one posting).
"""
import hashlib
import json
import re

from markupsafe import Markup, escape

from odoo import _, api, fields, models, tools
from odoo.exceptions import AccessError, UserError, ValidationError

from .. import compat
from ..lib import mailparts

ODOO_MESSAGE_ID = re.compile(r"-openerp-")
MAX_NEW_ATTACHMENT_BYTES = 25 * 1024 * 1024
# An image in the composer's body as a data: URI (the inbox shows inline
# images that way: the original's cid: parts of a forward or reply, a
# resumed draft's): saved as an inline part the body points at with cid:.
DATA_IMAGE = re.compile(
    r"""(\bsrc\s*=\s*["'])data:(image/(?:png|jpe?g|gif|webp|bmp));base64,([A-Za-z0-9+/=\s]+)(["'])""", re.I
)


def inline_data_images(body):
    """``body`` with each data: image replaced by ``cid:`` of an inline
    attachment, and those attachments (one per distinct image)."""
    parts = {}

    def to_cid(match):
        ctype, data = match.group(2).lower(), re.sub(r"\s+", "", match.group(3))
        key = (ctype, data)
        if key not in parts:
            n = len(parts) + 1
            digest = hashlib.sha1(data.encode()).hexdigest()[:16]
            parts[key] = {
                "name": "image%d.%s" % (n, ctype.split("/")[1].replace("jpeg", "jpg")),
                "content_type": ctype,
                "data_base64": data,
                "content_id": "maildesk-inline-%d-%s@odoo" % (n, digest),
                "is_inline": True,
            }
        return "%scid:%s%s" % (match.group(1), parts[key]["content_id"], match.group(4))

    return DATA_IMAGE.sub(to_cid, body), list(parts.values())


def split_addresses(value):
    """``"Anna <a@x.com>, b@y.com"`` (or a list) → normalised, checked list."""
    if not value:
        return []
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    out = []
    for part in tools.mail.email_split_and_format(value):
        if not tools.email_normalize(part):
            raise ValidationError(_("%s is not a valid e-mail address.", part))
        out.append(part)
    if not out and value.strip(" ,;"):
        raise ValidationError(_("%s is not a valid e-mail address.", value.strip()))
    return out


class MaildeskMailboxCompose(models.Model):
    _inherit = "maildesk.mailbox"

    signature = fields.Html(
        sanitize=True,
        sanitize_attributes=True,
        sanitize_style=True,
        strip_classes=True,
        help="Added to new mail, replies and forwards written in the MailDesk inbox. "
        "Set by the mailbox's owner (in the inbox) or a MailDesk administrator.",
    )

    # ------------------------------------------------------------------
    # Who may send: the one rule the outgoing mail server uses too
    # ------------------------------------------------------------------

    def _send_refusal(self, user):
        """Why ``user`` may not send as this mailbox, or None: the owner and
        the assigned users may, anyone else only with "Anyone may send"."""
        self.ensure_one()
        mailbox = self.sudo().with_context(active_test=False)
        if user and (mailbox.anyone_may_send or user == mailbox.owner_id or user in mailbox.user_ids):
            return None
        return _(
            "%(user)s may not send e-mail as %(email)s through MailDesk: only the mailbox's owner and its "
            "assigned users may. Ask a MailDesk administrator to add %(user)s to the users of mailbox "
            "%(email)s, or to tick \"Anyone may send from this address\" on it.",
            user=user.name if user else _("An unknown user"),
            email=mailbox.email,
        )

    def _compose_check(self):
        """The mailbox the current user writes from: visible, connected to
        the sidecar, and one the user may send as (AccessError otherwise)."""
        sid = self._inbox_check()
        refusal = self._send_refusal(self.env.user)
        if refusal:
            raise AccessError(refusal)
        return sid

    # ------------------------------------------------------------------
    # Signature
    # ------------------------------------------------------------------

    def _may_set_signature(self, user):
        """The mailbox's owner or a MailDesk administrator sets its signature
        (not its other users: a shared mailbox's signature is its owner's)."""
        self.ensure_one()
        return user == self.sudo().owner_id or user.has_group("maildesk.group_maildesk_admin")

    @api.model
    def maildesk_inbox_mailboxes(self):
        """The inbox's mailboxes; ``can_edit_signature`` shows the Signature
        entry only to those who may set it."""
        rows = super().maildesk_inbox_mailboxes()
        mailboxes = self.browse([r["id"] for r in rows])
        for row, mailbox in zip(rows, mailboxes):
            row["can_edit_signature"] = mailbox._may_set_signature(self.env.user)
        return rows

    def maildesk_set_signature(self, signature):
        """Set the signature: the mailbox's owner or a MailDesk administrator."""
        self.ensure_one()
        compat.check_access(self, "read")
        if not self._may_set_signature(self.env.user):
            raise AccessError(
                _("Only the owner of %(email)s or a MailDesk administrator may change its signature.", email=self.email)
            )
        self.sudo().write({"signature": signature or False})
        return self.sudo().signature or ""

    def _signature_block(self):
        sig = self.sudo().signature
        if not sig or tools.is_html_empty(sig):
            return Markup("")
        return Markup('<div class="maildesk_signature"><br/>-- <br/>%s</div>') % Markup(sig)

    # ------------------------------------------------------------------
    # Composer
    # ------------------------------------------------------------------

    @api.model
    def maildesk_compose_senders(self):
        """The mailboxes the current user may write from, with their signature."""
        out = []
        for mailbox in self.search([("sidecar_id", "!=", False)]):
            if mailbox._send_refusal(self.env.user):
                continue
            out.append({
                "id": mailbox.id,
                "email": mailbox.email,
                "signature": mailbox.sudo().signature or "",
                "is_owner": mailbox.sudo().owner_id == self.env.user,
            })
        return out

    def _new_message_id(self):
        return tools.mail.generate_tracking_message_id("maildesk-%s" % self.id)

    def maildesk_compose_prepare(self, mode="new", message_id=None):
        """The composer's starting values: for ``new``, an empty mail with the
        signature; for ``reply``, ``reply_all`` and ``forward`` of
        ``message_id``, the recipients, subject, threading headers, the
        quoted original (sanitised, remote images still blocked) and, for a
        forward, the original's attachments to copy."""
        self._compose_check()
        if mode not in ("new", "reply", "reply_all", "forward"):
            raise ValidationError(_("Unknown way to write a mail: %s.", mode))
        values = {
            "mailbox_id": self.id,
            "mode": mode,
            "to": "",
            "cc": "",
            "bcc": "",
            "subject": "",
            "in_reply_to": "",
            "references": "",
            "message_id": self._new_message_id(),
            "draft_id": False,
            "attachments": [],
        }
        if mode == "new":
            values["body_html"] = str(Markup("<p><br/></p>") + self._signature_block())
            return values
        if not isinstance(message_id, str) or not message_id.strip():
            raise ValidationError(_("Choose the message to answer or forward."))
        data = self.maildesk_inbox_message(message_id)
        own = tools.email_normalize(self.email)
        if mode in ("reply", "reply_all"):
            first = data.get("reply_to") or [data.get("from") or {}]
            to = [mailparts.format_address(a) for a in first if mailparts.normalize_email(a) not in ("", own)]
            cc = []
            if mode == "reply_all":
                seen = {mailparts.normalize_email(a) for a in first} | {own}
                for entry in (data.get("to") or []) + (data.get("cc") or []):
                    address = mailparts.normalize_email(entry)
                    if address and address not in seen:
                        seen.add(address)
                        cc.append(mailparts.format_address(entry))
            values["to"], values["cc"] = ", ".join(to), ", ".join(cc)
            original = (data.get("internet_message_id") or "").strip()
            refs = (data.get("headers") or {}).get("references", "").split()
            if original:
                values["in_reply_to"] = original
                if original not in refs:
                    refs.append(original)
            values["references"] = " ".join(refs[-20:])
        else:
            values["attachments"] = [
                {"message_id": message_id, "attachment_id": att["id"], "name": att.get("name"), "size": att.get("size")}
                for att in data.get("attachments") or [] if not att.get("is_inline")
            ]
        subject = data.get("subject") or ""
        prefix = "Fwd:" if mode == "forward" else "Re:"
        if not subject.lower().startswith(prefix.lower()):
            subject = "%s %s" % (prefix, subject)
        values["subject"] = subject
        header = _(
            "On %(date)s, %(sender)s wrote:",
            date=data.get("received_at") or "",
            sender=mailparts.format_address(data.get("from") or {}),
        )
        quoted = Markup('<blockquote class="maildesk_quote" style="border-left:2px solid #ccc;padding-left:8px;margin-left:0">%s</blockquote>') % Markup(data.get("body_html") or "")
        values["body_html"] = str(
            Markup("<p><br/></p>") + self._signature_block() + Markup("<p>%s</p>") % escape(header) + quoted
        )
        return values

    def maildesk_draft_open(self, message_id):
        """A draft of this mailbox (saved from Odoo or from Outlook) in the
        composer's terms."""
        self._compose_check()
        data = self.maildesk_inbox_message(message_id)
        headers = data.get("headers") or {}
        own_id = (data.get("internet_message_id") or headers.get("message-id") or "").strip()
        return {
            "mailbox_id": self.id,
            "mode": "draft",
            "to": ", ".join(mailparts.format_address(a) for a in data.get("to") or []),
            "cc": ", ".join(mailparts.format_address(a) for a in data.get("cc") or []),
            "bcc": ", ".join(mailparts.format_address(a) for a in data.get("bcc") or []),
            "subject": data.get("subject") or "",
            "in_reply_to": headers.get("in-reply-to", ""),
            "references": headers.get("references", ""),
            # A draft made in Outlook has Exchange's Message-Id: saved from
            # here it gets Odoo's.
            "message_id": own_id if ODOO_MESSAGE_ID.search(own_id) else self._new_message_id(),
            "draft_id": message_id,
            "body_html": data.get("body_html") or "",
            "attachments": [
                {"message_id": message_id, "attachment_id": att["id"], "name": att.get("name"), "size": att.get("size")}
                for att in data.get("attachments") or [] if not att.get("is_inline")
            ],
        }

    def _draft_params(self, values):
        if not isinstance(values, dict):
            raise ValidationError(_("The composer sent no message."))
        params = {
            "to": split_addresses(values.get("to")),
            "cc": split_addresses(values.get("cc")),
            "bcc": split_addresses(values.get("bcc")),
            "subject": (values.get("subject") or "").strip(),
            # The sidecar sanitises too; Odoo's sanitiser first, as for every
            # HTML field (no script, no event handlers).
            "body_html": str(tools.html_sanitize(values.get("body_html") or "", sanitize_style=True)),
        }
        for key in ("in_reply_to", "references"):
            value = " ".join((values.get(key) or "").split())
            if value:
                params[key] = value
        message_id = (values.get("message_id") or "").strip() or self._new_message_id()
        params["message_id"] = message_id
        if values.get("draft_id"):
            params["draft_id"] = values["draft_id"]
        copies = []
        for ref in values.get("attachments") or []:
            if isinstance(ref, dict) and ref.get("message_id") and ref.get("attachment_id"):
                copies.append({"message_id": ref["message_id"], "attachment_id": ref["attachment_id"]})
        if copies:
            params["copy_attachments"] = copies
        uploads = []
        for new in values.get("new_attachments") or []:
            data = (new.get("data_base64") or "") if isinstance(new, dict) else ""
            if not data or not new.get("name"):
                continue
            if len(data) * 3 // 4 > MAX_NEW_ATTACHMENT_BYTES:
                raise UserError(_("%s is too large to attach (at most 25 MB).", new["name"]))
            uploads.append({
                "name": new["name"],
                "content_type": new.get("content_type") or "application/octet-stream",
                "data_base64": data,
            })
        params["body_html"], inline = inline_data_images(params["body_html"])
        for part in inline:
            if len(part["data_base64"]) * 3 // 4 > MAX_NEW_ATTACHMENT_BYTES:
                raise UserError(_("An image in the mail is too large (at most 25 MB)."))
        uploads.extend(inline)
        if uploads:
            params["attachments"] = uploads
        params["user_login"] = self.env.user.login or ""
        params["user_name"] = self.env.user.name or ""
        return params

    def maildesk_draft_save(self, values):
        """Save the composer's mail as a draft in the mailbox's Drafts folder
        (replacing ``values['draft_id']`` when resumed). Answers the new
        draft id, its Message-Id and its attachments."""
        sid = self._compose_check()
        params = self._draft_params(values)
        result = self._sidecar()._call("message.save_draft", mailbox_id=sid, **params) or {}
        return {
            "draft_id": result.get("draft_id"),
            "message_id": result.get("internet_message_id") or params["message_id"],
            "saved_at": result.get("saved_at"),
            "attachments": [
                {"message_id": result.get("draft_id"), "attachment_id": att["id"], "name": att.get("name"), "size": att.get("size")}
                for att in result.get("attachments") or [] if not att.get("is_inline")
            ],
        }

    def maildesk_draft_send(self, values):
        """Save the composer's mail as a draft, then send that draft through
        Microsoft 365."""
        sid = self._compose_check()
        if not split_addresses(values.get("to")) + split_addresses(values.get("cc")) + split_addresses(values.get("bcc")):
            raise ValidationError(_("Add at least one recipient."))
        saved = self.maildesk_draft_save(values)
        result = self._sidecar()._call(
            "message.send_draft",
            mailbox_id=sid,
            draft_id=saved["draft_id"],
            user_login=self.env.user.login or "",
            user_name=self.env.user.name or "",
        ) or {}
        return {"internet_message_id": result.get("internet_message_id") or saved["message_id"], "draft_id": saved["draft_id"]}

    # ------------------------------------------------------------------
    # Search through Microsoft 365
    # ------------------------------------------------------------------

    @api.model
    def maildesk_search(self, query="", mailbox_ids=None, cursor=None, folder=None, limit=25):
        """Microsoft 365's own search (``message.search``) over every mailbox
        the user may see (or ``mailbox_ids``), beyond the synced window.
        With no ``query`` it lists ``folder`` as Microsoft 365 holds it
        (the Drafts folder). ``cursor`` is the previous answer's."""
        query = (query or "").strip()
        if not query and not folder:
            raise ValidationError(_("Type what to search for."))
        limit = max(1, min(int(limit or 25), 100))
        mailboxes = self.search([("sidecar_id", "!=", False)])
        if mailbox_ids:
            mailboxes = mailboxes.filtered(lambda m: m.id in set(mailbox_ids))
        state = {}
        if cursor:
            try:
                state = {int(k): v for k, v in json.loads(cursor).items()}
            except (ValueError, TypeError, AttributeError):
                raise ValidationError(_("The search cursor is not valid; search again.")) from None
            mailboxes = mailboxes.filtered(lambda m: m.id in state)
        found, errors, nxt = [], [], {}
        for mailbox in mailboxes:
            params = {"mailbox_id": mailbox.sidecar_id, "limit": limit}
            if query:
                params["query"] = query
            if folder:
                params["folder"] = folder
            if state.get(mailbox.id):
                params["cursor"] = state[mailbox.id]
            try:
                result = mailbox._sidecar()._call("message.search", **params) or {}
            except (UserError, ValidationError) as exc:
                errors.append({"mailbox_id": mailbox.id, "email": mailbox.email, "error": str(exc)})
                continue
            for message in result.get("messages") or []:
                message["mailbox_id"] = mailbox.id
                message["mailbox_email"] = mailbox.email
                message["source"] = "graph"
                found.append(message)
            if result.get("next_cursor"):
                nxt[mailbox.id] = result["next_cursor"]
        found.sort(key=lambda m: str(mailparts.parse_datetime(m.get("received_at")) or ""), reverse=True)
        linked = self.browse()._linked_records([m.get("internet_message_id") for m in found])
        for message in found:
            message["linked"] = linked.get(message.get("internet_message_id"), [])
        return {
            "messages": found,
            "next_cursor": json.dumps({str(k): v for k, v in nxt.items()}) if nxt else False,
            "errors": errors,
        }
