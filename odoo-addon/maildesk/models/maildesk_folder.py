# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The mailbox's real folders (from the sidecar's ``folder.list`` with
``all``), so the folders to sync are picked instead of typed, and the
mailbox form's "Sync again from scratch" and "Load folders" buttons."""
import logging

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError

from .. import compat

_logger = logging.getLogger(__name__)

# The sidecar syncs these only when given by well-known name.
WELL_KNOWN = ("inbox", "sentitems", "drafts", "deleteditems", "archive", "junkemail")
SYNCABLE_STATES = ("connected", "syncing", "backfilling", "error")


class MaildeskFolder(models.Model):
    _name = "maildesk.folder"
    _description = "MailDesk mailbox folder"
    _order = "mailbox_id, sequence, id"
    _rec_name = "path"

    mailbox_id = fields.Many2one("maildesk.mailbox", required=True, ondelete="cascade", index=True)
    graph_id = fields.Char("Folder id", required=True, help="The folder's id in Microsoft 365.")
    name = fields.Char(required=True)
    path = fields.Char(required=True, help="Where the folder is in the mailbox, e.g. Inbox/Clients.")
    well_known = fields.Char(help="Microsoft's name for a standard folder (inbox, sentitems...).")
    parent_graph_id = fields.Char("Parent folder id")
    depth = fields.Integer()
    sequence = fields.Integer()
    unread = fields.Integer()
    total = fields.Integer()
    active = fields.Boolean(default=True, help="Cleared when the folder is no longer in the mailbox.")

    # 19.0 declares SQL constraints as model.Constraint attributes.
    if compat.SERIES >= 19:
        _mailbox_graph_id_uniq = models.Constraint("unique(mailbox_id, graph_id)", "A folder is listed once per mailbox.")
    else:
        _sql_constraints = [("mailbox_graph_id_uniq", "unique(mailbox_id, graph_id)", "A folder is listed once per mailbox.")]

    def _sidecar_key(self):
        """How the sidecar is told to sync this folder: well-known name, else id."""
        self.ensure_one()
        return self.well_known if self.well_known in WELL_KNOWN else self.graph_id


class MaildeskMailbox(models.Model):
    _inherit = "maildesk.mailbox"

    folder_ids = fields.One2many("maildesk.folder", "mailbox_id", string="Mailbox folders", readonly=True)
    sync_folder_ids = fields.Many2many(
        "maildesk.folder",
        "maildesk_mailbox_sync_folder_rel",
        "mailbox_id",
        "folder_id",
        string="Folders to sync",
        domain="[('mailbox_id', '=', id)]",
        help="Chosen from the mailbox's folders in Microsoft 365 (press Load folders to list them again).",
    )

    @api.constrains("sync_folder_ids")
    def _check_sync_folders(self):
        for mailbox in self:
            if mailbox.sync_folder_ids.filtered(lambda f: f.mailbox_id != mailbox):
                raise ValidationError(_("Choose folders of mailbox %s only.", mailbox.email))

    def write(self, vals):
        res = super().write(vals)
        if "sync_folder_ids" in vals and "folders" not in vals and not self.env.context.get("maildesk_folders_from_char"):
            # The picker decides the folders; the Char stays their sidecar
            # keys (what mailbox.update sends, and what older data holds).
            for mailbox in self.filtered("sync_folder_ids"):
                keys = ",".join(mailbox.sync_folder_ids.mapped(lambda f: f._sidecar_key()))
                if keys != (mailbox.folders or ""):
                    mailbox.folders = keys
        return res

    def _maildesk_notify(self, message, kind="success"):
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {"message": message, "type": kind, "sticky": False,
                       "next": {"type": "ir.actions.client", "tag": "soft_reload"}},
        }

    def action_resync(self):
        """Sync again from scratch: the sidecar drops every folder's position
        and backfills the configured window again; nothing lands twice."""
        self.ensure_one()
        compat.check_access(self, "read")
        if self.state not in SYNCABLE_STATES:
            raise UserError(_("Mailbox %s is not connected: press Connect first.", self.email))
        self._sidecar()._call("mailbox.resync", mailbox_id=self._ensure_sidecar_id())
        self.sudo().with_context(maildesk_from_sidecar=True).write(
            {"progress_done": 0, "progress_total": 0, "eta_s": 0}
        )
        return self._maildesk_notify(
            _("%s syncs again from scratch; mail already in Odoo is not added twice.", self.email)
        )

    def action_load_folders(self):
        self.ensure_one()
        compat.check_access(self, "read")
        count = self._maildesk_load_folders()
        return self._maildesk_notify(_("%(count)s folders of %(email)s loaded.", count=count, email=self.email))

    def _maildesk_load_folders(self):
        """Refresh the folder list from the sidecar (folder.list, all=True)."""
        self.ensure_one()
        listed = self._sidecar()._call("folder.list", mailbox_id=self._ensure_sidecar_id(), all=True)
        if not isinstance(listed, list):
            raise UserError(_("The MailDesk sidecar did not list the folders of %s: update the sidecar.", self.email))
        Folder = self.env["maildesk.folder"].sudo().with_context(active_test=False)
        mailbox = self.sudo()
        existing = {f.graph_id: f for f in Folder.search([("mailbox_id", "=", self.id)])}
        seen = Folder.browse()
        for seq, data in enumerate(listed):
            if not isinstance(data, dict) or not data.get("id"):
                continue
            vals = {
                "name": data.get("name") or data["id"],
                "path": data.get("path") or data.get("name") or data["id"],
                "well_known": data.get("well_known") or False,
                "parent_graph_id": data.get("parent_id") or False,
                "depth": int(data.get("depth") or 0),
                "sequence": seq,
                "unread": int(data.get("unread") or 0),
                "total": int(data.get("total") or 0),
                "active": True,
            }
            folder = existing.get(data["id"])
            if folder:
                folder.write(vals)
            else:
                folder = Folder.create(dict(vals, mailbox_id=self.id, graph_id=data["id"]))
            seen |= folder
        gone = Folder.browse([f.id for f in existing.values()]) - seen
        picked = mailbox.with_context(active_test=False).sync_folder_ids
        gone.write({"active": False})
        if picked & gone and picked - gone:
            # Folders deleted in Outlook stop syncing (the sidecar would
            # fail on them); the rest stays as picked.
            mailbox.with_context(active_test=False).write({"sync_folder_ids": [(6, 0, (picked - gone).ids)]})
        if not mailbox.sync_folder_ids:
            # First load: pick what the folders field already names.
            keys = {k.strip().lower() for k in (mailbox.folders or "").split(",") if k.strip()}
            picked = seen.filtered(lambda f: (f.well_known or "").lower() in keys or f.graph_id.lower() in keys)
            if picked and len(picked) == len(keys):
                mailbox.with_context(maildesk_folders_from_char=True).sync_folder_ids = picked
        return len(seen)

    @api.model
    def _cron_refresh_state(self):
        # Mailboxes connected since the previous run get their folder list
        # once, without a click (after the one mailbox.list of the states).
        todo = self.sudo().search(
            [("sidecar_id", "!=", False), ("state", "in", SYNCABLE_STATES), ("folder_ids", "=", False)], limit=20
        )
        res = super()._cron_refresh_state()
        for mailbox in todo.filtered(lambda m: m.state in SYNCABLE_STATES):
            try:
                mailbox._maildesk_load_folders()
            except Exception as exc:  # noqa: BLE001 - one mailbox must not stop the others
                _logger.info("MailDesk: loading the folders of %s failed: %s", mailbox.email, exc)
        return res
