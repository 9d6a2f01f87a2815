# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import base64

from odoo.exceptions import AccessError
from odoo.tests import tagged
from odoo.tools import html_escape

from odoo.addons.maildesk import compat

from .common import MaildeskCase

RAW_LEAD = b"""From: Dora Doe <dora@prospect.example>
To: sales@contoso.example
Subject: Need 40 chairs
Message-ID: <lead-1@prospect.example>
Date: Mon, 02 Nov 2026 09:14:03 +0000
MIME-Version: 1.0
Content-Type: text/plain; charset="koi8-r"
Content-Transfer-Encoding: 8bit

\xf0\xd2\xc9\xd7\xc5\xd4 - hello, we need chairs.
"""

RAW_AUTOREPLY = b"""From: Dora Doe <dora@prospect.example>
To: sales@contoso.example
Subject: Out of office
Message-ID: <ooo-1@prospect.example>
Auto-Submitted: auto-replied
Content-Type: text/plain

I am away.
"""


@tagged("post_install", "-at_install")
class TestIngestLog(MaildeskCase):
    def test_incoming_goes_on_partner_without_notifying(self):
        mails_before = self.env["mail.mail"].search_count([])
        res = self.ingest([self.item("g1")])
        self.assertEqual(res[0]["status"], "posted", res)
        self.assertEqual(res[0]["records"], [["res.partner", self.customer.id]])
        msg = self.env["mail.message"].browse(res[0]["odoo_message_ids"])
        self.assertEqual(msg.model, "res.partner")
        self.assertEqual(msg.res_id, self.customer.id)
        self.assertEqual(msg.message_type, "email")
        self.assertEqual(msg.subtype_id, self.env.ref("mail.mt_note"))
        self.assertEqual(msg.message_id, "<g1@customer.example>")
        self.assertEqual(msg.maildesk_graph_id, "g1")
        self.assertEqual(msg.author_id, self.customer)
        self.assertEqual(str(msg.date), "2026-11-02 09:14:03")
        self.assertFalse(msg.notification_ids, "a logged mail notifies nobody")
        self.assertEqual(self.env["mail.mail"].search_count([]), mails_before, "no e-mail queued")

    def test_duplicates_by_graph_id_and_message_id(self):
        self.ingest([self.item("g2")])
        res = self.ingest(
            [
                self.item("g2"),  # same graph id
                self.item("g3", message_id="<g2@customer.example>"),  # same Message-Id
                self.item("g4"),
                self.item("g4"),  # repeated inside the batch
            ]
        )
        self.assertEqual([r["status"] for r in res], ["duplicate", "duplicate", "posted", "duplicate"])
        # Duplicates name what Odoo already holds.
        self.assertEqual(res[0]["records"], [["res.partner", self.customer.id]])
        self.assertEqual(res[0]["odoo_message_ids"], res[1]["odoo_message_ids"])
        self.assertEqual(res[3]["odoo_message_ids"], res[2]["odoo_message_ids"])
        self.assertEqual(
            self.env["mail.message"].search_count([("message_id", "=", "<g2@customer.example>")]), 1
        )

    def test_reply_goes_on_the_known_thread(self):
        lead_like = self.env["res.partner"].create({"name": "Thread holder"})
        lead_like.message_post(body="Our offer", message_id="<offer-1@contoso.example>", message_type="email")
        res = self.ingest(
            [self.item("g5", headers={"In-Reply-To": "<offer-1@contoso.example>",
                                      "References": "<x@y> <offer-1@contoso.example>"})]
        )
        self.assertEqual(res[0]["status"], "posted")
        self.assertEqual(res[0]["records"], [["res.partner", lead_like.id]])

    def test_unknown_sender_is_unrouted_unless_create_contacts(self):
        item = self.item("g6", from_={"name": "Eve New", "email": "eve@new.example"})
        self.assertEqual(self.ingest([item])[0]["status"], "unrouted")
        self.mailbox.create_contacts = True
        res = self.ingest([self.item("g7", from_={"name": "Eve New", "email": "eve@new.example"})])
        self.assertEqual(res[0]["status"], "posted")
        partner = self.env["res.partner"].browse(res[0]["records"][0][1])
        self.assertEqual(partner.email_normalized, "eve@new.example")
        self.assertEqual(partner.name, "Eve New")

    def test_sent_from_outlook_becomes_done_activity(self):
        item = self.item(
            "g8",
            direction="out",
            from_={"name": "Anna", "email": "anna@contoso.example"},
            to=[{"name": "Carl", "email": "carl@customer.example"}],
        )
        res = self.ingest([item])
        self.assertEqual(res[0]["status"], "posted")
        self.assertEqual(res[0]["records"], [["res.partner", self.customer.id]])
        activity = self.env["mail.activity"].with_context(active_test=False).browse(res[0]["activity_id"])
        self.assertTrue(activity.exists())
        self.assertEqual(activity.activity_type_id, self.env.ref("maildesk.mail_activity_type_email_outbox"))
        if "keep_done" in activity.activity_type_id._fields:  # 19.0 keeps every done activity
            self.assertTrue(activity.activity_type_id.keep_done)
        self.assertFalse(activity.active, "the activity is done")
        self.assertEqual(activity.user_id, self.anna)
        self.assertEqual(str(activity.date_done), "2026-11-02")
        # Sent by MailDesk itself (or the option off): no activity.
        res = self.ingest([dict(item, graph_id="g9", internet_message_id="<g9@x>")],
                          options={"sent_by_maildesk": True})
        self.assertFalse(res[0]["activity_id"])

    def test_own_address_is_not_a_correspondent(self):
        self.env["res.partner"].create({"name": "Anna box", "email": "anna@contoso.example"})
        item = self.item("g10", direction="out", from_={"email": "anna@contoso.example"},
                         to=[{"email": "anna@contoso.example"}])
        result = self.ingest([item])[0]
        # Mail to oneself is internal mail: never logged, not on the mailbox's own contact.
        self.assertEqual((result["status"], result["error"]), ("excluded", "not logged: internal mail"))
        self.assertFalse(self.env["mail.message"].search([("maildesk_graph_id", "=", "g10")]))

    def test_attachments_and_inline_images(self):
        data = base64.b64encode(b"%PDF-1.4 fake").decode()
        png = base64.b64encode(b"\x89PNG fake").decode()
        item = self.item(
            "g11",
            body_html='<p>See <img src="cid:logo1"></p>',
            attachments=[
                {"name": "quote.pdf", "content_type": "application/pdf", "data_base64": data},
                {"name": "logo.png", "content_type": "image/png", "data_base64": png,
                 "content_id": "<logo1>", "is_inline": True},
            ],
        )
        res = self.ingest([item])
        msg = self.env["mail.message"].browse(res[0]["odoo_message_ids"])
        self.assertEqual(sorted(msg.attachment_ids.mapped("name")), ["logo.png", "quote.pdf"])
        logo = msg.attachment_ids.filtered(lambda a: a.name == "logo.png")
        self.assertIn("/web/image/%s" % logo.id, str(msg.body))
        self.assertEqual(logo.res_model, "res.partner")

    def log_request(self, graph_id, record):
        """What maildesk_log_to_record records when a user presses the button."""
        self.env["maildesk.log.request"].create({"mailbox_id": self.mailbox.id, "graph_id": graph_id,
                                                 "model": record._name, "res_id": record.id,
                                                 "user_id": self.anna.id})

    def test_target_record_wins(self):
        other = self.env["res.partner"].create({"name": "Chosen record"})
        self.log_request("g12", other)
        res = self.ingest([self.item("g12", target={"model": "res.partner", "res_id": other.id})])
        self.assertEqual(res[0]["records"], [["res.partner", other.id]])

    def test_log_to_record_of_mail_odoo_holds_elsewhere(self):
        self.ingest([self.item("g15")])  # synced onto the customer's partner
        chosen = self.env["res.partner"].create({"name": "Chosen record"})
        target = {"model": "res.partner", "res_id": chosen.id}
        self.log_request("g15", chosen)
        res = self.ingest([self.item("g15", target=target)])
        self.assertEqual(res[0]["status"], "posted", res)
        self.assertEqual(res[0]["records"], [["res.partner", chosen.id]])
        again = self.ingest([self.item("g15", target=target)])
        self.assertEqual(again[0]["status"], "duplicate", "already on the chosen record")

    def test_one_bad_item_never_fails_the_batch(self):
        res = self.ingest(
            [
                self.item("g13", target={"model": "no.such.model", "res_id": 1}),
                {"no": "graph id"},
                "not an object",
                self.item("g14"),
            ]
        )
        self.assertEqual([r["status"] for r in res], ["error", "error", "error", "posted"])
        self.assertIn("no.such.model", res[0]["error"])

    def test_mime_item_in_log_mode(self):
        raw = RAW_LEAD.replace(b"dora@prospect.example", b"carl@customer.example")
        res = self.ingest([self.mime_item("g15", raw)])
        self.assertEqual(res[0]["status"], "posted", res)
        msg = self.env["mail.message"].browse(res[0]["odoo_message_ids"])
        self.assertEqual(msg.message_id, "<lead-1@prospect.example>")
        self.assertIn("hello", str(msg.body))

    def test_only_the_bridge_may_ingest(self):
        with self.assertRaises(AccessError):
            self.mailbox.with_user(self.anna).maildesk_ingest([self.item("g16")])

    def test_reauth_notice_creates_activity_once(self):
        notice = {"kind": "reauth_required", "mailbox": self.mailbox.sidecar_id,
                  "email": self.mailbox.email, "reason": "invalid_grant"}
        res = self.mailbox.with_user(self.bridge).maildesk_notify([notice])
        self.assertEqual(res[0]["status"], "done")
        activity = self.env["mail.activity"].browse(res[0]["activity_id"])
        self.assertEqual(activity.user_id, self.anna)
        self.assertEqual(activity.summary, "Sign in again to anna@contoso.example")
        self.assertIn(str(html_escape(compat.record_path("maildesk.mailbox", self.mailbox.id))), str(activity.note))
        self.assertIn("<b>Connect</b>", str(activity.note), "the note is HTML, not escaped text")
        self.assertEqual(self.mailbox.state, "reauth_required")
        again = self.mailbox.with_user(self.bridge).maildesk_notify([notice])
        self.assertEqual(again[0]["activity_id"], activity.id)


# An Outlook "forward as attachment": the customer's mail travels as a
# message/rfc822 part (shape of real Exchange output, trimmed).
RAW_FORWARD_ATTACHED = b"""From: Carl Customer <carl@customer.example>
To: Anna <anna@contoso.example>
Subject: FW: Invoice 4711
Message-ID: <fw-1@customer.example>
Date: Mon, 02 Nov 2026 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="_004_outer_"

--_004_outer_
Content-Type: multipart/alternative; boundary="_000_alt_"

--_000_alt_
Content-Type: text/plain; charset="us-ascii"

See the mail below.

--_000_alt_
Content-Type: text/html; charset="us-ascii"

<html><body><p>See the mail below.</p></body></html>

--_000_alt_--

--_004_outer_
Content-Type: message/rfc822
Content-Disposition: attachment;
	creation-date="Mon, 02 Nov 2026 09:59:00 GMT";
	modification-date="Mon, 02 Nov 2026 09:59:00 GMT"

From: =?utf-8?q?J=C3=BCrgen_Lieferant?= <juergen@supplier.example>
To: Carl Customer <carl@customer.example>
Subject: =?utf-8?q?Rechnung_4711_f=C3=BCr_M=C3=B6bel?=
Message-ID: <inner-1@supplier.example>
Date: Fri, 30 Oct 2026 08:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="_inner_"

--_inner_
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

Anbei die Rechnung f=C3=BCr die St=C3=BChle.

--_inner_
Content-Type: application/pdf; name="rechnung-4711.pdf"
Content-Disposition: attachment; filename="rechnung-4711.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcOkw7zDtsOfCg==

--_inner_--

--_004_outer_--
"""


@tagged("post_install", "-at_install")
class TestIngestRealMail(MaildeskCase):
    """Defects found with real mail (issue 12, item 9), as the bridge user."""

    def test_structured_item_without_message_id(self):
        item = self.item("rm1", message_id="")
        res = self.ingest([item])
        self.assertEqual(res[0]["status"], "posted", res)
        msg = self.env["mail.message"].browse(res[0]["odoo_message_ids"])
        self.assertTrue(msg.message_id.startswith("<") and "maildesk" in msg.message_id, msg.message_id)
        again = self.ingest([self.item("rm1", message_id="")])
        self.assertEqual(again[0]["status"], "duplicate", "the Graph id still dedups")

    def test_attached_email_in_raw_mime_log_path(self):
        res = self.ingest([self.mime_item("rm2", RAW_FORWARD_ATTACHED)])
        self.assertEqual(res[0]["status"], "posted", res)
        msg = self.env["mail.message"].browse(res[0]["odoo_message_ids"])
        self.assertEqual(msg.model, "res.partner")
        self.assertEqual(msg.res_id, self.customer.id)
        eml = msg.attachment_ids.filtered(lambda a: a.mimetype == "message/rfc822")
        self.assertEqual(len(eml), 1, msg.attachment_ids.mapped("name"))
        self.assertEqual(eml.name, "Rechnung 4711 für Möbel.eml")
        self.assertIn(b"Message-ID: <inner-1@supplier.example>", eml.raw)
        self.assertIn(b"rechnung-4711.pdf", eml.raw)
        self.assertIn("See the mail below", str(msg.body))

    def test_non_ascii_sender_is_stored_readable(self):
        item = self.item(
            "rm3",
            from_={"name": "Jürgen Müller", "email": "carl@customer.example"},
            headers={"Reply-To": "=?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen@customer.example>"},
        )
        res = self.ingest([item])
        self.assertEqual(res[0]["status"], "posted", res)
        msg = self.env["mail.message"].browse(res[0]["odoo_message_ids"])
        self.assertEqual(msg.email_from, "Jürgen Müller <carl@customer.example>")
        self.assertEqual(msg.reply_to, "Jürgen Müller <juergen@customer.example>")
        self.assertNotIn("=?", msg.email_from + msg.reply_to)

    def test_forwarded_mail_sent_as_eml_attachment_is_kept(self):
        inner = RAW_FORWARD_ATTACHED.split(b'modification-date="Mon, 02 Nov 2026 09:59:00 GMT"\n\n', 1)[1]
        item = self.item("rm4", attachments=[{
            "name": "Rechnung 4711 für Möbel.eml", "content_type": "message/rfc822",
            "data_base64": base64.b64encode(inner).decode()}])
        res = self.ingest([item])
        self.assertEqual(res[0]["status"], "posted", res)
        att = self.env["mail.message"].browse(res[0]["odoo_message_ids"]).attachment_ids
        self.assertEqual(att.mapped("name"), ["Rechnung 4711 für Möbel.eml"])
        self.assertEqual(att.mimetype, "message/rfc822")

    def test_remote_tracking_images_are_stripped(self):
        body = (
            '<p>Our offer</p><img src="https://cdn.customer.example/logo.png" alt="logo">'
            '<img src="https://t.customer.example/o/abc" width="1" height="1">'
            '<img src="https://x.list-manage.com/track/open.php?u=1&amp;id=2" alt="">'
            '<img src="https://t.customer.example/p" style="width:0;height:0;border:0">'
        )
        res = self.ingest([self.item("rm5", body_html=body)])
        stored = str(self.env["mail.message"].browse(res[0]["odoo_message_ids"]).body)
        self.assertIn("cdn.customer.example/logo.png", stored)
        self.assertNotIn("t.customer.example", stored)
        self.assertNotIn("list-manage", stored)
        self.assertIn("Our offer", stored)
        # The raw-MIME path too.
        raw = (b"From: carl@customer.example\nTo: anna@contoso.example\nSubject: px\nMessage-ID: <px@c.example>\n"
               b"Content-Type: text/html\n\n<p>Hi</p><img src=\"https://t.customer.example/o\" width=1 height=1>")
        res = self.ingest([self.mime_item("rm6", raw)])
        self.assertEqual(res[0]["status"], "posted", res)
        stored = str(self.env["mail.message"].browse(res[0]["odoo_message_ids"]).body)
        self.assertIn("Hi", stored)
        self.assertNotIn("t.customer.example", stored)


@tagged("post_install", "-at_install")
class TestIngestGateway(MaildeskCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.shared = cls.env["maildesk.mailbox"].create(
            {
                "email": "sales@contoso.example",
                "kind": "shared",
                "mode": "gateway",
                "gateway_model_id": cls.env["ir.model"]._get_id("res.partner"),
                "main_user_id": cls.bob.id,
                "user_ids": [(6, 0, [cls.bob.id])],
            }
        )

    def test_gateway_creates_record_and_dedups(self):
        res = self.ingest([self.mime_item("gw1", RAW_LEAD)], mailbox=self.shared)
        self.assertEqual(res[0]["status"], "posted", res)
        model, res_id = res[0]["records"][0]
        self.assertEqual(model, "res.partner")
        record = self.env["res.partner"].browse(res_id)
        self.assertEqual(record.name, "Need 40 chairs")
        msg = self.env["mail.message"].browse(res[0]["odoo_message_ids"])
        self.assertEqual(msg.maildesk_graph_id, "gw1")
        again = self.ingest([self.mime_item("gw1b", RAW_LEAD)], mailbox=self.shared)
        self.assertEqual(again[0]["status"], "duplicate")

    def test_gateway_takes_structured_items_too(self):
        item = self.item("gw2", from_={"name": "Greta", "email": "greta@prospect.example"},
                         to=[{"email": "sales@contoso.example"}], subject="Structured lead",
                         attachments=[{"name": "spec.txt", "content_type": "text/plain",
                                       "data_base64": base64.b64encode(b"specs").decode()}])
        res = self.ingest([item], mailbox=self.shared)
        self.assertEqual(res[0]["status"], "posted", res)
        record = self.env["res.partner"].browse(res[0]["records"][0][1])
        self.assertEqual(record.name, "Structured lead")
        msg = self.env["mail.message"].browse(res[0]["odoo_message_ids"])
        self.assertEqual(msg.message_id, "<gw2@customer.example>")
        self.assertEqual(msg.attachment_ids.mapped("name"), ["spec.txt"])

    def test_bad_direction_is_an_error(self):
        res = self.ingest([self.item("gw4", direction="sideways")], mailbox=self.shared)
        self.assertEqual(res[0]["status"], "error")
        self.assertIn("direction", res[0]["error"])

    def test_auto_reply_creates_nothing(self):
        count = self.env["res.partner"].search_count([])
        res = self.ingest([self.mime_item("gw3", RAW_AUTOREPLY)], mailbox=self.shared)
        self.assertEqual(res[0]["status"], "unrouted")
        self.assertEqual(self.env["res.partner"].search_count([]), count)

    def test_backfill_never_bounces_or_sends(self):
        """21 mails of one sender trip Odoo's loop detection; nothing may be sent."""
        self.env["ir.config_parameter"].sudo().set_param("mail.gateway.loop.threshold", 2)
        mails_before = self.env["mail.mail"].search_count([])
        items = []
        for i in range(5):
            raw = RAW_LEAD.replace(b"<lead-1@", b"<lead-bf%d@" % i).replace(b"40 chairs", b"%d chairs" % i)
            items.append(self.mime_item("bf%d" % i, raw))
        res = self.ingest(items, mailbox=self.shared)
        self.assertEqual([r["status"] for r in res], ["posted"] * 5, res)
        self.assertEqual(self.env["mail.mail"].search_count([]), mails_before, "no bounce, no notification")

    def test_bounce_method_is_silenced_for_ingest(self):
        thread = self.env["mail.thread"].with_context(maildesk_ingest=True)
        before = self.env["mail.mail"].search_count([])
        import email
        message = email.message_from_bytes(RAW_LEAD)
        thread._routing_create_bounce_email("dora@prospect.example", "<p>bounce</p>", message)
        self.assertEqual(self.env["mail.mail"].search_count([]), before)
