# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Where a mail went, moving it, excluding it: what users do in the inbox.

Ingest runs as the bridge user; everything else as plain MailDesk users who
own or are assigned the mailbox (not administrators)."""

import base64

from odoo.exceptions import AccessError, MissingError, ValidationError
from odoo.tests import new_test_user, tagged

from odoo.addons.maildesk import compat
from odoo.addons.maildesk.compat import USER_GROUPS

from .common import MaildeskCase


@tagged("post_install", "-at_install")
class TestPlacement(MaildeskCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Olga is assigned Anna's mailbox and may edit contacts (post on them).
        cls.olga = new_test_user(
            cls.env, login="md_olga", name="Olga",
            groups="maildesk.group_maildesk_user,base.group_partner_manager",
        )
        cls.mailbox.user_ids = [(4, cls.olga.id)]
        cls.dora = cls.env["res.partner"].create({"name": "Dora Customer", "email": "dora@customer.example"})
        cls.company = cls.env["res.partner"].create(
            {"name": "Customer Inc", "is_company": True, "email": "info@customer.example"}
        )
        cls.other_box = cls.env["maildesk.mailbox"].create({"email": "bob@contoso.example", "owner_id": cls.bob.id})

    def box(self, user=None):
        return self.mailbox.with_user(user or self.olga)

    def copies(self, graph_id, mailbox=None):
        return self.env["mail.message"].sudo().search(
            [("maildesk_graph_id", "=", graph_id), ("maildesk_mailbox_id", "=", (mailbox or self.mailbox).id)]
        )

    def two_copies(self, graph_id="mv1", **kw):
        """A mail to Carl and Dora, logged once on each contact, with an attachment."""
        res = self.ingest([self.item(
            graph_id, direction="out", from_={"email": "anna@contoso.example"},
            to=[{"email": "carl@customer.example"}, {"email": "dora@customer.example"}],
            attachments=[{"name": "offer.pdf", "content_type": "application/pdf",
                          "data_base64": base64.b64encode(b"%PDF offer").decode()}],
            **kw,
        )])
        self.assertEqual(res[0]["status"], "posted", res)
        self.assertEqual(len(self.copies(graph_id)), 2)
        return res

    # -- where each mail went --------------------------------------------

    def test_inbox_shows_where_each_mail_went(self):
        self.ingest([self.item("pl1")])
        self.sidecar.answers["message.list"] = {"messages": [
            {"id": "pl1", "internet_message_id": "<pl1@customer.example>", "delivery": "posted",
             "from": {"email": "carl@customer.example"}},
            {"id": "ex1", "internet_message_id": "<ex1@customer.example>", "delivery": "excluded",
             "delivery_error": "not logged: private (Outlook sensitivity)", "from": {"email": "carl@customer.example"}},
            {"id": "un1", "internet_message_id": "<un1@x.example>", "delivery": "unrouted",
             "from": {"email": "nobody@x.example"}},
            {"id": "se1", "internet_message_id": "<se1@contoso.example>", "delivery": "queued",
             "from": {"email": "anna@contoso.example"}, "to": [{"name": "Dora", "email": "Dora@customer.example"}]},
            {"id": "od1", "internet_message_id": "<od1@contoso.example>", "delivery": "sent_by_maildesk",
             "from": {"email": "anna@contoso.example"}, "to": [{"email": "x@y.example"}]},
            {"id": "old1", "internet_message_id": "<old1@x.example>", "from": {"email": "x@y.example"}},
        ], "next_cursor": ""}
        messages = {m["id"]: m for m in self.box(self.anna).maildesk_inbox_messages()["messages"]}
        self.assertEqual(messages["pl1"]["placement"]["state"], "logged")
        self.assertEqual([(l["model"], l["res_id"]) for l in messages["pl1"]["linked"]],
                         [("res.partner", self.customer.id)])
        self.assertEqual(messages["ex1"]["placement"]["label"], "Not logged: private (Outlook sensitivity)")
        self.assertEqual(messages["un1"]["placement"]["label"], "Unrouted")
        self.assertEqual(messages["se1"]["placement"]["state"], "queued")
        self.assertEqual(messages["od1"]["placement"]["label"], "Sent from Odoo")
        self.assertEqual(messages["old1"]["placement"]["label"], "Not in Odoo", "no delivery state (older index)")
        self.assertEqual(messages["se1"]["correspondent"], {"name": "Dora", "email": "dora@customer.example"},
                         "mail the mailbox sent: the correspondent is its recipient")
        self.assertEqual(messages["pl1"]["correspondent"]["email"], "carl@customer.example")

    def test_reading_pane_offers_the_candidates_routing_found(self):
        self.ingest([self.item("ca1")])
        gone = self.env["res.partner"].create({"name": "Gone"})
        gone_id = gone.id
        gone.unlink()
        self.copies("ca1").write({"maildesk_candidates": "res.partner,%s;res.partner,%s;res.partner,%s;"
                                                         "maildesk.mailbox,%s" % (
                                                             self.company.id, self.customer.id, gone_id,
                                                             self.mailbox.id)})
        self.sidecar.answers["message.get"] = {"id": "ca1", "internet_message_id": "<ca1@customer.example>",
                                               "from": {"email": "carl@customer.example"}, "delivery": "posted"}
        data = self.box(self.anna).maildesk_inbox_message("ca1")
        self.assertEqual(data["candidates"], [{"model": "res.partner", "res_id": self.company.id,
                                               "name": "Customer Inc"}],
                         "the current place, deleted records and models MailDesk may not log on are left out")

    # -- move to another record -------------------------------------------

    def test_move_makes_one_message_on_the_chosen_record(self):
        self.two_copies()
        old = self.copies("mv1")
        old_attachments = old.attachment_ids
        self.assertEqual(len(old_attachments), 2)
        res = self.box().maildesk_move_to_record("mv1", "res.partner", self.company.id)
        self.assertTrue(res["moved"])
        self.assertEqual(res["removed"], 1)
        moved = self.copies("mv1")
        self.assertEqual(len(moved), 1, "two copies on two contacts become one message")
        self.assertEqual((moved.model, moved.res_id, moved.record_name), ("res.partner", self.company.id, "Customer Inc"))
        self.assertEqual(len(moved.attachment_ids), 1)
        self.assertEqual((moved.attachment_ids.res_model, moved.attachment_ids.res_id), ("res.partner", self.company.id))
        self.assertEqual(len(old_attachments.exists()), 1, "the removed copy's attachment is gone too")
        for contact in (self.customer, self.dora):
            self.assertFalse(self.env["mail.message"].search(
                [("model", "=", "res.partner"), ("res_id", "=", contact.id), ("maildesk_graph_id", "=", "mv1")]))
        # A mail of the same conversation follows it there, and it is no duplicate.
        res = self.ingest([self.item("mv1", direction="out", from_={"email": "anna@contoso.example"},
                                     to=[{"email": "carl@customer.example"}])])
        self.assertEqual(res[0]["status"], "duplicate", res)
        self.assertEqual(res[0]["records"], [["res.partner", self.company.id]])

    def test_move_onto_one_of_its_records_keeps_that_copy(self):
        self.two_copies("mv2")
        dora_copy = self.copies("mv2").filtered(lambda m: m.res_id == self.dora.id)
        self.box().maildesk_move_to_record("mv2", "res.partner", self.dora.id)
        self.assertEqual(self.copies("mv2"), dora_copy)

    def test_move_leaves_other_mailboxes_copies_alone(self):
        self.two_copies("mv3", message_id="<mv3@contoso.example>")
        theirs = self.ingest([self.item("mv3", direction="in", message_id="<mv3@contoso.example>",
                                        to=[{"email": "bob@contoso.example"}])], mailbox=self.other_box)
        self.box().maildesk_move_to_record("mv3", "res.partner", self.company.id)
        self.assertEqual(len(self.copies("mv3")), 1)
        self.assertEqual(self.copies("mv3", self.other_box).ids, theirs[0]["odoo_message_ids"])

    def test_move_of_a_mail_not_logged_yet_logs_it(self):
        res = self.box().maildesk_move_to_record("nl1", "res.partner", self.company.id)
        self.assertTrue(res["logged"])
        calls = [p for m, p in self.sidecar.calls if m == "message.log_to_record"]
        self.assertEqual(calls, [{"mailbox_id": self.mailbox.sidecar_id, "message_id": "nl1",
                                  "model": "res.partner", "res_id": self.company.id}])

    def test_move_refusals_in_odoos_terms(self):
        self.two_copies("mv4")
        with self.assertRaisesRegex(ValidationError, "may not log mail on"):
            self.box().maildesk_move_to_record("mv4", "maildesk.mailbox", self.mailbox.id)
        with self.assertRaisesRegex(ValidationError, "has no chatter"):
            self.box().maildesk_move_to_record("mv4", "res.country", 1)
        with self.assertRaises(MissingError):
            self.box().maildesk_move_to_record("mv4", "res.partner", 10 ** 8)
        # Anna owns the mailbox but may not edit contacts: no right to post there.
        with self.assertRaises(AccessError):
            self.box(self.anna).maildesk_move_to_record("mv4", "res.partner", self.company.id)
        # Bob may edit nothing of Anna's mailbox.
        self.bob[USER_GROUPS] = [(4, self.env.ref("base.group_partner_manager").id)]
        with self.assertRaises(AccessError):
            self.box(self.bob).maildesk_move_to_record("mv4", "res.partner", self.company.id)
        self.assertEqual(len(self.copies("mv4")), 2, "nothing moved")

    # -- exclusions ---------------------------------------------------------

    def test_exclude_a_conversation_and_remove_what_was_logged(self):
        self.two_copies("cv1", conversation_id="conv-x", subject="Salary talk")
        self.ingest([self.item("cv2", conversation_id="conv-x")])
        self.ingest([self.item("cv3", conversation_id="conv-y")])
        theirs = self.ingest([self.item("cv9", conversation_id="conv-x", to=[{"email": "bob@contoso.example"}])],
                             mailbox=self.other_box)
        attachments = self.copies("cv1").attachment_ids
        res = self.box(self.anna).maildesk_exclude("conversation", "conv-x", "Salary talk")
        self.assertEqual(res["logged"], 3)
        exclusion = self.env["maildesk.exclusion"].browse(res["id"])
        self.assertEqual((exclusion.kind, exclusion.value, exclusion.label, exclusion.create_uid),
                         ("conversation", "conv-x", "Salary talk", self.anna))
        again = self.box(self.anna).maildesk_exclude("conversation", "conv-x", "Salary talk")
        self.assertEqual(again["id"], res["id"], "excluding twice is one exclusion")
        self.assertEqual(self.box(self.anna).maildesk_remove_excluded_logged(res["id"]), 3)
        self.assertFalse(self.copies("cv1") | self.copies("cv2"))
        self.assertFalse(attachments.exists())
        self.assertTrue(self.copies("cv3"), "another conversation stays")
        self.assertEqual(self.copies("cv9", self.other_box).ids, theirs[0]["odoo_message_ids"],
                         "another mailbox's mail of the conversation stays")
        # later mail of the conversation is not logged
        later = self.ingest([self.item("cv4", conversation_id="conv-x")])
        self.assertEqual(later[0]["status"], "excluded")
        self.assertIn("excluded conversation", later[0]["error"])
        # and the inbox says so for the removed ones
        self.sidecar.answers["message.get"] = {"id": "cv2", "conversation_id": "conv-x", "delivery": "posted",
                                               "internet_message_id": "<cv2@customer.example>",
                                               "from": {"email": "carl@customer.example"}}
        data = self.box(self.anna).maildesk_inbox_message("cv2")
        self.assertEqual(data["placement"]["label"], "Not logged: excluded conversation")

    def test_never_log_mail_with_an_address(self):
        self.two_copies("ad1")  # to Carl and Dora
        self.ingest([self.item("ad2")])  # from Carl
        self.ingest([self.item("ad3", from_={"email": "dora@customer.example"})])
        res = self.box(self.anna).maildesk_exclude("address", " Carl@Customer.example ", "Carl")
        self.assertEqual(res["value"], "carl@customer.example")
        self.assertEqual(res["logged"], 3, "both copies of the mail to Carl and Dora, and Carl's mail")
        self.assertEqual(self.box(self.anna).maildesk_remove_excluded_logged(res["id"]), 3)
        self.assertTrue(self.copies("ad3"))
        later = self.ingest([self.item("ad4")])
        self.assertEqual(later[0]["status"], "excluded")
        self.assertIn("excluded address carl@customer.example", later[0]["error"])

    def test_exclusion_refusals(self):
        with self.assertRaisesRegex(ValidationError, "not a valid e-mail address"):
            self.box(self.anna).maildesk_exclude("address", "not an address")
        with self.assertRaisesRegex(ValidationError, "own address"):
            self.box(self.anna).maildesk_exclude("address", "anna@contoso.example")
        with self.assertRaisesRegex(ValidationError, "no Outlook conversation"):
            self.box(self.anna).maildesk_exclude("conversation", "")
        with self.assertRaises(AccessError):
            self.box(self.bob).maildesk_exclude("address", "carl@customer.example")

    def test_excluded_list_and_undo(self):
        res = self.box(self.anna).maildesk_exclude("address", "carl@customer.example", "Carl")
        listed = self.box(self.olga).maildesk_exclusions()
        self.assertEqual([(e["kind"], e["value"], e["label"], e["user"]) for e in listed],
                         [("address", "carl@customer.example", "Carl", "Anna")])
        with self.assertRaises(AccessError):
            self.mailbox.with_user(self.bob).maildesk_exclusions()
        with self.assertRaises(AccessError):
            self.other_box.with_user(self.bob).maildesk_remove_exclusion(res["id"])
        self.assertEqual(self.ingest([self.item("un1")])[0]["status"], "excluded")
        self.box(self.anna).maildesk_remove_exclusion(res["id"])
        self.assertFalse(self.box(self.anna).maildesk_exclusions())
        self.assertEqual(self.ingest([self.item("un2")])[0]["status"], "posted", "logged again after undo")

    # -- the chatter says which mailbox ----------------------------------

    def test_chatter_says_which_mailbox_a_logged_mail_came_from(self):
        self.ingest([self.item("ch1")])
        logged = self.copies("ch1")
        note = self.customer.message_post(body="a note", message_type="comment")
        # Any internal user who reads the contact; Bob cannot read Anna's mailbox.
        messages = self.env["mail.message"].with_user(self.bob).browse((logged | note).ids)
        if compat.SERIES >= 18:
            from odoo.addons.mail.tools.discuss import Store

            if compat.SERIES >= 19:
                result = Store().add(messages).get_result()
            else:
                result = Store(messages, for_current_user=True).get_result()
            formatted = result["mail.message"]
        else:  # 17.0: no store, the web client reads message_format
            formatted, result = messages.message_format(), {}
        by_id = {m["id"]: m for m in formatted}
        self.assertEqual(by_id[logged.id]["maildesk_via"], "anna@contoso.example")
        self.assertNotIn("maildesk_via", by_id[note.id])
        self.assertNotIn("maildesk_mailbox_id", by_id[logged.id], "only the address leaves, not the mailbox")
        self.assertNotIn("maildesk.mailbox", result)
