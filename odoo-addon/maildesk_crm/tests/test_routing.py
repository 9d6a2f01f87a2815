# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Routing rules: open opportunities and quotations before contacts; the
preview shows, message for message, what then lands.

Ingest runs as the bridge user; the preview as the mailbox's owner (a plain
MailDesk user)."""

from odoo import fields
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from odoo.addons.maildesk.tests.common import MaildeskCase
from odoo.addons.maildesk.compat import USER_GROUPS


@tagged("post_install", "-at_install")
class TestRouting(MaildeskCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["ir.config_parameter"].sudo().set_param("maildesk.internal_domains", "contoso.example")
        cls.acme = cls.env["res.partner"].create(
            {"name": "Acme", "is_company": True, "email": "info@acme.example"}
        )
        cls.wile = cls.env["res.partner"].create(
            {"name": "Wile", "email": "wile@acme.example", "parent_id": cls.acme.id}
        )
        cls.won_stage = cls.env["crm.stage"].search([("is_won", "=", True)], limit=1) or cls.env["crm.stage"].create(
            {"name": "Won", "is_won": True}
        )
        cls.team = cls.env["crm.team"].create({"name": "Inbound", "use_leads": True})
        cls.salesman = cls.env["res.users"].create(
            {
                "name": "Sam Sales",
                "login": "md_route_sam",
                USER_GROUPS: [(6, 0, [cls.env.ref("sales_team.group_sale_salesman").id])],
            }
        )

    def lead(self, name, partner, **vals):
        return self.env["crm.lead"].create(dict({"name": name, "type": "opportunity", "partner_id": partner.id},
                                                **vals))

    def touch(self, record, when):
        """Make ``record`` active at ``when`` (write_date is what "most recently active" reads)."""
        record.flush_recordset()
        self.env.cr.execute("UPDATE %s SET write_date = %%s WHERE id = %%s" % record._table, (when, record.id))
        record.invalidate_recordset()

    def test_rules_of_a_new_log_mailbox(self):
        models_ = self.mailbox.route_rule_ids.mapped("model")
        self.assertEqual(models_[0], "crm.lead")
        if "sale.order" in self.env:
            self.assertEqual(models_[1], "sale.order")

    def test_an_open_opportunity_wins_over_a_won_one_and_the_contact(self):
        won = self.lead("Won deal", self.wile, stage_id=self.won_stage.id)
        open_ = self.lead("Open deal", self.wile)
        self.touch(won, "2030-01-01 00:00:00")  # the won one is newer: still not chosen
        res = self.ingest([self.item("r1", from_={"email": "wile@acme.example"})])
        self.assertEqual(res[0]["records"], [["crm.lead", open_.id]], res)
        msg = self.env["mail.message"].browse(res[0]["odoo_message_ids"])
        self.assertEqual((msg.model, msg.res_id), ("crm.lead", open_.id))

    def test_lost_opportunities_never_match(self):
        lost = self.lead("Lost deal", self.wile)
        lost.action_set_lost()
        res = self.ingest([self.item("r2", from_={"email": "wile@acme.example"})])
        self.assertEqual(res[0]["records"], [["res.partner", self.wile.id]], res)

    def test_the_most_recently_active_of_two_open_opportunities(self):
        older = self.lead("Older", self.wile)
        newer = self.lead("Newer", self.acme)  # the company's: a colleague's opportunity counts too
        self.touch(older, "2026-01-01 00:00:00")
        self.touch(newer, "2026-06-01 00:00:00")
        res = self.ingest([self.item("r3", from_={"email": "wile@acme.example"})])
        self.assertEqual(res[0]["records"], [["crm.lead", newer.id]], res)
        self.touch(older, "2026-09-01 00:00:00")
        res = self.ingest([self.item("r4", from_={"email": "wile@acme.example"})])
        self.assertEqual(res[0]["records"], [["crm.lead", older.id]], res)

    def test_a_quotation_when_no_opportunity_is_open(self):
        if "sale.order" not in self.env:
            self.skipTest("sale is not installed")
        order = self.env["sale.order"].create({"partner_id": self.wile.id})
        res = self.ingest([self.item("r5", from_={"email": "wile@acme.example"})])
        self.assertEqual(res[0]["records"], [["sale.order", order.id]], res)
        order.action_cancel()
        res = self.ingest([self.item("r6", from_={"email": "wile@acme.example"})])
        self.assertEqual(res[0]["records"], [["res.partner", self.wile.id]], "a cancelled order is not open")

    def test_documents_of_several_customers_go_on_the_contacts_with_candidates(self):
        a = self.lead("Acme deal", self.wile)
        b = self.lead("Customer deal", self.customer)
        res = self.ingest([self.item("r7", direction="out", from_={"email": "anna@contoso.example"},
                                     to=[{"email": "wile@acme.example"}, {"email": "carl@customer.example"}])])
        self.assertEqual(sorted(map(tuple, res[0]["records"])),
                         sorted([("res.partner", self.wile.id), ("res.partner", self.customer.id)]), res)
        self.assertEqual(sorted(map(tuple, res[0]["candidates"])), sorted([("crm.lead", a.id), ("crm.lead", b.id)]))
        msg = self.env["mail.message"].browse(res[0]["odoo_message_ids"][0])
        self.assertIn("crm.lead,%s" % a.id, msg.maildesk_candidates)

    def test_unknown_address_of_a_known_company_lands_on_the_company(self):
        res = self.ingest([self.item("r8", from_={"email": "road.runner@acme.example"})])
        self.assertEqual(res[0]["records"], [["res.partner", self.acme.id]], res)

    def test_unknown_sender_creates_one_lead_with_team_and_salesperson(self):
        self.mailbox.write({
            "unrouted_action": "create",
            "new_record_model_id": self.env["ir.model"]._get_id("crm.lead"),
            "gateway_team_id": self.team.id,
            "gateway_user_id": self.salesman.id,
        })
        res = self.ingest([
            self.item("n1", from_={"name": "Nina New", "email": "nina@new.example"}, conversation_id="conv-n",
                      subject="Need 40 chairs"),
            self.item("n2", from_={"email": "nina@new.example"}, conversation_id="conv-n",
                      subject="RE: Need 40 chairs"),
        ])
        leads = self.env["crm.lead"].search([("email_from", "ilike", "nina@new.example")])
        self.assertEqual(len(leads), 1, res)
        self.assertEqual(leads.team_id, self.team)
        self.assertEqual(leads.user_id, self.salesman)
        self.assertEqual([r["records"] for r in res], [[["crm.lead", leads.id]]] * 2, res)
        # The next mail of the conversation, in a later batch, lands there too.
        res = self.ingest([self.item("n3", from_={"email": "nina@new.example"}, conversation_id="conv-n")])
        self.assertEqual(res[0]["records"], [["crm.lead", leads.id]])
        self.assertEqual(self.env["crm.lead"].search_count([("email_from", "ilike", "nina@new.example")]), 1)

    def test_a_deleted_target_falls_back_to_the_next_rule(self):
        deal = self.lead("Deal", self.wile)
        first = self.ingest([self.item("d1", from_={"email": "wile@acme.example"}, conversation_id="conv-d")])
        self.assertEqual(first[0]["records"], [["crm.lead", deal.id]])
        deal.unlink()
        res = self.ingest([
            self.item("d2", from_={"email": "wile@acme.example"}, conversation_id="conv-d",
                      headers={"in-reply-to": "<d1@customer.example>"}),
            self.item("d3"),
        ])
        self.assertEqual(res[0]["status"], "posted", res)
        self.assertEqual(res[0]["records"], [["res.partner", self.wile.id]])
        self.assertEqual(res[1]["status"], "posted", "the batch goes on")

    def test_rules_a_bridge_could_not_apply_are_refused_at_save(self):
        Rule = self.env["maildesk.route.rule"]
        base = {"mailbox_id": self.mailbox.id, "model_id": self.env["ir.model"]._get_id("crm.lead")}
        with self.assertRaisesRegex(ValidationError, "does not work"):
            Rule.create(dict(base, domain="[('stage_id.is_won', '=', False"))
        with self.assertRaisesRegex(ValidationError, "does not work"):
            Rule.create(dict(base, domain="[('no_such_field', '=', 1)]"))
        with self.assertRaisesRegex(ValidationError, "not a field of .* that holds a contact"):
            Rule.create(dict(base, partner_field="user_id"))
        self.env["ir.config_parameter"].sudo().set_param("maildesk.allowed_models", "res.partner")
        with self.assertRaisesRegex(ValidationError, "may not log mail on"):
            Rule.create(base)

    def test_preview_matches_what_lands_message_for_message(self):
        """The owner previews the mailbox's last days; the mailbox is switched
        on; what lands is what the preview said, item by item."""
        self.mailbox.write({
            "unrouted_action": "create",
            "new_record_model_id": self.env["ir.model"]._get_id("crm.lead"),
            "excluded_domains": "bank.example",
            "log_scope": "manual",
        })
        deal = self.lead("Deal", self.wile)
        won = self.lead("Won", self.customer, stage_id=self.won_stage.id)
        day = fields.Datetime.now().replace(microsecond=0)

        def at(minutes):
            when = fields.Datetime.subtract(day, minutes=minutes)
            return fields.Datetime.to_string(when).replace(" ", "T") + "Z"

        items = [
            self.item("v1", from_={"email": "wile@acme.example"}, conversation_id="c1", received_at=at(90)),
            self.item("v2", direction="out", from_={"email": "anna@contoso.example"},
                      to=[{"email": "wile@acme.example"}], conversation_id="c1", received_at=at(80),
                      headers={"in-reply-to": "<v1@customer.example>"}),
            self.item("v3", received_at=at(70)),  # Carl: only a won deal -> his contact
            self.item("v4", from_={"email": "new@stranger.example"}, conversation_id="c4", received_at=at(60)),
            self.item("v5", from_={"email": "new@stranger.example"}, conversation_id="c4", received_at=at(50)),
            self.item("v6", from_={"email": "ben@contoso.example"}, received_at=at(40)),  # internal
            self.item("v7", sensitivity="private", received_at=at(30)),
            self.item("v8", from_={"email": "x@bank.example"}, received_at=at(20)),
            self.item("v9", from_={"email": "someone@acme.example"}, received_at=at(10)),  # Acme's domain
        ]
        # The sidecar answers preview_items with the items minus their bodies.
        self.sidecar.answers["mailbox.preview_items"] = {
            "items": [{k: v for k, v in i.items() if k not in ("body_html", "attachments")} for i in items],
            "truncated": False,
            "total": len(items),
        }
        preview = self.mailbox.with_user(self.anna).preview_routing(days=2)
        self.assertFalse(self.env["crm.lead"].search_count([("email_from", "ilike", "new@stranger.example")]),
                         "the preview writes nothing")
        # Kept back while "log only what I choose" is on.
        kept = self.ingest(items)
        self.assertEqual({r["status"] for r in kept}, {"excluded"})
        self.mailbox.log_scope = "auto"
        self.assertIn("mailbox.redeliver", self.sidecar.methods())
        landed = self.ingest(items)  # what the sidecar redelivers

        lines = {line["graph_id"]: line for line in preview["lines"]}
        self.assertEqual(len(lines), len(items))
        new_records = {}
        for result in landed:
            line = lines[result["graph_id"]]
            if line["outcome"] == "excluded":
                self.assertEqual(result["status"], "excluded", (line, result))
                self.assertIn(line["reason"], result["error"])
            elif line["outcome"] == "unrouted":
                self.assertEqual(result["status"], "unrouted", (line, result))
            elif line["outcome"] == "record":
                self.assertEqual(result["status"], "posted", (line, result))
                self.assertEqual([[t["model"], t["res_id"]] for t in line["targets"]], result["records"])
            else:
                self.assertEqual(line["outcome"], "new", line)
                self.assertEqual(result["status"], "posted", (line, result))
                self.assertEqual([t["model"] for t in line["targets"]], [r[0] for r in result["records"]])
                # The same planned record in the preview is the same created record.
                for target, record in zip(line["targets"], result["records"]):
                    new_records.setdefault(target["key"], record)
                    self.assertEqual(new_records[target["key"]], record, (line, result))
        self.assertEqual(lines["v1"]["targets"][0]["res_id"], deal.id)
        self.assertEqual(lines["v2"]["rule"], "thread")
        self.assertEqual(lines["v3"]["targets"][0]["model"], "res.partner")
        self.assertNotEqual(lines["v3"]["targets"][0]["res_id"], won.id)
        self.assertEqual((lines["v4"]["outcome"], lines["v5"]["outcome"]), ("new", "new"))
        self.assertEqual([lines["v%d" % i]["reason"] for i in (6, 7, 8)],
                         ["internal mail", "private (Outlook sensitivity)", "excluded domain bank.example"])
        self.assertEqual(preview["totals"]["excluded"], 3)
        self.assertEqual(preview["totals"]["record:crm.lead"], 3)
        self.assertEqual(lines["v9"]["targets"][0]["res_id"], deal.id, "a new address of Acme: Acme's deal")
        self.assertEqual(self.env["crm.lead"].search_count([("email_from", "ilike", "new@stranger.example")]), 1)

    def test_preview_is_for_the_owner_and_admins(self):
        self.sidecar.answers["mailbox.preview_items"] = {"items": [], "truncated": False, "total": 0}
        self.mailbox.user_ids = [(4, self.bob.id)]
        with self.assertRaises(Exception):
            self.mailbox.with_user(self.bob).preview_routing()
        self.assertEqual(self.mailbox.with_user(self.admin_user).preview_routing()["lines"], [])
        action = self.mailbox.with_user(self.anna).action_preview_routing()
        self.assertEqual(action["res_model"], "maildesk.preview.wizard")
