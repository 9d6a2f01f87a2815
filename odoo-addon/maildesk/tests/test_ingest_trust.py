# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""maildesk_ingest trusts its caller no more than it must (issue 12, item 8).

Everything here ingests AS THE BRIDGE USER (only the MailDesk Bridge group),
the way the sidecar calls Odoo.
"""

import base64

from odoo.exceptions import ValidationError
from odoo.tests import Form, new_test_user, tagged

ALLOWED_MODELS_PARAM = "maildesk.allowed_models"  # models/maildesk_ingest.py
from .common import MaildeskCase

GOOD_MIME = b"""From: Carl <carl@customer.example>
To: anna@contoso.example
Subject: Raw and fine
Message-ID: <raw-ok@customer.example>
Content-Type: text/plain

fine
"""


@tagged("post_install", "-at_install")
class TestIngestTargets(MaildeskCase):
    """Log to record: only where Odoo recorded a user's request, only on allowed models."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # An internal user who may post on contacts and reads Anna's mailbox.
        cls.clerk = new_test_user(
            cls.env, login="md_clerk", name="Clerk",
            groups="base.group_user,base.group_partner_manager,maildesk.group_maildesk_user",
        )
        cls.mailbox.user_ids = [(4, cls.clerk.id)]

    def setUp(self):
        super().setUp()
        self.chosen = self.env["res.partner"].create({"name": "Chosen record"})

    def request(self, graph_id, model="res.partner", res_id=None, user=None, mailbox=None):
        return self.env["maildesk.log.request"].create(
            {
                "mailbox_id": (mailbox or self.mailbox).id,
                "graph_id": graph_id,
                "model": model,
                "res_id": res_id or self.chosen.id,
                "user_id": (user or self.anna).id,
            }
        )

    def target(self, model="res.partner", res_id=None):
        return {"model": model, "res_id": res_id or self.chosen.id}

    def test_target_without_recorded_request_is_refused(self):
        res = self.ingest([self.item("t1", target=self.target())])
        self.assertEqual(res[0]["status"], "error", res)
        self.assertIn("no recorded request", res[0]["error"])
        self.assertFalse(self.chosen.message_ids.filtered(lambda m: m.message_id == "<t1@customer.example>"))

    def test_request_must_match_mailbox_message_and_record(self):
        other = self.env["res.partner"].create({"name": "Other"})
        shared = self.env["maildesk.mailbox"].create({"email": "other@contoso.example", "owner_id": self.bob.id})
        self.request("t2", res_id=other.id)  # another record
        self.request("t2-other")  # another message
        self.request("t2", mailbox=shared)  # another mailbox
        res = self.ingest([self.item("t2", target=self.target())])
        self.assertEqual(res[0]["status"], "error", res)
        self.assertIn("no recorded request", res[0]["error"])

    def test_log_to_record_records_then_ingest_consumes(self):
        """The user's button records (mailbox, message, model, res_id, user) in
        its own committed transaction BEFORE asking the sidecar; the bridge's
        ingest then finds it (another transaction in real life)."""
        self.enter_registry_test_mode()
        seen = []

        def sidecar_answer(params):
            # What another transaction (the pusher's ingest) sees at this moment.
            seen.extend(self.env["maildesk.log.request"].sudo().search_read(
                [("graph_id", "=", params["message_id"])], ["mailbox_id", "model", "res_id", "user_id", "done"]))
            return {"queued": True, "outbox_seq": 1, "message_id": params["message_id"]}

        self.sidecar.answers["message.log_to_record"] = sidecar_answer
        self.mailbox.with_user(self.clerk).maildesk_log_to_record("t3", "res.partner", self.chosen.id)
        self.assertEqual(len(seen), 1, "recorded before the sidecar was called")
        self.assertEqual(seen[0]["user_id"][0], self.clerk.id)
        self.assertEqual((seen[0]["model"], seen[0]["res_id"]), ("res.partner", self.chosen.id))
        self.assertEqual(seen[0]["mailbox_id"][0], self.mailbox.id)

        res = self.ingest([self.item("t3", target=self.target())])
        self.assertEqual(res[0]["status"], "posted", res)
        self.assertEqual(res[0]["records"], [["res.partner", self.chosen.id]])
        request = self.env["maildesk.log.request"].search([("graph_id", "=", "t3")])
        self.assertTrue(request.done, "consumed")
        # A replay of the same item (lost acknowledgement) is a duplicate, not an error...
        again = self.ingest([self.item("t3", target=self.target())])
        self.assertEqual(again[0]["status"], "duplicate", again)
        # ...but a consumed request never puts the mail there a second time.
        self.env["mail.message"].browse(res[0]["odoo_message_ids"]).unlink()
        third = self.ingest([self.item("t3", target=self.target())])
        self.assertEqual(third[0]["status"], "error", third)
        self.assertIn("Log to record again", third[0]["error"])

    def test_sidecar_refusal_forgets_the_request(self):
        from odoo.exceptions import MissingError

        self.enter_registry_test_mode()
        self.sidecar.errors["message.log_to_record"] = MissingError("Message t4 is no longer in mailbox")
        with self.assertRaises(MissingError):
            self.mailbox.with_user(self.clerk).maildesk_log_to_record("t4", "res.partner", self.chosen.id)
        self.assertFalse(self.env["maildesk.log.request"].search([("graph_id", "=", "t4")]))

    def test_models_not_allowed_are_refused_everywhere(self):
        self.env["ir.config_parameter"].sudo().set_param(ALLOWED_MODELS_PARAM, "crm.lead")
        # The button names what to do...
        with self.assertRaisesRegex(ValidationError, "Settings"):
            self.mailbox.with_user(self.clerk).maildesk_log_to_record("t5", "res.partner", self.chosen.id)
        self.assertNotIn("message.log_to_record", self.sidecar.methods())
        # ...and a recorded request does not make it allowed at ingest.
        self.request("t5")
        res = self.ingest([self.item("t5", target=self.target())])
        self.assertEqual(res[0]["status"], "error", res)
        self.assertIn("may not log mail on res.partner", res[0]["error"])
        # Models without a chatter, or a MailDesk-internal one, never.
        for model, res_id in (("res.users", self.anna.id), ("maildesk.mailbox", self.mailbox.id),
                              ("ir.config_parameter", 1)):
            self.request("t6", model=model, res_id=res_id)
            res = self.ingest([self.item("t6", target=self.target(model, res_id))])
            self.assertEqual(res[0]["status"], "error", (model, res))
        self.assertFalse(self.mailbox.message_ids.filtered(lambda m: m.maildesk_graph_id == "t6"))

    def test_defaults_and_gateway_model(self):
        self.env["ir.config_parameter"].sudo().search([("key", "=", ALLOWED_MODELS_PARAM)]).unlink()
        ingest = self.env["maildesk.ingest"]
        allowed = ingest._allowed_models(self.mailbox)
        self.assertIn("res.partner", allowed)
        self.assertEqual("crm.lead" in allowed, "crm.lead" in self.env, "leads when CRM is installed")
        self.assertNotIn("res.users", allowed)
        gateway = self.env["maildesk.mailbox"].create({
            "email": "gw@contoso.example", "mode": "gateway",
            "gateway_model_id": self.env["ir.model"]._get_id("mail.blacklist")})
        self.assertNotIn("mail.blacklist", ingest._allowed_models(self.mailbox))
        self.assertIn("mail.blacklist", ingest._allowed_models(gateway), "a gateway's own model, for it only")
        self.env["ir.config_parameter"].sudo().set_param(ALLOWED_MODELS_PARAM, ",")
        self.assertEqual(ingest._allowed_models(self.mailbox), set(), "an empty choice allows nothing")

    def test_loggable_models_offer_only_allowed_ones(self):
        self.env["ir.config_parameter"].sudo().set_param(ALLOWED_MODELS_PARAM, "res.partner")
        names = [m["model"] for m in self.env["maildesk.mailbox"].with_user(self.clerk).maildesk_loggable_models()]
        self.assertEqual(names, ["res.partner"])


@tagged("post_install", "-at_install")
class TestAllowedModelsSetting(MaildeskCase):
    def test_admin_sets_the_list_in_settings(self):
        env = self.env(user=self.admin_user)
        form = Form(env["res.config.settings"])
        defaults = {m.model for m in form.maildesk_allowed_model_ids}
        self.assertIn("res.partner", defaults)
        form.maildesk_allowed_model_ids.clear()
        form.maildesk_allowed_model_ids.add(env["ir.model"]._get("res.partner"))
        form.save().execute()
        self.assertEqual(self.env["ir.config_parameter"].sudo().get_param(ALLOWED_MODELS_PARAM), "res.partner")
        self.assertEqual(self.env["maildesk.ingest"]._allowed_models(), {"res.partner"})

    def test_saving_other_settings_keeps_defaults_following_installed_apps(self):
        env = self.env(user=self.admin_user)
        env["res.config.settings"].create({}).execute()
        self.assertFalse(self.env["ir.config_parameter"].sudo().get_param(ALLOWED_MODELS_PARAM))

    def test_model_without_chatter_is_refused(self):
        env = self.env(user=self.admin_user)
        country = env["ir.model"]._get("res.country")
        with self.assertRaisesRegex(ValidationError, "no chatter"):
            env["res.config.settings"].create({"maildesk_allowed_model_ids": [(6, 0, [country.id])]})


@tagged("post_install", "-at_install")
class TestDuplicateAnswers(MaildeskCase):
    """Duplicates still stop a second post, but name only this mailbox's records."""

    def test_message_held_outside_the_mailbox_is_duplicate_without_names(self):
        secret = self.env["res.partner"].create({"name": "Secret deal"})
        secret.message_post(body="internal", message_id="<secret-1@contoso.example>", message_type="email")
        other_box = self.env["maildesk.mailbox"].create({"email": "boss@contoso.example", "owner_id": self.bob.id})
        held = self.ingest([self.item("d1", message_id="<boss-1@customer.example>")], mailbox=other_box)
        self.assertEqual(held[0]["status"], "posted", held)

        res = self.ingest([
            self.item("d2", message_id="<secret-1@contoso.example>"),
            self.item("d3", message_id="<boss-1@customer.example>"),
            self.item("d1", message_id="<boss-1-new@customer.example>"),  # other mailbox's Graph id
        ])
        self.assertEqual([r["status"] for r in res[:2]], ["duplicate", "duplicate"], res)
        for r in res[:2]:
            self.assertEqual((r["records"], r["odoo_message_ids"]), ([], []), "no model or id of another place")
        self.assertNotEqual(res[2]["status"], "duplicate", "Graph ids are per mailbox")
        for r in res:
            self.assertNotIn(secret.id, [rec[1] for rec in r["records"] if rec[0] == "res.partner"])
        self.assertEqual(
            self.env["mail.message"].search_count([("message_id", "=", "<secret-1@contoso.example>")]), 1
        )

    def test_own_duplicates_still_name_their_records(self):
        first = self.ingest([self.item("d4")])
        again = self.ingest([self.item("d4"), self.item("d5", message_id="<d4@customer.example>")])
        self.assertEqual([r["status"] for r in again], ["duplicate", "duplicate"])
        for r in again:
            self.assertEqual(r["records"], first[0]["records"])
            self.assertEqual(r["odoo_message_ids"], first[0]["odoo_message_ids"])


@tagged("post_install", "-at_install")
class TestMalformedItems(MaildeskCase):
    """A bad item answers error for itself only; good items around it are posted."""

    def test_malformed_items_in_one_batch(self):
        good_att = [{"name": "a.txt", "content_type": "text/plain", "data_base64": base64.b64encode(b"a").decode()}]
        base = self.item("bad")
        bad = [
            # (what is wrong, the item, a word the error names)
            ("not an object", "just a string", "object"),
            ("a list", [1, 2], "object"),
            ("null", None, "object"),
            ("graph_id missing", {k: v for k, v in base.items() if k != "graph_id"}, "graph_id"),
            ("graph_id empty", dict(base, graph_id=""), "graph_id"),
            ("graph_id a number", dict(base, graph_id=12345), "graph_id"),
            ("graph_id an object", dict(base, graph_id={"id": "x"}), "graph_id"),
            ("direction missing", {k: v for k, v in base.items() if k != "direction"}, "direction"),
            ("direction wrong", dict(base, direction="sideways"), "direction"),
            ("direction a bool", dict(base, direction=True), "direction"),
            ("to a string", dict(base, to="anna@contoso.example"), "to"),
            ("to entries strings", dict(base, to=["anna@contoso.example"]), "to[0]"),
            ("cc an object", dict(base, cc={"email": "x@y.z"}), "cc"),
            ("from a string", dict(base, **{"from": "carl@customer.example"}), "from"),
            ("from.email a number", dict(base, **{"from": {"email": 7}}), "from.email"),
            ("subject a number", dict(base, subject=42), "subject"),
            ("body_html a list", dict(base, body_html=["<p>x</p>"]), "body_html"),
            ("headers a list", dict(base, headers=[["Message-Id", "<x@y>"]]), "headers"),
            ("header value a number", dict(base, headers={"in-reply-to": 5}), "in-reply-to"),
            ("attachments not a list", dict(base, attachments={"name": "a.txt"}), "attachments"),
            ("attachment a string", dict(base, attachments=["a.txt"]), "attachments[0]"),
            ("attachment without data", dict(base, attachments=[{"name": "a.txt"}]), "data_base64"),
            ("attachment bad base64", dict(base, attachments=[{"name": "a", "data_base64": "@@not base64@@"}]),
             "base64"),
            ("attachment base64 cut", dict(base, attachments=[{"name": "a", "data_base64": "QUJDR"}]), "base64"),
            ("attachment name a number", dict(base, attachments=[dict(good_att[0], name=3)]), "name"),
            ("is_inline a string", dict(base, attachments=[dict(good_att[0], is_inline="yes")]), "is_inline"),
            ("options a string", dict(base, options="backfill"), "options"),
            ("options a list", dict(base, options=[]), "options"),
            ("target a string", dict(base, target="res.partner,1"), "target"),
            ("target.res_id a string", dict(base, target={"model": "res.partner", "res_id": "1"}), "res_id"),
            ("target.res_id a bool", dict(base, target={"model": "res.partner", "res_id": True}), "res_id"),
            ("target.model missing", dict(base, target={"res_id": 1}), "target.model"),
            ("received_at a number", dict(base, received_at=1762074843), "received_at"),
            ("received_at not a date", dict(base, received_at="yesterday"), "received_at"),
            ("internet_message_id a list", dict(base, internet_message_id=["<a@b>"]), "internet_message_id"),
            ("mime_base64 a number", self.mime_item("bad", GOOD_MIME, mime_base64=123), "mime_base64"),
            ("mime_base64 bad", self.mime_item("bad", GOOD_MIME, mime_base64="!!!!"), "base64"),
            ("nothing to ingest", {"graph_id": "bad", "direction": "in", "received_at": "2026-11-02T09:14:03Z"},
             "neither"),
        ]
        batch, expected = [], []
        for n, (label, item, word) in enumerate(bad):
            good = self.item("ok%d" % n, attachments=good_att if n % 3 == 0 else [])
            batch += [good, item]
            expected += [("posted", None, "good before %s" % label), ("error", word, label)]
        batch.append(self.mime_item("ok-mime", GOOD_MIME))
        expected.append(("posted", None, "raw MIME after all"))
        res = self.ingest(batch)
        self.assertEqual(len(res), len(batch), "one answer per item, in order")
        for r, (status, word, label) in zip(res, expected):
            with self.subTest(label):
                self.assertEqual(r["status"], status, r)
                if word:
                    self.assertIn(word, r["error"])
                    self.assertEqual((r["odoo_message_ids"], r["records"]), ([], []))
        posted = [r for r in res if r["status"] == "posted"]
        self.assertEqual(len(posted), len(bad) + 1)
        self.assertEqual(
            self.env["mail.message"].search_count([("maildesk_graph_id", "=like", "ok%"),
                                                   ("maildesk_mailbox_id", "=", self.mailbox.id)]),
            len(bad) + 1,
        )

    def test_items_not_a_list(self):
        with self.assertRaisesRegex(ValidationError, "list of items"):
            self.mailbox.with_user(self.bridge).maildesk_ingest({"graph_id": "x"})
        with self.assertRaisesRegex(ValidationError, "options"):
            self.mailbox.with_user(self.bridge).maildesk_ingest([], options="backfill")


@tagged("post_install", "-at_install")
class TestRemoteContentBlocked(MaildeskCase):
    """Wherever MailDesk shows mail, tracking pixels never load and remote
    images of unknown senders stay blocked."""

    BODY = ('<p>Offer</p><img src="https://cdn.stranger.example/photo.jpg">'
            '<img src="https://t.stranger.example/o/1" width="1" height="1">')

    def setUp(self):
        super().setUp()
        self.sidecar.answers["message.get"] = {
            "id": "m1", "subject": "Offer", "from": {"name": "Stranger", "email": "stranger@unknown.example"},
            "to": [{"email": "anna@contoso.example"}], "body_html": self.BODY,
        }

    def test_inbox_strips_trackers_even_when_images_are_shown(self):
        for show in (False, True):
            data = self.mailbox.with_user(self.anna).maildesk_inbox_message("m1", show_images=show)
            self.assertNotIn("t.stranger.example", data["body_html"], show)
            self.assertEqual(data["trackers_removed"], 1)
        shown = self.mailbox.with_user(self.anna).maildesk_inbox_message("m1", show_images=True)
        self.assertIn('src="https://cdn.stranger.example/photo.jpg"', shown["body_html"])

    def test_reply_quote_keeps_remote_images_blocked(self):
        ctx = self.mailbox.with_user(self.anna).maildesk_compose_action("m1")["context"]
        quote = str(ctx["default_body"])
        self.assertIn("Offer", quote)
        self.assertNotIn("t.stranger.example", quote)
        self.assertNotRegex(quote, r'\ssrc="https://cdn\.stranger\.example')
        self.assertIn('data-maildesk-src="https://cdn.stranger.example/photo.jpg"', quote)


@tagged("post_install", "-at_install")
class TestGatewayTrackers(MaildeskCase):
    def test_gateway_raw_mime_stores_no_tracking_pixel(self):
        shared = self.env["maildesk.mailbox"].create({
            "email": "sales@contoso.example", "kind": "shared", "mode": "gateway",
            "gateway_model_id": self.env["ir.model"]._get_id("res.partner"), "main_user_id": self.bob.id})
        raw = (b"From: Dora <dora@prospect.example>\nTo: sales@contoso.example\nSubject: Chairs\n"
               b"Message-ID: <px-gw@prospect.example>\nContent-Type: text/html\n\n"
               b'<p>We need chairs</p><img src="https://cdn.prospect.example/logo.png">'
               b'<img src="https://t.prospect.example/o/9" width="1" height="1">')
        res = self.ingest([self.mime_item("pxgw", raw)], mailbox=shared)
        self.assertEqual(res[0]["status"], "posted", res)
        body = str(self.env["mail.message"].browse(res[0]["odoo_message_ids"]).body)
        self.assertIn("We need chairs", body)
        self.assertIn("cdn.prospect.example/logo.png", body)
        self.assertNotIn("t.prospect.example", body)
