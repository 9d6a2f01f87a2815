# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import json

from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from .common import MaildeskCase


def fake_list(boxes):
    """message.list over {sidecar_id: [messages newest first]}, paged by offset."""

    def answer(params):
        messages = boxes[params["mailbox_id"]]
        if params.get("unread_only"):
            messages = [m for m in messages if not m.get("is_read")]
        start = int(params.get("cursor") or 0)
        end = start + params["limit"]
        return {"messages": [dict(m) for m in messages[start:end]],
                "next_cursor": str(end) if end < len(messages) else ""}

    return answer


def mail(graph_id, day, hour, read=False):
    return {"id": graph_id, "internet_message_id": "<%s@x.example>" % graph_id, "subject": graph_id,
            "from": {"email": "carl@customer.example"}, "received_at": "2026-11-%02dT%02d:00:00Z" % (day, hour),
            "is_read": read}


@tagged("post_install", "-at_install")
class TestInboxCombined(MaildeskCase):
    """The combined inbox, unread counts and live notices, called as the
    people who call them: a plain MailDesk user and the bridge user."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.shared = cls.env["maildesk.mailbox"].create(
            {"email": "info@contoso.example", "kind": "shared", "owner_id": cls.bob.id, "user_ids": [(6, 0, [cls.anna.id])]}
        )
        cls.other = cls.env["maildesk.mailbox"].create({"email": "bob@contoso.example", "owner_id": cls.bob.id})
        cls.carol = new_test_user(cls.env, login="md_carol", groups="maildesk.group_maildesk_user", name="Carol")

    def setUp(self):
        super().setUp()
        self.boxes = {
            self.mailbox.sidecar_id: [mail("a1", 20, 9), mail("a2", 18, 9, read=True), mail("a3", 10, 9)],
            self.shared.sidecar_id: [mail("s1", 19, 9), mail("s2", 18, 10), mail("s3", 17, 9), mail("s4", 1, 9)],
            self.other.sidecar_id: [mail("b1", 21, 9)],
        }
        self.sidecar.answers["message.list"] = fake_list(self.boxes)

    def combined(self, user=None, **kw):
        return self.env["maildesk.mailbox"].with_user(user or self.anna).maildesk_inbox_combined(**kw)

    def test_combined_merges_the_users_mailboxes_newest_first(self):
        res = self.combined()
        self.assertEqual([m["id"] for m in res["messages"]], ["a1", "s1", "s2", "a2", "s3", "a3", "s4"],
                         "anna's own and assigned shared mailbox, newest first; bob's own mailbox is not hers")
        self.assertEqual({m["mailbox_email"] for m in res["messages"][:2]}, {"anna@contoso.example", "info@contoso.example"})
        self.assertEqual(res["messages"][1]["mailbox_id"], self.shared.id)
        self.assertFalse(res["next_cursor"])
        self.assertEqual(res["errors"], [])

    def test_combined_pages_without_gaps_or_repeats(self):
        seen, cursor = [], False
        for _i in range(10):
            res = self.combined(limit=2, cursor=cursor)
            seen += [m["id"] for m in res["messages"]]
            cursor = res["next_cursor"]
            if not cursor:
                break
        self.assertEqual(seen, ["a1", "s1", "s2", "a2", "s3", "a3", "s4"])

    def test_combined_filters(self):
        res = self.combined(unread_only=True)
        self.assertEqual([m["id"] for m in res["messages"]], ["a1", "s1", "s2", "s3", "a3", "s4"])
        res = self.combined(mailbox_ids=[self.shared.id])
        self.assertEqual([m["id"] for m in res["messages"]], ["s1", "s2", "s3", "s4"])
        lists = [p for m, p in self.sidecar.calls if m == "message.list"]
        self.assertTrue(all(p["folder"] == "inbox" for p in lists))

    def test_combined_names_a_mailbox_it_cannot_read(self):
        answer = self.sidecar.answers["message.list"]

        def flaky(params):
            if params["mailbox_id"] == self.shared.sidecar_id:
                raise UserError("Mailbox info@contoso.example needs its owner to sign in again")
            return answer(params)

        self.sidecar.answers["message.list"] = flaky
        res = self.combined()
        self.assertEqual([m["id"] for m in res["messages"]], ["a1", "a2", "a3"])
        self.assertEqual([e["email"] for e in res["errors"]], ["info@contoso.example"])

    def test_opening_reads_the_mailboxes_and_the_first_page_in_one_call(self):
        """maildesk_inbox_start: Anna (two mailboxes) opens on all of them;
        Carol (only Anna's, as its main user) on that one; a given mailbox
        or address opens on it; a mailbox the sidecar cannot read says why."""
        Mailbox = self.env["maildesk.mailbox"]
        self.mailbox.write({"main_user_id": self.carol.id})
        start = Mailbox.with_user(self.anna).maildesk_inbox_start()
        self.assertEqual({m["email"] for m in start["mailboxes"]}, {"anna@contoso.example", "info@contoso.example"})
        self.assertEqual(start["view"], {"combined": True})
        self.assertEqual([m["id"] for m in start["page"]["messages"]], ["a1", "s1", "s2", "a2", "s3", "a3", "s4"])
        start = Mailbox.with_user(self.carol).maildesk_inbox_start()
        self.assertEqual([m["email"] for m in start["mailboxes"]], ["anna@contoso.example"])
        self.assertEqual(start["view"], {"mailbox_id": self.mailbox.id})
        self.assertEqual([m["id"] for m in start["page"]["messages"]], ["a1", "a2", "a3"])
        self.assertEqual({m["mailbox_id"] for m in start["page"]["messages"]}, {self.mailbox.id})
        start = Mailbox.with_user(self.anna).maildesk_inbox_start(mailbox_id=self.shared.id, query="s")
        self.assertEqual(start["view"], {"mailbox_id": self.shared.id})
        self.assertEqual([p.get("query") for m, p in self.sidecar.calls if m == "message.list"][-1], "s")
        start = Mailbox.with_user(self.carol).maildesk_inbox_start(mailbox_id=self.shared.id)
        self.assertEqual(start["page"]["messages"], [])
        self.assertTrue(start["page"]["error"], "Carol may not read info@: the list says so, the mailboxes still come")
        self.assertEqual(len(start["mailboxes"]), 1)
        self.sidecar.answers["folder.list"] = [{"id": "f-inbox", "name": "Inbox", "well_known": "inbox"}]
        start = Mailbox.with_user(self.carol).maildesk_inbox_start(address="carl@customer.example")
        self.assertEqual(start["view"], {"combined": True, "address": "carl@customer.example"})
        self.assertEqual([m["id"] for m in start["page"]["messages"]], ["a1", "a2", "a3"])
        self.assertEqual([p.get("address") for m, p in self.sidecar.calls if m == "message.list"][-1], "carl@customer.example")

    def test_bad_cursor(self):
        with self.assertRaises(Exception):
            self.combined(cursor="not json")
        self.assertTrue(json.loads(self.combined(limit=1)["next_cursor"]))

    def test_inbox_unread_is_counts_unread(self):
        """The Inbox's badge, the mailbox's badge and the systray show one
        number: counts.unread (Graph's), not the index's count of folder.list."""
        self.mailbox.with_context(maildesk_from_sidecar=True).unread_count = 1
        self.sidecar.answers["folder.list"] = [
            {"id": "f-inbox", "name": "Inbox", "well_known": "inbox", "unread": 2, "total": 3},
            {"id": "f-sent", "name": "Sent Items", "well_known": "sentitems", "unread": 0, "total": 5},
        ]
        self.sidecar.answers["mailbox.get"] = {"id": self.mailbox.sidecar_id, "state": "connected",
                                               "counts": {"messages": 8, "unread": 7}}
        folders = self.mailbox.with_user(self.anna).maildesk_inbox_folders()
        self.assertEqual([f["unread"] for f in folders], [7, 0])
        self.assertEqual(self.mailbox.unread_count, 7)
        boxes = self.env["maildesk.mailbox"].with_user(self.anna).maildesk_inbox_mailboxes()
        self.assertEqual({b["email"]: b["unread"] for b in boxes}["anna@contoso.example"], 7)

    def test_mark_read_moves_the_count(self):
        self.shared.with_context(maildesk_from_sidecar=True).unread_count = 3
        box = self.shared.with_user(self.anna)
        self.assertEqual(box.maildesk_inbox_mark_read(["s1"], read=True, inbox_changed=1), {"unread": 2})
        self.assertEqual(box.maildesk_inbox_mark_read(["s1", "s2"], read=False, inbox_changed=5), {"unread": 4},
                         "at most one per message")
        self.assertEqual(box.maildesk_inbox_mark_read(["s9"], read=True), {"unread": 4}, "not inbox mail")
        calls = [p for m, p in self.sidecar.calls if m == "message.mark_read"]
        self.assertEqual([(c["message_ids"], c["read"]) for c in calls],
                         [(["s1"], True), (["s1", "s2"], False), (["s9"], True)])
        with self.assertRaises(AccessError):
            self.other.with_user(self.anna).maildesk_inbox_mark_read(["b1"], read=True, inbox_changed=1)

    # ------------------------------------------------------------------
    # The partner's Emails button
    # ------------------------------------------------------------------

    def with_carl(self):
        """Index with folders: mail from, to and cc carl, and mail without him."""
        carl, dora = {"email": "carl@customer.example"}, {"email": "dora@customer.example"}

        def m(graph_id, folder, day, sender, to, cc=()):
            return dict(mail(graph_id, day, 9), folder=folder, **{"from": sender, "to": [to], "cc": list(cc)})

        index = {
            self.mailbox.sidecar_id: [m("a-in", "inbox", 20, carl, {"email": "anna@contoso.example"}),
                                      m("a-sent", "sentitems", 19, {"email": "anna@contoso.example"}, carl),
                                      m("a-dora", "inbox", 18, dora, {"email": "anna@contoso.example"})],
            self.shared.sidecar_id: [m("s-cc", "inbox", 21, dora, {"email": "info@contoso.example"}, [carl]),
                                     m("s-sent", "sentitems", 5, {"email": "info@contoso.example"}, carl)],
            self.other.sidecar_id: [m("b-in", "inbox", 22, carl, {"email": "bob@contoso.example"})],
        }

        def folder_list(params):
            return [{"id": "id-inbox", "name": "Inbox", "well_known": "inbox"},
                    {"id": "id-sent", "name": "Sent Items", "well_known": "sentitems"}]

        def message_list(params):
            want = params.get("address")
            rows = [r for r in index[params["mailbox_id"]] if r["folder"] == params["folder"]]
            if want:
                rows = [r for r in rows if want in [a["email"] for a in [r["from"], *r["to"], *r["cc"]]]]
            start = int(params.get("cursor") or 0)
            end = start + params["limit"]
            return {"messages": [dict(r) for r in rows[start:end]], "next_cursor": str(end) if end < len(rows) else ""}

        self.sidecar.answers.update({"folder.list": folder_list, "message.list": message_list})

    def test_partner_emails_count_and_list_agree(self):
        """Received and sent, in every mailbox anna may see, and nothing
        else: the button's count is the list's length."""
        self.with_carl()
        customer = self.customer.with_user(self.anna)
        action = customer.action_maildesk_emails()
        self.assertEqual(action["tag"], "maildesk.inbox")
        self.assertEqual(action["params"], {"address": "carl@customer.example", "partner_name": "Carl Customer"})
        res = self.combined(address=action["params"]["address"])
        self.assertEqual([(m["id"], m["folder"], m["mailbox_email"]) for m in res["messages"]], [
            ("s-cc", "inbox", "info@contoso.example"),
            ("a-in", "inbox", "anna@contoso.example"),
            ("a-sent", "sentitems", "anna@contoso.example"),
            ("s-sent", "sentitems", "info@contoso.example"),
        ], "bob's own mailbox is not anna's; dora's mail to anna is not with carl")
        self.assertEqual(customer.maildesk_message_count, 4)
        seen, cursor = [], False
        for _i in range(10):
            page = self.combined(address="carl@customer.example", limit=1, cursor=cursor)
            seen += [m["id"] for m in page["messages"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        self.assertEqual(seen, ["s-cc", "a-in", "a-sent", "s-sent"])
        self.assertEqual(self.customer.with_user(self.bob).maildesk_message_count, 3, "bob: info@ and his own")

    def test_partner_emails_count_without_sidecar(self):
        self.sidecar.errors["folder.list"] = UserError("The MailDesk sidecar is not reachable")
        self.assertEqual(self.customer.with_user(self.anna).maildesk_message_count, 0)

    # ------------------------------------------------------------------
    # Live notices
    # ------------------------------------------------------------------

    def bus_messages(self, notif_type="maildesk.inbox"):
        """(partner id, payload) of the bus messages of this transaction."""
        self.env.cr.precommit.run()
        out = []
        for row in self.env["bus.bus"].sudo().search([]):
            message = json.loads(row.message)
            channel = json.loads(row.channel)
            if message.get("type") == notif_type and channel[1:2] == ["res.partner"]:
                out.append((channel[2], message["payload"]))
        return out

    def test_new_mail_notice_reaches_the_mailbox_users(self):
        self.env["bus.bus"].sudo().search([]).unlink()
        res = self.shared.with_user(self.bridge).maildesk_notify(
            [{"kind": "new_mail", "mailbox": self.shared.sidecar_id, "email": self.shared.email,
              "folder": "inbox", "count": 2, "unread": 5}]
        )
        self.assertEqual(res[0]["status"], "done", res)
        self.assertEqual(self.shared.unread_count, 5)
        sent = self.bus_messages()
        partners = {p for p, _payload in sent}
        self.assertIn(self.anna.partner_id.id, partners, "assigned user")
        self.assertIn(self.bob.partner_id.id, partners, "owner")
        self.assertNotIn(self.carol.partner_id.id, partners, "not a user of the mailbox")
        self.assertNotIn(self.bridge.partner_id.id, partners)
        payload = dict(sent)[self.anna.partner_id.id]
        self.assertEqual(payload, {"kind": "new_mail", "mailbox_id": self.shared.id, "email": "info@contoso.example",
                                   "folder": "inbox", "count": 2, "unread": 5})

    def test_unread_notice_and_bad_values(self):
        self.env["bus.bus"].sudo().search([]).unlink()
        res = self.mailbox.with_user(self.bridge).maildesk_notify(
            [{"kind": "unread", "mailbox": self.mailbox.sidecar_id, "count": 0, "unread": 0},
             {"kind": "new_mail", "mailbox": self.mailbox.sidecar_id, "count": "many"}]
        )
        self.assertEqual([r["status"] for r in res], ["done", "error"])
        self.assertEqual(self.mailbox.unread_count, 0)
        sent = self.bus_messages()
        self.assertEqual({p["kind"] for _partner, p in sent}, {"unread"}, "the refused notice sends nothing")
        self.assertEqual(len(sent), len({partner for partner, _p in sent}), "one message per user")
        self.assertIn(self.anna.partner_id.id, {partner for partner, _p in sent})
        self.assertIn(self.admin_user.partner_id.id, {partner for partner, _p in sent}, "administrators see it too")

    def test_only_the_bridge_notifies(self):
        with self.assertRaises(AccessError):
            self.mailbox.with_user(self.anna).maildesk_notify(
                [{"kind": "new_mail", "mailbox": self.mailbox.sidecar_id, "count": 1, "unread": 9}]
            )

    def test_reauth_notice_still_handled(self):
        res = self.mailbox.with_user(self.bridge).maildesk_notify(
            [{"kind": "reauth_required", "mailbox": self.mailbox.sidecar_id, "reason": "AADSTS50173"}]
        )
        self.assertEqual(res[0]["status"], "done")
        self.assertEqual(self.mailbox.state, "reauth_required")
