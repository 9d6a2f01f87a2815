#!/usr/bin/env python3
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""MailDesk end-to-end test on a real Odoo 18 and a running `maildesk serve --simulate`.

Drives Odoo only the way its web client does: web session login, the button
methods through /web/dataset/call_button and call_kw, the simulator's sign-in
page and Odoo's /maildesk/oauth/callback with the mailbox owner's session
cookie, and the chatter (/mail/message/post). Python standard library only.

Prints one line per check (PASS / FAIL / SKIP), then "N passed, N failed"
(and skipped); exits 1 when a check failed, 2 when the run could not go on.
See README.md next to this file.
"""

import argparse
import collections
import http.cookiejar
import itertools
import json
import os
import re
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

# ----------------------------------------------------------------------
# Reporting
# ----------------------------------------------------------------------


class Report:
    def __init__(self, verbose=False):
        self.passed = self.failed = self.skipped = 0
        self.verbose = verbose
        self.t0 = time.time()

    def _line(self, tag, name, detail):
        stamp = "%5.0fs" % (time.time() - self.t0)
        line = "%s %-4s %s" % (stamp, tag, name)
        if detail:
            line += " — " + detail
        print(line, flush=True)

    def check(self, ok, name, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        self._line("PASS" if ok else "FAIL", name, detail)
        return ok

    def skip(self, name, reason):
        self.skipped += 1
        self._line("SKIP", name, reason)

    def info(self, text):
        self._line("....", text, "")

    def debug(self, text):
        if self.verbose:
            self._line("  ..", text, "")

    def summary(self):
        print("%d passed, %d failed, %d skipped" % (self.passed, self.failed, self.skipped), flush=True)


class Abort(Exception):
    """The run cannot go on (printed as a FAIL line, then the summary)."""


# ----------------------------------------------------------------------
# HTTP: one "browser" per user (cookies), Odoo's JSON routes
# ----------------------------------------------------------------------


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class OdooError(Exception):
    def __init__(self, name, message, data=None):
        super().__init__("%s: %s" % (name, message))
        self.name = name or ""
        self.message = message or ""
        self.data = data or {}


class Browser:
    """A user's browser: a cookie jar, redirects followed by hand."""

    def __init__(self, odoo_url, db, sim_ssl, label):
        self.odoo = odoo_url.rstrip("/")
        self.db = db
        self.label = label
        self.jar = http.cookiejar.CookieJar()
        self.set_ssl(sim_ssl)
        self.uid = None
        self.context = {}
        self._ids = itertools.count(1)

    def set_ssl(self, sim_ssl):
        """(Re)build the opener: the simulator makes a new CA each time it starts."""
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPCookieProcessor(self.jar),
            urllib.request.HTTPSHandler(context=sim_ssl),
            NoRedirect(),
        )

    def request(self, url, data=None, headers=None, method=None, timeout=120):
        """One HTTP request; answers (status, headers, body) without raising on 3xx/4xx/5xx."""
        req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
        try:
            with self.opener.open(req, timeout=timeout) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def get(self, url, timeout=120):
        return self.request(url, timeout=timeout)

    def post_form(self, url, fields, timeout=120):
        body = urllib.parse.urlencode(fields).encode()
        return self.request(url, body, {"Content-Type": "application/x-www-form-urlencoded"}, "POST", timeout)

    def json(self, path, params, timeout=300):
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": next(self._ids), "params": params}).encode()
        status, _headers, raw = self.request(
            self.odoo + path, body, {"Content-Type": "application/json"}, "POST", timeout
        )
        try:
            answer = json.loads(raw.decode("utf-8"))
        except ValueError:
            raise OdooError("HTTP %s" % status, raw[:300].decode("utf-8", "replace")) from None
        if answer.get("error"):
            err = answer["error"]
            data = err.get("data") or {}
            raise OdooError(data.get("name") or err.get("message"), data.get("message") or err.get("message"), data)
        return answer.get("result")

    def login(self, login, password):
        info = self.json("/web/session/authenticate", {"db": self.db, "login": login, "password": password})
        if not info or not info.get("uid"):
            raise Abort("%s could not log in to Odoo as %s" % (self.label, login))
        self.uid = info["uid"]
        self.context = dict(info.get("user_context") or {})
        return info

    def _ctx(self, extra=None):
        ctx = dict(self.context)
        ctx.update(extra or {})
        return ctx

    def call(self, model, method, *args, context=None, **kwargs):
        kwargs["context"] = self._ctx(context)
        return self.json(
            "/web/dataset/call_kw/%s/%s" % (model, method),
            {"model": model, "method": method, "args": list(args), "kwargs": kwargs},
        )

    def button(self, model, method, ids, context=None):
        """A form's type="object" button (the web client's call_button)."""
        return self.json(
            "/web/dataset/call_button",  # (17.0 has no /<model>/<method> suffix route)
            {"model": model, "method": method, "args": [ids], "kwargs": {"context": self._ctx(context)}},
        )

    def follow(self, url, report, max_hops=10):
        """GET url and follow redirects (3xx Location), as a browser would; answers the last response."""
        for _hop in range(max_hops):
            status, headers, body = self.get(url)
            report.debug("%s GET %s -> %s" % (self.label, url.split("?")[0], status))
            if status in (301, 302, 303, 307, 308) and headers.get("Location"):
                url = urllib.parse.urljoin(url, headers["Location"])
                continue
            return url, status, body
        raise Abort("too many redirects from %s" % url)


class Sidecar:
    """The sidecar's JSON-RPC, used only to observe (queue counts) and for what the UI lacks."""

    def __init__(self, url, secret):
        self.url = url.rstrip("/")
        self.secret = secret
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._ids = itertools.count(1)

    def call(self, method, uid=1, **params):
        params["context"] = {"uid": uid, "maildesk_admin": True}
        body = json.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}).encode()
        req = urllib.request.Request(
            self.url + "/jsonrpc", body,
            {"Content-Type": "application/json", "Authorization": "Bearer " + self.secret}, method="POST",
        )
        try:
            with self.opener.open(req, timeout=60) as resp:
                answer = json.loads(resp.read().decode())
        except urllib.error.HTTPError as exc:
            answer = json.loads(exc.read().decode() or "{}")
        if answer.get("error"):
            data = answer["error"].get("data") or {}
            raise OdooError(data.get("name"), data.get("message") or answer["error"].get("message"), data)
        return answer.get("result")

    def alive(self):
        try:
            with self.opener.open(self.url + "/healthz", timeout=5) as resp:
                return resp.status == 200
        except Exception:  # noqa: BLE001 - not up (yet)
            return False


# ----------------------------------------------------------------------
# The test
# ----------------------------------------------------------------------

ACTIVE_STATES = ("connected", "syncing", "backfilling")


def sign_in(browser, url, email):
    """Opens a sign-in link in the browser and, when the simulator shows its
    consent page, signs in there as email and accepts. Returns the last
    HTTP status, body, the redirect to Odoo's callback (None: no redirect)
    and whether the page was shown."""
    status, headers, body = browser.get(url)
    location = headers.get("Location") if status in (301, 302, 303) else None
    if status != 200 or b'name="txn"' not in body:
        return status, body, location, False
    page = body.decode("utf-8", "replace")
    txn = re.search(r'name="txn" value="([^"]+)"', page).group(1)
    action = urllib.parse.urljoin(url, re.search(r'<form method="post" action="([^"]+)"', page).group(1))
    status, headers, body = browser.post_form(action, {"txn": txn, "login": email, "decision": "accept"})
    location = headers.get("Location") if status in (301, 302, 303) else None
    return status, body, location, True


def addr(entry):
    """The address of a sidecar Address ({name, email})."""
    entry = entry or {}
    return (entry.get("email") or entry.get("address") or "").strip().lower()


def norm(address):
    return (address or "").strip().lower()


def short(text, n=160):
    text = re.sub(r"\s+", " ", str(text or "")).strip()
    return text if len(text) <= n else text[: n - 1] + "…"


class E2E:
    def __init__(self, args, report):
        self.a = args
        self.r = report
        self.domain = args.domain
        self.run_id = uuid.uuid4().hex[:8]
        self.sim_ssl = self.make_sim_ssl()
        self.secret = self._read_secret()
        self.sidecar = Sidecar(args.sidecar, self.secret)
        self.admin = Browser(args.odoo, args.db, self.sim_ssl, "admin")
        self.users = {}  # key -> {"browser", "uid", "partner_id", "email"}
        self.mailboxes = {}  # key -> {"id", "email", "owner"}
        self.bus_last = {}

    # -- helpers -------------------------------------------------------

    def make_sim_ssl(self):
        if self.a.sim_ca:
            return ssl.create_default_context(cafile=self.a.sim_ca)
        # The simulator's CA is in the sidecar's data dir (simulator-ca.pem);
        # without it, its certificate is accepted as a browser user would.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def reload_sim_ca(self):
        self.sim_ssl = self.make_sim_ssl()
        for browser in [self.admin] + [u["browser"] for u in self.users.values()]:
            browser.set_ssl(self.sim_ssl)

    def _read_secret(self):
        if self.a.secret:
            return self.a.secret
        path = self.a.secret_file or os.environ.get("MAILDESK_SHARED_SECRET_FILE") or "./maildesk-data/shared-secret"
        try:
            with open(path, encoding="utf-8") as fh:
                return fh.read().strip()
        except OSError as exc:
            raise Abort("cannot read the sidecar's shared secret from %s (%s): pass --secret-file" % (path, exc)) from None

    def xmlid(self, xmlid):
        module, name = xmlid.split(".", 1)
        rows = self.admin.call("ir.model.data", "search_read", [("module", "=", module), ("name", "=", name)],
                               fields=["res_id"], limit=1)
        return rows[0]["res_id"] if rows else False

    def wait(self, what, predicate, timeout, interval=3.0):
        """Poll predicate() until it answers a true value or timeout; answers the last value."""
        deadline = time.time() + timeout
        value = None
        while True:
            try:
                value = predicate()
            except OdooError as exc:
                self.r.debug("%s: %s" % (what, exc))
                value = None
            if value or time.time() >= deadline:
                return value
            time.sleep(interval)

    def count(self, model, domain, browser=None, context=None):
        return (browser or self.admin).call(model, "search_count", domain, context=context or {})

    def max_id(self, model):
        rows = self.admin.call(model, "search_read", [], fields=["id"], order="id desc", limit=1,
                               context={"active_test": False})
        return rows[0]["id"] if rows else 0

    # -- 1. settings and pairing ----------------------------------------

    def settings_and_pair(self):
        r = self.r
        info = self.admin.login(self.a.admin_login, self.a.admin_password)
        version = self.admin.json("/web/webclient/version_info", {})
        r.info("Odoo %s at %s, database %s; run %s" % (version.get("server_version"), self.a.odoo, self.a.db, self.run_id))
        # 19.0 renamed res.users.groups_id to group_ids and calls JSON-2 the external API.
        self.major = int((version.get("server_version_info") or [18])[0])
        self.groups_field = "group_ids" if self.major >= 19 else "groups_id"
        mods = self.admin.call("ir.module.module", "search_read", [("name", "in", ["maildesk", "crm"])],
                               fields=["name", "state"])
        states = {m["name"]: m["state"] for m in mods}
        if states.get("maildesk") != "installed" or states.get("crm") != "installed":
            raise Abort("maildesk and crm must be installed in %s (found %s)" % (self.a.db, states))
        if not self.sidecar.alive():
            raise Abort("the sidecar does not answer at %s/healthz" % self.a.sidecar)
        if self.count("maildesk.mailbox", [], context={"active_test": False}):
            raise Abort("database %s already has MailDesk mailboxes: run the test on a fresh database" % self.a.db)
        # Odoo builds the sign-in redirect URI from web.base.url: it must be the URL used here.
        base = self.admin.call("ir.config_parameter", "get_param", "web.base.url")
        if (base or "").rstrip("/") != self.a.odoo.rstrip("/"):
            r.info("web.base.url was %s; setting it to %s (Settings → Technical → System Parameters)" % (base, self.a.odoo))
            self.admin.call("ir.config_parameter", "set_param", "web.base.url", self.a.odoo.rstrip("/"))
        sversion = self.sidecar.call("system.version")
        if not sversion.get("simulate"):
            raise Abort("the sidecar at %s is not running with --simulate" % self.a.sidecar)
        r.info("sidecar %s (%s) at %s, simulated Microsoft 365" % (sversion.get("version"), sversion.get("commit"), self.a.sidecar))
        azure = (self.sidecar.call("settings.get") or {}).get("azure") or {}
        tenant = self.a.azure_tenant or azure.get("tenant")
        client_id = self.a.azure_client_id or azure.get("client_id")
        values = {
            "maildesk_sidecar_url": self.a.sidecar_url_for_odoo or self.a.sidecar,
            "maildesk_shared_secret": self.secret,
            "maildesk_odoo_url": self.a.odoo_url_for_sidecar or self.a.odoo.rstrip("/"),
            "maildesk_azure_tenant": tenant,
            "maildesk_azure_client_id": client_id,
            "maildesk_azure_client_secret": self.a.azure_client_secret,
        }
        fields = self.admin.call("res.config.settings", "fields_get", attributes=["type"])
        values = {k: v for k, v in values.items() if k in fields}
        # One save: what the Save button of Settings does (create, then execute).
        one_save_error = ""
        try:
            sid = self.admin.call("res.config.settings", "create", values)
            self.admin.button("res.config.settings", "execute", [sid])
        except OdooError as exc:
            one_save_error = exc.message
        r.check(not one_save_error, "settings: sidecar URL, shared secret and Azure app saved in one save",
                short(one_save_error))
        if one_save_error:
            # Carry on as an admin would: save the sidecar first, then the Azure app.
            first = {k: v for k, v in values.items() if not k.startswith("maildesk_azure")}
            sid = self.admin.call("res.config.settings", "create", first)
            self.admin.button("res.config.settings", "execute", [sid])
            sid = self.admin.call("res.config.settings", "create", values)
            self.admin.button("res.config.settings", "execute", [sid])
            r.info("saved in two steps instead (sidecar first, then the Azure app)")
        url = self.admin.call("ir.config_parameter", "get_param", "maildesk.sidecar_url")
        r.check(url == values["maildesk_sidecar_url"], "settings: the sidecar URL is stored", "maildesk.sidecar_url=%s" % url)
        # Pair with Odoo: the settings form saves, then calls the button on that record.
        sid = self.admin.call("res.config.settings", "create", {})
        try:
            action = self.admin.button("res.config.settings", "action_maildesk_pair", [sid]) or {}
            paired = (action.get("params") or {}).get("type") == "success"
            detail = short((action.get("params") or {}).get("message"))
        except OdooError as exc:
            paired, detail = False, short(exc.message)
        r.check(paired, "settings: Pair with Odoo succeeds", detail)
        if not paired:
            raise Abort("cannot go on without pairing")
        odoo_side = (self.sidecar.call("system.version") or {}).get("odoo") or {}
        r.check(odoo_side.get("db") == self.a.db, "settings: the sidecar now reaches this Odoo",
                "odoo url=%s db=%s" % (odoo_side.get("url"), odoo_side.get("db")))
        want = "json2" if self.major >= 19 else "jsonrpc"
        r.check(odoo_side.get("protocol") == want, "settings: the sidecar calls Odoo %s over %s" % (self.major, want),
                "protocol %r" % odoo_side.get("protocol"))
        try:
            action = self.admin.button("res.config.settings", "action_maildesk_test_connection",
                                       [self.admin.call("res.config.settings", "create", {})]) or {}
            params = action.get("params") or {}
            r.check(params.get("type") == "success", "settings: Test connection", short(params.get("message")))
        except OdooError as exc:
            r.check(False, "settings: Test connection", short(exc.message))
        bridge = self.admin.call("res.users", "search_read", [("login", "=", "maildesk-bridge")],
                                 fields=["partner_id", self.groups_field], context={"active_test": False})
        self.bridge_uid = bridge[0]["id"] if bridge else False
        self.bridge_partner = bridge[0]["partner_id"][0] if bridge else False
        group_bridge = self.xmlid("maildesk.group_maildesk_bridge")
        r.check(bool(bridge) and bridge[0][self.groups_field] == [group_bridge],
                "settings: the bridge user has only the MailDesk Bridge group",
                "groups %s" % (bridge[0][self.groups_field] if bridge else "(no bridge user)"))

    # -- 2. users and mailboxes -------------------------------------------

    def create_users(self):
        g_user = self.xmlid("base.group_user")
        g_md = self.xmlid("maildesk.group_maildesk_user")
        g_sales = self.xmlid("sales_team.group_sale_salesman")
        password = "e2e-" + self.run_id
        people = [
            # key, name, local part, groups
            ("anna", "Anna Schmidt", "anna", [g_user, g_md, g_sales]),
            ("ben", "Ben Okafor", "ben", [g_user, g_md, g_sales]),
            # Chloé: a plain internal user with no right on any mailbox.
            ("chloe", "Chloé Martin", "chloe", [g_user, g_sales]),
        ]
        for key, name, local, groups in people:
            email = "%s@%s" % (local, self.domain)
            login = "%s-%s" % (local, self.run_id)
            uid = self.admin.call(
                "res.users", "create",
                {"name": name, "login": login, "email": email, "password": password,
                 self.groups_field: [(6, 0, [g for g in groups if g])]},
                context={"no_reset_password": True},
            )
            browser = Browser(self.a.odoo, self.a.db, self.sim_ssl, key)
            browser.login(login, password)
            partner = self.admin.call("res.users", "read", [uid], ["partner_id"])[0]["partner_id"][0]
            self.users[key] = {"browser": browser, "uid": uid, "partner_id": partner, "email": email, "name": name}
        self.r.info("users: %s (plain internal users; logged in through /web/session/authenticate)" %
                    ", ".join("%s <%s> uid %s" % (u["name"], u["email"], u["uid"]) for u in self.users.values()))

    def mailbox_fields(self):
        return self.admin.call("maildesk.mailbox", "fields_get", attributes=["type", "relation", "string"])

    def create_mailboxes(self):
        r = self.r
        fields = self.mailbox_fields()
        self.mb_fields = fields
        lead_model = self.admin.call("ir.model", "search", [("model", "=", "crm.lead")], limit=1)
        team_id = self.admin.call("crm.team", "create", {"name": "E2E Support team %s" % self.run_id})
        self.team_id = team_id
        self.salesperson = self.users["ben"]
        personal = {
            "email": "anna@%s" % self.domain,
            "kind": "personal",
            "owner_id": self.users["anna"]["uid"],
            "main_user_id": self.users["anna"]["uid"],
            "mode": "log",
            "create_contacts": True,
            "log_sent_as_activity": True,
            "folders": "inbox,sentitems",
            "backfill_days": self.a.backfill_days,
        }
        shared = {
            "email": "support@%s" % self.domain,
            "kind": "shared",
            "owner_id": self.users["ben"]["uid"],
            "main_user_id": self.users["ben"]["uid"],
            "user_ids": [(6, 0, [self.users["ben"]["uid"]])],
            "mode": "gateway",
            "gateway_model_id": lead_model[0],
            "folders": "inbox,sentitems",
            "backfill_days": self.a.backfill_days,
        }
        # Per-mailbox defaults of gateway records (issue 12 item 3): a sales
        # team field and a salesperson field when the form has them, else
        # Odoo-style alias defaults in a text field.
        self.team_set_by = self.user_set_by = ""
        for name, f in fields.items():
            if f.get("type") == "many2one" and f.get("relation") == "crm.team" and not self.team_set_by:
                shared[name] = team_id
                self.team_set_by = name
        for name, f in fields.items():
            if (f.get("type") == "many2one" and f.get("relation") == "res.users" and name.startswith("gateway")
                    and not self.user_set_by):
                shared[name] = self.salesperson["uid"]
                self.user_set_by = name
        if "gateway_defaults" in fields:
            defaults = {}
            if not self.team_set_by:
                defaults["team_id"] = team_id
                self.team_set_by = "gateway_defaults"
            if not self.user_set_by:
                defaults["user_id"] = self.salesperson["uid"]
                self.user_set_by = "gateway_defaults"
            if defaults:
                shared["gateway_defaults"] = repr(defaults)
        for key, vals in (("anna", personal), ("support", shared)):
            vals = {k: v for k, v in vals.items() if k in fields}
            try:
                mid = self.admin.call("maildesk.mailbox", "create", vals)
            except OdooError as exc:
                raise Abort("creating mailbox %s failed: %s" % (vals["email"], exc.message)) from None
            owner_key = "anna" if key == "anna" else "ben"
            self.mailboxes[key] = {"id": mid, "email": vals["email"], "owner": owner_key}
        r.check(True, "mailboxes: personal anna@ (log mode, owner Anna) and shared support@ (gateway, crm.lead, owner Ben) created",
                "team via %s, salesperson via %s" % (self.team_set_by or "(no field)", self.user_set_by or "(no field)"))

    # -- 3. connect through the sign-in page and Odoo's callback ---------

    def connect(self, key, reason="connect"):
        r = self.r
        mb = self.mailboxes[key]
        owner = self.users[mb["owner"]]
        browser = owner["browser"]
        url = None
        try:
            action = browser.button("maildesk.mailbox", "action_connect", [mb["id"]]) or {}
            url = action.get("url")
            how = "the owner pressed Connect"
        except OdooError as exc:
            how = "owner's Connect failed (%s); the admin pressed Connect and sent the link" % short(exc.message, 100)
        if not url:
            self.admin.button("maildesk.mailbox", "action_connect", [mb["id"]])
            url = self.admin.call("maildesk.mailbox", "read", [mb["id"]], ["connect_url"])[0]["connect_url"]
        if not url:
            return r.check(False, "%s: %s has a sign-in link" % (reason, mb["email"]), how)
        # The owner's browser: the simulator's Microsoft sign-in page...
        status, body, location, paged = sign_in(browser, url, owner["email"])
        if paged:
            how += "; signed in as %s on the consent page" % owner["email"]
        elif location:
            how += "; the simulator signed %s in without a page" % owner["email"]
        if not location:
            return r.check(False, "%s: %s signs in on Microsoft's page" % (reason, mb["email"]),
                           "HTTP %s: %s" % (status, short(re.sub(r"<[^>]+>", " ", body.decode("utf-8", "replace")))))
        # ... redirects to Odoo's callback, opened with the owner's Odoo session.
        final, status, body = browser.follow(location, r)
        page = re.sub(r"<[^>]+>", " ", body.decode("utf-8", "replace"))
        ok = status == 200 and "/maildesk/oauth/callback" in location and "is connected" in page
        said = re.search(r"(The mailbox \S+ is connected\.)", page)
        detail = how + "; callback HTTP %s: %s" % (status, said.group(1) if said else short(page[-300:], 200))
        return r.check(ok, "%s: %s connected through the sign-in page and Odoo's callback (owner's cookie)" % (reason, mb["email"]), detail)

    # -- waiting for backfill and delivery ---------------------------------

    def odoo_state(self, key):
        mb = self.mailboxes[key]
        spec = {f: {} for f in ("state", "progress", "progress_done", "progress_total", "error", "last_sync_at")}
        # Opening the form: the action's context asks for a fresh state.
        row = self.admin.call("maildesk.mailbox", "web_read", [mb["id"]], specification=spec,
                              context={"maildesk_refresh_on_open": True})[0]
        return row

    def sidecar_view(self, key):
        sid = self.admin.call("maildesk.mailbox", "read", [self.mailboxes[key]["id"]], ["sidecar_id"])[0]["sidecar_id"]
        return self.sidecar.call("mailbox.get", mailbox_id=sid)

    def held_count(self, key):
        return self.count("mail.message", [("maildesk_mailbox_id", "=", self.mailboxes[key]["id"])])

    def wait_synced(self, keys, label, timeout=None, since=None):
        """Backfill finished and every queued item answered by Odoo (bounded; stall-aware).

        since (UTC "YYYY-MM-DD HH:MM:SS"): also wait for a sync round that ended after it.
        """
        timeout = timeout or self.a.timeout
        started = time.time()
        deadline = started + timeout
        last_change, last_sig = time.time(), None
        status = {}
        while True:
            done = True
            sig = []
            for key in keys:
                row = self.odoo_state(key)
                view = self.sidecar_view(key)
                c = view.get("counts") or {}
                prog = view.get("progress") or {}
                pending = (c.get("queued", 0) - c.get("delivered", 0) - c.get("unrouted", 0) - c.get("excluded", 0)
                           - c.get("failed", 0))
                held = self.held_count(key)
                status[key] = {"state": row["state"], "progress": row.get("progress"), "pending": pending,
                               "counts": c, "held": held, "error": row.get("error"),
                               "finished": prog.get("finished"), "delivery": view.get("delivery") or {}}
                sig.append((row["state"], c.get("queued"), c.get("delivered"), c.get("unrouted"), c.get("excluded"),
                            c.get("failed"), held,
                            row.get("last_sync_at")))
                if row["state"] not in ("connected", "syncing", "error", "reauth_required") or pending > 0 or not prog.get("finished"):
                    done = False
                # (a quiet round of an idle mailbox does not record itself: give it a minute)
                if since and (row.get("last_sync_at") or "") < since and time.time() < started + 60:
                    done = False
            if sig != last_sig:
                last_sig, last_change = sig, time.time()
                self.r.debug("%s: %s" % (label, "; ".join(
                    "%s %s %.0f%% pending %s held %s counts %s" % (k, s["state"], s["progress"] or 0, s["pending"], s["held"], s["counts"])
                    for k, s in status.items())))
            if done:
                return True, status
            if time.time() > deadline:
                return False, status
            if time.time() - last_change > self.a.stall:
                return False, dict(status, stalled=True)
            time.sleep(3)

    def describe(self, status):
        out = []
        for key, s in status.items():
            if key == "stalled":
                continue
            d = s["delivery"]
            out.append("%s: %s, %s held in Odoo, sidecar counts %s, pending %s%s%s" % (
                self.mailboxes[key]["email"], s["state"], s["held"], json.dumps(s["counts"], sort_keys=True), s["pending"],
                ", error: " + short(s["error"], 120) if s.get("error") else "",
                ", delivery: " + short(d.get("last_error") or d.get("reason") or "", 160) if d.get("delayed") else ""))
        if status.get("stalled"):
            out.append("(nothing changed for %ss)" % self.a.stall)
        return "; ".join(out)

    # -- reading what happened ---------------------------------------------

    def index(self, key):
        """The mailbox's Inbox and Sent Items as the owner's inbox shows them (maildesk_inbox_messages)."""
        owner = self.users[self.mailboxes[key]["owner"]]["browser"]
        out = []
        for folder in ("inbox", "sentitems"):
            cursor = None
            for _page in range(100):
                res = owner.call("maildesk.mailbox", "maildesk_inbox_messages", [self.mailboxes[key]["id"]],
                                 folder=folder, cursor=cursor, limit=200)
                for m in res.get("messages") or []:
                    m["folder"] = folder
                    out.append(m)
                cursor = res.get("next_cursor")
                if not cursor:
                    break
        return out

    def odoo_rows(self, message_ids):
        rows = []
        ids = sorted({m for m in message_ids if m})
        for i in range(0, len(ids), 200):
            rows += self.admin.call(
                "mail.message", "search_read", [("message_id", "in", ids[i:i + 200]), ("model", "!=", False)],
                fields=["message_id", "model", "res_id", "record_name", "maildesk_mailbox_id", "author_id", "subject"],
            )
        return rows

    def where(self, key):
        """(index messages, {Message-Id: set of (model, res_id)}) for a mailbox."""
        idx = self.index(key)
        rows = self.odoo_rows([m.get("internet_message_id") for m in idx])
        held = {}
        for row in rows:
            held.setdefault(row["message_id"], []).append((row["model"], row["res_id"]))
        return idx, held

    def conversation_check(self, key, idx, held, label):
        """Every held message of a conversation lands on the record of its earliest held message."""
        convs = {}
        for m in idx:
            if m.get("conversation_id") and m.get("internet_message_id") in held:
                convs.setdefault(m["conversation_id"], []).append(m)
        replies = misplaced = 0
        examples = []
        for msgs in convs.values():
            msgs.sort(key=lambda m: (m.get("received_at") or "", m.get("folder") != "sentitems"))
            seen_ids = set()
            first = None
            for m in msgs:
                mid = m["internet_message_id"]
                if mid in seen_ids:
                    continue
                seen_ids.add(mid)
                records = set(held[mid])
                if first is None:
                    first = records
                    continue
                replies += 1
                if not (records & first):
                    misplaced += 1
                    if len(examples) < 3:
                        examples.append("%r on %s, conversation on %s" % (short(m.get("subject"), 50), sorted(records)[:2], sorted(first)[:2]))
                first = first | records if key == "anna" else first
        return self.r.check(misplaced == 0 and replies > 0, label,
                            "%d of %d later messages of a conversation landed elsewhere%s" % (
                                misplaced, replies, (": " + "; ".join(examples)) if examples else ""))

    def check_log_mode(self):
        r = self.r
        mb = self.mailboxes["anna"]
        idx, held = self.where("anna")
        self.anna_idx = idx
        ids = {m["internet_message_id"] for m in idx if m.get("internet_message_id")}
        excluded = [m for m in idx if m.get("delivery") == "excluded"]
        missing = [m for m in idx if m.get("internet_message_id") not in held and m.get("delivery") != "excluded"]
        r.check(len(idx) > 0 and not missing,
                "log mode: every mail of anna@ (Inbox and Sent Items) is on a chatter in Odoo, or deliberately not logged",
                "%d messages in the index, %d distinct Message-Ids, %d not logged (%s), %d missing%s" % (
                    len(idx), len(ids), len(excluded),
                    ", ".join("%s ×%d" % kv for kv in sorted(collections.Counter(
                        m.get("delivery_error") or "?" for m in excluded).items())) or "none",
                    len(missing),
                    (" e.g. " + "; ".join("%r from %s" % (short(m.get("subject"), 40), addr(m.get("from"))) for m in missing[:3])) if missing else ""))
        leaked = [m for m in excluded if m.get("internet_message_id") in held]
        odd = [m for m in excluded if "private" not in (m.get("delivery_error") or "")
               and "internal" not in (m.get("delivery_error") or "")]
        r.check(bool(excluded) and not leaked and not odd,
                "privacy: mail Outlook marks private is not logged (and nothing else of anna@ is held back)",
                "%d not logged, %d of them in Odoo anyway, %d for another reason%s" % (
                    len(excluded), len(leaked), len(odd),
                    (": " + "; ".join(short(m.get("delivery_error"), 60) for m in odd[:3])) if odd else ""))
        # New conversations from outside land on the sender's contact.
        by_conv = {}
        for m in idx:
            by_conv.setdefault(m.get("conversation_id") or m.get("internet_message_id"), []).append(m)
        firsts = []
        for msgs in by_conv.values():
            msgs.sort(key=lambda m: m.get("received_at") or "")
            if msgs[0]["folder"] == "inbox" and msgs[0].get("internet_message_id") in held:
                firsts.append(msgs[0])
        senders = {norm(addr(m.get("from"))) for m in firsts}
        partners = {}
        for row in self.admin.call("res.partner", "search_read", [("email_normalized", "in", sorted(senders))],
                                   fields=["email_normalized"], context={"active_test": False}):
            partners.setdefault(row["email_normalized"], set()).add(row["id"])
        # Routing rules put it on the sender's open lead first (support@'s
        # gateway makes leads of the same customers), else on the contact.
        leads = {}
        for row in self.admin.call("crm.lead", "search_read", ["|", ("email_normalized", "in", sorted(senders)),
                                                               ("partner_id.email_normalized", "in", sorted(senders))],
                                   fields=["email_normalized", "partner_id"], context={"active_test": False}):
            leads.setdefault(row["email_normalized"], set()).add(row["id"])
        wrong = [m for m in firsts
                 if not any((model == "res.partner" and rid in partners.get(norm(addr(m.get("from"))), set()))
                            or (model == "crm.lead" and rid in leads.get(norm(addr(m.get("from"))), set()))
                            for model, rid in held[m["internet_message_id"]])]
        on_leads = sum(1 for m in firsts if any(model == "crm.lead" for model, _r in held[m["internet_message_id"]]))
        r.check(firsts and not wrong,
                "log mode: a new conversation from outside lands on the sender's open lead (routing rule) or contact",
                "%d of %d first mails elsewhere, %d on the sender's lead%s" % (len(wrong), len(firsts), on_leads, (": " + "; ".join(
                    "%r from %s on %s" % (short(m.get("subject"), 40), addr(m.get("from")), held[m["internet_message_id"]][:2])
                    for m in wrong[:3])) if wrong else ""))
        self.conversation_check("anna", idx, held, "log mode: replies land on the record holding their conversation")
        sent = [m for m in idx if m["folder"] == "sentitems"]
        outbox_type = self.xmlid("maildesk.mail_activity_type_email_outbox")
        acts = self.admin.call("mail.activity", "search_read",
                               [("activity_type_id", "=", outbox_type), ("user_id", "=", self.users["anna"]["uid"])],
                               fields=["res_model", "res_id", "active"], context={"active_test": False})
        r.check(0 < len(acts) <= len(sent) and not any(a["active"] for a in acts),
                "log mode: mail sent from Outlook became done 'Email – Outbox' activities of Anna",
                "%d activities (%d open) for %d mails in Sent Items" % (len(acts), sum(1 for a in acts if a["active"]), len(sent)))
        # The sync subscribes no one (issue 12 item 6).
        anna_p = self.users["anna"]["partner_id"]
        follows = self.admin.call("mail.followers", "search_read",
                                  [("partner_id", "=", anna_p), ("res_model", "!=", "maildesk.mailbox"),
                                   "!", "&", ("res_model", "=", "res.partner"), ("res_id", "=", anna_p)],
                                  fields=["res_model", "res_id"])
        r.check(not follows, "log mode: the sync made Anna follow nothing",
                "Anna follows %d records%s" % (len(follows), (" e.g. " + ", ".join("%s,%s" % (f["res_model"], f["res_id"]) for f in follows[:5])) if follows else ""))
        return mb

    def check_gateway(self):
        r = self.r
        mb = self.mailboxes["support"]
        idx, held = self.where("support")
        self.support_idx = idx
        inbound = [m for m in idx if m["folder"] == "inbox"]
        private = [m for m in inbound if m.get("delivery") == "excluded"]
        missing = [m for m in inbound if m.get("internet_message_id") not in held and m.get("delivery") != "excluded"]
        st = self.sidecar_view("support")
        r.check(inbound and not missing and not [m for m in private if m.get("internet_message_id") in held]
                and all("private" in (m.get("delivery_error") or "") for m in private),
                "gateway: every incoming mail of support@ is in Odoo, except mail Outlook marks private",
                "%d of %d incoming mails not in Odoo, %d private ones kept out; sidecar counts %s%s" % (
                    len(missing), len(inbound), len(private), json.dumps(st.get("counts"), sort_keys=True),
                    ("; delivery error: " + short((st.get("delivery") or {}).get("last_error"), 200))
                    if (st.get("delivery") or {}).get("last_error") else ""))
        lead_ids = sorted({rid for recs in held.values() for model, rid in recs if model == "crm.lead"})
        leads = self.admin.call("crm.lead", "read", lead_ids, ["name", "team_id", "user_id"],
                                context={"active_test": False}) if lead_ids else []
        r.check(bool(leads), "gateway: incoming mail created CRM leads", "%d leads hold support@ mail" % len(leads))
        # A conversation started by incoming mail is a lead (replies follow their
        # conversation, also when it started from Outlook's Sent Items).
        convs = {}
        for m in idx:
            if m.get("internet_message_id") in held:
                convs.setdefault(m.get("conversation_id") or m["internet_message_id"], []).append(m)
        starts = []
        for msgs in convs.values():
            msgs.sort(key=lambda m: (m.get("received_at") or "", m.get("folder") != "sentitems"))
            if msgs[0]["folder"] == "inbox":
                starts.append(msgs[0])
        off = [m for m in starts if not any(model == "crm.lead" for model, _rid in held[m["internet_message_id"]])]
        r.check(starts and not off, "gateway: a conversation started by incoming mail is a lead",
                "%d of %d such conversations not on a lead%s" % (len(off), len(starts), (" e.g. " + "; ".join(
                    "%r from %s on %s" % (short(m.get("subject"), 40), addr(m.get("from")), held[m["internet_message_id"]][:2])
                    for m in off[:3])) if off else ""))
        if leads:
            self.conversation_check("support", idx, held, "gateway: replies land on the lead of their conversation")
        else:
            r.check(False, "gateway: replies land on the lead of their conversation", "no lead to check: none was created")
        # No "Re: …" lead for a conversation Odoo already held.
        conv_of = {m["internet_message_id"]: m.get("conversation_id") for m in idx if m.get("internet_message_id")}
        first_at = {}
        for m in idx:
            if m.get("internet_message_id") in held:
                c = m.get("conversation_id")
                if c and (c not in first_at or (m.get("received_at") or "") < first_at[c][0]):
                    first_at[c] = (m.get("received_at") or "", m["internet_message_id"])
        re_leads = [lead for lead in leads if re.match(r"^\s*(re|aw|sv|antw)\s*:", lead["name"] or "", re.I)]
        dup_re = []
        for lead in re_leads:
            mids = [mid for mid, recs in held.items() if ("crm.lead", lead["id"]) in recs]
            convs = {conv_of.get(mid) for mid in mids} - {None}
            for c in convs:
                first_mid = first_at.get(c, ("", None))[1]
                if first_mid and ("crm.lead", lead["id"]) not in held.get(first_mid, []):
                    dup_re.append(lead)
                    break
        sent_convs = {m.get("conversation_id") for m in idx if m["folder"] == "sentitems" and m.get("conversation_id")}
        from_outlook = [l for l in re_leads if l not in dup_re and any(
            conv_of.get(mid) in sent_convs for mid, recs in held.items() if ("crm.lead", l["id"]) in recs)]
        if from_outlook:
            r.info("%d 'Re:' leads answer mail sent from Outlook that Odoo does not hold (Sent Items of a gateway "
                   "mailbox: %d held of %d)" % (len(from_outlook), sum(1 for m in idx if m["folder"] == "sentitems" and m.get("internet_message_id") in held),
                                              sum(1 for m in idx if m["folder"] == "sentitems")))
        r.check(leads and not dup_re, "gateway: no 'Re: …' lead for a conversation Odoo already holds",
                "%d 'Re:' leads of %d, %d of them split off a known conversation%s" % (
                    len(re_leads), len(leads), len(dup_re),
                    (" e.g. " + "; ".join("#%d %r" % (l["id"], short(l["name"], 50)) for l in dup_re[:3])) if dup_re else ""))
        # Team and salesperson defaults (issue 12 item 3).
        if not self.team_set_by:
            r.skip("gateway: leads get the mailbox's sales team", "the mailbox form has no field for it (no crm.team field, no gateway_defaults)")
        elif leads:
            bad = [l for l in leads if not l["team_id"] or l["team_id"][0] != self.team_id]
            r.check(not bad, "gateway: leads get the mailbox's sales team (%s)" % self.team_set_by,
                    "%d of %d leads without it%s" % (len(bad), len(leads), (" e.g. #%d team %s" % (bad[0]["id"], bad[0]["team_id"])) if bad else ""))
        if not self.user_set_by:
            r.skip("gateway: leads get the mailbox's salesperson", "the mailbox form has no field for it")
        elif leads:
            bad = [l for l in leads if not l["user_id"] or l["user_id"][0] != self.salesperson["uid"]]
            r.check(not bad, "gateway: leads get the mailbox's salesperson (%s)" % self.user_set_by,
                    "%d of %d leads without it%s" % (len(bad), len(leads), (" e.g. #%d salesperson %s" % (bad[0]["id"], bad[0]["user_id"])) if bad else ""))
        self.lead_count = len(leads)

    # -- notifications -----------------------------------------------------

    def bus_peek(self, key):
        """Bus notifications addressed to a user since the last peek (the web client's bus fallback)."""
        browser = self.users[key]["browser"] if key in self.users else self.admin
        last = self.bus_last.get(key, 1)
        res = browser.json("/websocket/peek_notifications", {"channels": [], "last": last, "is_first_poll": True})
        notifs = res.get("notifications") or []
        if notifs:
            self.bus_last[key] = max(n["id"] for n in notifs)
        return notifs

    def baseline(self):
        for key in list(self.users) + ["admin"]:
            self.bus_last[key] = 1
            self.bus_peek(key)
        self.base = {
            "mail.mail": self.max_id("mail.mail"),
            "mail.notification": self.max_id("mail.notification"),
            "mail.message": self.max_id("mail.message"),
            "mail.followers": self.max_id("mail.followers"),
        }

    def check_quiet(self):
        r = self.r
        mb_ids = [m["id"] for m in self.mailboxes.values()]
        mails = self.admin.call("mail.mail", "search_read", [("id", ">", self.base["mail.mail"])],
                                fields=["model", "res_id", "subject", "state", "failure_reason", "recipient_ids"],
                                context={"active_test": False})
        # The mailboxes' own chatter (state tracking) is not synced mail.
        mails = [m for m in mails if m["model"] != "maildesk.mailbox"]
        r.check(not mails, "quiet: the sync queued or sent no mail.mail",
                "%d new mail.mail%s" % (len(mails), (" e.g. " + "; ".join("%s,%s %r to partners %s, %s %s" % (m["model"], m["res_id"], short(m["subject"], 40), m["recipient_ids"], m["state"], short(m["failure_reason"], 60)) for m in mails[:3])) if mails else ""))
        notifs = self.admin.call("mail.notification", "search_read", [("id", ">", self.base["mail.notification"])],
                                 fields=["mail_message_id", "res_partner_id", "notification_type"])
        if notifs:
            # search_read leaves out what the admin may not read (user notifications
            # of others): those are not the mailboxes' chatter either.
            msgs = {m["id"]: m for m in self.admin.call(
                "mail.message", "search_read", [("id", "in", sorted({n["mail_message_id"][0] for n in notifs}))], fields=["model"])}
            notifs = [n for n in notifs if msgs.get(n["mail_message_id"][0], {}).get("model") != "maildesk.mailbox"]
        r.check(not notifs, "quiet: the sync created no mail.notification",
                "%d new notifications%s" % (len(notifs), (" e.g. to %s" % ", ".join(sorted({str(n["res_partner_id"][1]) for n in notifs if n["res_partner_id"]})[:4])) if notifs else ""))
        bus = {}
        for key in list(self.users) + ["admin"]:
            got = [n for n in self.bus_peek(key)
                   if "maildesk.mailbox" not in json.dumps(n.get("message"))]
            if got:
                bus[key] = got
        kinds = sorted({n["message"].get("type") for got in bus.values() for n in got})
        r.check(not bus, "quiet: the sync sent no bus message to any user",
                ", ".join("%s: %d" % (k, len(v)) for k, v in bus.items()) + ((" (types %s)" % ", ".join(map(str, kinds))) if kinds else "") or "none")
        if self.bridge_partner:
            authored = self.admin.call("mail.message", "search_read", [("author_id", "=", self.bridge_partner)],
                                       fields=["model", "res_id", "body"])
            follows = self.admin.call("mail.followers", "search_read", [("partner_id", "=", self.bridge_partner)],
                                      fields=["res_model", "res_id"])
            r.check(not authored and not follows, "quiet: the bridge user follows nothing and authored nothing",
                    "%d messages authored%s, %d records followed%s" % (
                        len(authored), (" e.g. %s,%s %r" % (authored[0]["model"], authored[0]["res_id"], short(re.sub("<[^>]+>", "", authored[0]["body"] or ""), 40))) if authored else "",
                        len(follows), (" e.g. %s" % ", ".join("%s,%s" % (f["res_model"], f["res_id"]) for f in follows[:3])) if follows else ""))

    # -- duplicates ----------------------------------------------------------

    def snapshot(self):
        mb_ids = [m["id"] for m in self.mailboxes.values()]
        rows = self.admin.call("mail.message", "search_read", [("maildesk_mailbox_id", "in", mb_ids)],
                               fields=["message_id", "model", "res_id"])
        return {
            "messages": {r["id"] for r in rows},
            "rows": rows,
            "leads": self.count("crm.lead", [], context={"active_test": False}),
            "partners": self.count("res.partner", [], context={"active_test": False}),
        }

    def check_no_twice(self, before, label):
        after = self.snapshot()
        new = [row for row in after["rows"] if row["id"] not in before["messages"]]
        groups = {}
        for row in after["rows"]:
            groups.setdefault((row["message_id"], row["model"], row["res_id"]), []).append(row["id"])
        doubled = {k: v for k, v in groups.items() if len(v) > 1}
        self.r.check(not new and not doubled and after["leads"] == before["leads"] and after["partners"] == before["partners"],
                     "no twice: %s" % label,
                     "%d new synced messages, %d Message-Ids twice on one record, leads %d→%d, contacts %d→%d%s" % (
                         len(new), len(doubled), before["leads"], after["leads"], before["partners"], after["partners"],
                         (" e.g. %s on %s,%s" % (new[0]["message_id"], new[0]["model"], new[0]["res_id"])) if new else ""))
        return after

    def resync(self, key):
        """'Sync again from scratch' when the form has it, else the sidecar's mailbox.backfill."""
        mb = self.mailboxes[key]
        arch = self.admin.call("maildesk.mailbox", "get_views", [[False, "form"]])["views"]["form"]["arch"]
        button = None
        for m in re.finditer(r"<button\b[^>]*>", arch):
            tag = m.group(0)
            name = re.search(r'name="([^"]+)"', tag)
            string = re.search(r'string="([^"]+)"', tag)
            if name and string and re.search(r"scratch|resync|re-sync|again", string.group(1), re.I) and "connect" not in name.group(1).lower():
                button = name.group(1)
                break
        if button:
            action = self.admin.button("maildesk.mailbox", button, [mb["id"]]) or {}
            if action.get("res_model") and action.get("type") == "ir.actions.act_window":
                # A confirmation wizard: save it and press its first confirming button.
                ctx = action.get("context") or {}
                if isinstance(ctx, str):
                    ctx = {}
                wid = self.admin.call(action["res_model"], "create", {}, context=ctx)
                warch = self.admin.call(action["res_model"], "get_views", [[False, "form"]], context=ctx)["views"]["form"]["arch"]
                wb = re.search(r'<button\b[^>]*name="([^"%]+)"[^>]*type="object"', warch) or re.search(r'<button\b[^>]*type="object"[^>]*name="([^"%]+)"', warch)
                if wb:
                    self.admin.button(action["res_model"], wb.group(1), [wid], context=ctx)
            return "the form's %r button" % button
        sid = self.admin.call("maildesk.mailbox", "read", [mb["id"]], ["sidecar_id"])[0]["sidecar_id"]
        self.sidecar.call("mailbox.backfill", uid=self.admin.uid, mailbox_id=sid, since="all")
        return "the sidecar's mailbox.backfill (the form has no 'Sync again from scratch' button)"

    # -- sending -------------------------------------------------------------

    def find_sent(self, key, token, timeout):
        """Sent Items of a mailbox (as its owner's inbox lists them) holding token in the subject."""
        owner = self.users[self.mailboxes[key]["owner"]]["browser"]
        mid = self.mailboxes[key]["id"]

        def look():
            owner.button("maildesk.mailbox", "action_sync_now", [mid])
            res = owner.call("maildesk.mailbox", "maildesk_inbox_messages", [mid], folder="sentitems", query=token, limit=50)
            return res.get("messages") or []
        return self.wait("sent items of %s" % key, look, timeout, interval=5) or []

    def check_send(self):
        r = self.r
        anna = self.users["anna"]
        token = "e2e-send-%s" % self.run_id
        customer = anna["browser"].call("res.partner", "create",
                                        {"name": "E2E Customer %s" % self.run_id, "email": "e2e.customer.%s@example.net" % self.run_id})
        body = "<p>Hello from Odoo's chatter (%s)</p>" % token
        try:
            anna["browser"].json("/mail/message/post", {
                "thread_model": "res.partner", "thread_id": customer,
                "post_data": {"body": body, "message_type": "comment", "subtype_xmlid": "mail.mt_comment",
                              "partner_ids": [customer]},
            })
        except OdooError as exc:
            r.check(False, "send: Anna posts on a contact's chatter", short(exc.message))
            return
        msg = self.admin.call("mail.message", "search_read",
                              [("model", "=", "res.partner"), ("res_id", "=", customer), ("body", "ilike", token)],
                              fields=["message_id", "subject", "email_from"], limit=1)
        odoo_mid = msg[0]["message_id"] if msg else ""
        r.info("Anna posted on %s; Odoo's Message-Id %s, from %s" % ("res.partner,%s" % customer, odoo_mid, msg[0]["email_from"] if msg else "?"))
        # Odoo sends chatter mail right after the commit; the queue cron is the fallback.
        sent = self.find_sent_body("anna", token, self.a.send_timeout)
        if not sent:
            self.run_mail_queue()
            sent = self.find_sent_body("anna", token, 60)
        mids = [m.get("internet_message_id") for m in sent]
        r.check(bool(sent) and all(m == odoo_mid for m in mids),
                "send: a chatter post by the owner goes out through anna@ with Odoo's Message-Id",
                "Sent Items: %s" % (", ".join(mids) or "nothing with %s" % token))
        r.check(len(sent) == 1, "send: exactly one copy in Sent Items", "%d copies" % len(sent))
        mails = self.admin.call("mail.mail", "search_read", [("mail_message_id", "in", [msg[0]["id"]] if msg else [0])],
                                fields=["state", "failure_reason"])
        if mails:
            r.info("mail.mail of that post: %s" % ", ".join("%s %s" % (m["state"], short(m["failure_reason"], 80)) for m in mails))
        self.customer = customer

    def check_compose(self):
        """The inbox composer as the mailbox's owner (a plain MailDesk user):
        signature, a draft saved in Microsoft 365's Drafts, reopened, sent
        with an Odoo Message-Id, logged once on the contact by the mailbox's
        rules; then Microsoft 365's search finds it."""
        r = self.r
        anna = self.users["anna"]["browser"]
        mid = self.mailboxes["anna"]["id"]
        token = "e2e-compose-%s" % self.run_id
        email = "e2e.customer.%s@example.net" % self.run_id
        try:
            anna.call("maildesk.mailbox", "maildesk_set_signature", [mid], "<p>Anna, E2E %s</p>" % token)
            values = anna.call("maildesk.mailbox", "maildesk_compose_prepare", [mid], "new")
            r.check(token in values.get("body_html", ""), "compose: a new mail starts with the mailbox's signature")
            values.update({"to": email, "subject": "Offer %s" % token})
            saved = anna.call("maildesk.mailbox", "maildesk_draft_save", [mid], values)
            drafts = anna.call("maildesk.mailbox", "maildesk_search", folder="drafts", mailbox_ids=[mid])
            r.check(any(d["id"] == saved["draft_id"] and d.get("is_draft") for d in drafts["messages"]),
                    "compose: the draft is in the mailbox's Drafts folder in Microsoft 365",
                    "drafts: %s" % ", ".join(d.get("subject") or "?" for d in drafts["messages"]))
            reopened = anna.call("maildesk.mailbox", "maildesk_draft_open", [mid], saved["draft_id"])
            r.check(reopened.get("subject") == values["subject"] and reopened.get("message_id") == saved["message_id"],
                    "compose: the draft reopens with its subject and Odoo's Message-Id",
                    "%s / %s" % (reopened.get("subject"), reopened.get("message_id")))
            sent = anna.call("maildesk.mailbox", "maildesk_draft_send", [mid], dict(reopened, body_html=reopened["body_html"] + "<p>sent</p>"))
        except OdooError as exc:
            r.check(False, "compose: save, reopen and send a draft as the owner", short(exc.message))
            return
        odoo_mid = sent.get("internet_message_id") or ""
        r.check("-openerp-" in odoo_mid, "compose: sent with Odoo's Message-Id", odoo_mid)

        def logged():
            try:
                anna.button("maildesk.mailbox", "action_sync_now", [mid])
            except OdooError:
                pass
            rows = self.admin.call("mail.message", "search_read", [("message_id", "=", odoo_mid)], fields=["model", "res_id"])
            return rows or None
        rows = self.wait("the sent draft logged in Odoo", logged, self.a.send_timeout, interval=5) or []
        r.check(len(rows) == 1, "compose: the sent mail is logged once, by the mailbox's rules",
                "; ".join("%s,%s" % (x["model"], x["res_id"]) for x in rows) or "not logged")
        found = anna.call("maildesk.mailbox", "maildesk_search", token, mailbox_ids=[mid])
        r.check(any(m.get("internet_message_id") == odoo_mid for m in found["messages"]),
                "search: Microsoft 365's search finds the sent mail by a word of its subject",
                "%d hits" % len(found["messages"]))

    def check_hostile(self):
        """The simulator's hostile sample (m365sim.HostileMIME in anna@'s
        inbox: scripts, event handlers, remote images, CSS tricks, a form)
        through the real sidecar, as Anna's inbox lists it, shows it in the
        reading pane and quotes it in a reply; and the copy Odoo logged."""
        r = self.r
        anna = self.users["anna"]["browser"]
        mid = self.mailboxes["anna"]["id"]
        try:
            res = anna.call("maildesk.mailbox", "maildesk_inbox_messages", [mid], folder="inbox",
                            query="hostile sample", limit=10)
            hits = [m for m in res["messages"] if HOSTILE_SUBJECT in (m.get("subject") or "")]
            if not hits:
                r.check(False, "hostile: the simulator's hostile sample is in anna@'s inbox", "not found by the index")
                return
            row = hits[0]
            shown = anna.call("maildesk.mailbox", "maildesk_inbox_message", [mid], row["id"])
            quoted = anna.call("maildesk.mailbox", "maildesk_compose_prepare", [mid], "reply", row["id"])
        except OdooError as exc:
            r.check(False, "hostile: open and quote the hostile sample as its owner", short(exc.message))
            return
        snippet = (row.get("snippet") or "") + (row.get("subject") or "")
        r.check("<" not in snippet.replace(HOSTILE_SUBJECT, ""), "hostile: the list's snippet is text only", short(snippet))
        body = shown.get("body_html") or ""
        left = hostile_leftovers(body)
        # The sender is a contact now, but one MailDesk made of its mail (as
        # the bridge user): that is no reason to trust it, so its remote
        # images stay blocked; the pixel is an open tracker and goes anyway.
        r.check("invoice is overdue" in body and not left and not shown.get("sender_trusted"),
                "hostile: the reading pane (real sidecar, then Odoo) keeps nothing active and loads nothing remote",
                "sender trusted %s, %s remote images blocked, %s trackers removed%s" % (
                    shown.get("sender_trusted"), shown.get("images_blocked"), shown.get("trackers_removed"),
                    "; left: %s" % ", ".join(left) if left else ""))
        left = hostile_leftovers(quoted.get("body_html") or "")
        r.check("invoice is overdue" in (quoted.get("body_html") or "") and not left,
                "hostile: the reply's quote keeps nothing active and loads nothing remote", ", ".join(left))
        logged = self.admin.call("mail.message", "search_read", [("message_id", "=", row.get("internet_message_id"))],
                                 fields=["model", "res_id", "body"])
        left = sorted({x for m in logged for x in hostile_leftovers(m["body"] or "", remote=False)})
        r.check(logged and not left, "hostile: the copy logged in Odoo keeps nothing active",
                "; ".join("%s,%s" % (m["model"], m["res_id"]) for m in logged) + ("; left: %s" % ", ".join(left) if left else ""))

    def find_sent_body(self, key, token, timeout):
        # The inbox's query matches subjects and senders; the chatter post has no subject of its own,
        # so look at the newest Sent Items and read each candidate's body.
        owner = self.users[self.mailboxes[key]["owner"]]["browser"]
        mid = self.mailboxes[key]["id"]
        seen = {}

        def look():
            try:
                owner.button("maildesk.mailbox", "action_sync_now", [mid])
            except OdooError as exc:
                self.r.debug("sync now: %s" % exc.message)
            res = owner.call("maildesk.mailbox", "maildesk_inbox_messages", [mid], folder="sentitems", limit=20)
            found = []
            for m in res.get("messages") or []:
                if m["id"] not in seen:
                    if token in (m.get("snippet") or "") or token in (m.get("subject") or ""):
                        seen[m["id"]] = True
                    else:
                        try:
                            full = owner.call("maildesk.mailbox", "maildesk_inbox_message", [mid], m["id"])
                            seen[m["id"]] = token in (full.get("body_html") or "")
                        except OdooError:
                            continue
                if seen.get(m["id"]):
                    found.append(m)
            return found
        return self.wait("sent items of %s" % key, look, timeout, interval=5) or []

    def run_mail_queue(self):
        cron = self.xmlid("mail.ir_cron_mail_scheduler_action")
        if cron:
            try:
                # Settings → Technical → Scheduled Actions → "Run Manually".
                self.admin.button("ir.cron", "method_direct_trigger", [cron])
            except OdooError as exc:
                self.r.debug("run mail queue: %s" % exc.message)

    def check_no_send_as(self):
        r = self.r
        chloe = self.users["chloe"]
        anna = self.users["anna"]
        token = "e2e-sendas-%s" % self.run_id
        target = chloe["browser"].call("res.partner", "create",
                                       {"name": "E2E Prospect %s" % self.run_id, "email": "e2e.prospect.%s@example.net" % self.run_id})
        try:
            mid = chloe["browser"].call("res.partner", "message_post", [target],
                                        body="<p>Pretending to be Anna (%s)</p>" % token, subject="Offer %s" % token,
                                        message_type="comment", subtype_xmlid="mail.mt_comment",
                                        partner_ids=[target], email_from="%s <%s>" % (anna["name"], anna["email"]))
        except OdooError as exc:
            # Refused outright at posting time: also "cannot send as".
            r.check(True, "send-as: a user without rights on anna@ cannot send as it", "message_post refused: %s" % short(exc.message))
            return
        if isinstance(mid, list):
            mid = mid[0]
        def settled():
            rows = self.admin.call("mail.mail", "search_read", [("mail_message_id", "=", mid)],
                                   fields=["state", "failure_reason", "failure_type"], context={"active_test": False})
            # mail.mail is created with the post: none left means sent (and deleted).
            if not rows or all(r_["state"] in ("exception", "cancel", "sent") for r_ in rows):
                return {"rows": rows}
            return None
        got = self.wait("chloe's mail", settled, 30, interval=3)
        if not got:
            self.run_mail_queue()
            got = self.wait("chloe's mail", settled, 60, interval=3)
        rows = got["rows"] if got else self.admin.call(
            "mail.mail", "search_read", [("mail_message_id", "=", mid)],
            fields=["state", "failure_reason", "failure_type"], context={"active_test": False})
        sent = self.find_sent("anna", token, self.a.send_timeout // 2)
        failed = bool(rows) and all(x["state"] in ("exception", "cancel") for x in rows)
        reasons = "; ".join("%s: %s" % (x["state"], short(x["failure_reason"], 200)) for x in rows) or "no mail.mail (sent and deleted?)"
        r.check(failed and all(x["failure_reason"] for x in rows),
                "send-as: Chloé's message_post with email_from=anna@ fails with a reason", reasons)
        r.check(all("anna@" in (x["failure_reason"] or "").lower() for x in rows) if rows else False,
                "send-as: the reason names the mailbox", reasons)
        r.check(not sent, "send-as: anna@'s Sent Items did not get Chloé's mail",
                "%d copies in Sent Items%s" % (len(sent), (" (%s)" % sent[0].get("internet_message_id")) if sent else ""))

    # -- live gateway mail ---------------------------------------------------

    def sim_send(self, upn, to, subject, html):
        """A user of the simulated tenant writes with their own mail client (Graph sendMail)."""
        import base64
        import hashlib
        azure = (self.sidecar.call("settings.get") or {}).get("azure") or {}
        authority = (azure.get("authority") or "").rstrip("/")
        tenant = azure.get("tenant")
        client_id = self.a.azure_client_id or azure.get("client_id")
        if not authority or not tenant:
            raise Abort("the sidecar names no simulator authority")
        verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        redirect = "http://127.0.0.1:9/e2e-mail-client"
        client = Browser(self.a.odoo, self.a.db, self.sim_ssl, "mail client of %s" % upn)
        q = urllib.parse.urlencode({
            "client_id": client_id, "response_type": "code", "redirect_uri": redirect,
            "scope": "https://graph.microsoft.com/Mail.Send offline_access", "state": "e2e",
            "code_challenge": challenge, "code_challenge_method": "S256", "login_hint": upn})
        url = "%s/%s/oauth2/v2.0/authorize?%s" % (authority, tenant, q)
        status, headers, body = client.get(url)
        if status == 200 and b'name="txn"' in body:
            page = body.decode("utf-8", "replace")
            txn = re.search(r'name="txn" value="([^"]+)"', page).group(1)
            action = urllib.parse.urljoin(url, re.search(r'<form method="post" action="([^"]+)"', page).group(1))
            status, headers, body = client.post_form(action, {"txn": txn, "login": upn, "decision": "accept"})
        code = urllib.parse.parse_qs(urllib.parse.urlparse(headers.get("Location") or "").query).get("code")
        if not code:
            raise OdooError("sign-in", "no code for %s (HTTP %s)" % (upn, status))
        status, _h, body = client.post_form("%s/%s/oauth2/v2.0/token" % (authority, tenant), {
            "grant_type": "authorization_code", "code": code[0], "redirect_uri": redirect, "client_id": client_id,
            "client_secret": self.a.azure_client_secret, "code_verifier": verifier,
            "scope": "https://graph.microsoft.com/Mail.Send offline_access"})
        token = json.loads(body.decode() or "{}").get("access_token")
        if not token:
            raise OdooError("token", "HTTP %s %s" % (status, short(body.decode("utf-8", "replace"))))
        mail = {"message": {"subject": subject, "body": {"contentType": "HTML", "content": html},
                            "toRecipients": [{"emailAddress": {"address": to}}]}}
        status, _h, body = client.request("%s/v1.0/me/sendMail" % authority, json.dumps(mail).encode(),
                                          {"Content-Type": "application/json", "Authorization": "Bearer " + token}, "POST")
        if status != 202:
            raise OdooError("sendMail", "HTTP %s %s" % (status, short(body.decode("utf-8", "replace"))))

    def check_live_gateway(self):
        """Live (not backfilled) mail to the shared mailbox goes through Odoo's gateway as fetchmail would."""
        r = self.r
        token = "e2e-live-%s" % self.run_id
        subject = "Live request %s" % token
        sender = "chloe@%s" % self.domain
        try:
            self.sim_send(sender, self.mailboxes["support"]["email"], subject,
                          "<p>Hello support, please call me back (%s).</p>" % token)
        except (OdooError, AttributeError) as exc:
            r.skip("live gateway: new mail to support@ becomes a lead", "could not send as %s in the simulator: %s" % (sender, short(str(exc))))
            return

        def landed():
            self.sync_now_all()
            rows = self.admin.call("mail.message", "search_read", [("subject", "=", subject), ("model", "!=", False)],
                                   fields=["model", "res_id", "message_id", "notification_ids"])
            return rows
        rows = self.wait("live mail", landed, self.a.send_timeout, interval=5) or []
        leads = [x for x in rows if x["model"] == "crm.lead"]
        r.check(len(rows) == 1 and len(leads) == 1, "live gateway: new mail to support@ becomes one lead",
                "%d message(s) in Odoo: %s" % (len(rows), ", ".join("%s,%s" % (x["model"], x["res_id"]) for x in rows) or "none"))
        if not leads:
            return
        lead = self.admin.call("crm.lead", "read", [leads[0]["res_id"]], ["name", "team_id", "user_id", "message_follower_ids"])[0]
        if self.user_set_by:
            r.check(lead["user_id"] and lead["user_id"][0] == self.salesperson["uid"],
                    "live gateway: the lead has the mailbox's salesperson", "salesperson %s" % (lead["user_id"],))
        # What Odoo's own gateway notifies for a new lead: its first message
        # has the lead's creation subtype ("Opportunity Created": hidden, no
        # follower gets it by default), and the salesperson the lead is
        # assigned to is told so ("You have been assigned to ...") — the
        # notice a backfill must never send.
        followers = self.admin.call("mail.followers", "read", lead["message_follower_ids"], ["partner_id"])
        if not (self.user_set_by and lead["user_id"]):
            r.skip("live gateway: the salesperson is told of the new lead, as Odoo's own gateway does",
                   "the mailbox sets no salesperson")
            return
        # Read as the salesperson: a user notification is readable by its
        # recipients only (Odoo hides it from the admin's searches).
        sp = next((u for u in self.users.values() if u["uid"] == lead["user_id"][0]), None)
        if sp is None:
            r.skip("live gateway: the salesperson is told of the new lead, as Odoo's own gateway does",
                   "the salesperson is not one of this test's users")
            return
        told = sp["browser"].call("mail.message", "search_read",
                                  [("model", "=", "crm.lead"), ("res_id", "=", lead["id"]),
                                   ("message_type", "=", "user_notification"), ("partner_ids", "in", [sp["partner_id"]])],
                                  fields=["subject"])
        r.check(bool(told), "live gateway: the salesperson is told of the new lead, as Odoo's own gateway does",
                "followers %s; %s told: %s" % (", ".join(str(f["partner_id"][1]) for f in followers) or "none",
                                                sp["name"], "; ".join(t["subject"] or "" for t in told) or "nothing"))

    # -- routing: open opportunities and quotations, preview, switch on ---------

    def check_routing(self):
        """ben@ (Ben's own mailbox) starts on "log only what I choose"; once
        its customers have opportunities and quotations, Ben previews it and
        the admin switches it on: what lands is what the preview showed."""
        r = self.r
        if "log_scope" not in self.mb_fields:
            r.skip("routing: preview and rules", "this addon has no routing rules (log_scope)")
            return
        ben = self.users["ben"]
        vals = {
            "email": "ben@%s" % self.domain, "kind": "personal", "owner_id": ben["uid"], "main_user_id": ben["uid"],
            "mode": "log", "log_scope": "manual", "log_sent_as_activity": False, "create_contacts": False,
            "folders": "inbox,sentitems", "backfill_days": self.a.backfill_days,
        }
        mid = self.admin.call("maildesk.mailbox", "create", vals)
        self.mailboxes["ben"] = {"id": mid, "email": vals["email"], "owner": "ben"}
        rules = self.admin.call("maildesk.route.rule", "search_read", [("mailbox_id", "=", mid)], fields=["model"])
        has_sale = any(x["model"] == "sale.order" for x in rules)
        r.info("routing: ben@ created with the default rules %s" % ", ".join(x["model"] for x in rules))
        self.connect("ben")
        ok, status = self.wait_synced(["ben"], "ben@ backfill")
        held = self.held_count("ben")
        r.check(ok and held == 0, "routing: on 'log only what I choose' the backfill of ben@ logs nothing",
                "%s; %d messages of ben@ in Odoo" % (self.describe(status), held))

        def preview():
            return ben["browser"].call("maildesk.mailbox", "preview_routing", [mid], days=self.a.backfill_days,
                                       limit=5000)
        first = preview()
        corr = collections.Counter(
            line["correspondents"].split(", ")[0] for line in first["lines"]
            if line["outcome"] not in ("excluded", "error") and line["correspondents"])
        people = [a for a, _n in corr.most_common() if not a.startswith("noreply")][:5]
        if len(people) < 4:
            r.check(False, "routing: ben@ has customers to route to", "correspondents: %s" % dict(corr))
            return
        partner = {}
        for address in people:
            found = self.admin.call("res.partner", "search", [("email_normalized", "=", address)], limit=1)
            partner[address] = found[0] if found else self.admin.call("res.partner", "create",
                                                                      {"name": address, "email": address})
        # support@'s gateway made open leads of these customers: the sales team
        # closes them, so the documents below are the open business.
        open_leads = self.admin.call("crm.lead", "search", ["|", ("partner_id", "in", list(partner.values())),
                                                            ("email_normalized", "in", people)])
        if open_leads:
            self.admin.call("crm.lead", "action_set_lost", open_leads)
        won_stage = self.admin.call("crm.stage", "search", [("is_won", "=", True)], limit=1)
        lead = lambda name, who, **kw: self.admin.call(  # noqa: E731
            "crm.lead", "create", dict({"name": name, "type": "opportunity", "partner_id": partner[who]}, **kw))
        a, b, c, d, e = (people + [people[-1]])[:5]
        expect = {a: ("crm.lead", lead("E2E open deal %s" % a, a))}
        lead("E2E won deal %s" % b, b, stage_id=won_stage[0])
        expect[b] = ("crm.lead", lead("E2E open deal %s" % b, b))
        lead("E2E won deal %s" % c, c, stage_id=won_stage[0])
        expect[c] = ("res.partner", partner[c])
        if has_sale:
            expect[d] = ("sale.order", self.admin.call("sale.order", "create", {"partner_id": partner[d]}))
        else:
            r.skip("routing: a quotation gets its customer's mail", "sale is not installed")
        second = preview()
        lines = second["lines"]
        wrong = []
        for line in lines:
            who = line["correspondents"].split(", ")[0]
            if who in expect and line["outcome"] == "record" and line["rule"] not in ("thread", "conversation"):
                if (line["model"], line["res_id"]) != expect[who]:
                    wrong.append("%s → %s,%s (expected %s,%s)" % ((who, line["model"], line["res_id"]) + expect[who]))
        r.check(not wrong and len(lines) == len(first["lines"]),
                "routing: the preview puts customers' mail on their open opportunity or quotation, not a won one",
                "%d lines; totals %s%s" % (len(lines), json.dumps(second["totals"], sort_keys=True),
                                           ("; wrong: " + "; ".join(wrong[:3])) if wrong else ""))
        # Switched on: the mail kept back is routed now, by the same code.
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() - 1))
        self.admin.call("maildesk.mailbox", "write", [mid], {"log_scope": "auto"})
        expected = [l for l in lines if l["outcome"] in ("record", "new")]

        def landed():
            rows = self.admin.call("mail.message", "search_read", [("maildesk_mailbox_id", "=", mid)],
                                   fields=["maildesk_graph_id", "model", "res_id"])
            got = {}
            for row in rows:
                got.setdefault(row["maildesk_graph_id"], set()).add((row["model"], row["res_id"]))
            return got if len(got) >= len(expected) else None
        got = self.wait("ben@ mail lands", landed, self.a.timeout, interval=3)
        ok, status = self.wait_synced(["ben"], "ben@ switched on", since=since)
        got = landed() or {}
        diff = []
        for line in lines:
            places = got.get(line["graph_id"], set())
            if line["outcome"] == "record":
                want = {(t["model"], t["res_id"]) for t in line["targets"]}
                if places != want:
                    diff.append("%s: preview %s, landed %s" % (short(line["subject"], 30), sorted(want), sorted(places)))
            elif line["outcome"] == "new":
                if {m for m, _i in places} != {t["model"] for t in line["targets"]}:
                    diff.append("%s: preview new %s, landed %s" % (
                        short(line["subject"], 30), [t["model"] for t in line["targets"]], sorted(places)))
            elif places:
                diff.append("%s: preview %s, landed %s" % (short(line["subject"], 30), line["outcome"], sorted(places)))
        r.check(bool(got) and not diff,
                "routing: what landed after switching ben@ on is what the preview showed, message for message",
                "%d preview lines, %d logged, %d differ%s" % (len(lines), len(got), len(diff),
                                                              (": " + "; ".join(diff[:3])) if diff else ""))
        on = collections.Counter(m for places in got.values() for m, _i in places)
        if self.a.screenshots:
            # The admin guide's pictures, from this real Odoo while ben@ is connected.
            cmd = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "screenshots.py"),
                   "--odoo", self.a.odoo, "--db", self.a.db, "--login", self.a.admin_login,
                   "--password", self.a.admin_password, "--mailbox", vals["email"], "--out", self.a.screenshots]
            proc = subprocess.run(cmd, timeout=600, capture_output=True, text=True)
            r.info("screenshots: %s" % (proc.stdout.strip().replace("\n", "; ") or proc.stderr.strip()[-300:]))
        r.check(on.get("crm.lead", 0) > 0 and (on.get("sale.order", 0) > 0 or not has_sale),
                "routing: mail of ben@'s customers is on their opportunities and quotations",
                "messages per model: %s" % json.dumps(dict(on), sort_keys=True))

    # -- restart ---------------------------------------------------------------

    def restart_sidecar(self):
        r = self.r
        if self.a.restart_cmd:
            r.info("restarting the sidecar: %s" % self.a.restart_cmd)
            proc = subprocess.run(self.a.restart_cmd, shell=True, timeout=300)
            if proc.returncode != 0:
                r.check(False, "restart: the restart command succeeds", "exit code %s" % proc.returncode)
                return False
        elif self.a.ask_restart:
            print("Restart the sidecar now (same data dir, same ports), then press Enter.", flush=True)
            sys.stdin.readline()
        else:
            return None
        up = self.wait("sidecar back", self.sidecar.alive, 120, interval=2)
        if up:
            self.reload_sim_ca()
        r.check(bool(up), "restart: the sidecar answers again", self.a.sidecar)
        return bool(up)

    def sync_now_all(self):
        for key in ("anna", "support"):
            try:
                # "Sync now", pressed by the owner.
                self.users[self.mailboxes[key]["owner"]]["browser"].button(
                    "maildesk.mailbox", "action_sync_now", [self.mailboxes[key]["id"]])
            except OdooError as exc:
                self.r.debug("sync now %s: %s" % (key, exc.message))

    # -- the whole scenario ------------------------------------------------------

    def run(self):
        r = self.r
        self.settings_and_pair()
        self.create_users()
        self.create_mailboxes()
        self.baseline()
        for key in ("anna", "support"):
            self.connect(key)
        ok, status = self.wait_synced(["anna", "support"], "backfill")
        r.check(ok, "backfill: both mailboxes finished and Odoo answered every item", self.describe(status))
        self.check_log_mode()
        self.check_gateway()
        self.check_quiet()
        self.check_routing()

        # Nothing twice after a full re-backfill.
        before = self.snapshot()
        runs = {k: (self.sidecar_view(k).get("progress") or {}).get("started_at") for k in ("anna", "support")}
        for key in ("anna", "support"):
            how = self.resync(key)
        r.info("re-backfill of both mailboxes through %s" % how)

        def restarted():
            views = {k: self.sidecar_view(k).get("progress") or {} for k in runs}
            return all(v.get("started_at") and v.get("started_at") != runs[k] for k, v in views.items())
        if not self.wait("re-backfill started", restarted, 90, interval=3):
            r.info("the sidecar shows no new backfill run after 90 s (progress.started_at unchanged)")
        ok, status = self.wait_synced(["anna", "support"], "re-backfill")
        r.check(ok, "re-backfill: finished", self.describe(status))
        before = self.check_no_twice(before, "after a full re-backfill")

        self.check_send()
        self.check_compose()
        self.check_hostile()
        self.check_no_send_as()
        self.check_live_gateway()
        ok, status = self.wait_synced(["anna", "support"], "after sending", timeout=min(300, self.a.timeout))
        before = self.snapshot()

        restarted = self.restart_sidecar()
        if restarted is None:
            r.skip("restart: nothing lands twice after a sidecar restart",
                   "no --restart-cmd given (or --ask-restart to restart by hand)")
        elif restarted:
            # A sync round after the restart shows whether Microsoft (the simulator) still takes the tokens.
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() - 2))
            self.sync_now_all()

            def settled(k):
                s = self.odoo_state(k)
                if s["state"] in ("reauth_required", "error", "disconnected") or (s.get("last_sync_at") or "") >= since:
                    return s
                return None
            states = {k: self.wait("state of %s" % k, lambda k=k: settled(k), 90, interval=5) or self.odoo_state(k)
                      for k in ("anna", "support")}
            r.check(all(s["state"] in ("connected", "syncing", "reauth_required") for s in states.values()),
                    "restart: each mailbox is connected or asks its owner to sign in again (not error)",
                    "; ".join("%s %s%s" % (self.mailboxes[k]["email"], s["state"], (" (%s)" % short(s["error"], 120)) if s.get("error") else "")
                              for k, s in states.items()))
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() - 1))
            for key, s in states.items():
                if s["state"] not in ACTIVE_STATES:
                    self.connect(key, reason="restart: sign in again")
            self.sync_now_all()
            ok, status = self.wait_synced(["anna", "support"], "after restart", since=since)
            r.check(ok, "restart: sync finished after the restart", self.describe(status))
            self.check_no_twice(before, "after a sidecar restart")


# m365sim.HostileSubject / HostileHost (graphsync/m365sim/hostile.go).
HOSTILE_SUBJECT = "[MailDesk hostile sample]"
HOSTILE_ACTIVE = [
    ("script", r"<script"), ("event handler", r"""[\s"'/]on[a-z]+\s*="""), ("javascript: URL", r"javascript:"),
    ("iframe", r"<iframe"), ("object", r"<object"), ("embed", r"<embed"), ("form", r"<form\b"),
    ("formaction", r"formaction"), ("meta refresh", r"http-equiv"), ("stylesheet link", r"<link\b"),
    ("@import", r"@import"), ("fixed overlay", r"position\s*:\s*fixed"),
]
HOSTILE_REMOTE = [
    ("remote src/srcset/poster/background", r"""(?<![\w-])(?:src|srcset|poster|background)\s*=\s*["']?[^"'>]*evil\.hostile\.example"""),
    ("remote CSS url()", r"""url\(\s*["']?\s*(?:https?:)?//"""),
    ("remote SVG image", r"""<image\b[^>]*href\s*=\s*["']?\s*(?:https?:)?//"""),
]


def hostile_leftovers(html, remote=True):
    """What of the hostile sample's tricks is still in ``html``."""
    checks = HOSTILE_ACTIVE + (HOSTILE_REMOTE if remote else [])
    return [name for name, pattern in checks if re.search(pattern, html or "", re.I)]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--odoo", required=True, help="Odoo URL, e.g. http://127.0.0.1:8069 (also the sign-in redirect host)")
    p.add_argument("--db", required=True)
    p.add_argument("--admin-login", default="admin")
    p.add_argument("--admin-password", default="admin")
    p.add_argument("--sidecar", required=True, help="the sidecar's URL as this script reaches it")
    p.add_argument("--sidecar-url-for-odoo", help="the sidecar's URL as Odoo reaches it (default --sidecar)")
    p.add_argument("--odoo-url-for-sidecar", help="Odoo's URL as the sidecar reaches it (default --odoo)")
    p.add_argument("--secret-file", help="the sidecar's shared secret file (default ./maildesk-data/shared-secret)")
    p.add_argument("--secret", help="the shared secret itself (instead of --secret-file)")
    p.add_argument("--sim-ca", help="the simulator's CA (<data-dir>/simulator-ca.pem); without it its certificate is not checked")
    p.add_argument("--domain", default="contoso.com", help="mail domain of the simulator's users")
    p.add_argument("--azure-tenant", help="default: what the simulated sidecar holds")
    p.add_argument("--azure-client-id", help="default: what the simulated sidecar holds")
    p.add_argument("--azure-client-secret", default="maildesk-sim-secret")
    p.add_argument("--backfill-days", type=int, default=120, help="the simulator's mail spans 90 days")
    p.add_argument("--timeout", type=int, default=1500, help="seconds to wait for a backfill and its delivery")
    p.add_argument("--stall", type=int, default=240, help="give up waiting when nothing moved for this long")
    p.add_argument("--send-timeout", type=int, default=120)
    p.add_argument("--restart-cmd", help="shell command that restarts the sidecar (same data dir and ports)")
    p.add_argument("--ask-restart", action="store_true", help="ask on the terminal to restart the sidecar by hand")
    p.add_argument("--screenshots", help="save the admin guide's screenshots of the routing screens here "
                                          "(needs chromium and python3-websocket)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv if argv is not None else sys.argv[1:])
    report = Report(verbose=args.verbose)
    code = 0
    try:
        E2E(args, report).run()
    except Abort as exc:
        report.check(False, "run", str(exc))
        code = 2
    except OdooError as exc:
        report.check(False, "run", "unexpected Odoo error: %s" % exc)
        code = 2
    except (urllib.error.URLError, OSError) as exc:
        report.check(False, "run", "cannot reach Odoo or the sidecar: %s" % exc)
        code = 2
    report.summary()
    if report.failed and not code:
        code = 1
    return code


if __name__ == "__main__":
    sys.exit(main())
