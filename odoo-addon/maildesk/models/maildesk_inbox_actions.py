# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The inbox's actions on mail: delete, archive, move to any folder, read,
flag, on one or many messages; a message deleted in Outlook meanwhile; an
attachment saved to a record.

The OWL inbox calls these through the ORM (the browser never talks to the
sidecar). Access: the user must see the mailbox (``_inbox_check``); the
sidecar checks again for the acting user.
"""
import logging

from odoo import _, models
from odoo.exceptions import MissingError, UserError, ValidationError

_logger = logging.getLogger(__name__)

# The folder delete and archive move to (Outlook: delete moves to Deleted Items).
MOVES = {"delete": "deleteditems", "archive": "archive"}
MAX_IDS = 1000  # the sidecar's bound per call (bridge.MaxActionIDs)
DELETED_CODE = "message_deleted"


class MaildeskMailboxInboxActions(models.Model):
    _inherit = "maildesk.mailbox"

    def maildesk_inbox_act(self, message_ids, action, folder=None, inbox_unread=0):
        """Apply ``action`` to messages of this mailbox.

        ``action``: ``delete`` (to Deleted Items, as Outlook does),
        ``archive`` (to the Archive folder), ``move`` (to ``folder``: a
        well-known name or a Graph folder id of this mailbox), ``read``,
        ``unread``, ``flag``, ``unflag``. ``inbox_unread``: how many of the
        messages are inbox mail whose unread state the action changes (moved
        away unread, or marked): the mailbox's badge follows at once, the
        sidecar's next notice brings Graph's count. Answers ``{done,
        unread}`` (unread: the mailbox's count as the badge shows it).
        """
        sid = self._inbox_check()
        if not isinstance(message_ids, (list, tuple)) or not message_ids or not all(
            isinstance(m, str) and m for m in message_ids
        ):
            raise ValidationError(_("Select the messages first."))
        if len(message_ids) > MAX_IDS:
            raise ValidationError(_("Select at most %s messages at once.", MAX_IDS))
        ids = list(dict.fromkeys(message_ids))
        if action in ("read", "unread"):
            res = self.maildesk_inbox_mark_read(ids, read=action == "read", inbox_changed=inbox_unread)
            return {"done": len(ids), "unread": res["unread"]}
        if action in ("flag", "unflag"):
            self._sidecar()._call("message.flag", mailbox_id=sid, message_ids=ids, flagged=action == "flag")
            return {"done": len(ids), "unread": self.unread_count}
        if action not in ("delete", "archive", "move"):
            raise ValidationError(_("Unknown inbox action %s.", action))
        target = MOVES.get(action) or (folder if isinstance(folder, str) else "")
        if not target.strip():
            raise ValidationError(_("Choose the folder to move the messages to."))
        res = self._sidecar()._call("message.move", mailbox_id=sid, message_ids=ids, folder=target.strip()) or {}
        self._inbox_unread_left(target, inbox_unread, len(ids))
        return {"done": int(res.get("moved") or len(ids)), "unread": self.unread_count}

    def _inbox_unread_left(self, target, inbox_unread, count):
        """Unread inbox mail moved elsewhere: the mailbox's badge drops at once."""
        changed = max(0, min(int(inbox_unread or 0), count))
        if changed and target != "inbox":
            unread = max(0, self.unread_count - changed)
            self.sudo().with_context(maildesk_from_sidecar=True).write({"unread_count": unread})

    def maildesk_inbox_folder_tree(self):
        """Every folder of the mailbox in Microsoft 365 (mailFolders and
        their childFolders, through the sidecar's ``folder.list all``), for
        "Move to…": ``[{id, name, well_known, path, depth}]``, parents first.
        A folder is addressed by its well-known name where it has one."""
        sid = self._inbox_check()
        folders = self._sidecar()._call("folder.list", mailbox_id=sid, all=True) or []
        return [
            {
                "id": f.get("well_known") or f.get("id"),
                "name": f.get("name") or f.get("id"),
                "well_known": f.get("well_known") or "",
                "path": f.get("path") or f.get("name") or "",
                "depth": int(f.get("depth") or 0),
            }
            for f in folders
            if f.get("id")
        ]

    def maildesk_inbox_open(self, message_id, show_images=False):
        """The reading pane's message (``maildesk_inbox_message``), or, when
        Microsoft 365 no longer has it (deleted in Outlook meanwhile),
        ``{id, deleted: True, notice}``: the inbox says so and drops the row
        instead of showing an error."""
        try:
            return self.maildesk_inbox_message(message_id, show_images=show_images)
        except MissingError as exc:
            if getattr(exc, "maildesk_code", "") != DELETED_CODE:
                raise
            return {"id": message_id, "deleted": True, "notice": _("This message was deleted in Outlook.")}

    def maildesk_save_attachment(self, message_id, attachment_id, model, res_id):
        """Attach one attachment of a message to a record (the record the
        mail is logged on, or one the user picked). The user needs the right
        to post on that record (as for Log to record) and the attachment is
        created as that user, so Odoo's own attachment rules apply too."""
        self._inbox_check()
        if not isinstance(message_id, str) or not message_id or not isinstance(attachment_id, str) or not attachment_id:
            raise ValidationError(_("Choose an attachment to save."))
        record = self._check_target(model, res_id)
        try:
            data = self._inbox_attachment(message_id, attachment_id)
        except MissingError as exc:
            if getattr(exc, "maildesk_code", "") == DELETED_CODE:
                raise UserError(_("This message was deleted in Outlook: its attachments are gone.")) from None
            raise
        if not data.get("data_base64"):
            raise UserError(_("The attachment is empty."))
        attachment = self.env["ir.attachment"].create(
            {
                "name": data.get("name") or _("attachment"),
                "datas": data["data_base64"],
                "res_model": record._name,
                "res_id": record.id,
            }
        )
        _logger.info("MailDesk: uid %s saved an attachment of %s to %s,%s", self.env.uid, self.email, record._name, record.id)
        return {"id": attachment.id, "name": attachment.name, "record": record.display_name}
