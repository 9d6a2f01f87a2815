# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest.mock import patch

from odoo.exceptions import MissingError
from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.maildesk import compat

from .common import FakeSidecar

# A 1×1 PNG and a small PDF, as message.attachment answers them.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
PDF = (b"%PDF-1.1\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj "
       b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


class _Remote(BaseHTTPRequestHandler):
    """The "remote" server a hostile mail points at: counts every request."""

    hits = []

    def do_GET(self):  # noqa: N802 - http.server's name
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        self.wfile.write(PNG)

    do_POST = do_GET

    def log_message(self, *args):
        pass


def hostile_body(remote):
    """Script, event handlers, remote images, CSS tricks, forms, iframes and
    javascript: links; all of it points at the counting server or sets a
    sentinel on the page."""
    pwn = "try{(top||parent).__maildeskPwned=1}catch(e){};"
    return (
        '<style>@import url("%(r)s/import.css"); body{background:url(%(r)s/bg.png)}'
        ' .x{position:fixed;top:0;left:0;width:100%%;height:100%%;z-index:99999;background:red}</style>'
        '<link rel="stylesheet" href="%(r)s/link.css">'
        '<div class="x" style="position:fixed;top:0;left:0;width:100vw;height:100vh;z-index:2147483647;'
        'background-image:url(\'%(r)s/overlay.png\')">Hostile hello</div>'
        '<p onclick="%(p)s" onmouseover="%(p)s">Hostile hello, please log in again.</p>'
        '<script>%(p)s fetch("%(r)s/script")</script>'
        '<img src="%(r)s/pixel.png" onerror="%(p)s"><img src="x" onerror="%(p)s">'
        '<img src="%(r)s/photo.jpg" width="300" height="200" alt="a photo" srcset="%(r)s/photo2x.jpg 2x">'
        '<svg onload="%(p)s"><image href="%(r)s/svg.png"/></svg>'
        '<iframe src="%(r)s/frame.html"></iframe><object data="%(r)s/object"></object>'
        '<embed src="%(r)s/embed"><video poster="%(r)s/poster.png"></video>'
        '<table background="%(r)s/table.png"><tr><td>cell</td></tr></table>'
        '<form action="%(r)s/form" method="post"><input name="password" type="password" value="x">'
        '<button type="submit" autofocus onfocus="%(p)s">Log in</button></form>'
        '<a href="javascript:%(p)s">javascript link</a>'
        '<a href="%(r)s/click">a normal link</a>'
        '<meta http-equiv="refresh" content="0;url=%(r)s/refresh">'
        '<base href="%(r)s/">'
    ) % {"r": remote, "p": pwn}


@tagged("post_install", "-at_install")
class TestInboxActionsUi(HttpCase):
    """The inbox's actions, shortcuts, attachments and a hostile message in
    a real browser, as a plain user who owns the mailbox; the sidecar is
    patched on the server side."""

    def setUp(self):
        super().setUp()
        self.sidecar = FakeSidecar()
        self.startPatcher(
            patch.object(type(self.env["maildesk.sidecar"]), "_call", autospec=True, side_effect=self.sidecar)
        )
        self.owner = new_test_user(
            self.env, login="md_act_owner", name="Act Owner",
            groups="base.group_user,base.group_partner_manager,maildesk.group_maildesk_user",
        )
        self.mailbox = self.env["maildesk.mailbox"].create({"email": "act@contoso.example", "owner_id": self.owner.id})
        self.mailbox.with_context(maildesk_from_sidecar=True).unread_count = 2
        self.customer = self.env["res.partner"].create({"name": "Act Customer", "email": "ac@customer.example"})
        _Remote.hits = []
        # Any free port: two suites (18.0 and 19.0) may run on one machine.
        self.remote = ThreadingHTTPServer(("127.0.0.1", 0), _Remote)
        threading.Thread(target=self.remote.serve_forever, daemon=True).start()
        self.addCleanup(self.remote.server_close)
        self.addCleanup(self.remote.shutdown)
        # The tours look for this path in image addresses.
        remote = "http://127.0.0.1:%d/maildesk-remote" % self.remote.server_address[1]
        rows = [
            self.row("AAMk-h", "<img src=%s/subject.png onerror=alert(1)> Hostile" % remote, False,
                     snippet='<script>alert(1)</script><img src="%s/snippet.png">' % remote),
            self.row("AAMk-r", "Quarterly report", False, has_attachments=True),
            self.row("AAMk-p1", "Plain one", True),
            self.row("AAMk-p2", "Plain two", True),
            self.row("AAMk-p3", "Plain three", True),
            self.row("AAMk-gone", "Gone already", True),
        ]
        details = {
            "AAMk-h": {"body_html": hostile_body(remote), "attachments": []},
            "AAMk-r": {"body_html": "<p>The report</p>", "attachments": [
                {"id": "att-png", "name": "chart.png", "content_type": "image/png", "size": len(PNG), "is_inline": False},
                {"id": "att-pdf", "name": "report.pdf", "content_type": "application/pdf", "size": len(PDF), "is_inline": False},
            ]},
        }

        def message_get(params):
            if params["message_id"] == "AAMk-gone":
                error = MissingError("This message was deleted in Outlook (mailbox act@contoso.example)")
                error.maildesk_code = "message_deleted"
                raise error
            row = next(r for r in rows if r["id"] == params["message_id"])
            return dict(row, cc=[], **details.get(row["id"], {"body_html": "<p>%s</p>" % row["subject"], "attachments": []}))

        def attachment(params):
            data, ctype = (PNG, "image/png") if params["attachment_id"] == "att-png" else (PDF, "application/pdf")
            return {"name": "chart.png" if data is PNG else "report.pdf", "content_type": ctype,
                    "data_base64": base64.b64encode(data).decode()}

        inbox = {"id": "AQMk-in", "name": "Inbox", "well_known": "inbox", "unread": 2, "total": 6}
        self.sidecar.answers.update({
            "folder.list": lambda p: [
                dict(inbox, path="Inbox"),
                {"id": "AQMk-cu", "name": "Customers", "parent_id": "AQMk-in", "path": "Inbox/Customers", "depth": 1},
                {"id": "AQMk-ar", "name": "Archive", "well_known": "archive", "path": "Archive"},
            ] if p.get("all") else [inbox],
            "message.list": {"messages": rows, "next_cursor": None},
            "message.get": message_get,
            "message.attachment": attachment,
            "message.move": lambda p: {"moved": len(p["message_ids"])},
        })

    @staticmethod
    def row(graph_id, subject, is_read, **kw):
        return dict({
            "id": graph_id, "internet_message_id": "<%s@customer.example>" % graph_id, "subject": subject,
            "from": {"name": "Act Sender", "email": "sender@customer.example"}, "to": [{"email": "act@contoso.example"}],
            "received_at": "2026-11-20T10:00:00Z", "is_read": is_read, "flagged": False, "snippet": subject,
            "delivery": "unrouted",
        }, **kw)

    def calls(self, method):
        return [p for m, p in self.sidecar.calls if m == method]

    def test_actions_shortcuts_attachments(self):
        self.start_tour(compat.action_path("maildesk.maildesk_inbox_action"), "maildesk_inbox_actions_tour",
                        login="md_act_owner")
        flagged = self.calls("message.flag")
        self.assertEqual(len(flagged), 1)
        self.assertEqual(len(flagged[0]["message_ids"]), 6)
        self.assertTrue(flagged[0]["flagged"])
        moves = [(p["message_ids"], p["folder"]) for p in self.calls("message.move")]
        self.assertEqual(moves, [(["AAMk-r"], "archive"), (["AAMk-p1"], "deleteditems"), (["AAMk-p3"], "AQMk-cu")])
        self.assertEqual(self.calls("folder.list")[-1].get("all"), True, "Move to… lists Graph's folder tree")
        saved = self.env["ir.attachment"].search([("res_model", "=", "res.partner"), ("res_id", "=", self.customer.id)])
        self.assertEqual((saved.name, saved.raw, saved.create_uid), ("report.pdf", PDF, self.owner))

    def test_hostile_message_runs_nothing_requests_nothing(self):
        self.start_tour(compat.action_path("maildesk.maildesk_inbox_action"), "maildesk_hostile_tour",
                        login="md_act_owner")
        self.assertEqual(_Remote.hits, [], "no remote request from the list, the reading pane or the composer")
        self.assertEqual(len([p for p in self.calls("message.get") if p["message_id"] == "AAMk-h"]) >= 2, True,
                         "read in the pane and quoted in the composer")
