"""The addon's files are sound without running Odoo: Python parses, XML is
well-formed, every id a file refers to exists, the manifest's files exist and
the access CSV names real models and groups."""

import ast
import csv
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

from _paths import ADDON

# Modules the addon depends on (directly or through mail): their ids may be
# referred to with their prefix.
EXTERNAL_MODULES = {"base", "mail", "web", "base_setup"}
# Odoo models the access CSV or data may name besides the addon's own.
WELL_KNOWN_MODELS = {"res.partner", "res.users", "mail.message", "mail.activity", "ir.mail_server"}


def addon_files(*patterns):
    out = []
    for pattern in patterns:
        out.extend(glob.glob(os.path.join(ADDON, pattern), recursive=True))
    return sorted(set(out))


def read_manifest():
    with open(os.path.join(ADDON, "__manifest__.py"), encoding="utf-8") as fh:
        return ast.literal_eval(fh.read())


def defined_models():
    """``_name`` of every model the addon defines, from its Python source."""
    names = set()
    for path in addon_files("models/*.py"):
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    if (
                        isinstance(stmt, ast.Assign)
                        and any(isinstance(t, ast.Name) and t.id == "_name" for t in stmt.targets)
                        and isinstance(stmt.value, ast.Constant)
                    ):
                        names.add(stmt.value.value)
    return names


def data_xml_files():
    return [os.path.join(ADDON, f) for f in read_manifest()["data"] if f.endswith(".xml")]


def defined_xml_ids():
    ids = set()
    for path in data_xml_files():
        for el in ET.parse(path).iter():
            if el.tag in ("record", "template", "menuitem") and el.get("id"):
                ids.add(el.get("id"))
    for model in defined_models():
        ids.add("model_" + model.replace(".", "_"))
    return ids


_REF_EVAL_RE = re.compile(r"ref\(\s*['\"]([\w.]+)['\"]\s*\)")
_ACTION_NAME_RE = re.compile(r"%\(([\w.]+)\)d")


def referenced_xml_ids():
    """(file, xmlid) for every reference in the data files."""
    refs = []
    for path in data_xml_files():
        name = os.path.basename(path)
        for el in ET.parse(path).iter():
            for attr in ("ref", "inherit_id", "action", "parent"):
                if el.get(attr) and not (el.tag == "field" and attr == "ref" and False):
                    refs.append((name, el.get(attr)))
            if el.get("groups"):
                for group in el.get("groups").split(","):
                    refs.append((name, group.strip().lstrip("!")))
            if el.get("eval"):
                refs.extend((name, r) for r in _REF_EVAL_RE.findall(el.get("eval")))
            if el.tag == "button" and el.get("type") == "action":
                refs.extend((name, r) for r in _ACTION_NAME_RE.findall(el.get("name") or ""))
            if el.tag == "field" and el.get("name") == "groups_id" and el.get("eval"):
                refs.extend((name, r) for r in _REF_EVAL_RE.findall(el.get("eval")))
    return refs


class TestPython(unittest.TestCase):
    def test_every_python_file_parses(self):
        files = addon_files("**/*.py")
        self.assertGreater(len(files), 10)
        for path in files:
            with self.subTest(path=os.path.relpath(path, ADDON)):
                with open(path, encoding="utf-8") as fh:
                    ast.parse(fh.read(), filename=path)

    def test_lib_has_no_odoo_import(self):
        for path in addon_files("lib/*.py"):
            with open(path, encoding="utf-8") as fh:
                tree = ast.parse(fh.read())
            for node in ast.walk(tree):
                mods = []
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    mods = [node.module]
                for mod in mods:
                    self.assertFalse(mod.split(".")[0] == "odoo", "%s imports %s" % (path, mod))

    def test_lib_imports_without_odoo(self):
        code = "import sys; sys.path.insert(0, %r); import lib; assert 'odoo' not in sys.modules" % ADDON
        subprocess.run([sys.executable, "-c", code], check=True)

    def test_init_files_only_import(self):
        for path in addon_files("__init__.py", "*/__init__.py"):
            with open(path, encoding="utf-8") as fh:
                tree = ast.parse(fh.read())
            for node in tree.body:
                with self.subTest(path=os.path.relpath(path, ADDON)):
                    self.assertIsInstance(node, (ast.Import, ast.ImportFrom))

    def test_models_and_tests_are_imported(self):
        for folder in ("models", "tests", "controllers"):
            with open(os.path.join(ADDON, folder, "__init__.py"), encoding="utf-8") as fh:
                init = fh.read()
            for path in addon_files(folder + "/*.py"):
                mod = os.path.splitext(os.path.basename(path))[0]
                if mod in ("__init__", "common"):
                    continue
                with self.subTest(module=folder + "/" + mod):
                    self.assertRegex(init, r"\b%s\b" % mod)


class TestManifest(unittest.TestCase):
    def test_manifest_fields(self):
        manifest = read_manifest()
        self.assertRegex(manifest["version"], r"^18\.0\.\d+\.\d+\.\d+$")
        self.assertIn("mail", manifest["depends"])
        self.assertEqual(manifest["license"], "LGPL-3")
        self.assertTrue(manifest["installable"])

    def test_license_texts_ship_with_the_code(self):
        """The addon carries the LGPL-3 its manifest names (and the GPL-3 it
        builds on); the sidecar's Apache-2.0 text is at the repository root
        and the README names both."""
        root = os.path.dirname(os.path.dirname(ADDON))

        def read(*parts):
            with open(os.path.join(*parts), encoding="utf-8") as fh:
                return fh.read()

        self.assertIn("GNU LESSER GENERAL PUBLIC LICENSE", read(ADDON, "LICENSE"))
        self.assertIn("Version 3", read(ADDON, "LICENSE"))
        self.assertIn("GNU GENERAL PUBLIC LICENSE", read(ADDON, "COPYING.GPL-3"))
        self.assertIn("Apache License", read(root, "LICENSE"))
        readme = read(root, "README.md")
        self.assertIn("Apache License 2.0", readme)
        self.assertIn("GNU Lesser General\nPublic License v3.0", readme)

    def test_data_files_exist_and_are_ordered(self):
        data = read_manifest()["data"]
        for rel in data:
            with self.subTest(file=rel):
                self.assertTrue(os.path.isfile(os.path.join(ADDON, rel)))
        # groups, then access, then data, then views (OCA order)
        self.assertLess(data.index("security/maildesk_security.xml"), data.index("security/ir.model.access.csv"))
        self.assertLess(data.index("security/ir.model.access.csv"), data.index("views/maildesk_mailbox_views.xml"))

    def test_asset_globs_match_files(self):
        for bundle, globs in read_manifest()["assets"].items():
            for pattern in globs:
                with self.subTest(bundle=bundle, pattern=pattern):
                    rel = pattern.split("/", 1)[1]
                    self.assertTrue(glob.glob(os.path.join(ADDON, rel)))

    def test_docs_and_icon(self):
        for rel in ("readme/DESCRIPTION.md", "readme/CONFIGURE.md", "readme/USAGE.md",
                    "i18n/maildesk.pot", "static/description/icon.png"):
            with self.subTest(file=rel):
                self.assertTrue(os.path.isfile(os.path.join(ADDON, rel)))


class TestXml(unittest.TestCase):
    def test_every_xml_file_is_well_formed(self):
        files = addon_files("**/*.xml")
        self.assertGreater(len(files), 8)
        for path in files:
            with self.subTest(path=os.path.relpath(path, ADDON)):
                ET.parse(path)

    def test_references_exist(self):
        defined = defined_xml_ids()
        refs = referenced_xml_ids()
        self.assertGreater(len(refs), 20)
        for name, ref in refs:
            with self.subTest(file=name, ref=ref):
                if "." in ref:
                    module, local = ref.split(".", 1)
                    if module != "maildesk":
                        self.assertIn(module, EXTERNAL_MODULES, "unknown module in %s" % ref)
                        continue
                    ref = local
                self.assertIn(ref, defined)

    def test_ids_are_unique(self):
        seen = {}
        for path in data_xml_files():
            for el in ET.parse(path).iter():
                if el.tag in ("record", "template", "menuitem") and el.get("id"):
                    with self.subTest(id=el.get("id")):
                        self.assertNotIn(el.get("id"), seen)
                    seen[el.get("id")] = path

    def test_view_fields_exist_on_addon_models(self):
        """Fields named in views of the addon's own models are defined on them."""
        fields_by_model = {}
        for path in addon_files("models/*.py"):
            with open(path, encoding="utf-8") as fh:
                tree = ast.parse(fh.read())
            for node in ast.walk(tree):
                if not isinstance(node, ast.ClassDef):
                    continue
                model = None
                names = set()
                inherit = None
                for stmt in node.body:
                    if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
                        target = stmt.targets[0].id
                        if target == "_name" and isinstance(stmt.value, ast.Constant):
                            model = stmt.value.value
                        if target == "_inherit" and isinstance(stmt.value, ast.Constant):
                            inherit = stmt.value.value
                        if isinstance(stmt.value, ast.Call) and getattr(stmt.value.func, "attr", "") and \
                                getattr(getattr(stmt.value.func, "value", None), "id", "") == "fields":
                            names.add(target)
                model = model or inherit  # an extension adds its fields to the model it inherits
                if model:
                    fields_by_model.setdefault(model, set()).update(names)
        inherited = {"activity_ids", "message_ids", "message_follower_ids", "id", "display_name"}
        path = os.path.join(ADDON, "views", "maildesk_mailbox_views.xml")
        for record in ET.parse(path).iter("record"):
            model_field = record.find("field[@name='model']")
            arch = record.find("field[@name='arch']")
            if model_field is None or arch is None or model_field.text not in fields_by_model:
                continue
            # Fields of an x2many's own list are the comodel's, not this model's.
            nested = {id(f) for outer in arch.iter("field") if outer is not arch
                      for sub in outer for f in sub.iter("field")}
            for field in arch.iter("field"):
                if field is arch or id(field) in nested:
                    continue
                with self.subTest(view=record.get("id"), field=field.get("name")):
                    self.assertIn(field.get("name"), fields_by_model[model_field.text] | inherited)

    def test_owl_template_named_like_the_component(self):
        with open(os.path.join(ADDON, "static/src/inbox/inbox.js"), encoding="utf-8") as fh:
            js = fh.read()
        names = [t.get("t-name") for t in ET.parse(os.path.join(ADDON, "static/src/inbox/inbox.xml")).iter()
                 if t.get("t-name")]
        for name in re.findall(r'static template = "([\w.]+)"', js):
            self.assertIn(name, names)
        self.assertIn('registry.category("actions").add("maildesk.inbox"', js)

    @unittest.skipUnless(shutil.which("node"), "node is not installed")
    def test_javascript_syntax(self):
        for path in addon_files("static/src/**/*.js"):
            with self.subTest(path=os.path.relpath(path, ADDON)):
                with tempfile.TemporaryDirectory() as tmp:
                    copy = os.path.join(tmp, "module.mjs")
                    shutil.copy(path, copy)
                    proc = subprocess.run(["node", "--check", copy], capture_output=True, text=True)
                    self.assertEqual(proc.returncode, 0, proc.stderr)


class TestAccess(unittest.TestCase):
    def test_access_csv_names_real_models_and_groups(self):
        models = defined_models() | WELL_KNOWN_MODELS
        model_ids = {"model_" + m.replace(".", "_") for m in models}
        groups = {i for i in defined_xml_ids() if i.startswith("group_")}
        with open(os.path.join(ADDON, "security", "ir.model.access.csv"), encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        self.assertTrue(rows)
        seen = set()
        for row in rows:
            with self.subTest(row=row["id"]):
                self.assertNotIn(row["id"], seen)
                seen.add(row["id"])
                self.assertIn(row["model_id:id"], model_ids)
                group = row["group_id:id"]
                if group.startswith("base."):
                    continue
                self.assertIn(group.replace("maildesk.", ""), groups)
                for perm in ("perm_read", "perm_write", "perm_create", "perm_unlink"):
                    self.assertIn(row[perm], ("0", "1"))

    def test_every_stored_model_has_access(self):
        with open(os.path.join(ADDON, "security", "ir.model.access.csv"), encoding="utf-8") as fh:
            covered = {row["model_id:id"] for row in csv.DictReader(fh)}
        abstract = {"maildesk.sidecar", "maildesk.ingest"}
        for model in defined_models() - abstract:
            with self.subTest(model=model):
                self.assertIn("model_" + model.replace(".", "_"), covered)

    def test_user_access_is_read_only_on_mailboxes(self):
        with open(os.path.join(ADDON, "security", "ir.model.access.csv"), encoding="utf-8") as fh:
            rows = {row["id"]: row for row in csv.DictReader(fh)}
        user = rows["access_maildesk_mailbox_user"]
        self.assertEqual((user["perm_write"], user["perm_create"], user["perm_unlink"]), ("0", "0", "0"))
        bridge = rows["access_maildesk_mailbox_bridge"]
        self.assertEqual((bridge["perm_write"], bridge["perm_create"], bridge["perm_unlink"]), ("0", "0", "0"))


if __name__ == "__main__":
    unittest.main()
