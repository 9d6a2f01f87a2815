# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import base64

from odoo.exceptions import AccessError, MissingError, UserError, ValidationError
from odoo.tests import tagged

from odoo.addons.maildesk.compat import USER_GROUPS

from .common import MaildeskCase


def deleted_error():
    error = MissingError("This message was deleted in Outlook (mailbox anna@contoso.example)")
    error.maildesk_code = "message_deleted"
    return error


@tagged("post_install", "-at_install")
class TestInboxActions(MaildeskCase):
    """Delete, archive, move, read, flag; the folder tree; a message deleted
    in Outlook; an attachment saved to a record — as the mailbox's owner
    (a plain MailDesk user) and as a user who may not see the mailbox."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mailbox.sidecar_id = "mbx_1"
        cls.mailbox.with_context(maildesk_from_sidecar=True).unread_count = 5
        # A plain MailDesk user who may edit contacts (as sales people do):
        # she may put files on a customer.
        cls.anna.write({USER_GROUPS: [(4, cls.env.ref("base.group_partner_manager").id)]})
        cls.as_anna = cls.mailbox.with_user(cls.anna)

    def sidecar_calls(self, method):
        return [p for m, p in self.sidecar.calls if m == method]

    def test_actions_reach_the_sidecar(self):
        self.sidecar.answers["message.move"] = lambda p: {"moved": len(p["message_ids"])}
        res = self.as_anna.maildesk_inbox_act(["AAMk1", "AAMk2", "AAMk1"], "delete", inbox_unread=2)
        self.assertEqual(res, {"done": 2, "unread": 3})
        self.as_anna.maildesk_inbox_act(["AAMk3"], "archive")
        self.as_anna.maildesk_inbox_act(["AAMk4"], "move", folder="AQMkADAwATM-customers")
        self.assertEqual(
            [(p["message_ids"], p["folder"]) for p in self.sidecar_calls("message.move")],
            [(["AAMk1", "AAMk2"], "deleteditems"), (["AAMk3"], "archive"), (["AAMk4"], "AQMkADAwATM-customers")],
        )
        self.as_anna.maildesk_inbox_act(["AAMk5"], "flag")
        self.as_anna.maildesk_inbox_act(["AAMk5"], "unflag")
        self.assertEqual([p["flagged"] for p in self.sidecar_calls("message.flag")], [True, False])
        res = self.as_anna.maildesk_inbox_act(["AAMk6"], "read", inbox_unread=1)
        self.assertEqual(res["unread"], 2)
        self.assertEqual(self.sidecar_calls("message.mark_read")[-1]["read"], True)
        # Moving unread mail back into the inbox does not lower the badge.
        self.as_anna.maildesk_inbox_act(["AAMk7"], "move", folder="inbox", inbox_unread=1)
        self.assertEqual(self.mailbox.unread_count, 2)

    def test_bad_requests_are_refused_before_the_sidecar(self):
        for ids, action, folder in (([], "delete", None), (["AAMk1"], "explode", None), (["AAMk1"], "move", ""),
                                    ([1], "flag", None), (["x"] * 1001, "read", None)):
            with self.assertRaises(ValidationError):
                self.as_anna.maildesk_inbox_act(ids, action, folder=folder)
        self.assertEqual(self.sidecar.calls, [])

    def test_user_without_access_is_refused(self):
        as_bob = self.mailbox.with_user(self.bob)
        for call in (
            lambda: as_bob.maildesk_inbox_act(["AAMk1"], "delete"),
            lambda: as_bob.maildesk_inbox_folder_tree(),
            lambda: as_bob.maildesk_inbox_open("AAMk1"),
            lambda: as_bob.maildesk_save_attachment("AAMk1", "att1", "res.partner", self.customer.id),
        ):
            with self.assertRaises(AccessError):
                call()
        self.assertEqual(self.sidecar.calls, [])

    def test_folder_tree_addresses_well_known_folders_by_name(self):
        self.sidecar.answers["folder.list"] = [
            {"id": "AQMk-in", "name": "Inbox", "well_known": "inbox", "path": "Inbox", "synced": True},
            {"id": "AQMk-cu", "name": "Customers", "parent_id": "AQMk-in", "path": "Inbox/Customers", "depth": 1},
            {"id": "AQMk-ar", "name": "Archive", "well_known": "archive", "path": "Archive"},
        ]
        tree = self.as_anna.maildesk_inbox_folder_tree()
        self.assertEqual([(f["id"], f["depth"]) for f in tree], [("inbox", 0), ("AQMk-cu", 1), ("archive", 0)])
        self.assertEqual(self.sidecar_calls("folder.list"), [{"mailbox_id": "mbx_1", "all": True}])

    def test_message_deleted_in_outlook(self):
        self.sidecar.errors["message.get"] = deleted_error()
        res = self.as_anna.maildesk_inbox_open("AAMk1")
        self.assertEqual(res, {"id": "AAMk1", "deleted": True, "notice": "This message was deleted in Outlook."})
        # Any other not-found is still an error.
        self.sidecar.errors["message.get"] = MissingError("Message AAMk9 is not in mailbox anna@contoso.example")
        with self.assertRaises(MissingError):
            self.as_anna.maildesk_inbox_open("AAMk9")
        self.sidecar.errors["message.attachment"] = deleted_error()
        with self.assertRaisesRegex(UserError, "deleted in Outlook"):
            self.as_anna.maildesk_save_attachment("AAMk1", "att1", "res.partner", self.customer.id)

    def test_save_attachment_to_record(self):
        data = b"%PDF-1.4 quote"
        self.sidecar.answers["message.attachment"] = {
            "name": "quote.pdf", "content_type": "application/pdf", "data_base64": base64.b64encode(data).decode(),
        }
        res = self.as_anna.maildesk_save_attachment("AAMk1", "att1", "res.partner", self.customer.id)
        att = self.env["ir.attachment"].browse(res["id"])
        self.assertEqual((att.res_model, att.res_id, att.name, att.raw), ("res.partner", self.customer.id, "quote.pdf", data))
        self.assertEqual(att.create_uid, self.anna)
        self.assertEqual(res["record"], "Carl Customer")

    def test_save_attachment_needs_the_right_to_post_on_the_record(self):
        self.sidecar.answers["message.attachment"] = {"name": "a.txt", "data_base64": base64.b64encode(b"x").decode()}
        # A record the owner may not write on (another company's lead is not at hand: a
        # partner of which anna is no follower, and writes taken away by a rule).
        rule = self.env["ir.rule"].create({
            "name": "no write on this partner",
            "model_id": self.env["ir.model"]._get_id("res.partner"),
            "domain_force": "[('id', '!=', %d)]" % self.customer.id,
            "perm_read": False, "perm_create": False, "perm_unlink": False, "perm_write": True,
        })
        self.addCleanup(rule.unlink)
        with self.assertRaises(AccessError):
            self.as_anna.maildesk_save_attachment("AAMk1", "att1", "res.partner", self.customer.id)
        self.assertFalse(self.env["ir.attachment"].search([("res_model", "=", "res.partner"), ("res_id", "=", self.customer.id)]))
        with self.assertRaises(ValidationError):
            self.as_anna.maildesk_save_attachment("AAMk1", "att1", "maildesk.mailbox", self.mailbox.id)
