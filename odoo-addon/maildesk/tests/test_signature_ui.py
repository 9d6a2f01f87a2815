# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from unittest.mock import patch

from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.maildesk import compat

from .common import FakeSidecar


@tagged("post_install", "-at_install")
class TestSignatureEntryUi(HttpCase):
    """A plain MailDesk user who only sees a shared mailbox (one of its
    assigned users, not its owner) opens the inbox: its folders, Drafts and
    Excluded are there, the Signature entry is not (the owner's is, see the
    compose tour)."""

    def setUp(self):
        super().setUp()
        self.sidecar = FakeSidecar()
        self.startPatcher(
            patch.object(type(self.env["maildesk.sidecar"]), "_call", autospec=True, side_effect=self.sidecar)
        )
        owner = new_test_user(self.env, login="md_sig_owner", groups="base.group_user,maildesk.group_maildesk_user")
        self.reader = new_test_user(self.env, login="md_sig_reader", name="Shared Reader",
                                    groups="base.group_user,maildesk.group_maildesk_user")
        self.env["maildesk.mailbox"].create({
            "email": "team@contoso.example", "kind": "shared", "owner_id": owner.id,
            "user_ids": [(6, 0, [self.reader.id])], "signature": "<p>The team's signature</p>",
        })
        self.sidecar.answers.update({
            "folder.list": [{"id": "f-inbox", "name": "Inbox", "well_known": "inbox", "unread": 0, "total": 1}],
            "message.list": {"messages": [{
                "id": "AAMk-team-1", "internet_message_id": "<team-1@customer.example>", "subject": "For the team",
                "from": {"name": "Carl", "email": "carl@customer.example"}, "to": [{"email": "team@contoso.example"}],
                "received_at": "2026-11-20T10:00:00Z", "is_read": True, "snippet": "Hello team",
            }], "next_cursor": ""},
        })

    def test_no_signature_entry_for_a_shared_mailbox_user(self):
        self.start_tour(compat.action_path("maildesk.maildesk_inbox_action"), "maildesk_signature_hidden_tour",
                        login="md_sig_reader")
