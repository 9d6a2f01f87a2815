# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo.tests import tagged

from odoo.addons.maildesk.tests.common import MaildeskCase
from odoo.addons.maildesk.compat import USER_GROUPS


@tagged("post_install", "-at_install")
class TestGatewayTeam(MaildeskCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.team = cls.env["crm.team"].create({"name": "Inbound", "use_leads": True})
        cls.other_team = cls.env["crm.team"].create({"name": "Other", "use_leads": True})
        cls.salesman = cls.env["res.users"].create(
            {
                "name": "Sam Sales",
                "login": "md_crm_sam",
                USER_GROUPS: [(6, 0, [cls.env.ref("sales_team.group_sale_salesman").id])],
            }
        )
        # Sam belongs to another team: the mailbox's team still wins.
        cls.env["crm.team.member"].create({"crm_team_id": cls.other_team.id, "user_id": cls.salesman.id})
        cls.shared = cls.env["maildesk.mailbox"].create(
            {
                "email": "sales@contoso.example",
                "kind": "shared",
                "mode": "gateway",
                "gateway_model_id": cls.env["ir.model"]._get_id("crm.lead"),
                "gateway_team_id": cls.team.id,
                "gateway_user_id": cls.salesman.id,
                "main_user_id": cls.bob.id,
            }
        )

    def test_leads_get_the_mailbox_team_and_salesperson(self):
        for options in ({}, {"backfill": True}):
            graph_id = "team-%s" % bool(options)
            res = self.ingest([self.item(graph_id, subject="Lead %s" % graph_id)], mailbox=self.shared,
                              options=options)
            self.assertEqual(res[0]["status"], "posted", res)
            lead = self.env["crm.lead"].browse(res[0]["records"][0][1])
            self.assertEqual(lead.team_id, self.team)
            self.assertEqual(lead.user_id, self.salesman)

    def test_team_only_where_the_model_has_one(self):
        """Contacts have a sales team only with Sales installed; the salesperson always applies."""
        self.shared.gateway_model_id = self.env["ir.model"]._get_id("res.partner")
        values = self.shared._gateway_custom_values()
        if "team_id" in self.env["res.partner"]._fields:
            self.assertEqual(values["team_id"], self.team.id)
        else:
            self.assertNotIn("team_id", values)
        res = self.ingest([self.item("team-p", subject="Contact request")], mailbox=self.shared)
        self.assertEqual(res[0]["status"], "posted", res)
        partner = self.env["res.partner"].browse(res[0]["records"][0][1])
        self.assertEqual(partner.user_id, self.salesman)
