"""The gateway ingest's per-batch cache (lib/gateway_cache.py): which alias
lookups it may answer "no alias" without the database, and its keys."""

import unittest

from _paths import ADDON  # noqa: F401 - puts lib/ on sys.path
from lib import gateway_cache as gc

INDEX = ({"sales@contoso.example", "jobs@contoso.example"}, {"jobs"})


class FakeEnv:
    def __init__(self, context=None, uid=1, su=False):
        self.context, self.uid, self.su = context or {}, uid, su


class FakeRecords:
    _name = "mail.alias"

    def __init__(self, env):
        self.env = env


class TestAliasLookups(unittest.TestCase):
    def test_full_name_lookups(self):
        self.assertTrue(gc.alias_lookup_is_empty([("alias_full_name", "in", ["dora@prospect.example"])], INDEX))
        self.assertTrue(gc.alias_lookup_is_empty([("alias_full_name", "=", "dora@prospect.example")], INDEX))
        self.assertTrue(gc.alias_lookup_is_empty([["alias_full_name", "in", []]], INDEX))
        self.assertFalse(gc.alias_lookup_is_empty(
            [("alias_full_name", "in", ["dora@prospect.example", "sales@contoso.example"])], INDEX))
        self.assertFalse(gc.alias_lookup_is_empty([("alias_full_name", "=", "sales@contoso.example")], INDEX))

    def test_local_part_lookups(self):
        def domain(emails, parts):
            return ["|", ("alias_full_name", "in", emails), "&", ("alias_name", "in", parts),
                    ("alias_incoming_local", "=", True)]

        self.assertTrue(gc.alias_lookup_is_empty(domain(["dora@prospect.example"], ["dora"]), INDEX))
        self.assertFalse(gc.alias_lookup_is_empty(domain(["jobs@other.example"], ["jobs"]), INDEX),
                         "an alias taking its local part on any domain")
        self.assertFalse(gc.alias_lookup_is_empty(domain(["sales@contoso.example"], ["sales"]), INDEX))

    def test_other_domains_ask_the_database(self):
        for domain in (
            [],
            [("alias_name", "in", ["dora"])],
            [("alias_full_name", "ilike", "dora")],
            [("alias_full_name", "in", [False])],
            [("alias_full_name", "in", ["dora@prospect.example"]), ("alias_model_id", "=", 3)],
            ["|", ("alias_full_name", "in", ["d@x.example"]), "&", ("alias_name", "in", ["d"]),
             ("alias_incoming_local", "=", False)],
            "alias_full_name",
        ):
            self.assertFalse(gc.alias_lookup_is_empty(domain, INDEX), domain)


class TestKeys(unittest.TestCase):
    def test_search_keys(self):
        records = FakeRecords(FakeEnv({"lang": "en_US"}))
        key = gc.search_key(records, "search", [("alias_full_name", "in", ["a@b.example"])], 0, 1, None)
        self.assertEqual(key, gc.search_key(records, "search", [("alias_full_name", "in", ["a@b.example"])], 0, 1, None))
        self.assertNotEqual(key, gc.search_key(records, "search", [("alias_full_name", "in", ["a@b.example"])], 0, None, None))
        self.assertNotEqual(key, gc.search_key(FakeRecords(FakeEnv({"lang": "en_US"}, uid=2)), "search",
                                               [("alias_full_name", "in", ["a@b.example"])], 0, 1, None))
        self.assertNotEqual(key, gc.search_key(FakeRecords(FakeEnv({"lang": "en_US", "active_test": False})), "search",
                                               [("alias_full_name", "in", ["a@b.example"])], 0, 1, None))
        self.assertIsNone(gc.search_key(records, "search", [("alias_id", "in", object())], 0, None, None),
                          "domains holding more than plain values are not cached")

    def test_fields_keys_ignore_maildesks_own_context(self):
        a = FakeRecords(FakeEnv({"lang": "en_US", "maildesk_gateway_stamp": {"x": 1}}))
        b = FakeRecords(FakeEnv({"lang": "en_US", "maildesk_gateway_stamp": {"x": 2}}))
        self.assertEqual(gc.fields_key(a, None, None), gc.fields_key(b, None, None))
        self.assertNotEqual(gc.fields_key(a, None, None), gc.fields_key(FakeRecords(FakeEnv({"lang": "fr_FR"})), None, None))
        self.assertIsNone(gc.fields_key(a, ["name"], None))
        self.assertIsNone(gc.fields_key(a, None, ["type"]))

    def test_fields_copies(self):
        cache = gc.GatewayCache()
        gc.remember_fields(cache, "k", {"name": {"type": "char", "selection": [["a", "A"]]}})
        first = gc.recall_fields(cache, "k")
        first["name"]["selection"].append(["b", "B"])
        self.assertEqual(gc.recall_fields(cache, "k"), {"name": {"type": "char", "selection": [["a", "A"]]}})
        self.assertIsNone(gc.recall_fields(cache, "other"))

    def test_clear_keeps_field_descriptions(self):
        cache = gc.GatewayCache()
        cache.searches["k"] = (1,)
        cache.alias_index = INDEX
        gc.remember_fields(cache, "f", {})
        cache.clear()
        self.assertEqual((cache.searches, cache.alias_index), ({}, None))
        self.assertEqual(gc.recall_fields(cache, "f"), {})
        self.assertNotEqual(cache, gc.GatewayCache(), "compared by identity (environments compare contexts)")


if __name__ == "__main__":
    unittest.main()
