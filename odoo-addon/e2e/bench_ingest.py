# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Log-mode ingest speed of the maildesk addon in a real Odoo.

Runs inside Odoo's shell, on a database with maildesk (and crm) installed:

    MESSAGES=2000 BATCH=50 /usr/bin/python3 /path/to/odoo-bin shell -c odoo.conf -d DB \\
        --no-http < odoo-addon/e2e/bench_ingest.py

It creates a log-mode mailbox (the sidecar call is stubbed: nothing leaves
Odoo), 200 customer contacts (a quarter with an open opportunity when crm is
installed), then hands batches of structured items to
``maildesk.mailbox.maildesk_ingest`` as the bridge user would — one
transaction per batch, as one JSON-RPC call is — every fifth item with a
30 KB attachment, a third of them replies to earlier items. It prints one
line per run and a JSON line, and rolls everything back at the end (the
database is left as it was). HTTP and JSON decoding are not included: they
cost the same whatever the addon does.
"""

import base64
import json
import os
import time
from unittest.mock import patch

MESSAGES = int(os.environ.get("MESSAGES", "2000"))
BATCH = int(os.environ.get("BATCH", "50"))
ATTACHMENT = b"%PDF-1.4\n" + os.urandom(30 * 1024 // 2).hex().encode()[: 30 * 1024]


def run(env):  # noqa: C901 - a linear script
    Sidecar = type(env["maildesk.sidecar"])
    counter = {"n": 0}

    def fake_call(self, method, **params):
        if method == "mailbox.create":
            counter["n"] += 1
            return {"id": "mbx_bench_%d" % counter["n"], "state": "connected"}
        return {"id": params.get("mailbox_id"), "state": "connected"}

    cr = env.cr
    cr.execute("SAVEPOINT maildesk_bench")
    with patch.object(Sidecar, "_call", fake_call):
        bridge = env["res.users"].create({
            "name": "Bench bridge", "login": "maildesk-bench-bridge-%d" % int(time.time()),
            "groups_id": [(6, 0, [env.ref("maildesk.group_maildesk_bridge").id])],
        })
        mailbox = env["maildesk.mailbox"].create({"email": "bench-%d@ourco.example" % int(time.time()),
                                                   "mode": "log"})
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
                    "options": {"mode": "log", "backfill": True},
                }
                if i % 3:
                    item["headers"]["in-reply-to"] = "<bench-%d-%d@cust.example>" % (mailbox.id, i - 1)
                if i % 5 == 0:
                    item["attachments"] = [{"name": "quote-%d.pdf" % i, "content_type": "application/pdf",
                                            "data_base64": base64.b64encode(ATTACHMENT).decode()}]
                items.append(item)
            statuses = {}
            box = mailbox.with_user(bridge)
            profiler = None
            if os.environ.get("PROFILE"):
                import cProfile
                profiler = cProfile.Profile()
                profiler.enable()
            queries = cr.sql_log_count
            start = time.perf_counter()
            for k in range(0, len(items), BATCH):
                for result in box.maildesk_ingest(items[k:k + BATCH]):
                    statuses[result["status"]] = statuses.get(result["status"], 0) + 1
                env.flush_all()
                cr.commit()
            took = time.perf_counter() - start
            queries = cr.sql_log_count - queries
            if profiler:
                import pstats
                profiler.disable()
                pstats.Stats(profiler).sort_stats(os.environ.get("PROFILE")).print_stats(40)
        finally:
            # Leave the database as it was.
            env.invalidate_all()
            env["mail.message"].sudo().search([("maildesk_mailbox_id", "=", mailbox.id)]).unlink()
            env["ir.attachment"].sudo().search([("name", "=like", "quote-%.pdf"), ("res_model", "in",
                                                                                    ["res.partner", "crm.lead"])]).unlink()
            if "crm.lead" in env:
                env["crm.lead"].search([("partner_id", "in", partners.ids)]).unlink()
            partners.unlink()
            mailbox.unlink()
            bridge.unlink()
            cr.commit()
    rate = len(items) / took if took else 0.0
    print("maildesk ingest: %d structured items in batches of %d (every 5th with 30 KB attached): %.1f s, "
          "%.0f msg/s, %.1f SQL queries per message; %s" % (len(items), BATCH, took, rate, queries / len(items),
                                                           statuses))
    print(json.dumps({"scenario": "odoo_ingest_log", "messages": len(items), "batch": BATCH, "seconds": round(took, 2),
                      "msg_per_s": round(rate, 1), "queries_per_msg": round(queries / len(items), 2),
                      "statuses": statuses}))


run(env)  # noqa: F821 - odoo-bin shell provides env
