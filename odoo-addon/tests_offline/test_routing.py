"""Privacy and list helpers of routing (lib/routing.py)."""

import unittest

from _paths import ADDON  # noqa: F401 - puts lib/ on sys.path
from lib import routing


class TestRoutingLists(unittest.TestCase):
    def test_parse_addresses_reports_bad_entries(self):
        good, bad = routing.parse_addresses("Ann@X.example, bob@y.example\nnobody; a@@b  c@d")
        self.assertEqual(good, ["ann@x.example", "bob@y.example"])
        self.assertEqual(bad, ["nobody", "a@@b", "c@d"])
        self.assertEqual(routing.parse_addresses(""), ([], []))

    def test_parse_domains(self):
        good, bad = routing.parse_domains("Bank.example, @x.org\nhttp://y.example/ sub.a-b.example. -bad.example")
        self.assertEqual(good, ["bank.example", "x.org", "sub.a-b.example"])
        self.assertEqual(bad, ["http://y.example/", "-bad.example"])

    def test_in_domains_counts_subdomains_only(self):
        self.assertTrue(routing.in_domains("a@eu.contoso.example", {"contoso.example"}))
        self.assertTrue(routing.in_domains("a@contoso.example", {"contoso.example"}))
        self.assertFalse(routing.in_domains("a@notcontoso.example", {"contoso.example"}))
        self.assertFalse(routing.in_domains("", {"contoso.example"}))

    def test_company_domains_leave_out_public_webmail_and_placeholders(self):
        self.assertEqual(routing.company_domains(["Ann <ann@Contoso.example>", "x@gmail.com", "", "bad",
                                                  "admin@example.com"]),
                         ["contoso.example"])

    def test_default_domains_match_exactly(self):
        self.assertFalse(routing.in_domains("billing@acme.contoso.example", {"contoso.example"}, subdomains=False))
        self.assertTrue(routing.in_domains("a@contoso.example", {"contoso.example"}, subdomains=False))
        self.assertFalse(routing.is_internal(["a@contoso.example", "b@eu.contoso.example"], {"contoso.example"},
                                             subdomains=False))

    def test_internal_needs_every_participant_inside(self):
        inside = {"contoso.example"}
        self.assertTrue(routing.is_internal(["a@contoso.example", "b@eu.contoso.example"], inside))
        self.assertFalse(routing.is_internal(["a@contoso.example", "c@customer.example"], inside))
        self.assertFalse(routing.is_internal([], inside))
        self.assertFalse(routing.is_internal(["a@contoso.example"], set()))

    def test_exclusion_reason_order(self):
        args = dict(participants=["c@customer.example"], correspondents=["c@customer.example"], headers={},
                    addresses={"c@customer.example"}, domains={"customer.example"}, conversation_excluded=True)
        self.assertEqual(routing.exclusion_reason(sensitivity="private", **args), "private (Outlook sensitivity)")
        self.assertEqual(routing.exclusion_reason(sensitivity="normal", **args), "excluded conversation")
        args["conversation_excluded"] = False
        self.assertEqual(routing.exclusion_reason(sensitivity="", **args), "excluded address c@customer.example")
        args["addresses"] = set()
        self.assertEqual(routing.exclusion_reason(sensitivity="", **args), "excluded domain customer.example")
        args["domains"] = set()
        self.assertEqual(routing.exclusion_reason(sensitivity="personal", **args), "")
        self.assertTrue(routing.is_private("", {"sensitivity": "Company-Confidential"}))

    def test_domain_fields_and_totals(self):
        self.assertEqual(routing.domain_fields("[('stage_id.is_won', '=', False), '|', ('a', '=', 1)]"),
                         ["stage_id", "a"])
        self.assertEqual(routing.domain_fields("not a domain"), [])
        lines = [{"outcome": "record", "model": "crm.lead"}, {"outcome": "record", "model": "crm.lead"},
                 {"outcome": "excluded", "model": ""}, {"outcome": "new", "model": "res.partner"}]
        self.assertEqual(routing.totals(lines), {"excluded": 1, "new:res.partner": 1, "record:crm.lead": 2})
