# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""What is never logged, and in which order the privacy rules apply.

Every ingest runs as the bridge user, as the sidecar calls it."""

from odoo.exceptions import ValidationError
from odoo.tests import tagged

from odoo.addons.maildesk.compat import USER_GROUPS

from .common import MaildeskCase


@tagged("post_install", "-at_install")
class TestPrivacy(MaildeskCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["ir.config_parameter"].sudo().set_param("maildesk.internal_domains", "contoso.example")
        cls.colleague = {"name": "Ben", "email": "ben@contoso.example"}

    def on_customer(self, graph_id):
        return self.env["mail.message"].search(
            [("maildesk_graph_id", "=", graph_id), ("model", "=", "res.partner"), ("res_id", "=", self.customer.id)]
        )

    def assertExcluded(self, result, reason):
        self.assertEqual(result["status"], "excluded", result)
        self.assertIn(reason, result["error"])
        self.assertFalse(result["odoo_message_ids"])
        self.assertFalse(self.env["mail.message"].search([("maildesk_graph_id", "=", result["graph_id"])]))

    def test_private_and_confidential_mail_is_never_logged(self):
        res = self.ingest([
            self.item("p1", sensitivity="private"),
            self.item("p2", sensitivity="confidential"),
            self.item("p3", sensitivity="personal"),
            self.item("p4", sensitivity="normal"),
            self.item("p5", headers={"sensitivity": "Company-Confidential"}),
        ])
        self.assertExcluded(res[0], "private")
        self.assertExcluded(res[1], "private")
        self.assertExcluded(res[4], "private")
        self.assertEqual([r["status"] for r in res[2:4]], ["posted", "posted"], res)
        self.assertTrue(self.on_customer("p4"))

    def test_internal_mail_is_never_logged(self):
        ben = self.env["res.partner"].create({"name": "Ben", "email": "ben@contoso.example"})
        res = self.ingest([
            self.item("i1", from_=self.colleague),
            self.item("i2", from_=self.colleague, cc=[{"email": "carl@customer.example"}]),
        ])
        self.assertExcluded(res[0], "internal mail")
        self.assertEqual(res[1]["status"], "posted", "a customer among the participants: not internal")
        self.assertFalse(self.env["mail.message"].search([("model", "=", "res.partner"), ("res_id", "=", ben.id),
                                                          ("maildesk_graph_id", "=", "i1")]))

    def test_internal_domains_default_from_company_and_users_not_webmail(self):
        self.env["ir.config_parameter"].sudo().set_param("maildesk.internal_domains", "")
        self.env.company.email = "info@ourco.example"
        self.anna.email = "anna@gmail.com"
        domains = self.env["maildesk.mailbox"]._internal_domains()
        self.assertIn("ourco.example", domains)
        self.assertIn("contoso.example", domains, "the mailboxes' domain")
        self.assertNotIn("gmail.com", domains)

    def test_a_colleagues_reply_to_a_logged_thread_lands_on_its_record(self):
        first = self.ingest([self.item("t1", conversation_id="conv-t")])
        self.assertEqual(first[0]["status"], "posted")
        # Ben answers Anna internally, in the same Outlook conversation.
        res = self.ingest([self.item("t2", from_=self.colleague, conversation_id="conv-t",
                                     headers={"in-reply-to": "<t1@customer.example>"})])
        self.assertEqual(res[0]["status"], "posted", res)
        self.assertEqual(res[0]["records"], [["res.partner", self.customer.id]])

    def test_excluded_addresses_and_domains(self):
        self.mailbox.write({"excluded_addresses": "ceo@customer.example\nx@bank.example",
                            "excluded_domains": "lawyers.example, @bank.example"})
        res = self.ingest([
            self.item("e1", from_={"email": "ceo@customer.example"}),
            self.item("e2", from_={"email": "amy@lawyers.example"}),
            self.item("e3", from_={"email": "bob@eu.lawyers.example"}),
            self.item("e4", direction="out", from_={"email": "anna@contoso.example"},
                      to=[{"email": "carl@customer.example"}, {"email": "x@bank.example"}]),
            self.item("e5"),
        ])
        self.assertExcluded(res[0], "excluded address ceo@customer.example")
        self.assertExcluded(res[1], "excluded domain lawyers.example")
        self.assertExcluded(res[2], "excluded domain eu.lawyers.example")
        self.assertExcluded(res[3], "excluded address x@bank.example")
        self.assertEqual(res[4]["status"], "posted")

    def test_bad_address_lists_are_refused_at_save_saying_which(self):
        with self.assertRaisesRegex(ValidationError, "not an e-mail address: nobody, a@@b"):
            self.mailbox.write({"excluded_addresses": "ok@customer.example, nobody, a@@b"})
        with self.assertRaisesRegex(ValidationError, r"not a domain name: http://x\.example/"):
            self.mailbox.write({"excluded_domains": "good.example http://x.example/"})

    def test_users_exclude_a_conversation_and_a_correspondent_from_the_inbox(self):
        Exclusion = self.env["maildesk.exclusion"].with_user(self.anna)
        # Anna owns the mailbox: she may exclude; later mail stays out.
        Exclusion.create({"mailbox_id": self.mailbox.id, "kind": "conversation", "value": "conv-x"})
        Exclusion.create({"mailbox_id": self.mailbox.id, "kind": "address", "value": "Dan <DAN@prospect.example>"})
        res = self.ingest([
            self.item("x1", conversation_id="conv-x"),
            self.item("x2", from_={"email": "dan@prospect.example"}),
            self.item("x3", conversation_id="conv-y"),
        ])
        self.assertExcluded(res[0], "excluded conversation")
        self.assertExcluded(res[1], "excluded address dan@prospect.example")
        self.assertEqual(res[2]["status"], "posted")
        # Bob is no user of the mailbox: he sees nothing and excludes nothing.
        self.assertFalse(self.env["maildesk.exclusion"].with_user(self.bob).search([]))

    def test_log_only_what_i_choose(self):
        self.mailbox.log_scope = "manual"
        self.anna[USER_GROUPS] = [(4, self.env.ref("base.group_partner_manager").id)]
        res = self.ingest([self.item("m1")])
        self.assertExcluded(res[0], "log only what I choose")
        # The owner chooses: Log to record still logs it.
        self.mailbox.with_user(self.anna).maildesk_log_to_record("m1", "res.partner", self.customer.id)
        res = self.ingest([self.item("m1", target={"model": "res.partner", "res_id": self.customer.id})])
        self.assertEqual(res[0]["status"], "posted", res)

    def test_switching_logging_on_routes_the_kept_mail_again(self):
        self.mailbox.log_scope = "manual"
        self.sidecar.calls.clear()
        self.mailbox.log_scope = "auto"
        self.assertIn("mailbox.redeliver", self.sidecar.methods())

    def test_gateway_mailbox_honours_exclusions(self):
        shared = self.env["maildesk.mailbox"].create({
            "email": "support@contoso.example", "mode": "gateway",
            "gateway_model_id": self.env["ir.model"]._get_id("res.partner"),
            "excluded_domains": "bank.example",
        })
        raw = (b"From: Eve <eve@bank.example>\r\nTo: support@contoso.example\r\nSubject: s\r\n"
               b"Message-ID: <gw-x@bank.example>\r\n\r\nhello\r\n")
        res = self.ingest([self.mime_item("gx1", raw), self.item("gx2", sensitivity="private")], mailbox=shared)
        self.assertExcluded(res[0], "excluded domain bank.example")
        self.assertExcluded(res[1], "private")
