# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""What a user does with a mail's place in Odoo, from the MailDesk inbox.

- where each mail went (the records holding it, or why it was not logged),
  and the records routing offered instead (``maildesk_candidates``);
- move this mailbox's logged copies of a mail onto another record (the old
  placement is removed, not duplicated);
- exclude a conversation or a correspondent, and remove what this mailbox
  already logged of it;
- the chatter says which mailbox a logged mail came from.
"""

from odoo import _, models, tools
from odoo.exceptions import MissingError, ValidationError

from .. import compat
from ..lib import mailparts

# The sidecar's ``delivery`` states (docs/api.md, message.list).
_NOT_LOGGED_PREFIX = "not logged: "


class MaildeskMailboxPlacement(models.Model):
    _inherit = "maildesk.mailbox"

    # ------------------------------------------------------------------
    # Where each mail went
    # ------------------------------------------------------------------

    def maildesk_inbox_messages(self, folder="inbox", cursor=None, query=None, unread_only=False, limit=50):
        result = super().maildesk_inbox_messages(
            folder=folder, cursor=cursor, query=query, unread_only=unread_only, limit=limit
        )
        self._add_placement(result.get("messages") or [])
        return result

    def maildesk_inbox_message(self, message_id, show_images=False):
        data = super().maildesk_inbox_message(message_id, show_images=show_images)
        data.setdefault("id", message_id)
        self._add_placement([data])
        return data

    def _own_copies(self, graph_ids):
        """This mailbox's logged copies of these mails (sudo: the mailbox
        field is for MailDesk administrators; only ids and places leave)."""
        graph_ids = [g for g in graph_ids if g]
        if not graph_ids:
            return self.env["mail.message"].sudo()
        return self.env["mail.message"].sudo().search(
            [("maildesk_mailbox_id", "=", self.id), ("maildesk_graph_id", "in", graph_ids)], order="id"
        )

    def _correspondent(self, message):
        """The other party of a mail: its sender, or for mail this mailbox
        sent, its first recipient."""
        own = tools.email_normalize(self.email or "")
        sender = mailparts.normalize_email(message.get("from") or {})
        if sender and sender != own:
            return message.get("from") or {}
        for entry in (message.get("to") or []) + (message.get("cc") or []):
            address = mailparts.normalize_email(entry) if isinstance(entry, dict) else ""
            if address and address != own:
                return entry
        return {}

    def _readable_record(self, model, res_id):
        if not model or model not in self.env or not isinstance(self.env[model], self.pool["mail.thread"]):
            return None
        try:
            record = self.env[model].browse(int(res_id)).exists()
        except (TypeError, ValueError):
            return None
        if not record or not compat.has_access(record, "read"):
            return None
        return record

    def _add_placement(self, messages):
        """Add ``placement`` (state, label, reason), ``candidates`` and
        ``correspondent`` to inbox messages (one search for the page)."""
        self.ensure_one()
        copies = self._own_copies([m.get("id") for m in messages])
        by_graph = {}
        for copy in copies:
            by_graph.setdefault(copy.maildesk_graph_id, []).append(copy)
        exclusions = self.env["maildesk.exclusion"].sudo().search_read(
            [("mailbox_id", "=", self.id)], ["kind", "value"]
        )
        excluded_conversations = {e["value"] for e in exclusions if e["kind"] == "conversation"}
        excluded_addresses = {e["value"] for e in exclusions if e["kind"] == "address"}
        allowed = self.env["maildesk.ingest"]._allowed_models(self.sudo())
        for message in messages:
            own = by_graph.get(message.get("id")) or []
            linked = message.get("linked") or []
            correspondent = self._correspondent(message)
            address = mailparts.normalize_email(correspondent) if correspondent else ""
            message["correspondent"] = {"name": correspondent.get("name") or "", "email": address} if address else False
            placed = {(link["model"], link["res_id"]) for link in linked}
            placed |= {(c.model, c.res_id) for c in own}
            candidates, seen = [], set()
            for copy in own:
                for part in (copy.maildesk_candidates or "").split(";"):
                    model, _sep, res_id = part.strip().partition(",")
                    if not res_id.strip().isdigit() or model not in allowed:
                        continue
                    key = (model, int(res_id))
                    if key in placed or key in seen:
                        continue
                    seen.add(key)
                    record = self._readable_record(*key)
                    if record:
                        candidates.append({"model": model, "res_id": record.id, "name": record.display_name})
            message["candidates"] = candidates
            message["placement"] = self._placement(
                message, linked, own, address, excluded_conversations, excluded_addresses
            )

    def _placement(self, message, linked, own, address, excluded_conversations, excluded_addresses):
        delivery = message.get("delivery") or ""
        reason = (message.get("delivery_error") or "").strip()
        if reason.lower().startswith(_NOT_LOGGED_PREFIX):
            reason = reason[len(_NOT_LOGGED_PREFIX):]
        if linked:
            return {"state": "logged", "label": _("Logged on"), "reason": ""}
        if own:
            return {"state": "logged", "label": _("Logged on records you cannot open"), "reason": ""}
        # Excluded here since it was logged (its logged copies were removed):
        # the sidecar still says "posted", the exclusion says why it is not.
        if message.get("conversation_id") and message["conversation_id"] in excluded_conversations:
            reason = "excluded conversation"
            delivery = "excluded"
        elif address and address in excluded_addresses:
            reason = "excluded address %s" % address
            delivery = "excluded"
        if delivery == "excluded":
            return {"state": "excluded", "label": _("Not logged: %s", reason or _("excluded")), "reason": reason}
        if delivery == "unrouted":
            return {"state": "unrouted", "label": _("Unrouted"), "reason": ""}
        if delivery == "failed":
            return {"state": "failed", "label": _("Odoo refused it: %s", reason or "?"), "reason": reason}
        if delivery == "queued":
            return {"state": "queued", "label": _("Waiting to be logged"), "reason": ""}
        if delivery == "sent_by_maildesk":
            return {"state": "none", "label": _("Sent from Odoo"), "reason": ""}
        return {"state": "none", "label": _("Not in Odoo"), "reason": ""}

    # ------------------------------------------------------------------
    # Move to another record
    # ------------------------------------------------------------------

    def maildesk_move_to_record(self, message_id, model, res_id):
        """Move this mailbox's logged copies of a mail (by Graph id) and their
        attachments onto one record. Several copies (one per contact) become
        one message there; a mail not logged yet is logged on it instead."""
        self._inbox_check()
        if not isinstance(message_id, str) or not message_id.strip():
            raise ValidationError(_("Choose a message to move."))
        message_id = message_id.strip()
        record = self._check_target(model, res_id)
        copies = self._own_copies([message_id])
        if not copies:
            self.maildesk_log_to_record(message_id, model, record.id)
            return {"moved": False, "logged": True, "model": model, "res_id": record.id,
                    "name": record.display_name, "removed": 0}
        keep = copies.filtered(lambda m: m.model == model and m.res_id == record.id)[:1] or copies[:1]
        others = copies - keep
        self._unlink_with_attachments(others)
        keep.attachment_ids.write({"res_model": model, "res_id": record.id})
        keep.write({
            "model": model,
            "res_id": record.id,
            "record_name": record.display_name,
            # the user chose: the records routing offered are settled
            "maildesk_candidates": False,
        })
        return {"moved": True, "logged": False, "model": model, "res_id": record.id,
                "name": record.display_name, "removed": len(others), "message": keep.id}

    def _unlink_with_attachments(self, messages):
        """Unlink logged mail and the attachments only it holds."""
        messages = messages.sudo()
        if not messages:
            return 0
        attachments = messages.attachment_ids
        if attachments:
            shared = self.env["mail.message"].sudo().search(
                [("attachment_ids", "in", attachments.ids), ("id", "not in", messages.ids)]
            )
            attachments -= shared.attachment_ids
        count = len(messages)
        messages.unlink()
        attachments.unlink()
        return count

    # ------------------------------------------------------------------
    # Exclude a conversation or a correspondent
    # ------------------------------------------------------------------

    def _logged_for_exclusion(self, kind, value):
        """What this mailbox already logged of an excluded conversation or
        correspondent."""
        self.ensure_one()
        Message = self.env["mail.message"].sudo()
        base = [("maildesk_mailbox_id", "=", self.id), ("maildesk_graph_id", "!=", False)]
        if kind == "conversation":
            return Message.search(base + [("maildesk_conversation_id", "=", value)])
        address = tools.email_normalize(value or "")
        if not address:
            return Message
        found = Message.search(
            base
            + [
                "|",
                "|",
                ("email_from", "ilike", address),
                ("author_id.email_normalized", "=", address),
                ("partner_ids.email_normalized", "=", address),
            ]
        )
        return found.filtered(
            lambda m: address == tools.email_normalize(m.email_from or "")
            or address in m.author_id.mapped("email_normalized")
            or address in m.partner_ids.mapped("email_normalized")
        )

    def _exclusion_vals(self, kind, value, label):
        if kind not in ("conversation", "address"):
            raise ValidationError(_("Exclude a conversation or an address."))
        value = (value or "").strip() if isinstance(value, str) else ""
        if kind == "address":
            address = tools.email_normalize(value)
            if not address:
                raise ValidationError(_("%s is not a valid e-mail address.", value or _("(empty)")))
            if address == tools.email_normalize(self.email or ""):
                raise ValidationError(_("%s is this mailbox's own address: exclude the correspondent instead.",
                                        address))
            value = address
        elif not value:
            raise ValidationError(_("This message has no Outlook conversation to exclude."))
        return {"mailbox_id": self.id, "kind": kind, "value": value,
                "label": (label or "").strip()[:200] or False}

    def maildesk_exclude(self, kind, value, label=None):
        """Never log this conversation / mail with this address again (for
        this mailbox); created as the user. Returns the exclusion and how many
        mails this mailbox already logged of it."""
        self.ensure_one()
        compat.check_access(self, "read")
        vals = self._exclusion_vals(kind, value, label)
        Exclusion = self.env["maildesk.exclusion"]
        exclusion = Exclusion.search(
            [("mailbox_id", "=", self.id), ("kind", "=", vals["kind"]), ("value", "=", vals["value"])], limit=1
        )
        if not exclusion:
            exclusion = Exclusion.create(vals)
        return {
            "id": exclusion.id,
            "kind": exclusion.kind,
            "value": exclusion.value,
            "label": exclusion.label or exclusion.value,
            "logged": len(self._logged_for_exclusion(exclusion.kind, exclusion.value)),
        }

    def maildesk_remove_excluded_logged(self, exclusion_id):
        """Remove from the records the mail this mailbox logged of an
        exclusion (and its attachments). Returns how many were removed."""
        self.ensure_one()
        compat.check_access(self, "read")
        exclusion = self.env["maildesk.exclusion"].browse(int(exclusion_id)).exists()
        if not exclusion or exclusion.mailbox_id != self:
            raise MissingError(_("That exclusion no longer exists."))
        compat.check_access(exclusion, "read")
        return self._unlink_with_attachments(self._logged_for_exclusion(exclusion.kind, exclusion.value))

    def maildesk_exclusions(self):
        """The mailbox's exclusions, for its "Excluded" list."""
        self.ensure_one()
        compat.check_access(self, "read")
        kinds = dict(self.env["maildesk.exclusion"]._fields["kind"]._description_selection(self.env))
        return [
            {
                "id": e.id,
                "kind": e.kind,
                "kind_label": kinds.get(e.kind, e.kind),
                "value": e.value,
                "label": e.label or e.value,
                "user": e.user_id.name or "",
                "date": e.create_date and e.create_date.isoformat() or False,
            }
            for e in self.env["maildesk.exclusion"].search([("mailbox_id", "=", self.id)])
        ]

    def maildesk_remove_exclusion(self, exclusion_id):
        """Undo an exclusion: later mail of it is logged again."""
        self.ensure_one()
        compat.check_access(self, "read")
        exclusion = self.env["maildesk.exclusion"].browse(int(exclusion_id)).exists()
        if not exclusion or exclusion.mailbox_id != self:
            raise MissingError(_("That exclusion no longer exists."))
        exclusion.unlink()
        return True


class MailMessagePlacement(models.Model):
    _inherit = "mail.message"

    def _to_store(self, store, /, *args, **kwargs):
        """Messages MailDesk logged say which mailbox they came from. The
        mailbox field is for MailDesk administrators: it is read as sudo and
        only the address leaves. (19.0 passes the fields as a second
        positional argument.)"""
        super()._to_store(store, *args, **kwargs)
        for message in self.sudo().filtered("maildesk_mailbox_id"):
            mailbox = message.maildesk_mailbox_id.with_context(active_test=False)
            compat.store_add_values(store, self.browse(message.id), {"maildesk_via": mailbox.email})

    if compat.SERIES < 18:

        def _message_format(self, fnames, *args, **kwargs):
            """17.0 sends messages to the web client as ``_message_format``
            dicts (no store): the same ``maildesk_via``."""
            vals_list = super()._message_format(fnames, *args, **kwargs)
            via = {
                message.id: message.maildesk_mailbox_id.with_context(active_test=False).email
                for message in self.sudo().filtered("maildesk_mailbox_id")
            }
            for vals in vals_list:
                if vals.get("id") in via:
                    vals["maildesk_via"] = via[vals["id"]]
            return vals_list

