# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import base64
from unittest.mock import patch

from odoo.tests import TransactionCase, new_test_user
from odoo.addons.maildesk import compat
from odoo.addons.maildesk.compat import USER_GROUPS


class FakeSidecar:
    """Records calls and answers like the sidecar would (tests patch ``_call``)."""

    def __init__(self):
        self.calls = []
        self.answers = {}
        self.errors = {}
        self._next = 0

    def __call__(self, *args, **params):
        method = args[1]  # args[0] is the patched model
        self.calls.append((method, params))
        if method in self.errors:
            raise self.errors[method]
        if method in self.answers:
            answer = self.answers[method]
            return answer(params) if callable(answer) else answer
        if method == "mailbox.create":
            self._next += 1
            return {"id": "mbx_%d" % self._next, "email": params["email"], "state": "new"}
        if method in ("mailbox.update", "mailbox.get"):
            return {"id": params["mailbox_id"], "state": "connected"}
        return True

    def methods(self):
        return [m for m, _p in self.calls]


class MaildeskCase(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sidecar = FakeSidecar()
        cls.startClassPatcher(
            patch.object(type(cls.env["maildesk.sidecar"]), "_call", autospec=True, side_effect=cls.sidecar)
        )
        cls.admin_user = new_test_user(
            cls.env, login="md_admin", groups="base.group_system,maildesk.group_maildesk_admin", name="MD Admin"
        )
        cls.anna = new_test_user(cls.env, login="md_anna", groups="maildesk.group_maildesk_user", name="Anna")
        cls.bob = new_test_user(cls.env, login="md_bob", groups="maildesk.group_maildesk_user", name="Bob")
        cls.bridge = cls.env["res.users"].create(
            {
                "name": "Bridge",
                "login": "md_bridge",
                USER_GROUPS: [(6, 0, [cls.env.ref("maildesk.group_maildesk_bridge").id])],
            }
        )
        cls.mailbox = cls.env["maildesk.mailbox"].create(
            {
                "email": "anna@contoso.example",
                "owner_id": cls.anna.id,
                "main_user_id": cls.anna.id,
                "mode": "log",
            }
        )
        cls.customer = cls.env["res.partner"].create({"name": "Carl Customer", "email": "carl@customer.example"})

    def setUp(self):
        super().setUp()
        self.sidecar.calls.clear()
        self.sidecar.answers.clear()
        self.sidecar.errors.clear()

    @staticmethod
    def item(graph_id, direction="in", **kw):
        item = {
            "graph_id": graph_id,
            "mailbox": "mbx_1",
            "folder": "inbox" if direction == "in" else "sentitems",
            "direction": direction,
            "internet_message_id": kw.pop("message_id", "<%s@customer.example>" % graph_id),
            "received_at": kw.pop("received_at", "2026-11-02T09:14:03Z"),
            "subject": kw.pop("subject", "Quote %s" % graph_id),
            "from": kw.pop("from_", {"name": "Carl", "email": "carl@customer.example"}),
            "to": kw.pop("to", [{"name": "Anna", "email": "anna@contoso.example"}]),
            "cc": kw.pop("cc", []),
            "headers": kw.pop("headers", {}),
            "body_html": kw.pop("body_html", "<p>Hello <b>there</b></p>"),
            "attachments": kw.pop("attachments", []),
        }
        item.update(kw)
        return item

    @staticmethod
    def mime_item(graph_id, raw, direction="in", **kw):
        item = {
            "graph_id": graph_id,
            "mailbox": "mbx_1",
            "folder": "inbox",
            "direction": direction,
            "internet_message_id": kw.pop("message_id", ""),
            "received_at": kw.pop("received_at", "2026-11-02T09:14:03Z"),
            "mime_base64": base64.b64encode(raw).decode(),
        }
        item.update(kw)
        return item

    def ingest(self, items, mailbox=None, options=None, user=None):
        mailbox = mailbox or self.mailbox
        return mailbox.with_user(user or self.bridge).maildesk_ingest(items, options=options or {})

    def enter_registry_test_mode(self):
        """Until the test ends, every ``registry.cursor()`` is the test's own
        (as for an HttpCase): code that commits in a cursor of its own can be
        tested. 19.0 patches the registry from the test case."""
        if compat.SERIES >= 19:
            self.registry_enter_test_mode()
        else:
            self.registry.enter_test_mode(self.cr)
            self.addCleanup(self.registry.leave_test_mode)
