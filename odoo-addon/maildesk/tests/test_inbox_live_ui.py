# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import logging
import threading
import time
from unittest.mock import patch

from odoo import api
from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.bus.websocket import WebsocketConnectionHandler
from odoo.addons.maildesk import compat

from .common import FakeSidecar
from .test_inbox_combined import fake_list

_logger = logging.getLogger(__name__)


@tagged("post_install", "-at_install")
class TestInboxLiveUi(HttpCase):
    """The combined inbox and live arrival in a real browser, as a plain
    MailDesk user who owns one mailbox and is assigned to a shared one."""

    def setUp(self):
        super().setUp()
        # Odoo's tests keep the bus's websocket closed unless a test opens it
        # (as bus.tests.common.WebsocketCase does): live arrival needs it.
        self.startPatcher(patch.object(WebsocketConnectionHandler, "websocket_allowed", return_value=True))
        self.sidecar = FakeSidecar()
        self.startPatcher(
            patch.object(type(self.env["maildesk.sidecar"]), "_call", autospec=True, side_effect=self.sidecar)
        )
        self.user = new_test_user(self.env, login="md_live_user", name="Live User",
                                  groups="base.group_user,maildesk.group_maildesk_user")
        self.bridge = new_test_user(self.env, login="md_live_bridge", groups="maildesk.group_maildesk_bridge")
        Mailbox = self.env["maildesk.mailbox"].with_context(maildesk_from_sidecar=True)
        self.own = Mailbox.create({"email": "live@contoso.example", "owner_id": self.user.id})
        self.team = Mailbox.create({"email": "team@contoso.example", "kind": "shared",
                                    "owner_id": self.env.ref("base.user_admin").id,
                                    "user_ids": [(6, 0, [self.user.id])]})
        self.own.unread_count, self.team.unread_count = 2, 3

        def row(graph_id, subject, at, read):
            return {"id": graph_id, "internet_message_id": "<%s@x.example>" % graph_id, "subject": subject,
                    "from": {"name": "Carl", "email": "carl@customer.example"}, "to": [], "received_at": at,
                    "is_read": read, "snippet": subject, "delivery": "unrouted"}

        self.rows = {r["id"]: r for r in [
            row("own-1", "Own read", "2026-11-20T09:00:00Z", True),
            row("own-2", "Own older", "2026-11-10T09:00:00Z", False),
            row("team-1", "Team unread", "2026-11-21T09:00:00Z", False),
            row("team-2", "Team older", "2026-11-15T09:00:00Z", False),
        ]}
        self.index = {
            self.own.sidecar_id: [self.rows["own-1"], self.rows["own-2"]],
            self.team.sidecar_id: [self.rows["team-1"], self.rows["team-2"]],
        }
        self.opened = {}  # message id → when the browser first asked for it
        self.own_older_read = threading.Event()

        def get(params):
            self.opened.setdefault(params["message_id"], time.time())
            return dict(self.rows[params["message_id"]], cc=[], body_html="<p>body</p>", attachments=[])

        def folders(params):
            unread = 2 if params["mailbox_id"] == self.own.sidecar_id else 3
            return [{"id": "f-inbox", "name": "Inbox", "well_known": "inbox", "unread": unread, "total": 2}]

        def mark_read(params):
            if params["message_ids"] == ["own-2"]:
                self.own_older_read.set()
            return True

        self.sidecar.answers.update({"message.list": fake_list(self.index), "message.get": get,
                                     "message.mark_read": mark_read,
                                     "folder.list": folders})

    def arrive(self):
        """The sidecar indexes new mail of live@ and tells Odoo (what
        bridge.Live does), right after the user read another mail: live@
        has 1 unread mail left and the new one."""
        if not self.own_older_read.wait(180):  # the tour's own bound (start_tour timeout=180)
            return
        new = {"id": "own-new", "internet_message_id": "<own-new@x.example>", "subject": "Live arrival",
               "from": {"name": "Carl", "email": "carl@customer.example"}, "to": [],
               "received_at": "2026-11-22T09:00:00Z", "is_read": False, "snippet": "hot off the press",
               "delivery": "queued"}
        self.rows["own-new"] = new
        self.index[self.own.sidecar_id].insert(0, new)
        self.arrived_at = time.time()
        with self.registry.cursor() as cr:
            env = api.Environment(cr, self.bridge.id, {})
            res = env["maildesk.mailbox"].browse(self.own.id).maildesk_notify(
                [{"kind": "new_mail", "mailbox": self.own.sidecar_id, "email": self.own.email,
                  "folder": "inbox", "count": 1, "unread": 2}]
            )
            self.notify_result = res
            cr.flush()
            # A test cursor drops post-commit hooks: run the bus's NOTIFY as a commit would.
            cr.postcommit.run()

    def test_combined_inbox_and_live_arrival(self):
        self.arrived_at, self.notify_result = None, None
        thread = threading.Thread(target=self.arrive, daemon=True)
        thread.start()
        self.start_tour(compat.action_path("maildesk.maildesk_inbox_action"), "maildesk_inbox_live_tour",
                        login="md_live_user", timeout=180)
        thread.join(60)
        self.assertFalse(thread.is_alive(), "the sidecar's notice was not sent")
        self.assertEqual(self.notify_result[0]["status"], "done", self.notify_result)
        # That the new mail was shown proves the live path: the inbox's
        # JavaScript has no polling timer (no setTimeout or setInterval in
        # static/src), and reading a mail does not reload the list; only a
        # bus notice (onNotice) fetches the page that holds "Live arrival".
        self.assertIn("own-new", self.opened, "the new mail was shown and opened")
        # How long it took is a printed figure, not an assertion (issue 14's
        # goal: 2 s): a busy machine once took longer with nothing wrong.
        took = self.opened["own-new"] - self.arrived_at
        _logger.info("maildesk live arrival: new mail visible and opened in the inbox %.3f s after it reached "
                     "the sidecar", took)
        self.own.invalidate_recordset()
        self.assertEqual(self.own.unread_count, 1, "2 after the notice, then the new mail was read")
        calls = [p for m, p in self.sidecar.calls if m == "message.mark_read"]
        self.assertEqual([c["message_ids"] for c in calls], [["team-1"], ["own-2"], ["own-new"]])

    def test_partner_emails_button(self):
        carl = self.env["res.partner"].create({"name": "Carl Customer", "email": "carl@customer.example"})
        carl_addr, dora = {"name": "Carl", "email": "carl@customer.example"}, {"email": "dora@customer.example"}

        def row(graph_id, folder, subject, at, sender, to):
            return {"id": graph_id, "internet_message_id": "<%s@x.example>" % graph_id, "subject": subject,
                    "from": sender, "to": [to], "cc": [], "received_at": at, "is_read": True, "snippet": subject,
                    "folder": folder, "delivery": "posted"}

        rows = [
            row("t-1", "inbox", "Carl asks", "2026-11-21T09:00:00Z", carl_addr, {"email": self.team.email}),
            row("o-1", "sentitems", "Our offer", "2026-11-20T09:00:00Z", {"email": self.own.email}, carl_addr),
            row("o-2", "inbox", "Carl wrote", "2026-11-19T09:00:00Z", carl_addr, {"email": self.own.email}),
            row("o-3", "inbox", "Dora wrote", "2026-11-18T09:00:00Z", dora, {"email": self.own.email}),
        ]
        box_of = {"t": self.team.sidecar_id, "o": self.own.sidecar_id}
        self.rows.update({r["id"]: r for r in rows})

        def message_list(params):
            found = [r for r in rows if box_of[r["id"][0]] == params["mailbox_id"] and r["folder"] == params["folder"]
                     and params.get("address") in (r["from"]["email"], r["to"][0]["email"])]
            return {"messages": [dict(r) for r in found], "next_cursor": ""}

        self.sidecar.answers.update({
            "message.list": message_list,
            "folder.list": [{"id": "f-inbox", "name": "Inbox", "well_known": "inbox"},
                            {"id": "f-sent", "name": "Sent Items", "well_known": "sentitems"}],
        })
        self.start_tour(compat.record_path("res.partner", carl.id), "maildesk_partner_emails_tour", login="md_live_user")
        self.assertIn("o-1", self.opened)
        asked = {p.get("address") for m, p in self.sidecar.calls if m == "message.list"}
        self.assertEqual(asked, {"carl@customer.example"})
