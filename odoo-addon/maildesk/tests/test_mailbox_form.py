# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from lxml import etree

from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from odoo.addons.maildesk.compat import USER_GROUPS

from .common import MaildeskCase

# What the sidecar's folder.list answers with all=True: the folder tree,
# parents first, subfolders with their path.
TREE = [
    {"id": "AQMkADinbox0000000001", "name": "Inbox", "well_known": "inbox", "path": "Inbox", "depth": 0,
     "parent_id": "AQMkADroot00000000000", "unread": 4, "total": 40, "synced": True},
    {"id": "AQMkADclients00000001", "name": "Clients", "well_known": "", "path": "Inbox/Clients", "depth": 1,
     "parent_id": "AQMkADinbox0000000001", "unread": 1, "total": 9},
    {"id": "AQMkADacme00000000001", "name": "ACME", "well_known": "", "path": "Inbox/Clients/ACME", "depth": 2,
     "parent_id": "AQMkADclients00000001", "unread": 0, "total": 3},
    {"id": "AQMkADsent00000000001", "name": "Sent Items", "well_known": "sentitems", "path": "Sent Items",
     "depth": 0, "parent_id": "AQMkADroot00000000000", "unread": 0, "total": 12, "synced": True},
]


@tagged("post_install", "-at_install")
class TestMailboxForm(MaildeskCase):
    def setUp(self):
        super().setUp()
        self.mailbox.with_context(maildesk_from_sidecar=True).write({"state": "connected"})
        # Bob is an assigned user: a plain MailDesk user, not owner nor admin.
        self.mailbox.user_ids = [(4, self.bob.id)]
        self.carol = self.env["res.users"].search([("login", "=", "md_carol")]) or self.env["res.users"].create(
            {
                "name": "Carol",
                "login": "md_carol",
                USER_GROUPS: [(6, 0, [self.env.ref("maildesk.group_maildesk_user").id])],
            }
        )
        self.sidecar.calls.clear()

    # -- Sync again from scratch ------------------------------------------

    def test_resync_from_scratch_as_assigned_user(self):
        action = self.mailbox.with_user(self.bob).action_resync()
        self.assertEqual(self.sidecar.calls, [("mailbox.resync", {"mailbox_id": self.mailbox.sidecar_id})])
        self.assertEqual(action["tag"], "display_notification")
        self.assertIn("from scratch", action["params"]["message"])

    def test_resync_refused_to_others_and_when_not_connected(self):
        with self.assertRaises(AccessError):
            self.mailbox.with_user(self.carol).action_resync()
        self.mailbox.with_context(maildesk_from_sidecar=True).write({"state": "reauth_required"})
        with self.assertRaisesRegex(UserError, "not connected"):
            self.mailbox.with_user(self.bob).action_resync()
        self.assertFalse(self.sidecar.calls)

    def test_form_asks_before_resync(self):
        arch = self.env["maildesk.mailbox"].with_user(self.bob).get_views([(False, "form")])["views"]["form"]["arch"]
        button = etree.fromstring(arch).xpath("//button[@name='action_resync']")
        self.assertEqual(len(button), 1)
        self.assertIn("from scratch", button[0].get("confirm") or "")
        self.assertTrue(etree.fromstring(arch).xpath("//button[@name='action_load_folders']"))
        self.assertTrue(etree.fromstring(arch).xpath("//field[@name='sync_folder_ids']"))

    # -- Folders picked from the mailbox's folders ---------------------------

    def test_load_folders_as_assigned_user_keeps_the_typed_choice(self):
        self.sidecar.answers["folder.list"] = TREE
        self.mailbox.with_user(self.bob).action_load_folders()
        self.assertEqual(self.sidecar.calls, [("folder.list", {"mailbox_id": self.mailbox.sidecar_id, "all": True})])
        folders = self.mailbox.with_user(self.bob).folder_ids
        self.assertEqual(folders.mapped("path"), ["Inbox", "Inbox/Clients", "Inbox/Clients/ACME", "Sent Items"])
        self.assertEqual(folders.mapped("display_name")[2], "Inbox/Clients/ACME")
        # The existing "inbox,sentitems" is now the picker's selection.
        self.assertEqual(self.mailbox.sync_folder_ids.mapped("path"), ["Inbox", "Sent Items"])
        self.assertEqual(self.mailbox.folders, "inbox,sentitems")
        self.assertNotIn("mailbox.update", self.sidecar.methods(), "the same folders: nothing to push")
        # Another user's mailbox folders stay hidden.
        self.assertFalse(self.env["maildesk.folder"].with_user(self.carol).search([("mailbox_id", "=", self.mailbox.id)]))
        with self.assertRaises(AccessError):
            self.mailbox.with_user(self.carol).action_load_folders()

    def test_picking_a_subfolder_sends_its_id(self):
        self.sidecar.answers["folder.list"] = TREE
        self.mailbox.action_load_folders()
        acme = self.mailbox.folder_ids.filtered(lambda f: f.name == "ACME")
        inbox = self.mailbox.folder_ids.filtered(lambda f: f.well_known == "inbox")
        self.sidecar.calls.clear()
        self.mailbox.with_user(self.admin_user).write({"sync_folder_ids": [(6, 0, (inbox | acme).ids)]})
        self.assertEqual(self.sidecar.methods(), ["mailbox.update"])
        self.assertEqual(self.sidecar.calls[0][1]["folders"], ["inbox", "AQMkADacme00000000001"])
        self.assertEqual(self.mailbox.folders, "inbox,AQMkADacme00000000001")
        # Plain users cannot change what syncs.
        with self.assertRaises(AccessError):
            self.mailbox.with_user(self.bob).write({"sync_folder_ids": [(6, 0, inbox.ids)]})
        # A folder deleted in Outlook is archived and stops syncing.
        self.sidecar.calls.clear()
        self.sidecar.answers["folder.list"] = [f for f in TREE if f["name"] != "ACME"]
        self.mailbox.action_load_folders()
        self.assertFalse(acme.active)
        self.assertEqual(self.mailbox.sync_folder_ids, inbox)
        self.assertEqual(self.sidecar.calls[-1][0], "mailbox.update")
        self.assertEqual(self.sidecar.calls[-1][1]["folders"], ["inbox"])

    def test_typed_folders_still_work_without_loading(self):
        self.mailbox.with_user(self.admin_user).folders = "inbox, AQMkADlegacy0000000001"
        self.assertEqual(self.sidecar.calls[-1][1]["folders"], ["inbox", "AQMkADlegacy0000000001"])
        # Loading a tree that lacks a typed folder keeps the typed value.
        self.sidecar.answers["folder.list"] = TREE
        self.sidecar.calls.clear()
        self.mailbox.action_load_folders()
        self.assertFalse(self.mailbox.sync_folder_ids)
        self.assertEqual(self.mailbox.folders, "inbox, AQMkADlegacy0000000001")
        self.assertEqual(self.sidecar.methods(), ["folder.list"])

    # -- Last sync and unread stay fresh -------------------------------------

    def test_cron_keeps_last_sync_and_unread_fresh_and_loads_folders(self):
        cron = self.env.ref("maildesk.ir_cron_maildesk_refresh_state")
        self.assertEqual((cron.interval_number, cron.interval_type), (5, "minutes"))
        self.sidecar.answers["mailbox.list"] = [
            {"id": self.mailbox.sidecar_id, "state": "connected", "last_sync_at": "2026-12-05T10:00:00Z",
             "counts": {"messages": 50, "unread": 3}}
        ]
        self.sidecar.answers["folder.list"] = TREE
        self.env["maildesk.mailbox"]._cron_refresh_state()
        self.assertEqual(self.mailbox.unread_count, 3)
        self.assertEqual(str(self.mailbox.last_sync_at), "2026-12-05 10:00:00")
        self.assertEqual(len(self.mailbox.folder_ids), 4, "a connected mailbox gets its folders without a click")
        self.sidecar.calls.clear()
        self.sidecar.answers["mailbox.list"][0].update(last_sync_at="2026-12-05T10:05:00Z", counts={"unread": 0})
        self.env["maildesk.mailbox"]._cron_refresh_state()
        self.assertEqual(self.mailbox.unread_count, 0)
        self.assertEqual(str(self.mailbox.last_sync_at), "2026-12-05 10:05:00")
        self.assertEqual(self.sidecar.methods(), ["mailbox.list"], "folders are loaded once, not every run")
