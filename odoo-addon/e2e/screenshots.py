#!/usr/bin/env python3
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Screenshots of MailDesk's screens in a real Odoo, for the admin guide and the addon's readme.

Run it against the Odoo an end-to-end run left running (run_local.sh with
KEEP_RUNNING=1): it signs in as the admin in a headless Chromium and saves
PNG files of the mailbox form's Routing and Privacy tabs, the routing preview
of the mailbox and the MailDesk block of Settings (--out), and of the inbox:
the list with the reading pane, rows checked with the action bar, and the
keyboard shortcuts popover (--inbox-out, the addon's static/description).

    /usr/bin/python3 odoo-addon/e2e/screenshots.py --odoo http://127.0.0.1:8090 --db maildesk_e2e \\
        --mailbox ben@contoso.com --out docs/img --inbox-out odoo-addon/maildesk/static/description

Needs Debian's chromium and python3-websocket (the Chrome DevTools protocol).
"""

import argparse
import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket  # Debian: python3-websocket


class Page:
    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.next_id = 0

    def send(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})

    def js(self, expression):
        res = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if res.get("exceptionDetails"):
            raise RuntimeError("%s: %s" % (expression[:80], res["exceptionDetails"]))
        return (res.get("result") or {}).get("value")

    def wait(self, expression, what, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.js(expression):
                return
            time.sleep(0.3)
        raise RuntimeError("timed out waiting for %s" % what)

    def sign_in(self, odoo, db, login, password):
        """Odoo's login form, then wait for the web client."""
        self.goto(odoo + "/web/login?db=" + db, "!!document.querySelector('input[name=login]')", "the login page")
        self.js("document.querySelector('input[name=login]').value = %s;"
                "document.querySelector('input[name=password]').value = %s;"
                "document.querySelector('form').submit(); true" % (json.dumps(login), json.dumps(password)))
        self.wait("location.pathname.startsWith('/odoo') || location.pathname.startsWith('/web')", "signing in")

    def goto(self, url, ready, what, timeout=60):
        self.send("Page.navigate", url=url)
        self.wait(ready, what, timeout)
        # Let the web client finish rendering (fonts, lazy fields).
        self.wait("!document.querySelector('.o_loading_indicator, .o_blockUI')", "%s to settle" % what)
        time.sleep(0.5)

    def shot(self, path, selector=None, scale=1):
        clip = None
        if selector:
            rect = self.js(
                "(() => { const r = document.querySelector(%s).getBoundingClientRect();"
                " return {x: r.x, y: r.y, width: r.width, height: r.height}; })()" % json.dumps(selector)
            )
            clip = dict(rect, scale=scale)
        elif scale != 1:
            size = self.js("({width: innerWidth, height: innerHeight})")
            clip = dict(x=0, y=0, width=size["width"], height=size["height"], scale=scale)
        params = {"format": "png"}
        if clip:
            params["clip"] = clip
        data = self.send("Page.captureScreenshot", **params)["data"]
        with open(path, "wb") as fh:
            fh.write(base64.b64decode(data))
        print("saved %s" % path)


@contextlib.contextmanager
def chromium(width, height):
    """A headless Chromium with one page (Page and Runtime enabled); stopped
    and its profile removed on the way out."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not binary:
        sys.exit("no chromium on PATH (Debian: apt install chromium)")
    profile = tempfile.mkdtemp(prefix="maildesk-shots-")
    proc = subprocess.Popen(
        [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
         "--user-data-dir=" + profile, "--window-size=%d,%d" % (width, height), "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    port_file = os.path.join(profile, "DevToolsActivePort")
    for _ in range(100):
        if os.path.exists(port_file) and open(port_file).read().strip():
            break
        time.sleep(0.1)
    port = open(port_file).read().split()[0]
    targets = json.load(urllib.request.urlopen("http://127.0.0.1:%s/json" % port))
    target = next(t for t in targets if t.get("type") == "page")
    try:
        page = Page(target["webSocketDebuggerUrl"])
        page.send("Page.enable")
        page.send("Runtime.enable")
        yield page
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)


def odoo_call(odoo, db, login, password, model, method, args, kwargs=None):
    """Odoo's external JSON-RPC (admin's password), for ids the pages need."""
    def rpc(service, meth, *a):
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1,
                           "params": {"service": service, "method": meth, "args": list(a)}}).encode()
        req = urllib.request.Request(odoo + "/jsonrpc", body, {"Content-Type": "application/json"})
        res = json.load(urllib.request.urlopen(req, timeout=60))
        if res.get("error"):
            raise RuntimeError(res["error"]["data"]["message"])
        return res["result"]
    uid = rpc("common", "login", db, login, password)
    return rpc("object", "execute_kw", db, uid, password, model, method, args, kwargs or {})


def shoot_inbox(page, a):
    """The inbox as a user sees it: the list and a message, checked rows and
    the action bar, the keyboard shortcuts (scaled down: small files)."""
    os.makedirs(a.inbox_out, exist_ok=True)
    page.goto("%s/odoo/action-maildesk.maildesk_inbox_action" % a.odoo,
              "document.querySelectorAll('.o_maildesk_row').length > 3", "the inbox", 240)
    page.js("document.querySelectorAll('.o_maildesk_row')[1].click(); true")
    page.wait("!!document.querySelector('.o_maildesk_reader h4')", "a message in the reading pane")
    time.sleep(1)
    page.shot(os.path.join(a.inbox_out, "inbox.png"), scale=0.6)
    # One mailbox's inbox: "Move to…" lists the folders of the checked rows' mailbox.
    page.js("document.querySelector('.o_maildesk_mailbox').click(); true")
    # The combined list's rows stay until the mailbox's page arrives (its
    # rows lose their mailbox badge at once): wait for the list to settle.
    one = ("!!document.querySelector('.o_maildesk_folder') && !document.querySelector('.o_maildesk_row_mailbox')"
           " && !document.querySelector('.o_maildesk_list .p-3 .fa-spinner')"
           " && document.querySelectorAll('.o_maildesk_row').length > 3")
    page.wait(one, "one mailbox's inbox", 240)
    time.sleep(3)
    page.wait(one, "one mailbox's inbox", 240)
    page.js("[...document.querySelectorAll('.o_maildesk_row .o_maildesk_check')].slice(0, 3).forEach(c => c.click()); true")
    page.wait("!!document.querySelector('.o_maildesk_checked_count')", "the checked rows")
    page.js("document.querySelector('.o_maildesk_act_move').click(); true")
    try:
        page.wait("!!document.querySelector('.o_maildesk_move_menu .o_maildesk_move_target')", "the folder tree", 120)
        time.sleep(0.5)
    except RuntimeError as exc:
        print("%s: the action bar without the folder menu" % exc)
    page.shot(os.path.join(a.inbox_out, "inbox-actions.png"), ".o_maildesk_list", scale=0.8)
    page.js("document.querySelector('.o_maildesk_move_menu') && document.querySelector('.o_maildesk_act_move').click();"
            "document.querySelectorAll('.o_maildesk_row .o_maildesk_check').forEach(c => c.checked && c.click());"
            "document.body.dispatchEvent(new KeyboardEvent('keydown', {key: '?', bubbles: true})); true")
    page.wait("!!document.querySelector('.o_maildesk_shortcuts')", "the shortcuts popover")
    time.sleep(0.5)
    page.shot(os.path.join(a.inbox_out, "inbox-shortcuts.png"), ".o_maildesk_list", scale=0.8)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--odoo", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--login", default="admin")
    p.add_argument("--password", default="admin")
    p.add_argument("--mailbox", required=True, help="address of a connected log-mode mailbox")
    p.add_argument("--out", default="docs/img")
    p.add_argument("--inbox-out", default="odoo-addon/maildesk/static/description",
                   help="where the inbox's screenshots go (the addon's readme shows them)")
    p.add_argument("--only-inbox", action="store_true", help="only the inbox's screenshots")
    p.add_argument("--width", type=int, default=1366)
    p.add_argument("--height", type=int, default=900)
    a = p.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    ids = odoo_call(a.odoo, a.db, a.login, a.password, "maildesk.mailbox", "search", [[("email", "=", a.mailbox)]])
    if not ids:
        sys.exit("no mailbox %s in %s" % (a.mailbox, a.db))
    mid = ids[0]
    with chromium(a.width, a.height) as page:
        page.sign_in(a.odoo, a.db, a.login, a.password)
        page.wait("!!document.querySelector('.o_main_navbar')", "the web client", 240)

        shoot_inbox(page, a)
        if a.only_inbox:
            return 0

        form = "%s/odoo/action-maildesk.maildesk_mailbox_action/%d" % (a.odoo, mid)
        page.goto(form, "!!document.querySelector('.o_form_view .o_notebook')", "the mailbox form")
        page.js("[...document.querySelectorAll('.o_notebook .nav-link')].find(l => l.textContent.trim() == 'Routing')"
                ".click(); true")
        page.wait("!!document.querySelector('.o_notebook .tab-pane.active .o_field_one2many')", "the Routing tab")
        page.js("document.querySelector('.o_notebook').scrollIntoView({block: 'start'}); true")
        time.sleep(0.5)
        page.shot(os.path.join(a.out, "mailbox-routing.png"), ".o_notebook")
        page.js("[...document.querySelectorAll('.o_notebook .nav-link')].find(l => l.textContent.trim() == 'Privacy')"
                ".click(); true")
        page.wait("!!document.querySelector('.o_notebook .tab-pane.active [name=log_scope]')", "the Privacy tab")
        page.js("document.querySelector('.o_notebook').scrollIntoView({block: 'start'}); true")
        time.sleep(0.5)
        page.shot(os.path.join(a.out, "mailbox-privacy.png"), ".o_notebook")

        page.js("document.querySelector('button[name=action_preview_routing]').click(); true")
        page.wait("!!document.querySelector('.modal .o_field_one2many .o_data_row')", "the routing preview", 120)
        time.sleep(1)
        page.shot(os.path.join(a.out, "routing-preview.png"), ".modal-content")
        page.js("document.querySelector('.modal .btn-close, .modal footer button.btn-secondary').click(); true")

        page.goto(a.odoo + "/odoo/action-maildesk.maildesk_settings_action",
                  "!!document.querySelector('#maildesk_internal_domains_setting')", "Settings → MailDesk")
        page.js("document.querySelector('#maildesk_allowed_models_setting').scrollIntoView({block: 'start'}); true")
        time.sleep(0.5)
        page.shot(os.path.join(a.out, "settings-privacy.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
