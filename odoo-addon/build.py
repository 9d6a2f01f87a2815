#!/usr/bin/env python3
"""Build the MailDesk modules for one Odoo series.

    python3 odoo-addon/build.py 19.0 [--out dist]

writes ``<out>/<series>/maildesk`` and ``<out>/<series>/maildesk_crm``,
ready for an addons path. The source tree (``odoo-addon/maildesk``,
``odoo-addon/maildesk_crm``) is written for 18.0 and runs there as is; what
differs on 17.0 and 19.0 is handled in three places, in this order:

1. at run time, in ``maildesk/compat.py`` (the users' groups field, access
   checks, API keys, ir.mail_server's helpers, the mail store, web client
   paths, the sidecar protocol): Python code and tests use its names, so the
   same ``.py`` files work on every series (the addon declares no JSON
   routes, so 19.0's ``type='jsonrpc'`` needs nothing);
2. ``series/<series>/<module>/...``: whole files that replace the source's
   file of the same path, where a series needs different data (19.0: groups
   live under a privilege, ``res.groups.users`` is ``user_ids``), or that a
   series needs in addition (17.0: a stand-in for ``@web/core/user``);
3. mechanical rewrites of the copied files: the manifest's version; on
   17.0 ``<list>`` → ``<tree>`` and ``<chatter/>`` → the ``oe_chatter`` div,
   imports of ``@web/core/user`` → ``series/17.0``'s stand-in, and in the
   browser tours ``isCheck`` on steps without ``run`` and
   ``in_modal: false`` on steps that look for the dialog itself;
   on 19.0 no ``keep_done`` on activity types (19.0 keeps every done
   activity, archived, and has no such field) and no ``target`` ``inline``
   on the settings action (19.0 opens settings inline by itself and knows no
   such target).

Standard library only; the Odoo-free tests build every series with it.
"""

import argparse
import ast
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = ("maildesk", "maildesk_crm")
SERIES = ("17.0", "18.0", "19.0")
SOURCE_SERIES = "18.0"

_VERSION_RE = re.compile(r'("version"\s*:\s*")(\d+\.\d+)(\.\d+\.\d+\.\d+")')
_LIST_OPEN_RE = re.compile(r"<list(?=[\s>/])")
_CHATTER = "<chatter/>"
_CHATTER_17 = (
    '<div class="oe_chatter">\n'
    '                    <field name="message_follower_ids"/>\n'
    '                    <field name="activity_ids"/>\n'
    '                    <field name="message_ids"/>\n'
    "                </div>"
)


def _ignore(_dir, names):
    return [n for n in names if n in ("__pycache__",) or n.endswith((".pyc", ".pyo"))]


def rewrite_manifest(text, series):
    new, n = _VERSION_RE.subn(lambda m: m.group(1) + series + m.group(3), text)
    if n != 1:
        raise ValueError("manifest: expected one \"version\": \"18.0.x.y.z\", found %d" % n)
    return new


def rewrite_view_17(text):
    """17.0 knows ``<tree>`` (not ``<list>``) and the ``oe_chatter`` div."""
    text = _LIST_OPEN_RE.sub("<tree", text).replace("</list>", "</tree>")
    # view_mode values in actions
    text = re.sub(r'(name="view_mode">[^<]*)\blist\b', r"\1tree", text)
    return text.replace(_CHATTER, _CHATTER_17)


_KEEP_DONE_RE = re.compile(r'\n[ \t]*<field name="keep_done"[^>]*/>')


_TARGET_INLINE_RE = re.compile(r'\n[ \t]*<field name="target">inline</field>')


def rewrite_data_19(text):
    return _TARGET_INLINE_RE.sub("", _KEEP_DONE_RE.sub("", text))


_JS_STR = r'"(?:[^"\\]|\\.)*"'
_CHECK_STEP_RE = re.compile(r"\{\s*trigger:\s*(%s(?:\s*\+\s*%s)*),?\s*\}" % (_JS_STR, _JS_STR))
_MODAL_STEP_RE = re.compile(r'\{ trigger: "\.modal')


def rewrite_js_17(text):
    # Actions opened from JS name their view types.
    text = re.sub(r'\[false, "list"\]', '[false, "tree"]', text)
    # 17.0 has no @web/core/user: series/17.0 adds a module with its hasGroup.
    text = text.replace('from "@web/core/user";', 'from "@maildesk/inbox/compat_user_17";')
    if "web_tour.tours" in text:
        # 17.0's tours click a step without ``run`` (18.0 only waits for it)
        # and look inside an open dialog unless told not to.
        text = _CHECK_STEP_RE.sub(r"{ trigger: \1, isCheck: true }", text)
        text = _MODAL_STEP_RE.sub('{ in_modal: false, trigger: ".modal', text)
    return text


def build(series, out):
    if series not in SERIES:
        raise SystemExit("unknown series %r (one of %s)" % (series, ", ".join(SERIES)))
    dest_root = os.path.join(out, series)
    for module in MODULES:
        src = os.path.join(HERE, module)
        final = os.path.join(dest_root, module)
        # Built beside the old copy and swapped in at the end: an Odoo running
        # on dist/ never sees a half-written module.
        dest = final + ".new"
        if os.path.exists(dest):
            shutil.rmtree(dest)
        shutil.copytree(src, dest, ignore=_ignore)
        overlay = os.path.join(HERE, "series", series, module)
        if os.path.isdir(overlay):
            shutil.copytree(overlay, dest, ignore=_ignore, dirs_exist_ok=True)
        manifest = os.path.join(dest, "__manifest__.py")
        with open(manifest, encoding="utf-8") as fh:
            text = rewrite_manifest(fh.read(), series)
        ast.literal_eval(text)
        with open(manifest, "w", encoding="utf-8") as fh:
            fh.write(text)
        if series in ("17.0", "19.0"):
            for root, _dirs, files in os.walk(dest):
                for name in files:
                    path = os.path.join(root, name)
                    data_xml = name.endswith(".xml") and "/static/" not in path
                    if series == "17.0" and data_xml:
                        fn = rewrite_view_17
                    elif series == "17.0" and name.endswith(".js"):
                        fn = rewrite_js_17
                    elif series == "19.0" and data_xml:
                        fn = rewrite_data_19
                    else:
                        continue
                    with open(path, encoding="utf-8") as fh:
                        old = fh.read()
                    new = fn(old)
                    if new != old:
                        with open(path, "w", encoding="utf-8") as fh:
                            fh.write(new)
        if os.path.exists(final):
            os.rename(final, final + ".old")
        os.rename(dest, final)
        shutil.rmtree(final + ".old", ignore_errors=True)
    return dest_root


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("series", choices=SERIES)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "dist"))
    args = ap.parse_args(argv)
    print(os.path.normpath(build(args.series, args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
