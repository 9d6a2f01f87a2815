# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Ingest of mail pushed by the sidecar: log mode, gateway mode, activities.

Speed matters (shared/FACTS.md "Where ingest time goes"): structured items are
never run through Python's MIME parser, duplicates are found with one search
per batch, partners and replied threads with one search each, and messages are
created directly (no notification pass: the mail was already delivered).
"""

import binascii
import datetime
import email
import email.message
import email.errors
import email.parser
import email.policy
import email.utils
import logging
import re

from markupsafe import Markup

from odoo import SUPERUSER_ID, _, api, fields, models, tools
from odoo.exceptions import ValidationError

from .. import compat
from ..lib import gateway_cache, mailparts, routing

_logger = logging.getLogger(__name__)

# Models mail may be logged on ("Log to record"), as set in Settings: a
# comma-separated list of model names; unset means the defaults.
ALLOWED_MODELS_PARAM = "maildesk.allowed_models"
DEFAULT_ALLOWED_MODELS = ("res.partner", "crm.lead", "sale.order", "helpdesk.ticket", "project.task")


def parse_model_list(value):
    return [name.strip() for name in str(value or "").split(",") if name.strip()]


# Mail older than this (or flagged as backfill by the sidecar) never notifies
# followers: the backfill of a mailbox must not send a single e-mail.
BACKFILL_AGE = datetime.timedelta(hours=24)


class ItemError(Exception):
    """A per-item problem reported back as status "error"."""


class PendingId:
    """The id of a mail.message the batch creates at its end (see ``_flush_posts``)."""

    __slots__ = ("id",)

    def __init__(self):
        self.id = False


def resolve_ids(ids):
    return [i.id if isinstance(i, PendingId) else i for i in ids]


# A routing rule's documents are searched once for every customer of a batch;
# past this many, each customer's are searched on their own (see _rule_matches).
RULE_BATCH_LIMIT = 500


class MaildeskIngest(models.AbstractModel):
    _name = "maildesk.ingest"
    _description = "MailDesk ingest"

    # ------------------------------------------------------------------
    # Batch
    # ------------------------------------------------------------------

    @api.model
    def _ingest(self, mailbox, items, options):
        if not isinstance(items, list):
            items = []
        prepared = [self._prepare(mailbox, item, options) for item in items]
        for p in prepared:
            if p.get("raw") is not None and not p.get("error") and not self._uses_gateway(mailbox, p):
                # Raw MIME to log: parsed now, so the batch's lookups below
                # cover its addresses and replied mail too.
                try:
                    p["parsed"] = self._parse_mime(mailbox, p)
                except Exception:  # noqa: BLE001 - parsed again, and answered, with the item
                    _logger.debug("MailDesk ingest: %s is parsed with its item", p["graph_id"], exc_info=True)

        # One duplicate search for the whole batch. A Graph id is this
        # mailbox's; a Message-Id held anywhere in Odoo makes a duplicate
        # (nothing is posted twice), but answers name only what this mailbox
        # brought in: refs are (message id, model, res_id, of this mailbox).
        graph_ids = [p["graph_id"] for p in prepared if p.get("graph_id")]
        msg_ids = [p["message_id"] for p in prepared if p.get("message_id")]
        known_graph, known_msgid = {}, {}
        if graph_ids or msg_ids:
            own_graph = ["&", ("maildesk_mailbox_id", "=", mailbox.id), ("maildesk_graph_id", "in", graph_ids)]
            if graph_ids and msg_ids:
                domain = ["|"] + own_graph + [("message_id", "in", msg_ids)]
            elif graph_ids:
                domain = own_graph
            else:
                domain = [("message_id", "in", msg_ids)]
            rows = self.env["mail.message"].sudo().search_read(
                domain, ["maildesk_graph_id", "message_id", "model", "res_id", "maildesk_mailbox_id"], order="id"
            )
            for row in rows:
                own = bool(row["maildesk_mailbox_id"]) and row["maildesk_mailbox_id"][0] == mailbox.id
                ref = (row["id"], row["model"], row["res_id"], own)
                if own and row["maildesk_graph_id"]:
                    known_graph.setdefault(row["maildesk_graph_id"], []).append(ref)
                if row["message_id"]:
                    known_msgid.setdefault(row["message_id"], []).append(ref)

        partners_by_email, threads = self._batch_lookups(prepared)

        # Optimistic: the whole batch in one savepoint (a savepoint per item
        # costs two of the five queries a logged mail takes). When anything
        # fails, that savepoint rolls back and the batch runs again with a
        # savepoint per item, so one bad item never fails the others.
        try:
            with self.env.cr.savepoint():
                return self._ingest_items(
                    mailbox,
                    [dict(p) for p in prepared],
                    {k: list(v) for k, v in known_graph.items()},
                    {k: list(v) for k, v in known_msgid.items()},
                    dict(partners_by_email),
                    dict(threads),
                    self._route_context(mailbox),
                    isolate=False,
                )
        except Exception as exc:  # noqa: BLE001 - the batch runs again, item by item
            _logger.info("MailDesk ingest: a batch of %d items runs again item by item (%s: %s)",
                         len(prepared), type(exc).__name__, exc)
        return self._ingest_items(mailbox, prepared, known_graph, known_msgid, partners_by_email, threads,
                                  self._route_context(mailbox), isolate=True)

    @api.model
    def _ingest_items(self, mailbox, prepared, known_graph, known_msgid, partners_by_email, threads, route, isolate):
        """Answer each prepared item. ``isolate``: each item in a savepoint of
        its own and its failure answered as its error; else any failure is
        raised (the caller runs the batch again isolated).

        Not isolated, the logged mail of the whole batch is created at its end
        in bulk (attachments, messages, activities: ``_flush_posts``); the
        answers name the messages once they exist."""
        if mailbox.mode != "gateway":
            return self._ingest_pass(mailbox, prepared, known_graph, known_msgid, partners_by_email, threads, route,
                                     isolate)
        # What Odoo's gateway looks up again for each mail (aliases, alias
        # domains, field descriptions), answered once for this pass over the
        # batch (lib/gateway_cache.py); writing an alias empties it.
        cache = route["gateway_cache"] = gateway_cache.GatewayCache()
        self.env.cr.cache[gateway_cache.CURSOR_KEY] = cache
        try:
            return self._ingest_pass(mailbox, prepared, known_graph, known_msgid, partners_by_email, threads, route,
                                     isolate)
        finally:
            if self.env.cr.cache.get(gateway_cache.CURSOR_KEY) is cache:
                del self.env.cr.cache[gateway_cache.CURSOR_KEY]

    @api.model
    def _ingest_pass(self, mailbox, prepared, known_graph, known_msgid, partners_by_email, threads, route, isolate):
        results = []
        route["pending"] = None if isolate else []
        # The batch's Outlook conversations (what _conversation_models looks up).
        route["batch_conversations"] = {p["conversation_id"] for p in prepared if p.get("conversation_id")}
        self._prefetch_routing(prepared, partners_by_email, threads, route)
        for p in prepared:
            result = {
                "graph_id": p.get("graph_id") or "",
                "status": "error",
                "odoo_message_ids": [],
                "records": [],
                "activity_id": False,
                "error": "",
            }
            if p.get("error"):
                result["error"] = p["error"]
                results.append(result)
                continue
            requests = None
            if p["target"]:
                # "Log to record": only a request Odoo recorded for a user.
                try:
                    requests = self._target_requests(mailbox, p)
                except ItemError as exc:
                    result["error"] = str(exc)
                    results.append(result)
                    continue
            known = known_graph.get(p["graph_id"]) or (p["message_id"] and known_msgid.get(p["message_id"]))
            if known and p["target"]:
                # "Log to record": a duplicate only when that record already
                # holds the message; mail Odoo holds elsewhere goes there too.
                model, res_id = p["target"].get("model"), p["target"].get("res_id")
                known = [ref for ref in known if ref[1] == model and ref[2] == res_id]
            if known:
                own = [ref for ref in known if ref[3]]
                result["status"] = "duplicate"
                result["odoo_message_ids"] = [ref[0] for ref in own]
                result["records"] = [
                    list(r) for r in dict.fromkeys((ref[1], ref[2]) for ref in own if ref[1] and ref[2])
                ]
                if requests:
                    requests.write({"done": True})
                results.append(result)
                continue
            if requests is not None and not requests.filtered(lambda r: not r.done):
                result["error"] = (
                    "message %s was logged on %s,%s once and is no longer there: use Log to record again"
                    % (p["graph_id"], p["target"]["model"], p["target"]["res_id"])
                )
                results.append(result)
                continue
            try:
                if isolate:
                    with self.env.cr.savepoint():
                        result.update(self._process_item(mailbox, p, partners_by_email, threads, route))
                else:
                    result.update(self._process_item(mailbox, p, partners_by_email, threads, route))
            except ItemError as exc:
                if not isolate:
                    raise
                self._forget_gateway_cache(route)
                result["status"] = "error"
                result["error"] = str(exc)
            except Exception as exc:  # noqa: BLE001 - one bad item never fails the batch
                if not isolate:
                    raise
                self._forget_gateway_cache(route)
                _logger.warning("MailDesk ingest of %s failed: %s", p.get("graph_id"), exc, exc_info=True)
                result["status"] = "error"
                result["error"] = "%s: %s" % (type(exc).__name__, exc)
            if result["status"] == "posted":
                # Later items of the same batch repeating this one are duplicates.
                ids, records = result["odoo_message_ids"], result["records"]
                if len(ids) == len(records):
                    refs = [(mid, rec[0], rec[1], True) for mid, rec in zip(ids, records)]
                else:
                    refs = [(mid, False, False, True) for mid in ids]
                if requests:
                    requests.write({"done": True})
                if p["graph_id"]:
                    known_graph.setdefault(p["graph_id"], []).extend(refs)
                if p["message_id"]:
                    known_msgid.setdefault(p["message_id"], []).extend(refs)
            results.append(result)
        self._flush_posts(mailbox, route)
        for result in results:
            result["odoo_message_ids"] = resolve_ids(result["odoo_message_ids"])
            if isinstance(result.get("activity_id"), PendingId):
                result["activity_id"] = result["activity_id"].id
        return results

    @api.model
    def _forget_gateway_cache(self, route):
        """An item's savepoint rolled back: what the batch's cache learnt
        during it may have been rolled back too."""
        if route.get("gateway_cache") is not None:
            route["gateway_cache"].clear()

    @api.model
    def _process_item(self, mailbox, p, partners_by_email, threads, route):
        return self._process(mailbox, p, partners_by_email, threads, route)

    @api.model
    def _batch_lookups(self, prepared):
        """One search for every address and every replied Message-Id of the batch."""
        addresses, refs = set(), set()
        for p in prepared:
            if p.get("parsed"):
                addresses.update(p["parsed"]["all_addresses"])
                refs.update(p["parsed"]["references"])
        partners_by_email = self._partners_by_email(addresses)
        conversations = {p["conversation_id"] for p in prepared if p.get("conversation_id")}
        return partners_by_email, self._threads_by_ref(refs, conversations)

    @api.model
    def _prepare(self, mailbox, item, batch_options):
        """Normalise one item; structured items are parsed without MIME.

        An item of the wrong shape (types, missing fields, bad base64) gets
        an ``error`` and is answered ``error`` on its own.
        """
        problem = mailparts.item_problem(item)
        if problem:
            graph_id = item.get("graph_id") if isinstance(item, dict) else ""
            return {
                "graph_id": graph_id if isinstance(graph_id, str) else "",
                "message_id": "",
                "error": "bad item: %s" % problem,
            }
        options = dict(batch_options or {})
        if isinstance(item.get("options"), dict):
            options.update(item["options"])
        p = {
            "graph_id": str(item.get("graph_id") or ""),
            "message_id": (item.get("internet_message_id") or "").strip(),
            "conversation_id": item.get("conversation_id") if isinstance(item.get("conversation_id"), str) else "",
            "direction": item.get("direction") or "in",
            "folder": item.get("folder") or "",
            "received_at": mailparts.parse_datetime(item.get("received_at")),
            "options": options,
            "target": item.get("target") if isinstance(item.get("target"), dict) else None,
            "sensitivity": item.get("sensitivity") if isinstance(item.get("sensitivity"), str) else "",
            "raw": None,
            "parsed": None,
        }
        if not p["graph_id"]:
            p["error"] = "graph_id is required"
            return p
        if p["direction"] not in ("in", "out"):
            p["error"] = "direction must be in or out, not %r" % p["direction"]
            return p
        try:
            if item.get("mime_base64"):
                p["raw"] = mailparts.b64decode(item["mime_base64"])
                if not p["message_id"]:
                    headers = email.parser.BytesHeaderParser().parsebytes(p["raw"])
                    p["message_id"] = str(headers.get("Message-Id") or "").strip()
            else:
                p["parsed"] = self._parse_structured(mailbox, item, p)
                if not p["message_id"]:
                    p["message_id"] = p["parsed"]["headers"].get("message-id", "").strip()
        except (binascii.Error, ValueError, TypeError, LookupError, email.errors.MessageError) as exc:
            p["error"] = "bad item: %s" % exc
        return p

    @api.model
    def _parse_structured(self, mailbox, item, p):
        headers = mailparts.lower_headers(item.get("headers"))
        sender = item.get("from") if isinstance(item.get("from"), dict) else {}
        to = [e for e in item.get("to") or [] if isinstance(e, dict)]
        cc = [e for e in item.get("cc") or [] if isinstance(e, dict)]
        attachments = []
        for att in item.get("attachments") or []:
            if not isinstance(att, dict):
                continue
            attachments.append(
                {
                    "name": att.get("name") or "attachment",
                    "raw": mailparts.b64decode(att.get("data_base64") or ""),
                    "mimetype": att.get("content_type") or False,
                    "cid": (att.get("content_id") or "").strip("<>"),
                    "inline": bool(att.get("is_inline")),
                }
            )
        return self._parsed(
            mailbox,
            p["direction"],
            subject=item.get("subject") or mailparts.decode_header_text(headers.get("subject")) or "",
            email_from=mailparts.format_address(sender),
            from_email=mailparts.normalize_email(sender),
            to=[mailparts.normalize_email(e) for e in to],
            cc=[mailparts.normalize_email(e) for e in cc],
            to_display=mailparts.format_addresses(to),
            cc_display=mailparts.format_addresses(cc),
            headers=headers,
            body=item.get("body_html") or "",
            attachments=attachments,
        )

    @api.model
    def _parsed(self, mailbox, direction, **vals):
        own = tools.email_normalize(mailbox.email) or ""
        to = [a for a in vals["to"] if a]
        cc = [a for a in vals["cc"] if a]
        if direction == "in":
            correspondents = [vals["from_email"]] if vals["from_email"] else []
        else:
            correspondents = to + cc
        correspondents = [a for a in dict.fromkeys(correspondents) if a and a != own]
        # Open-tracking pixels never reach a stored body.
        body, _trackers = mailparts.strip_tracking_images(vals["body"])
        vals.update(
            {
                "body": body,
                "to": to,
                "cc": cc,
                "correspondents": correspondents,
                "references": mailparts.thread_references(vals["headers"]),
                "all_addresses": set(filter(None, [vals["from_email"]] + to + cc)),
            }
        )
        return vals

    @api.model
    def _partners_by_email(self, addresses):
        found = {}
        if not addresses:
            return found
        partners = self.env["res.partner"].sudo().search(
            [("email_normalized", "in", list(addresses))], order="partner_share desc, id"
        )
        for partner in partners:
            found.setdefault(partner.email_normalized, self.env["res.partner"].sudo())
            found[partner.email_normalized] |= partner
        return found

    @api.model
    def _threads_by_ref(self, refs, conversations=()):
        """Records holding the replied messages and the Outlook conversations.

        Keys: a Message-Id -> (model, res_id) of its newest copy (as Odoo's
        ``message_route``); ``("conversation", id)`` -> the record of the
        conversation's first message Odoo holds.
        """
        threads = {}
        if refs:
            rows = self.env["mail.message"].sudo().search_read(
                [("message_id", "in", list(refs)), ("model", "!=", False), ("res_id", "!=", False)],
                ["message_id", "model", "res_id"],
                order="id desc",
            )
            for row in rows:
                threads.setdefault(row["message_id"], (row["model"], row["res_id"]))
        if conversations:
            rows = self.env["mail.message"].sudo().search_read(
                [
                    ("maildesk_conversation_id", "in", list(conversations)),
                    ("model", "!=", False),
                    ("res_id", "!=", False),
                ],
                ["maildesk_conversation_id", "model", "res_id"],
                order="id",
            )
            for row in rows:
                threads.setdefault(("conversation", row["maildesk_conversation_id"]), (row["model"], row["res_id"]))
        return threads

    @api.model
    def _remember_thread(self, p, result, threads):
        """Later items of the same batch reply to this one: map it like Odoo would."""
        records = [r for r in result.get("records") or [] if r and r[0] and r[1]]
        if result.get("status") != "posted" or not records:
            return
        if p.get("message_id"):
            threads[p["message_id"]] = tuple(records[-1])
        if p.get("conversation_id"):
            threads.setdefault(("conversation", p["conversation_id"]), tuple(records[0]))

    @api.model
    def _thread_record(self, model, res_id, route=None):
        """The record (model, res_id) if it still exists; in a dry run, a
        record an earlier decision planned (res_id ``"new:<key>"``)."""
        if isinstance(res_id, str) and res_id.startswith("new:"):
            for planned in (route or {}).get("planned", {}).values():
                if planned["model"] == model and planned["key"] == res_id[4:]:
                    return planned
            return None
        if model in self.env and isinstance(self.env[model], self.pool["mail.thread"]):
            known = (route or {}).get("exists", {}).get((model, res_id))
            if known is not None:
                return self.env[model].sudo().browse(res_id) if known else self.env[model].sudo()
            return self.env[model].sudo().browse(res_id).exists()
        return None

    @api.model
    def _prefetch_routing(self, prepared, partners_by_email, threads, route):
        """What the batch's decisions will ask, asked once: which replied
        records still exist (one query per model), and who the batch's
        customers are (for one search per routing rule, ``_rule_matches``)."""
        exists = route.setdefault("exists", {})
        wanted = {}
        for model, res_id in threads.values():
            if (model, res_id) not in exists and isinstance(res_id, int) and model in self.env:
                wanted.setdefault(model, set()).add(res_id)
        for model, ids in wanted.items():
            if not isinstance(self.env[model], self.pool["mail.thread"]):
                continue
            found = set(self.env[model].sudo().browse(sorted(ids)).exists().ids)
            exists.update({(model, res_id): res_id in found for res_id in ids})
        addresses = set()
        for p in prepared:
            if p.get("parsed") and not p.get("target"):
                addresses.update(p["parsed"]["correspondents"])
        partners = self.env["res.partner"].sudo()
        for address in addresses:
            partners |= partners_by_email.get(address) or partners
        route["people"] = {
            "companies": set(partners.commercial_partner_id.ids),
            "addresses": addresses,
        }

    @api.model
    def _forget_batch_lookups(self, route):
        """Records were created (a lead, contacts): later mail of the batch
        looks documents and companies up on its own again, as it did before
        there were batch lookups."""
        route.pop("people", None)
        route.get("rule_rows", {}).clear()
        route.get("companies_by_domain", {}).clear()

    @api.model
    def _conversation_record(self, p, threads, route=None):
        """The record holding the item's Outlook conversation, if Odoo holds it."""
        key = ("conversation", p.get("conversation_id"))
        if not p.get("conversation_id") or key not in threads:
            return None
        return self._thread_record(*threads[key], route=route)

    # ------------------------------------------------------------------
    # Trust: where a caller may put mail
    # ------------------------------------------------------------------

    @api.model
    def _allowed_models(self, mailbox=None):
        """Models mail may be logged on: the admin's list (Settings → MailDesk;
        by default contacts, and leads, orders, tickets and tasks where installed) plus the
        mailbox's gateway model. Only installed models with a chatter."""
        value = self.env["ir.config_parameter"].sudo().get_param(ALLOWED_MODELS_PARAM)
        names = DEFAULT_ALLOWED_MODELS if value is False or value is None else parse_model_list(value)
        if mailbox and mailbox.gateway_model_id.model:
            names = list(names) + [mailbox.gateway_model_id.model]
        return {
            name
            for name in names
            if name in self.env
            and isinstance(self.env[name], self.pool["mail.thread"])
            and not self.env[name]._transient
            and not self.env[name]._abstract
        }

    @api.model
    def _target_requests(self, mailbox, p):
        """The recorded "Log to record" requests this targeted item answers.

        Raises ItemError when the model is not allowed or no user asked for
        this message to go on that record.
        """
        model, res_id = p["target"].get("model"), p["target"].get("res_id")
        if model not in self._allowed_models(mailbox):
            raise ItemError("MailDesk may not log mail on %s records (Settings → MailDesk)" % model)
        requests = self.env["maildesk.log.request"]._matching(mailbox, p["graph_id"], model, res_id)
        if not requests:
            raise ItemError(
                "no recorded request to log message %s of %s on %s,%s: use Log to record in Odoo"
                % (p["graph_id"], mailbox.email, model, res_id)
            )
        return requests

    # ------------------------------------------------------------------
    # One item
    # ------------------------------------------------------------------

    @api.model
    def _is_backfill(self, p):
        if p["options"].get("backfill"):
            return True
        return bool(p["received_at"] and p["received_at"] < fields.Datetime.now() - BACKFILL_AGE)

    @api.model
    def _uses_gateway(self, mailbox, p):
        """Odoo's mail gateway takes the item (else it is logged)."""
        return mailbox.mode == "gateway" and p["direction"] == "in" and not p["target"]

    @api.model
    def _process(self, mailbox, p, partners_by_email, threads, route=None):
        if self._uses_gateway(mailbox, p):
            reason = self._gateway_exclusion(mailbox, p, route or self._route_context(mailbox))
            if reason:
                return {"status": "excluded", "error": "not logged: %s" % reason}
            if not p["raw"]:
                # The sidecar sends structured items when it has no MIME:
                # rebuild a message for Odoo's gateway (slower, still right).
                p["raw"] = self._structured_mime(p)
            # Odoo's gateway finds replied mail, and _rehome_conversation the
            # conversation's mail, in the database: the batch's logged mail
            # so far is written first.
            self._flush_posts(mailbox, route)
            result = self._process_gateway(mailbox, p, threads, route)
            if route:
                self._forget_batch_lookups(route)
            self._remember_thread(p, result, threads)
            return result
        if p["parsed"] is None:
            # Raw MIME in log mode: Odoo parses it (slow path, ~6 ms a message).
            p["parsed"] = self._parse_mime(mailbox, p)
            extra = set(p["parsed"]["all_addresses"]) - set(partners_by_email)
            if extra:
                partners_by_email.update(self._partners_by_email(extra))
            extra_refs = set(p["parsed"]["references"]) - set(threads)
            if extra_refs:
                threads.update(self._threads_by_ref(extra_refs))
        result = self._process_log(mailbox, p, partners_by_email, threads, route or self._route_context(mailbox))
        self._remember_thread(p, result, threads)
        if result.get("status") == "posted":
            # Logged mail of the conversation, anywhere: a later gateway mail
            # of it looks for it (_rehome_conversation).
            self._note_conversation(route, p.get("conversation_id"), {"*"})
        return result

    @api.model
    def _gateway_exclusion(self, mailbox, p, route):
        """Gateway mail honours the exclusions too (private mail, addresses,
        domains, conversations); Odoo's gateway decides the rest."""
        parsed = p["parsed"]
        if parsed is None:
            headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(p["raw"] or b"")
            lower = {k.lower(): str(v) for k, v in headers.items()}
            addresses = {
                key: [a for a in (mailparts.normalize_email(x) for x in tools.email_split(lower.get(key) or "")) if a]
                for key in ("from", "to", "cc")
            }
            own = tools.email_normalize(mailbox.email) or ""
            everyone = addresses["from"] + addresses["to"] + addresses["cc"]
            parsed = {
                "all_addresses": set(everyone),
                "correspondents": [a for a in dict.fromkeys(everyone) if a != own],
                "headers": lower,
            }
        return self._exclusion(mailbox, p, parsed, route)

    @api.model
    def _structured_mime(self, p):
        parsed = p["parsed"]
        msg = email.message.EmailMessage(policy=email.policy.SMTP)
        msg["From"] = parsed["email_from"] or parsed["from_email"] or "unknown@invalid"
        if parsed["to_display"]:
            msg["To"] = parsed["to_display"]
        if parsed["cc_display"]:
            msg["Cc"] = parsed["cc_display"]
        msg["Subject"] = parsed["subject"] or ""
        # Odoo 18 exports it from odoo.tools.mail only (FACTS.md).
        msg["Message-ID"] = p["message_id"] or tools.mail.generate_tracking_message_id("maildesk")
        if p["received_at"]:
            msg["Date"] = email.utils.format_datetime(p["received_at"].replace(tzinfo=datetime.timezone.utc))
        for name in ("in-reply-to", "references", "auto-submitted", "precedence", "reply-to", "list-id"):
            if parsed["headers"].get(name):
                msg[name] = parsed["headers"][name]
        msg.set_content(parsed["body"] or "<p></p>", subtype="html")
        for att in parsed["attachments"]:
            maintype, _sep, subtype = (att.get("mimetype") or "application/octet-stream").partition("/")
            msg.add_attachment(
                att["raw"], maintype=maintype, subtype=subtype or "octet-stream", filename=att["name"],
                cid="<%s>" % att["cid"] if att.get("cid") else None,
            )
        return msg.as_bytes()

    @api.model
    def _parse_mime(self, mailbox, p):
        message = email.message_from_bytes(p["raw"], policy=email.policy.SMTP)
        msg_dict = self.env["mail.thread"].message_parse(message)
        headers = {k.lower(): str(v) for k, v in message.items()}
        if not p["message_id"]:
            p["message_id"] = msg_dict.get("message_id") or ""
        attachments = []
        for att in msg_dict.get("attachments") or []:
            content, name, mimetype = att.content, att.fname or "attachment", False
            info = att.info or {}
            if isinstance(content, email.message.Message):
                # An attached e-mail (message/rfc822): Odoo's parser hands over
                # the message object itself; store it as an .eml file.
                mimetype = "message/rfc822"
                if not name.lower().endswith(".eml"):
                    name = mailparts.eml_filename(content.get("Subject")) if name == "attachment" else name + ".eml"
                content = self._message_bytes(content)
            elif isinstance(content, str):
                try:
                    content = content.encode(info.get("encoding") or "utf-8")
                except (LookupError, UnicodeEncodeError):
                    content = content.encode("utf-8", "replace")
            elif content is None:
                continue
            attachments.append(
                {
                    "name": name,
                    "raw": content,
                    "mimetype": mimetype,
                    "cid": (info.get("cid") or "").strip("<>"),
                    "inline": bool(info.get("cid")),
                }
            )
        if not p["received_at"] and msg_dict.get("date"):
            p["received_at"] = fields.Datetime.to_datetime(msg_dict["date"])
        return self._parsed(
            mailbox,
            p["direction"],
            subject=msg_dict.get("subject") or "",
            email_from=msg_dict.get("email_from") or "",
            from_email=mailparts.normalize_email(msg_dict.get("email_from")),
            to=[tools.email_normalize(a) for a in tools.email_split(msg_dict.get("to") or "")],
            cc=[tools.email_normalize(a) for a in tools.email_split(msg_dict.get("cc") or "")],
            to_display=msg_dict.get("to") or "",
            cc_display=msg_dict.get("cc") or "",
            headers=headers,
            body=msg_dict.get("body") or "",
            attachments=attachments,
        )

    @api.model
    def _message_bytes(self, message):
        try:
            return message.as_bytes(policy=email.policy.SMTP)
        except (UnicodeError, LookupError, ValueError, TypeError, email.errors.MessageError):
            return message.as_string().encode("utf-8", "replace")

    # ------------------------------------------------------------------
    # Routing (log mode): one decision function for ingest and the preview
    # ------------------------------------------------------------------

    @api.model
    def _route_context(self, mailbox):
        """What a batch's decisions need from the mailbox, read once."""
        addresses, _bad = routing.parse_addresses(mailbox.excluded_addresses)
        domains, _bad = routing.parse_domains(mailbox.excluded_domains)
        exclusions = self.env["maildesk.exclusion"].sudo().search_read(
            [("mailbox_id", "=", mailbox.id)], ["kind", "value"]
        )
        rules = mailbox.sudo().route_rule_ids.filtered("active").sorted(lambda r: (r.sequence, r.id))
        return {
            "manual": mailbox.log_scope == "manual",
            "addresses": set(addresses) | {e["value"] for e in exclusions if e["kind"] == "address"},
            "domains": set(domains),
            "conversations": {e["value"] for e in exclusions if e["kind"] == "conversation"},
            "internal": mailbox._internal_domains(),
            "internal_subdomains": mailbox._internal_domains_listed(),
            "rules": [r for r in rules if r.model and r.model in self.env],
            "create_model": (
                mailbox.new_record_model_id.model
                if mailbox.unrouted_action == "create" and mailbox.new_record_model_id.model in self.env
                else ""
            ),
            # Dry run: records the decisions so far would have created.
            "planned": {},
            # Documents a rule found for a set of customers, for this batch
            # (emptied whenever the batch creates a record).
            "matches": {},
            "note_subtype": self.env["ir.model.data"]._xmlid_to_res_id("mail.mt_note"),
        }

    @api.model
    def _exclusion(self, mailbox, p, parsed, route):
        return routing.exclusion_reason(
            parsed["all_addresses"],
            parsed["correspondents"],
            p.get("sensitivity"),
            parsed["headers"],
            route["addresses"],
            route["domains"],
            bool(p.get("conversation_id")) and p["conversation_id"] in route["conversations"],
        )

    @api.model
    def _route_log(self, mailbox, p, partners_by_email, threads, route):
        """Where a logged mail goes, in the documented order (docs/admin-guide.md):

        a chosen record (Log to record); exclusions set by users and admins
        (private mail, addresses, domains, conversations) and "log only what I
        choose"; the replied thread or the Outlook conversation; internal mail;
        the routing rules (open documents of the correspondent or their
        company, most recently active first); the contacts, then a company of
        the correspondent's domain; a new record or new contacts when the
        mailbox says so; else unrouted.

        Returns ``{"outcome", "records", "reason", "rule", "create", "candidates"}``;
        writes nothing (ingest then creates what ``create`` describes).
        """
        parsed = p["parsed"]
        decision = {"outcome": routing.UNROUTED, "records": [], "reason": "", "rule": "", "create": None,
                    "candidates": []}
        if p["target"]:
            decision.update(outcome=routing.RECORD, records=[self._chosen_record(mailbox, p)], rule="log to record")
            return decision
        reason = self._exclusion(mailbox, p, parsed, route)
        if not reason and route["manual"]:
            reason = "log only what I choose"
        if reason:
            decision.update(outcome=routing.EXCLUDED, reason=reason, rule="privacy")
            return decision
        for ref in reversed(parsed["references"]):
            if ref in threads:
                record = self._thread_record(*threads[ref], route=route)
                if record:
                    return self._decided(decision, record, "thread")
        record = self._conversation_record(p, threads, route=route)
        if record:
            return self._decided(decision, record, "conversation")
        if routing.is_internal(parsed["all_addresses"], route["internal"], route["internal_subdomains"]):
            decision.update(outcome=routing.EXCLUDED, reason="internal mail", rule="privacy")
            return decision
        contacts = []
        for address in parsed["correspondents"]:
            partners = partners_by_email.get(address)
            if partners:
                contacts.append((partners.filtered("partner_share") or partners)[0])
        # An address Odoo does not know yet still belongs to the company of its domain.
        customers = list(contacts)
        for address in parsed["correspondents"]:
            if not partners_by_email.get(address):
                company = self._company_by_domain([address], route)
                if company:
                    customers.append(company)
        for rule in route["rules"]:
            matches = self._rule_matches(rule, customers, parsed["correspondents"], route)
            if not matches:
                continue
            best = {}
            for record, owner in matches:
                best.setdefault(owner, record)
            if len(best) == 1:
                return self._decided(decision, matches[0][0], "open %s" % rule.model)
            # Several customers each with their own open document: the mail
            # goes on the contacts and the inbox offers the documents.
            decision["candidates"] = [[r._name, r.id] for r in best.values() if isinstance(r, models.BaseModel)]
            break
        if contacts:
            decision.update(outcome=routing.RECORD, records=contacts, rule="contact")
            return decision
        planned = [route["planned"].get(("res.partner", a)) for a in parsed["correspondents"]]
        planned = [x for x in planned if x]
        if planned:
            decision.update(outcome=routing.NEW, records=planned, rule="contact")
            return decision
        company = self._company_by_domain(parsed["correspondents"], route)
        if company:
            decision.update(outcome=routing.RECORD, records=[company], rule="company")
            return decision
        if route["create_model"] and p["direction"] == "in" and parsed["from_email"]:
            decision.update(
                outcome=routing.NEW, rule="new %s" % route["create_model"],
                create={"kind": "record", "model": route["create_model"], "address": parsed["from_email"]},
            )
            return decision
        if mailbox.create_contacts and parsed["correspondents"]:
            if p["direction"] == "in":
                wanted = parsed["correspondents"][:1]
            else:
                wanted = [a for a in parsed["to"] if a in parsed["correspondents"]] or parsed["correspondents"][:1]
            decision.update(outcome=routing.NEW, rule="new contact",
                            create={"kind": "contacts", "model": "res.partner", "addresses": wanted})
            return decision
        return decision

    @api.model
    def _decided(self, decision, record, rule):
        planned = isinstance(record, dict)
        decision.update(outcome=routing.NEW if planned else routing.RECORD, records=[record], rule=rule)
        return decision

    @api.model
    def _chosen_record(self, mailbox, p):
        model, res_id = p["target"].get("model"), p["target"].get("res_id")
        if not model or model not in self.env or not isinstance(self.env[model], self.pool["mail.thread"]):
            raise ItemError("target model %s has no chatter" % model)
        if model not in self._allowed_models(mailbox):
            raise ItemError("MailDesk may not log mail on %s records (Settings → MailDesk)" % model)
        record = self.env[model].sudo().browse(int(res_id or 0)).exists()
        if not record:
            raise ItemError("target %s,%s does not exist" % (model, res_id))
        return record

    @api.model
    def _rule_matches(self, rule, contacts, addresses, route):
        """Open documents of the contacts' companies (or of the addresses, for
        documents with an e-mail and no customer yet), most recently active
        first, as ``[(record, owner)]``: owner is the customer's company id or
        the address. A document deleted meanwhile simply is not found."""
        companies = {c.commercial_partner_id.id for c in contacts}
        key = (rule.id, tuple(sorted(companies)), tuple(sorted(addresses)))
        if key not in route["matches"]:
            found = self._rule_batch_matches(rule, companies, addresses, route)
            if found is None:
                found = self._rule_search(rule, companies, addresses)
            route["matches"][key] = found
        matches = list(route["matches"][key])
        for planned_key, planned in route["planned"].items():
            if planned_key[0] == rule.model and planned_key[1] in addresses:
                matches.append((planned, planned_key[1]))
        return matches

    @api.model
    def _rule_batch_matches(self, rule, companies, addresses, route):
        """``_rule_search`` answered from one search of the rule for every
        customer and correspondent of the batch (``route["people"]``), or
        None when that cannot answer exactly (someone outside the batch's
        people, more than RULE_BATCH_LIMIT documents, a rule that fails)."""
        people = route.get("people")
        if not people or not companies <= people["companies"] or not set(addresses) <= people["addresses"]:
            return None
        rows = route.setdefault("rule_rows", {})
        if rule.id not in rows:
            rows[rule.id] = self._rule_batch_search(rule, people)
        found = rows[rule.id]
        if found is None:
            return None
        entries, by_company, by_email = found
        wanted = set()
        for company in companies:
            wanted.update(by_company.get(company, ()))
        for address in addresses:
            wanted.update(by_email.get(address, ()))
        # The entries are in the rule's order: the first 20 are _rule_search's.
        return [entries[i] for i in sorted(wanted)[:20]]

    @api.model
    def _rule_batch_search(self, rule, people):
        """The rule's documents of all the batch's people, in the rule's order,
        as ``(entries, by_company, by_email)``: entries ``(record, owner)`` as
        ``_rule_search`` makes them; the entries (their index) of each company's
        contacts, Odoo's ``child_of`` (a contact is child of itself, its
        parent, its parent's parent…, archived ones included); those of each
        address (documents without a customer)."""
        companies, addresses = people["companies"], people["addresses"]
        parent = {}
        Partner = self.env["res.partner"].sudo().with_context(active_test=False)
        frontier, seen = sorted(companies), set(companies)
        while frontier:
            children = Partner.search_read([("parent_id", "in", frontier)], ["parent_id"], order="id")
            frontier = []
            for row in children:
                parent[row["id"]] = row["parent_id"][0]
                if row["id"] not in seen:
                    seen.add(row["id"])
                    frontier.append(row["id"])
        ancestors = {}
        for partner_id in seen:
            chain, node = set(), partner_id
            while node and node not in chain:
                chain.add(node)
                node = parent.get(node)
            ancestors[partner_id] = chain & companies
        field = rule.partner_field
        try:
            domain = self._rule_domain(rule, [(field, "in", sorted(seen))] if seen else None, addresses)
        except Exception:  # noqa: BLE001 - _rule_search says why, per customer
            return None
        if domain is None:
            return [], {}, {}
        records = self.env[rule.model].sudo().search(
            domain, order="write_date desc, id desc", limit=RULE_BATCH_LIMIT
        )
        if len(records) == RULE_BATCH_LIMIT:
            return None
        entries, by_company, by_email = [], {}, {}
        for index, record in enumerate(records):
            partner = record[field]
            if partner:
                for company in ancestors.get(partner.id, ()):
                    by_company.setdefault(company, []).append(index)
                owner = partner.commercial_partner_id.id
            else:
                by_email.setdefault(record.email_normalized, []).append(index)
                owner = record.email_normalized or record.id
            entries.append((record, owner))
        return entries, by_company, by_email

    @api.model
    def _rule_domain(self, rule, customers, addresses):
        """The rule's documents whose customer matches ``customers`` (a domain
        on the customer field, or None) or, having no customer, whose e-mail
        is one of ``addresses``; None when there is nothing to search. Raises
        what evaluating the rule's own domain raises."""
        Model = self.env[rule.model]
        clauses = [customers] if customers else []
        if addresses and "email_normalized" in Model._fields and Model._fields["email_normalized"].store:
            clauses.append([(rule.partner_field, "=", False), ("email_normalized", "in", sorted(addresses))])
        if not clauses:
            return None
        where = clauses[0] if len(clauses) == 1 else ["|"] + clauses[0] + ["&"] + clauses[1]
        return rule._eval_domain() + where

    @api.model
    def _rule_search(self, rule, companies, addresses):
        field = rule.partner_field
        try:
            domain = self._rule_domain(rule, [(field, "child_of", sorted(companies))] if companies else None, addresses)
        except Exception as exc:  # noqa: BLE001 - a rule broken after save is skipped, not fatal
            _logger.warning("MailDesk: routing rule %s skipped: %s", rule.display_name, exc)
            return []
        matches = []
        if domain is not None:
            for record in self.env[rule.model].sudo().search(domain, order="write_date desc, id desc", limit=20):
                partner = record[field]
                owner = partner.commercial_partner_id.id if partner else (record.email_normalized or record.id)
                matches.append((record, owner))
        return matches

    @api.model
    def _company_by_domain(self, addresses, route):
        """The one company whose e-mail has a correspondent's domain (public
        webmail and the company's own domains never count)."""
        cache = route.setdefault("companies_by_domain", {})
        for address in addresses:
            domain = routing.address_domain(address)
            if not domain or domain in routing.PUBLIC_MAIL_DOMAINS or routing.in_domains(address, route["internal"], route["internal_subdomains"]):
                continue
            if domain not in cache:
                cache[domain] = self.env["res.partner"].sudo().search(
                    [("is_company", "=", True), ("email_normalized", "=ilike", "%@" + domain)], limit=2
                )
            if len(cache[domain]) == 1:
                return cache[domain]
        return None

    @api.model
    def _create_decided(self, mailbox, p, decision, partners_by_email, route):
        """Create what the decision says would be created; return the records."""
        create = decision["create"]
        parsed = p["parsed"]
        if create["kind"] == "contacts":
            records = []
            for address in create["addresses"]:
                name = parsed["email_from"] if p["direction"] == "in" else address
                # Created as the gateway creates records (the superuser), so
                # the bridge user never authors the "Contact created" note nor
                # follows the contact; synced mail subscribes no one.
                partner = (
                    self.env(user=SUPERUSER_ID)["res.partner"]
                    .with_context(mail_create_nosubscribe=True, maildesk_nosubscribe=True)
                    .find_or_create(name or address)
                )
                partners_by_email[address] = partner
                records.append(partner)
            return records
        model = create["model"]
        msg_dict = {
            "subject": parsed["subject"] or "",
            "email_from": parsed["email_from"] or create["address"],
            "from": parsed["email_from"] or create["address"],
            "to": parsed["to_display"] or "",
            "cc": parsed["cc_display"] or "",
            "body": parsed["body"] or "",
            "message_id": p["message_id"],
            "date": p["received_at"],
            "author_id": False,
            "partner_ids": [],
            "attachments": [],
        }
        try:
            values = mailbox._new_record_values(model)
        except ValidationError as exc:
            raise ItemError(str(exc)) from exc
        record = (
            self.env(user=SUPERUSER_ID)[model]
            .with_context(mail_create_nosubscribe=True, maildesk_nosubscribe=True, maildesk_ingest=True,
                          tracking_disable=True, mail_create_nolog=True)
            .message_new(msg_dict, dict(values))
        )
        return [record.sudo()]

    @api.model
    def _plan(self, p, decision, route):
        """Dry run: remember what would be created, so later mail of the batch
        finds it like ingest finds the records it created."""
        create = decision["create"]
        if create["kind"] == "contacts":
            planned = []
            for address in create["addresses"]:
                entry = route["planned"].setdefault(
                    ("res.partner", address), {"model": "res.partner", "name": address, "key": address}
                )
                planned.append(entry)
            return planned
        entry = {"model": create["model"], "name": p["parsed"]["subject"] or create["address"],
                 "key": p["graph_id"]}
        route["planned"][(create["model"], create["address"])] = entry
        return [entry]

    # ------------------------------------------------------------------
    # Preview: the decisions above on the last days of mail, nothing written
    # ------------------------------------------------------------------

    @api.model
    def _preview(self, mailbox, items):
        """One line per item, oldest first (the order mail lands in)."""
        items = sorted(
            [i for i in items if isinstance(i, dict)], key=lambda i: (str(i.get("received_at") or ""), str(i.get("graph_id")))
        )
        prepared = [self._prepare(mailbox, item, {}) for item in items]
        partners_by_email, threads = self._batch_lookups(prepared)
        route = self._route_context(mailbox)
        # What the mail would do once logged automatically (the point of
        # previewing a mailbox still on "log only what I choose").
        route["manual"] = False
        self._prefetch_routing(prepared, partners_by_email, threads, route)
        lines = []
        for p in prepared:
            line = {
                "graph_id": p.get("graph_id") or "",
                "received_at": p.get("received_at") and fields.Datetime.to_string(p["received_at"]) or False,
                "direction": p.get("direction") or "in",
                "subject": (p.get("parsed") or {}).get("subject") or "",
                "correspondents": ", ".join((p.get("parsed") or {}).get("correspondents") or []),
                "outcome": routing.UNROUTED,
                "model": "",
                "res_id": 0,
                "name": "",
                "targets": [],
                "rule": "",
                "reason": "",
                "candidates": [],
            }
            lines.append(line)
            if p.get("error") or not p.get("parsed"):
                line.update(outcome="error", reason=p.get("error") or "no headers to route by")
                continue
            line.update(self._preview_decision(mailbox, p, partners_by_email, threads, route))
        return lines

    @api.model
    def _preview_decision(self, mailbox, p, partners_by_email, threads, route):
        if mailbox.mode == "gateway" and p["direction"] == "in":
            reason = self._exclusion(mailbox, p, p["parsed"], route)
            if reason:
                return {"outcome": routing.EXCLUDED, "reason": reason, "rule": "privacy"}
            return {"outcome": "gateway", "rule": "Odoo's mail gateway (%s)" % mailbox.gateway_model_id.model,
                    "model": mailbox.gateway_model_id.model}
        try:
            decision = self._route_log(mailbox, p, partners_by_email, threads, route)
        except ItemError as exc:
            return {"outcome": "error", "reason": str(exc)}
        records = decision["records"]
        if decision["create"]:
            records = self._plan(p, decision, route)
        targets = [self._target_ref(r) for r in records]
        out = {
            "outcome": decision["outcome"],
            "rule": decision["rule"],
            "reason": decision["reason"],
            "candidates": decision["candidates"],
            "targets": targets,
        }
        if targets:
            out.update(model=targets[0]["model"], res_id=targets[0]["res_id"], name=targets[0]["name"])
            self._remember_thread(p, {"status": "posted", "records": [
                [t["model"], t["res_id"] or "new:%s" % t["key"]] for t in targets]}, threads)
        return out

    @api.model
    def _target_ref(self, record):
        if isinstance(record, dict):
            return {"model": record["model"], "res_id": 0, "name": record["name"], "key": record["key"]}
        return {"model": record._name, "res_id": record.id, "name": record.display_name, "key": ""}

    @api.model
    def _process_log(self, mailbox, p, partners_by_email, threads, route):
        parsed = p["parsed"]
        decision = self._route_log(mailbox, p, partners_by_email, threads, route)
        if decision["outcome"] == routing.EXCLUDED:
            return {"status": "excluded", "error": "not logged: %s" % decision["reason"]}
        records = decision["records"]
        if decision["create"]:
            records = self._create_decided(mailbox, p, decision, partners_by_email, route)
            route["matches"].clear()  # a new record may be the next mail's document
            self._forget_batch_lookups(route)
        if not records:
            return {"status": "unrouted"}
        route.setdefault("exists", {}).update({(r._name, r.id): True for r in records})
        author = partners_by_email.get(parsed["from_email"])
        author = author[0] if author else self.env["res.partner"]
        recipients = self.env["res.partner"].sudo()
        for address in parsed["to"] + parsed["cc"]:
            if partners_by_email.get(address):
                recipients |= partners_by_email[address][0]
        date = p["received_at"] or fields.Datetime.now()
        result = {
            "status": "posted",
            "odoo_message_ids": [PendingId() for _record in records],
            "records": [[r._name, r.id] for r in records],
            "activity_id": PendingId(),
            "rule": decision["rule"],
            "candidates": decision["candidates"],
        }
        post = {
            "p": p,
            "records": records,
            "author": author,
            "recipients": recipients,
            "date": date,
            "candidates": ";".join("%s,%s" % (model, res_id) for model, res_id in decision["candidates"]) or False,
            # Odoo 18 exports it from odoo.tools.mail only (FACTS.md).
            "message_id": p["message_id"] or tools.mail.generate_tracking_message_id("maildesk"),
            "result": result,
        }
        if route.get("pending") is not None:
            route["pending"].append(post)
        else:
            self._post_logged(mailbox, [post])
        return result

    @api.model
    def _flush_posts(self, mailbox, route):
        """Create the logged mail the batch decided so far."""
        posts = (route or {}).get("pending")
        if posts:
            route["pending"] = []
            self._post_logged(mailbox, posts)

    @api.model
    def _post_logged(self, mailbox, posts):
        """Create the messages (one per record of each post), their attachments
        and activities, each kind in one call; fill in the posts' answers.

        Messages are created directly, as the mail was already delivered: no
        notification, no follower, no tracking; the bridge user authors
        nothing (the correspondent is the author)."""
        # Every item's attachments, on each of its records, in one create.
        wanted = []
        for post in posts:
            for record in post["records"]:
                wanted.extend(dict(att, on=record) for att in post["p"]["parsed"]["attachments"])
        created = iter(self._create_attachments(None, wanted) if wanted else [])
        # The records' names in one read per model.
        by_model = {}
        for post in posts:
            for record in post["records"]:
                by_model.setdefault(record._name, set()).add(record.id)
        names = {}
        for model, ids in by_model.items():
            for record in self.env[model].sudo().browse(sorted(ids)):
                names[(model, record.id)] = record.display_name
        note = self.env["ir.model.data"]._xmlid_to_res_id("mail.mt_note")
        vals_list = []
        for post in posts:
            p, parsed = post["p"], post["p"]["parsed"]
            reply_to = (
                mailparts.format_address_header(parsed["headers"].get("reply-to")) or parsed["email_from"] or False
            )
            for record in post["records"]:
                attachments = [next(created) for _att in parsed["attachments"]]
                vals_list.append(
                    {
                        "model": record._name,
                        "res_id": record.id,
                        "record_name": names[(record._name, record.id)],
                        "message_type": "email",
                        "subtype_id": note,
                        "is_internal": True,
                        "subject": parsed["subject"] or False,
                        "body": self._inline_cids(parsed["body"], attachments),
                        "date": post["date"],
                        "author_id": post["author"].id or False,
                        "email_from": parsed["email_from"] or False,
                        # The mail's own Reply-To; also spares Odoo computing
                        # a catchall one per message (a fifth of ingest time).
                        "reply_to": reply_to,
                        "message_id": post["message_id"],
                        "partner_ids": [(6, 0, post["recipients"].ids)],
                        "attachment_ids": [(6, 0, [a["record"].id for a in attachments])],
                        "maildesk_graph_id": p["graph_id"],
                        "maildesk_conversation_id": p.get("conversation_id") or False,
                        "maildesk_mailbox_id": mailbox.id,
                        "maildesk_candidates": post["candidates"],
                    }
                )
        messages = iter(self.env["mail.message"].sudo().create(vals_list))
        for post in posts:
            for pending in post["result"]["odoo_message_ids"]:
                pending.id = next(messages).id
        activities = [(post, self._activity_values(mailbox, post["p"], post["records"][0], post["date"]))
                      for post in posts]
        activities = [(post, vals) for post, vals in activities if vals]
        if activities:
            created = (
                self.env["mail.activity"]
                .sudo()
                # mail.activity.create subscribes the assigned user to the record:
                # synced mail subscribes no one (models/mail_thread.py).
                # A done activity is no news for its user: no "activity created"
                # bus message either (models/res_users.py).
                .with_context(
                    mail_activity_quick_update=True,
                    mail_create_nosubscribe=True,
                    maildesk_nosubscribe=True,
                    maildesk_no_activity_bus=True,
                )
                .create([vals for _post, vals in activities])
            )
            for (post, _vals), activity in zip(activities, created):
                post["result"]["activity_id"].id = activity.id

    @api.model
    def _create_attachments(self, record, attachments):
        """Create the attachments on ``record``, or each on its own record
        (``att["on"]``: a batch creates all its items' attachments at once).
        Returns the attachments, each with its ``record``."""
        if not attachments:
            return []
        vals_list = []
        for att in attachments:
            on = att.get("on") or record
            vals_list.append(
                {
                    "name": att["name"],
                    "raw": att["raw"],
                    "res_model": on._name,
                    "res_id": on.id,
                    **({"mimetype": att["mimetype"]} if att.get("mimetype") else {}),
                }
            )
        created = self.env["ir.attachment"].sudo().create(vals_list)
        return [dict(att, record=rec) for att, rec in zip(attachments, created)]

    @api.model
    def _inline_cids(self, body, attachments):
        """Point ``cid:`` images at the stored attachments."""
        for att in attachments:
            if att.get("cid") and body:
                body = re.sub(
                    r"""(["'])cid:%s\1""" % re.escape(att["cid"]),
                    lambda m, a=att: '%s/web/image/%s%s' % (m.group(1), a["record"].id, m.group(1)),
                    body,
                )
        return body

    @api.model
    def _activity_values(self, mailbox, p, record, date):
        """Sent from Outlook (not by Odoo/MailDesk) -> a done "Email - Outbox" activity."""
        if p["direction"] != "out" or p["options"].get("sent_by_maildesk"):
            return None
        if not mailbox.log_sent_as_activity:
            return None
        user = mailbox.main_user_id or mailbox.owner_id
        if not user:
            return None
        if not isinstance(record, self.pool["mail.activity.mixin"]):
            return None
        activity_type = self.env.ref("maildesk.mail_activity_type_email_outbox")
        parsed = p["parsed"]
        day = fields.Date.to_date(date) if date else fields.Date.context_today(self)
        note = _("Sent to %(to)s", to=tools.html_escape(parsed.get("to_display") or ", ".join(parsed["to"])))
        return {
            "res_model_id": self.env["ir.model"]._get_id(record._name),
            "res_id": record.id,
            "activity_type_id": activity_type.id,
            "summary": (parsed["subject"] or _("E-mail"))[:200],
            "note": note,
            "user_id": user.id,
            "date_deadline": day,
            "date_done": day,
            "active": False,
        }

    # ------------------------------------------------------------------
    # Gateway mode
    # ------------------------------------------------------------------

    @api.model
    def _process_gateway(self, mailbox, p, threads=None, route=None):
        """Route one incoming mail like Odoo's fetchmail + ``message_process``.

        Runs as the superuser, as the fetchmail cron does (never as the bridge
        user, who has no rights on the records and must not follow or author
        anything). Differences with ``message_process``, all deliberate:
        auto-replies and delivery reports create nothing; a mail of an Outlook
        conversation Odoo already holds goes to that record; the mailbox's
        defaults fill every record created; backfilled mail skips loop
        detection and notifies nobody; no bounce is ever sent
        (``maildesk_ingest`` in models/mail_thread.py).
        """
        model = mailbox.gateway_model_id.model
        if not model or model not in self.env:
            raise ItemError("gateway model %s is not installed" % (model or "(none)"))
        try:
            custom_values = mailbox._gateway_custom_values()
        except ValidationError as exc:
            raise ItemError(str(exc)) from exc
        backfill = self._is_backfill(p)
        # A clean context, as fetchmail's cron has: nothing of the caller's
        # (default_* keys would reach the records created).
        ctx = {key: self.env.context[key] for key in ("lang", "tz") if self.env.context.get(key)}
        ctx.update({"maildesk_ingest": True, "mail_notify_force_send": False})
        if route and route.get("gateway_cache") is not None:
            ctx[gateway_cache.CONTEXT_KEY] = route["gateway_cache"]
        if backfill:
            ctx.update(
                {
                    "tracking_disable": True,
                    "mail_auto_subscribe_no_notify": True,
                    "maildesk_no_notify": True,
                }
            )
        thread = self.env(user=SUPERUSER_ID, context=ctx)["mail.thread"]
        # SMTP's policy, each header parsed once however often Odoo reads it.
        message = email.message_from_bytes(p["raw"], policy=mailparts.gateway_policy())
        msg_dict = thread.message_parse(message)
        # The messages posted for this mail carry MailDesk's fields from their
        # creation, and name themselves (models/mail_message.py).
        stamp = {
            "message_id": msg_dict["message_id"],
            "values": {
                "maildesk_graph_id": p["graph_id"],
                "maildesk_mailbox_id": mailbox.id,
                "maildesk_conversation_id": p.get("conversation_id") or False,
            },
            "created": [],
        }
        headers = {k.lower(): str(v) for k, v in message.items()}
        # Auto-replies and bounces never create records (Odoo's gateway would
        # make a lead of an out-of-office, see FACTS.md).
        if msg_dict.get("is_bounce") or mailparts.is_auto_submitted(headers):
            return {"status": "unrouted", "error": "auto-reply or delivery report: not routed"}
        if thread._detect_loop_headers(msg_dict):
            return {"status": "unrouted", "error": "reply to a loop-detection bounce: not routed"}
        routes = thread.message_route(message, msg_dict, model=model, custom_values=dict(custom_values))
        routes = self._gateway_routes(thread, message, msg_dict, routes, model, custom_values, p, threads or {})
        if not routes:
            return {"status": "unrouted"}
        # A route creating a record has thread_id None (fallback) or 0 (alias);
        # 19.0's loop detection counts only 0 as new, so say 0.
        loop_routes = [(route[0], route[1] or 0, *route[2:]) for route in routes]
        if not backfill and thread._detect_loop_sender(message, msg_dict, loop_routes):
            return {
                "status": "unrouted",
                "error": "Odoo's mail loop detection: %s sent too many mails creating records; not routed"
                % (msg_dict.get("email_from") or "the sender"),
            }
        # The author and recipients, as message_process finds them (19.0 only
        # after routing).
        compat.gateway_post_process(thread, message, msg_dict, routes)
        thread.with_context(maildesk_gateway_stamp=stamp)._message_route_process(message, msg_dict, routes)
        # (id, model, res_id) in mail.message's order (newest first), as a
        # search would give them.
        created = sorted(set(stamp["created"]), reverse=True)
        messages = thread.env["mail.message"].browse([c[0] for c in created])
        # Odoo's parser and gateway stored the body: no open-tracking pixel
        # stays in it (log mode strips them before storing).
        for message in messages:
            body, count = mailparts.strip_tracking_images(str(message.body or ""))
            if count:
                message.body = Markup(body)
        # Write the new records now, as the superuser: the savepoint around
        # the item flushes in whichever environment of the request comes
        # first, which over RPC is the bridge user's (no rights on currencies
        # and the like).
        thread.env.flush_all()
        home = next(((m, r) for _id, m, r in created if m == model), None)
        self._rehome_conversation(mailbox, p, home, threads, route)
        self._note_conversation(route, p.get("conversation_id"), {m or None for _id, m, _r in created})
        return {
            "status": "posted",
            "odoo_message_ids": [c[0] for c in created],
            "records": [[m, r] for _id, m, r in created if m and r],
        }

    @api.model
    def _rehome_conversation(self, mailbox, p, home, threads, route=None):
        """Move this mailbox's earlier mail of the conversation onto its record.

        Sent Items and Inbox sync side by side, so an Outlook reply can reach
        Odoo before the mail it answers: it was logged on the customer's
        contact. Once the conversation's record exists, that mail (and its
        attachments) belongs there, and later replies find it there.
        ``home``: (model, res_id) of the record the gateway put the mail on.
        """
        cid = p.get("conversation_id")
        if not cid or not home:
            return
        record = self.env[home[0]].sudo().browse(home[1])
        known = self._conversation_models(mailbox, route, cid)
        if known is not None and not any(model != record._name for model in known):
            # The batch knows all this mailbox's mail of the conversation: on
            # this record's model already, nothing to move.
            stray = self.env["mail.message"].sudo()
        else:
            stray = self.env["mail.message"].sudo().search(
                [
                    ("maildesk_conversation_id", "=", cid),
                    ("maildesk_mailbox_id", "=", mailbox.id),
                    ("model", "!=", record._name),
                    ("message_type", "=", "email"),
                ]
            )
        if stray:
            stray.attachment_ids.sudo().write({"res_model": record._name, "res_id": record.id})
            stray.write({"model": record._name, "res_id": record.id, "record_name": record.display_name})
        if known is not None:
            # Whatever was elsewhere is on the record now.
            known.clear()
            known.add(record._name)
        if threads is not None:
            threads[("conversation", cid)] = (record._name, record.id)
            for mid in stray.mapped("message_id"):
                if mid:
                    threads[mid] = (record._name, record.id)

    @api.model
    def _conversation_models(self, mailbox, route, cid):
        """The models holding this mailbox's e-mail of conversation ``cid``
        (None: a message without one; "*": not known), as a set the batch
        keeps up to date; None when the batch does not track ``cid``.

        Read once per batch for all its conversations, then kept by the batch
        itself: every message it creates in a conversation is noted
        (_note_conversation), so a gateway mail searches for the
        conversation's stray mail only when there can be some."""
        if route is None or cid not in route.get("batch_conversations", ()):
            return None
        models_of = route.get("conversation_models")
        if models_of is None:
            models_of = route["conversation_models"] = {c: set() for c in route["batch_conversations"]}
            groups = self.env["mail.message"].sudo()._read_group(
                [
                    ("maildesk_conversation_id", "in", sorted(route["batch_conversations"])),
                    ("maildesk_mailbox_id", "=", mailbox.id),
                    ("message_type", "=", "email"),
                ],
                ["maildesk_conversation_id", "model"],
            )
            for conversation, model in groups:
                models_of[conversation].add(model or None)
        return models_of[cid]

    @api.model
    def _note_conversation(self, route, cid, models):
        """Messages of conversation ``cid`` were created on ``models`` (see
        _conversation_models)."""
        models_of = (route or {}).get("conversation_models")
        if cid and models_of is not None and cid in models_of:
            models_of[cid].update(models)

    @api.model
    def _gateway_routes(self, thread, message, msg_dict, routes, model, custom_values, p, threads):
        """Odoo's routes, then: a new record for a known conversation becomes a
        reply to its record; records created get the mailbox's defaults."""
        if routes and all(not route[1] for route in routes):
            record = self._conversation_record(p, threads)
            # Only a record of the gateway's model holds a gateway
            # conversation: mail sent from Outlook that arrived before the
            # mail it answers was logged on the customer's contact; the
            # conversation still gets its lead (and that mail moves there).
            if record and record._name == model:
                user = thread._mail_find_user_for_gateway(msg_dict.get("email_from") or "")
                msg_dict.pop("parent_id", None)
                route = thread._routing_check_route(
                    message, msg_dict, (record._name, record.id, None, user.id or SUPERUSER_ID, None),
                    raise_exception=False,
                )
                if route:
                    return [route]
        out = []
        for route in routes or []:
            route_model, thread_id, values = route[0], route[1], route[2]
            if not thread_id and route_model == model:
                values = dict(custom_values, **(values or {}))
            out.append((route_model, thread_id, values) + tuple(route[3:]))
        return out
