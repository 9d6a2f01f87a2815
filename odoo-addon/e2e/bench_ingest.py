# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Ingest speed of the maildesk addon in a real Odoo (log mode or gateway mode).

Runs inside Odoo's shell, on a database with maildesk (and crm) installed:

    MESSAGES=2000 BATCH=50 /usr/bin/python3 /path/to/odoo-bin shell -c odoo.conf -d DB \\
        --addons-path=...,/path/to/odoo-addon --no-http < odoo-addon/e2e/bench_ingest.py

It creates a mailbox (the sidecar call is stubbed: nothing leaves Odoo), 200
customer contacts (a quarter with an open opportunity when crm is installed),
then hands batches of items to ``maildesk.mailbox.maildesk_ingest`` as the
bridge user would — one transaction per batch, as one JSON-RPC call is — every
fifth item with a 30 KB attachment, two thirds of them replies to the item
before. It prints one line per run and a JSON line, and removes what it
created at the end (the database is left as it was). HTTP and JSON decoding
are not included: they cost the same whatever the addon does.

Environment:
    MESSAGES      items (default 2000)
    BATCH         items per call (default 50)
    MODE          log (default): the mailbox logs mail by its routing rules;
                  gateway: Odoo's mail gateway creates a lead (crm.lead, else
                  a contact) per new conversation, replies land on it;
                  odoo: the control, Odoo's own message_process (as fetchmail
                  calls it) on the same mail as MIME, without MailDesk
    RAW=1         items carry the mail as MIME (mime_base64), not structured
    ATTACHMENTS=0 no attachments
    BACKFILL=0    the mail is live (notifies followers), not backfill
    DIGEST=1      (gateway, odoo) print a hash of where each mail landed and
                  with what (record, contact, author, recipients, followers)
    PROFILE=tottime|cumtime   cProfile of the ingest calls (PROFILE_MATCH=regex
                  restricts the listing)
    QUERIES=N     SQL queries counted and timed by their first N characters
"""

import base64
import json
import os
import time
from unittest.mock import patch

MESSAGES = int(os.environ.get("MESSAGES", "2000"))
BATCH = int(os.environ.get("BATCH", "50"))
MODE = os.environ.get("MODE", "log")
RAW = os.environ.get("RAW", "0") == "1"
ATTACHMENTS = os.environ.get("ATTACHMENTS", "1") != "0"
BACKFILL = os.environ.get("BACKFILL", "1") != "0"
ATTACHMENT = b"%PDF-1.4\n" + os.urandom(30 * 1024 // 2).hex().encode()[: 30 * 1024]


def mime(item):
    """The item as the sidecar sends it with RAW=1: the mail's MIME source."""
    from email.message import EmailMessage
    from email.policy import SMTP

    msg = EmailMessage(policy=SMTP)
    msg["From"] = '"%s" <%s>' % (item["from"]["name"], item["from"]["email"])
    msg["To"] = ", ".join(e["email"] for e in item["to"])
    msg["Subject"] = item["subject"]
    msg["Message-ID"] = item["internet_message_id"]
    msg["Date"] = "%s +0000" % time.strftime("%a, %d %b %Y %H:%M:%S", time.strptime(item["received_at"],
                                                                                 "%Y-%m-%dT%H:%M:%SZ"))
    for name, value in item["headers"].items():
        msg[name] = value
    msg.set_content(item["body_html"], subtype="html")
    for att in item.get("attachments") or []:
        msg.add_attachment(base64.b64decode(att["data_base64"]), maintype="application", subtype="pdf",
                           filename=att["name"])
    raw = {key: item[key] for key in ("graph_id", "mailbox", "folder", "direction", "internet_message_id",
                                      "conversation_id", "received_at", "options")}
    raw["mime_base64"] = base64.b64encode(msg.as_bytes()).decode()
    return raw


def backend_cpu(cr):
    """CPU seconds the PostgreSQL backend serving ``cr`` has used (None when
    /proc does not show it): with the Odoo process's own CPU time, a figure
    that other load on the machine sways much less than msg/s."""
    try:
        cr.execute("SELECT pg_backend_pid()")
        with open("/proc/%d/stat" % cr.fetchone()[0]) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def landing_digest(env, mailbox):
    """DIGEST=1: a hash of where every mail landed and what came with it (the
    record, its contact, author, recipients, parent, followers), the same for
    two runs that route alike (ids left out: they differ from run to run)."""
    import hashlib
    import re

    env.flush_all()
    prefix = "<bench-%d-" % mailbox.id

    def ref(message_id):
        return re.sub(r"^<bench-\d+-", "<", message_id or "")

    def emails(partners):
        return sorted(partners.mapped("email") or [])

    rows = []
    messages = env["mail.message"].sudo().search([("message_id", "=like", prefix + "%")], order="id")
    for message in messages:
        record = env[message.model].sudo().browse(message.res_id) if message.model and message.res_id else None
        first = env["mail.message"].sudo().search([("model", "=", message.model), ("res_id", "=", message.res_id)],
                                                  order="id", limit=1) if record else None
        rows.append((
            ref(message.message_id), message.model or "", ref(first.message_id) if first else "",
            message.message_type, message.subtype_id.name or "", message.author_id.email or "",
            message.email_from or "", emails(message.partner_ids), ref(message.parent_id.message_id),
            message.subject or "", str(message.body), sorted(message.attachment_ids.mapped("name")),
            message.record_name or "",
            record.display_name if record else "",
            record.partner_id.email or "" if record is not None and "partner_id" in record._fields else "",
            record.email_from or "" if record is not None and "email_from" in record._fields else "",
            record.user_id.login or "" if record is not None and "user_id" in record._fields else "",
            record.stage_id.name or "" if record is not None and "stage_id" in record._fields else "",
            record.type or "" if record is not None and "type" in record._fields else "",
            emails(record.message_partner_ids) if record is not None else [],
            len(env["mail.notification"].sudo().search([("mail_message_id", "=", message.id)])),
        ))
    return "%d messages, sha256 %s" % (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()[:16])


def run(env):  # noqa: C901 - a linear script
    Sidecar = type(env["maildesk.sidecar"])
    counter = {"n": 0}

    def fake_call(self, method, **params):
        if method == "mailbox.create":
            counter["n"] += 1
            return {"id": "mbx_bench_%d" % counter["n"], "state": "connected"}
        return {"id": params.get("mailbox_id"), "state": "connected"}

    cr = env.cr
    digest = None
    cr.execute("SAVEPOINT maildesk_bench")
    with patch.object(Sidecar, "_call", fake_call):
        bridge = env["res.users"].create({
            "name": "Bench bridge", "login": "maildesk-bench-bridge-%d" % int(time.time()),
            "groups_id": [(6, 0, [env.ref("maildesk.group_maildesk_bridge").id])],
        })
        gateway_model = "crm.lead" if "crm.lead" in env else "res.partner"
        last_ids = {model: (env[model].with_context(active_test=False).search([], order="id desc", limit=1).id or 0
                            if model in env else 0) for model in ("crm.lead", "res.partner")}
        mailbox = env["maildesk.mailbox"].create({
            "email": "bench-%d@ourco.example" % int(time.time()), "mode": "log" if MODE == "odoo" else MODE,
            **({"gateway_model_id": env["ir.model"]._get_id(gateway_model)} if MODE == "gateway" else {}),
        })
        partners = env["res.partner"].create([
            {"name": "Customer %d" % i, "email": "c%d@cust%d.example" % (i, i % 40)} for i in range(200)])
        if "crm.lead" in env:
            env["crm.lead"].create([{"name": "Deal %d" % i, "type": "opportunity", "partner_id": p.id}
                                    for i, p in enumerate(partners[::4])])
        env.flush_all()
        cr.execute("RELEASE SAVEPOINT maildesk_bench")
        cr.commit()  # the fixtures, so each batch is its own transaction like an RPC call
        try:
            items = []
            for i in range(MESSAGES):
                peer = partners[i % len(partners)]
                item = {
                    "graph_id": "bench-%d-%d" % (mailbox.id, i), "mailbox": mailbox.sidecar_id, "folder": "inbox",
                    "direction": "in", "internet_message_id": "<bench-%d-%d@cust.example>" % (mailbox.id, i),
                    "conversation_id": "conv-%d-%d" % (mailbox.id, i // 3),
                    "received_at": "2026-11-%02dT09:%02d:00Z" % (1 + i % 28, i % 60),
                    "subject": "Quote %d" % i, "from": {"name": peer.name, "email": peer.email},
                    "to": [{"email": mailbox.email}], "headers": {},
                    "body_html": "<p>Hello, about quote %d: prices in € and delivery to Köln.</p>" % i,
                    "options": {"mode": MODE, "backfill": BACKFILL},
                }
                if not BACKFILL:
                    item["received_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                if i % 3:
                    item["headers"]["in-reply-to"] = "<bench-%d-%d@cust.example>" % (mailbox.id, i - 1)
                if i % 5 == 0 and ATTACHMENTS:
                    item["attachments"] = [{"name": "quote-%d.pdf" % i, "content_type": "application/pdf",
                                            "data_base64": base64.b64encode(ATTACHMENT).decode()}]
                items.append(mime(item) if RAW or MODE == "odoo" else item)
            statuses, landed = {}, {}
            box = mailbox.with_user(bridge)
            profiler = None
            if os.environ.get("PROFILE"):
                import cProfile
                profiler = cProfile.Profile()
                profiler.enable()
            shapes = {}
            if os.environ.get("QUERIES"):
                # QUERIES=N: count the queries by their first N characters.
                from odoo.sql_db import Cursor
                width = int(os.environ["QUERIES"])
                real_execute = Cursor.execute

                def counting_execute(self, query, params=None, log_exceptions=True):
                    key = " ".join(str(getattr(query, "code", query)).split())[:width]
                    if key.startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")):
                        key = key.split('"')[0]
                    began = time.perf_counter()
                    try:
                        return real_execute(self, query, params, log_exceptions)
                    finally:
                        count, spent = shapes.get(key, (0, 0.0))
                        shapes[key] = (count + 1, spent + time.perf_counter() - began)
                Cursor.execute = counting_execute
            queries = cr.sql_log_count
            db_cpu = backend_cpu(cr)
            cpu = time.process_time()
            start = time.perf_counter()
            for k in range(0, len(items), BATCH):
                if MODE == "odoo":
                    thread = env["mail.thread"].sudo().with_context(fetchmail_cron_running=True)
                    for item in items[k:k + BATCH]:
                        thread.message_process(gateway_model, base64.b64decode(item["mime_base64"]),
                                               save_original=False, strip_attachments=False)
                        statuses["processed"] = statuses.get("processed", 0) + 1
                    env.flush_all()
                    cr.commit()
                    continue
                for result in box.maildesk_ingest(items[k:k + BATCH]):
                    statuses[result["status"]] = statuses.get(result["status"], 0) + 1
                    for model, _res_id in result.get("records") or []:
                        landed[model] = landed.get(model, 0) + 1
                env.flush_all()
                cr.commit()
            took = time.perf_counter() - start
            cpu = time.process_time() - cpu
            db_cpu = backend_cpu(cr) - db_cpu if db_cpu is not None else None
            queries = cr.sql_log_count - queries
            if shapes:
                Cursor.execute = real_execute
                print(" count     ms  query (QUERIES=%s: by their first characters, most time first)" % width)
                for key, (count, spent) in sorted(shapes.items(), key=lambda kv: -kv[1][1]):
                    print("%6d %6.0f  %s" % (count, spent * 1000, key))
            if profiler:
                import pstats
                profiler.disable()
                restrictions = [os.environ["PROFILE_MATCH"]] if os.environ.get("PROFILE_MATCH") else []
                pstats.Stats(profiler).sort_stats(os.environ.get("PROFILE")).print_stats(*restrictions, 40)
            if os.environ.get("DIGEST") == "1" and MODE != "log":
                digest = landing_digest(env, mailbox)
        finally:
            # Leave the database as it was.
            env.invalidate_all()
            env["mail.message"].sudo().search([("maildesk_mailbox_id", "=", mailbox.id)]).unlink()
            env["mail.message"].sudo().search([("message_id", "=like", "<bench-%d-%%@cust.example>" % mailbox.id)]).unlink()
            env["ir.attachment"].sudo().search([("name", "=like", "quote-%.pdf"), ("res_model", "in",
                                                                                    ["res.partner", "crm.lead"])]).unlink()
            for model, last_id in last_ids.items():
                if model in env:
                    env[model].with_context(active_test=False).search([("id", ">", last_id)]).unlink()
            mailbox.unlink()
            bridge.unlink()
            cr.commit()
    if digest:
        print("where the mail landed (DIGEST=1): %s" % digest)
    print("CPU: Odoo %.1f s, its PostgreSQL backend %s (%.1f ms a message together; the wall clock: %.1f)" % (
        cpu, "%.1f s" % db_cpu if db_cpu is not None else "not known", (cpu + (db_cpu or 0)) * 1000 / len(items),
        took * 1000 / len(items)))
    rate = len(items) / took if took else 0.0
    print("maildesk ingest, %s mode: %d %s items in batches of %d (%s, %s): %.1f s, %.0f msg/s, "
          "%.2f SQL queries per message; %s, on %s" % (
              MODE, len(items), "MIME" if RAW or MODE == "odoo" else "structured", BATCH,
              "every 5th with 30 KB attached" if ATTACHMENTS else "no attachments",
              "backfill" if BACKFILL else "live", took, rate, queries / len(items), statuses, landed))
    print(json.dumps({"scenario": "odoo_ingest_%s" % MODE, "raw": RAW or MODE == "odoo", "attachments": ATTACHMENTS,
                      "backfill": BACKFILL, "messages": len(items), "batch": BATCH, "seconds": round(took, 2),
                      "msg_per_s": round(rate, 1), "queries_per_msg": round(queries / len(items), 2),
                      "statuses": statuses, "landed": landed, "load_average": os.getloadavg()[0],
                      "cpu_s": round(cpu, 2), "db_cpu_s": round(db_cpu, 2) if db_cpu is not None else None}))


run(env)  # noqa: F821 - odoo-bin shell provides env
