# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""A batch routes each mail as a call of its own would.

Ingest searches each routing rule's documents once for all the customers of a
batch and cuts each mail's answer out of that search (maildesk_ingest.py,
``_rule_batch_matches``). Here the same mails go in one batch, one call each,
and one batch with that shortcut off (more documents than it takes): the
records, candidates and rules must be the same. Ingest runs as the bridge
user."""

from unittest.mock import patch

from odoo.tests import tagged

from odoo.addons.maildesk.models import maildesk_ingest
from odoo.addons.maildesk.tests.common import MaildeskCase


@tagged("post_install", "-at_install")
class TestRoutingBatch(MaildeskCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["ir.config_parameter"].sudo().set_param("maildesk.internal_domains", "contoso.example")
        Partner = cls.env["res.partner"]
        cls.acme = Partner.create({"name": "Acme", "is_company": True, "email": "info@acme.example"})
        # A company inside a company: its contacts are child_of both.
        cls.acme_eu = Partner.create({"name": "Acme EU", "is_company": True, "parent_id": cls.acme.id,
                                      "email": "eu@acme-eu.example"})
        cls.ann = Partner.create({"name": "Ann", "email": "ann@acme-eu.example", "parent_id": cls.acme_eu.id})
        cls.carl = Partner.create({"name": "Carl", "email": "carl@acme.example", "parent_id": cls.acme.id})
        # An archived contact still counts for child_of.
        cls.bert = Partner.create({"name": "Bert", "email": "bert@acme.example", "parent_id": cls.acme.id,
                                  "active": False})
        cls.zed = Partner.create({"name": "Zed", "is_company": True, "email": "info@zed.example"})
        cls.zoe = Partner.create({"name": "Zoe", "email": "zoe@zed.example", "parent_id": cls.zed.id})
        cls.solo = Partner.create({"name": "Solo", "email": "solo@solo.example"})
        Lead = cls.env["crm.lead"]
        cls.lead_eu = Lead.create({"name": "EU deal", "type": "opportunity", "partner_id": cls.ann.id})
        cls.lead_bert = Lead.create({"name": "Bert deal", "type": "opportunity", "partner_id": cls.bert.id})
        cls.lead_zed = Lead.create({"name": "Zed deal", "type": "opportunity", "partner_id": cls.zed.id})
        # A lead without a customer, found by its e-mail.
        cls.lead_new = Lead.create({"name": "New prospect", "type": "lead", "email_from": "Neo <neo@new.example>"})
        cls.shared = cls.env["maildesk.mailbox"].create({
            "email": "sales@contoso.example", "kind": "shared", "mode": "gateway",
            "gateway_model_id": cls.env["ir.model"]._get_id("crm.lead"), "main_user_id": cls.bob.id,
        })
        cls.senders = ["ann@acme-eu.example", "carl@acme.example", "zoe@zed.example", "neo@new.example",
                       "solo@solo.example", "eu@acme-eu.example", "info@acme.example", "nobody@else.example"]

    def mails(self, prefix):
        return [self.item("%s-%d" % (prefix, i), from_={"email": sender})
                for i, sender in enumerate(self.senders)]

    @staticmethod
    def answers(results):
        return [(r["status"], r["records"], r.get("candidates"), r.get("rule")) for r in results]

    def test_batch_routes_as_one_call_per_mail(self):
        alone = [self.ingest([mail])[0] for mail in self.mails("alone")]
        batch = self.ingest(self.mails("batch"))
        with patch.object(maildesk_ingest, "RULE_BATCH_LIMIT", 1):
            unbatched = self.ingest(self.mails("unbatched"))
        self.assertEqual(self.answers(batch), self.answers(alone))
        self.assertEqual(self.answers(unbatched), self.answers(alone))
        records = [r["records"] for r in batch]
        self.assertEqual(records[0], [["crm.lead", self.lead_eu.id]])
        # Carl's company holds two customers' deals (Acme EU's and archived
        # Bert's, whose company is Acme): the mail goes on Carl, both offered.
        self.assertEqual(records[1], [["res.partner", self.carl.id]])
        self.assertEqual(sorted(map(tuple, batch[1]["candidates"])),
                         sorted([("crm.lead", self.lead_eu.id), ("crm.lead", self.lead_bert.id)]))
        self.assertEqual(records[2], [["crm.lead", self.lead_zed.id]])
        self.assertEqual(records[3], [["crm.lead", self.lead_new.id]])
        self.assertEqual(records[4], [["res.partner", self.solo.id]])
        self.assertEqual(records[5], [["crm.lead", self.lead_eu.id]])
        self.assertEqual(batch[7]["status"], "unrouted")

    def test_a_lead_the_gateway_creates_is_found_by_later_mail_of_the_batch(self):
        """A gateway mailbox: Odoo's gateway makes a lead of a prospect's mail;
        mail sent to the prospect later in the same batch goes on that lead,
        although the batch looked the rules up (for another customer) before
        the lead existed."""
        shared = self.shared
        prospect = self.env["res.partner"].create({"name": "Pia", "email": "pia@prospect.example"})
        to_sales = [{"email": "sales@contoso.example"}]
        res = self.ingest([
            # Sent to Zoe first: the rules are looked up for the batch here.
            self.item("gw-1", direction="out", from_={"email": "sales@contoso.example"},
                      to=[{"email": "zoe@zed.example"}], conversation_id="c-zoe"),
            self.item("gw-2", from_={"name": "Pia", "email": "pia@prospect.example"}, to=to_sales,
                      subject="Need a quote", conversation_id="c-pia"),
            self.item("gw-3", direction="out", from_={"email": "sales@contoso.example"},
                      to=[{"email": "pia@prospect.example"}], subject="Other matter", conversation_id="c-pia-2"),
        ], mailbox=shared, options={"backfill": True})
        self.assertEqual([r["status"] for r in res], ["posted"] * 3, res)
        self.assertEqual(res[0]["records"], [["crm.lead", self.lead_zed.id]])
        lead = self.env["crm.lead"].browse(res[1]["records"][0][1])
        self.assertEqual(lead.partner_id, prospect, res)
        self.assertEqual(res[2]["records"], [["crm.lead", lead.id]], res)
