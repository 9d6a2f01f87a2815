"""build.py makes one installable module per Odoo series from the one source
tree: the manifest carries the series, each series' data says what that series
understands, and the overlays in series/ stay in step with the source."""

import ast
import glob
import os
import re
import shutil
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

from _paths import HERE

ODOO_ADDON = os.path.normpath(os.path.join(HERE, ".."))
sys.path.insert(0, ODOO_ADDON)
import build  # noqa: E402


class BuildCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="maildesk-build-")
        cls.out = {s: build.build(s, cls.tmp) for s in build.SERIES}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, series, *parts):
        return os.path.join(self.out[series], *parts)

    def read(self, series, *parts):
        with open(self.path(series, *parts), encoding="utf-8") as fh:
            return fh.read()

    def xml_files(self, series):
        out = []
        for module in build.MODULES:
            out += [p for p in glob.glob(self.path(series, module, "**", "*.xml"), recursive=True)
                    if "/static/" not in p and "/i18n/" not in p]
        return out


class TestBuild(BuildCase):
    def test_manifest_version_names_the_series(self):
        for series in build.SERIES:
            for module in build.MODULES:
                manifest = ast.literal_eval(self.read(series, module, "__manifest__.py"))
                self.assertTrue(manifest["version"].startswith(series + "."), (series, module, manifest["version"]))
                self.assertTrue(manifest["installable"])

    def test_18_is_the_source_as_is(self):
        for module in build.MODULES:
            src = os.path.join(ODOO_ADDON, module)
            for root, _dirs, files in os.walk(src):
                if "__pycache__" in root:
                    continue
                for name in files:
                    if name.endswith(".pyc"):
                        continue
                    rel = os.path.relpath(os.path.join(root, name), src)
                    with open(os.path.join(root, name), "rb") as a, open(self.path("18.0", module, rel), "rb") as b:
                        self.assertEqual(a.read(), b.read(), rel)

    def test_17_has_tree_views_and_the_chatter_div(self):
        views = "".join(self.read("17.0", "maildesk", "views", n)
                        for n in os.listdir(self.path("17.0", "maildesk", "views")) if n.endswith(".xml"))
        self.assertNotRegex(views, r"<list[\s>/]")
        self.assertNotIn("</list>", views)
        self.assertNotIn("<chatter", views)
        self.assertIn('class="oe_chatter"', views)
        self.assertIn("<tree", views)
        self.assertNotRegex(views, r'name="view_mode">[^<]*\blist\b')
        for path in self.xml_files("17.0"):
            ET.parse(path)

    def test_17_tours_only_check_steps_without_run(self):
        tours = self.path("17.0", "maildesk", "static", "tests", "tours")
        for name in os.listdir(tours):
            text = open(os.path.join(tours, name), encoding="utf-8").read()
            self.assertNotRegex(text, r'\{\s*trigger:\s*"(?:[^"\\]|\\.)*"(?:\s*\+\s*"(?:[^"\\]|\\.)*")*,?\s*\}', name)
            for line in text.splitlines():
                if 'trigger: ".modal' in line:
                    self.assertIn("in_modal: false", line, name)
        src = open(os.path.join(ODOO_ADDON, "maildesk", "static", "tests", "tours", "maildesk_views_tour.js")).read()
        self.assertNotIn("isCheck", src, "18.0 and 19.0 keep the source's steps")

    def test_17_imports_only_what_17_has(self):
        for root, _dirs, files in os.walk(self.path("17.0", "maildesk", "static")):
            for name in files:
                if name.endswith(".js"):
                    text = open(os.path.join(root, name), encoding="utf-8").read()
                    self.assertNotIn('"@web/core/user"', text, name)
        self.assertTrue(os.path.isfile(self.path("17.0", "maildesk", "static", "src", "inbox", "compat_user_17.js")))
        self.assertFalse(os.path.exists(self.path("18.0", "maildesk", "static", "src", "inbox", "compat_user_17.js")))

    def test_19_groups_under_a_privilege(self):
        sec = ET.parse(self.path("19.0", "maildesk", "security", "maildesk_security.xml")).getroot()
        models = {r.get("id"): r.get("model") for r in sec.iter("record")}
        self.assertEqual(models.get("res_groups_privilege_maildesk"), "res.groups.privilege")
        for rec in sec.iter("record"):
            if rec.get("model") == "res.groups":
                names = {f.get("name") for f in rec.iter("field")}
                self.assertFalse(names & {"category_id", "users"}, rec.get("id"))

    def test_19_drops_what_19_does_not_know(self):
        for path in self.xml_files("19.0"):
            text = open(path, encoding="utf-8").read()
            self.assertNotIn('name="keep_done"', text, path)
            self.assertNotIn('<field name="target">inline</field>', text, path)
            ET.parse(path)
        # ...which 17 and 18 keep.
        self.assertIn('name="keep_done"', self.read("18.0", "maildesk", "data", "mail_activity_type_data.xml"))
        self.assertIn('name="keep_done"', self.read("17.0", "maildesk", "data", "mail_activity_type_data.xml"))

    def test_overlays_replace_a_source_file_and_keep_its_ids(self):
        """A file under series/ replaces a file of the source: same path, and
        every record id of the source file is still defined."""
        overlays = glob.glob(os.path.join(ODOO_ADDON, "series", "*", "*", "**", "*.*"), recursive=True)
        self.assertTrue(overlays)
        for path in overlays:
            rel = os.path.relpath(path, os.path.join(ODOO_ADDON, "series"))
            _series, module_rel = rel.split(os.sep, 1)
            src = os.path.join(ODOO_ADDON, module_rel)
            if not os.path.exists(src):  # a file the series needs in addition
                self.assertTrue(module_rel.endswith("_%s.js" % _series.split(".")[0]), "%s replaces nothing" % rel)
                continue
            if path.endswith(".xml"):
                ids = lambda p: {r.get("id") for r in ET.parse(p).getroot().iter("record")}  # noqa: E731
                self.assertLessEqual(ids(src), ids(path), rel)

    def test_python_uses_compat_names(self):
        """No series-specific names in Python: compat.py says them once."""
        for module in build.MODULES:
            for path in glob.glob(os.path.join(ODOO_ADDON, module, "**", "*.py"), recursive=True):
                if path.endswith("compat.py"):
                    continue
                text = open(path, encoding="utf-8").read()
                rel = os.path.relpath(path, ODOO_ADDON)
                for pattern in (r"[\"'](groups_id|group_ids)[\"']\s*:|\.groups_id\b|\.group_ids\b",
                                r"(?<!compat)\.(check_access|has_access|check_access_rights|check_access_rule)\("):
                    found = re.search(pattern, text)
                    self.assertIsNone(found, "%s: %s" % (rel, found and found.group(0)))
                if re.search(r"^\s*_sql_constraints\s*=", text, re.M):
                    self.assertIn("if compat.SERIES >= 19:", text, rel + ": 19.0 ignores _sql_constraints")

    def test_cli_writes_into_out(self):
        out = os.path.join(self.tmp, "cli")
        self.assertEqual(build.main(["19.0", "--out", out]), 0)
        self.assertTrue(os.path.isfile(os.path.join(out, "19.0", "maildesk", "__manifest__.py")))
        self.assertTrue(os.path.isfile(os.path.join(out, "19.0", "maildesk_crm", "__manifest__.py")))
        self.assertFalse(glob.glob(os.path.join(out, "**", "*.pyc"), recursive=True))


class TestRewrites(unittest.TestCase):
    def test_manifest_needs_one_version(self):
        self.assertIn('"version": "17.0.1.0.0"', build.rewrite_manifest('{"version": "18.0.1.0.0"}', "17.0"))
        with self.assertRaises(ValueError):
            build.rewrite_manifest('{"name": "x"}', "17.0")

    def test_list_to_tree_only_for_the_list_tag(self):
        got = build.rewrite_view_17('<list string="x"><field name="checklist"/></list><list>')
        self.assertEqual(got, '<tree string="x"><field name="checklist"/></tree><tree>')


if __name__ == "__main__":
    unittest.main()
