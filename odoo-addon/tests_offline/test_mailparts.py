"""Header, address and HTML helpers used by ingest and the inbox."""

import datetime
import unittest

from _paths import ADDON  # noqa: F401 - puts lib/ on sys.path
from lib import mailparts


class TestMailparts(unittest.TestCase):
    def test_normalize_email(self):
        self.assertEqual(mailparts.normalize_email("Ann Lee <Ann.Lee@Example.COM>"), "ann.lee@example.com")
        self.assertEqual(mailparts.normalize_email({"name": "x", "email": " B@X.org "}), "b@x.org")
        self.assertEqual(mailparts.normalize_email(""), "")
        self.assertEqual(mailparts.normalize_email("no address here"), "")

    def test_plain_addresses_answer_as_the_parser_does(self):
        """normalize_email answers bare addresses without email.utils: the same answer."""
        import email.utils

        for value in ["c1@cust1.example", "Ann.Lee@Example.COM", "a_b%c+d-e@x-y.co.uk", "a..b@x.org", ".a@x.org",
                      "a@x..org", "a@x.org.", "a b@x.org", "a@x", "a@@x.org", "\"a\"@x.org", "a@x.org ", "ä@x.org",
                      "a@[1.2.3.4]", "a(comment)@x.org"]:
            _name, addr = email.utils.parseaddr(value)
            expected = addr.strip().lower() if "@" in addr else mailparts.normalize_email("<%s>" % value)
            if mailparts._PLAIN_EMAIL_RE.match(value):
                self.assertEqual(mailparts.normalize_email(value), expected, value)
                self.assertEqual(addr, value, value)

    def test_base64_fast_and_slow_paths_agree(self):
        import base64
        import binascii

        data = bytes(range(256)) * 40
        text = base64.b64encode(data).decode()
        wrapped = "\r\n".join(text[i:i + 76] for i in range(0, len(text), 76))
        self.assertEqual(mailparts.b64decode(text), data)
        self.assertEqual(mailparts.b64decode(wrapped), data)
        self.assertIsNone(mailparts.strict_b64decode(wrapped))
        self.assertEqual(mailparts.b64decode(""), b"")
        for bad in ["abc", "ab=c", "a===", "====", "é123", "ab!d"]:
            self.assertEqual(mailparts._base64_problem(bad), "is not valid base64", bad)
            with self.assertRaises((binascii.Error, ValueError), msg=bad):  # as base64.b64decode
                mailparts.b64decode(bad)
        self.assertIsNone(mailparts._base64_problem(wrapped))
        self.assertIsNone(mailparts._base64_problem("YWI="))

    def test_format_address(self):
        self.assertEqual(mailparts.format_address({"name": "Ann", "email": "a@b.c"}), "Ann <a@b.c>")
        self.assertEqual(mailparts.format_address({"name": "Lee, Ann", "email": "a@b.c"}), '"Lee, Ann" <a@b.c>')
        self.assertEqual(mailparts.format_address({"email": "a@b.c"}), "a@b.c")
        self.assertEqual(mailparts.format_addresses([{"email": "a@b.c"}, {"email": ""}, {"email": "d@e.f"}]),
                         "a@b.c, d@e.f")

    def test_thread_references_order_and_dedup(self):
        headers = {"references": "<a@x>\r\n <b@x>", "in-reply-to": "<b@x>"}
        self.assertEqual(mailparts.thread_references(headers), ["<a@x>", "<b@x>"])
        many = " ".join("<%d@x>" % i for i in range(50))
        self.assertEqual(len(mailparts.thread_references({"references": many})), 32)
        self.assertEqual(mailparts.thread_references({}), [])

    def test_lower_headers(self):
        self.assertEqual(mailparts.lower_headers({"Message-ID": "<a@b>", "X-List": ["a", "b"], "N": None}),
                         {"message-id": "<a@b>", "x-list": "a b", "n": ""})

    def test_auto_submitted(self):
        self.assertTrue(mailparts.is_auto_submitted({"Auto-Submitted": "auto-replied"}))
        self.assertFalse(mailparts.is_auto_submitted({"Auto-Submitted": "no"}))
        self.assertTrue(mailparts.is_auto_submitted({"Precedence": "bulk"}))
        self.assertTrue(mailparts.is_auto_submitted({"X-Auto-Response-Suppress": "All"}))
        self.assertFalse(mailparts.is_auto_submitted({"Subject": "hello"}))

    def test_parse_datetime(self):
        self.assertEqual(mailparts.parse_datetime("2026-11-02T09:14:03Z"), datetime.datetime(2026, 11, 2, 9, 14, 3))
        self.assertEqual(mailparts.parse_datetime("2026-11-02T10:14:03.123+01:00"),
                         datetime.datetime(2026, 11, 2, 9, 14, 3))
        self.assertEqual(mailparts.parse_datetime("Mon, 02 Nov 2026 09:14:03 +0000"),
                         datetime.datetime(2026, 11, 2, 9, 14, 3))
        self.assertIsNone(mailparts.parse_datetime("yesterday"))
        self.assertIsNone(mailparts.parse_datetime(None))

    def test_block_remote_images(self):
        html = ('<img src="https://t.example/p.gif" width="1"><img src="cid:logo">'
                "<img src='//cdn.example/a.png'><td background=\"http://x/b.png\">"
                '<div style="background:url(https://x/y.png)">x</div><img src="data:image/png;base64,AA">')
        out, count = mailparts.block_remote_images(html)
        self.assertEqual(count, 4)
        self.assertNotIn('<img src="https', out)
        self.assertNotIn("url(https://", out)
        self.assertIn('src="cid:logo"', out)
        self.assertIn("data:image/png;base64,AA", out)
        self.assertIn('<img data-maildesk-src="https://t.example/p.gif" width="1">', out)
        self.assertIn('<td data-maildesk-background="http://x/b.png">', out)
        self.assertEqual(mailparts.block_remote_images(""), ("", 0))

    def test_sidecar_remote_images_come_back_to_be_blocked_or_shown(self):
        """The sidecar moves remote src to data-remote-src; the addon puts it
        back, then blocks it (or shows it when allowed)."""
        html = ('<p>Hi</p><img data-remote-src="https://evil.example/p.gif" width="1" height="1">'
                "<img alt=logo data-remote-src='http://x.example/logo.png'><img data-remote-src=\"javascript:x\">")
        back = mailparts.sidecar_remote_images(html)
        self.assertIn('<img src="https://evil.example/p.gif" width="1" height="1">', back)
        self.assertIn("<img alt=logo src='http://x.example/logo.png'>", back)
        self.assertIn('data-remote-src="javascript:x"', back, "only http(s) comes back")
        out, count = mailparts.block_remote_images(back)
        self.assertEqual(count, 2)
        self.assertNotIn(' src="http', out)
        self.assertEqual(mailparts.sidecar_remote_images(""), "")

    def test_block_remote_srcset_and_poster(self):
        """A srcset whose candidates carry widths or densities (spaces in the
        value), or whose later candidate is remote, and a video's poster."""
        html = ('<img src="cid:a" srcset="https://t.example/a.png 2x">'
                "<img srcset='a.png 1x, //t.example/b.png 2x'><video poster=https://t.example/p.png></video>"
                '<img srcset="data:image/png;base64,AA 1x">')
        out, count = mailparts.block_remote_images(html)
        self.assertEqual(count, 3)
        self.assertNotIn(' srcset="http', out)
        self.assertIn('data-maildesk-srcset="https://t.example/a.png 2x"', out)
        self.assertIn('data-maildesk-srcset="a.png 1x, //t.example/b.png 2x"', out)
        self.assertIn('data-maildesk-poster="https://t.example/p.png"', out)
        self.assertIn('src="cid:a"', out)
        self.assertIn('srcset="data:image/png;base64,AA 1x"', out)

    def test_bcc_goes_back_into_the_mime(self):
        bcc = mailparts.envelope_bcc(["a@x.org", "b@x.org", "boss@x.org"], "A <a@x.org>", "b@x.org")
        self.assertEqual(bcc, ["boss@x.org"])
        raw = mailparts.add_bcc_header(b"From: a@x.org\r\n\r\nbody", bcc)
        self.assertTrue(raw.startswith(b"Bcc: boss@x.org\r\nFrom:"))
        self.assertEqual(mailparts.add_bcc_header(b"x", []), b"x")


if __name__ == "__main__":
    unittest.main()


class TestAddressesReadable(unittest.TestCase):
    """Structured items carry names as Graph gives them (Unicode); Odoo's
    email_from / reply_to must hold them readable, never RFC 2047-encoded."""

    def test_non_ascii_name_is_not_encoded(self):
        self.assertEqual(mailparts.format_address({"name": "Jürgen Müller", "email": "j@x.de"}),
                         "Jürgen Müller <j@x.de>")
        self.assertEqual(mailparts.format_address({"name": "Łukasz, Żółw", "email": "l@x.pl"}),
                         '"Łukasz, Żółw" <l@x.pl>')
        self.assertEqual(mailparts.format_address({"name": 'Say "hi"', "email": "h@x.pl"}),
                         '"Say \\"hi\\"" <h@x.pl>')
        self.assertNotIn("=?", mailparts.format_address({"name": "Ωmega", "email": "o@x.gr"}))

    def test_encoded_name_is_decoded(self):
        self.assertEqual(mailparts.format_address({"name": "=?utf-8?q?J=C3=BCrgen_M=C3=BCller?=", "email": "j@x.de"}),
                         "Jürgen Müller <j@x.de>")
        self.assertEqual(mailparts.decode_header_text("=?iso-8859-7?b?1+Hp8eXk?="), "Χαιρεδ")
        self.assertEqual(mailparts.decode_header_text("plain"), "plain")
        self.assertEqual(mailparts.decode_header_text("=?bogus?q?x?="), "=?bogus?q?x?=")

    def test_address_header(self):
        self.assertEqual(mailparts.format_address_header('=?utf-8?q?J=C3=BCrgen?= <j@x.de>,\r\n "Lee, Ann" <a@b.c>'),
                         'Jürgen <j@x.de>, "Lee, Ann" <a@b.c>')
        self.assertEqual(mailparts.format_address_header("a@b.c"), "a@b.c")
        self.assertEqual(mailparts.format_address_header(""), "")


class TestStripTrackingImages(unittest.TestCase):
    def strip(self, html):
        return mailparts.strip_tracking_images(html)

    def test_one_by_one_attributes_and_styles(self):
        cases = [
            '<img src="https://t.example.com/x" width="1" height="1">',
            "<img width=1 height=1 src=https://t.example.com/x>",
            '<img src="//t.example.com/x" width="0" height="0" />',
            '<img src="http://t.example.com/x" style="width:1px;height:1px;border:0">',
            '<img src="https://t.example.com/x" style="WIDTH: 1px !important; HEIGHT: 1PX">',
            '<img src="https://t.example.com/x" height="0">',
            '<img src="https://t.example.com/x" style="display:none">',
            '<img src="https://t.example.com/x" style="visibility: hidden">',
            '<img src="https://t.example.com/x" width="1px" style="max-height:1px">',
            "<IMG SRC='https://t.example.com/x' WIDTH='1' HEIGHT='1' ALT=''>",
        ]
        for tag in cases:
            with self.subTest(tag=tag):
                html, count = self.strip("<p>Hi%s there</p>" % tag)
                self.assertEqual((html, count), ("<p>Hi there</p>", 1))

    def test_known_trackers_without_size(self):
        urls = [
            "https://contoso.us1.list-manage.com/track/open.php?u=abc&id=def&e=123",
            "https://u123.ct.sendgrid.net/wf/open?upn=xyz",
            "https://t.hubspotemail.net/e1t/o/5/f18dQhb0S7kC8dDMPbW2n0x6l2B9gXrN7sKj4v5wnYKjW7k?si=1",
            "https://mailtrack.io/trace/mail/abc.png?u=1",
            "https://t.yesware.com/t/abc/def/spacer.gif",
            "https://click.e.example.com/open.aspx?ffcb10-fec6177377-fe2a1c",
            "https://r20.rs6.net/on.jsp?t=1&r=2",
            "https://email.mg.example.com/o/eJwd",
            "https://www.linkedin.com/emimp/ip_abc.gif",
            "https://news.example.com/track/open/123",
            "https://mail.example.com/pixel.gif",
        ]
        for url in urls:
            with self.subTest(url=url):
                html, count = self.strip('<div><img src="%s" alt=""></div>' % url.replace("&", "&amp;"))
                self.assertEqual((html, count), ("<div></div>", 1))

    def test_ordinary_images_stay(self):
        keep = [
            '<img src="https://cdn.contoso.com/logo.png" width="120" height="40">',
            '<img src="https://cdn.contoso.com/banner.jpg">',
            '<img src="https://cdn.contoso.com/rule.gif" width="600" height="1">',
            '<img src="cid:logo@contoso" width="1" height="1">',
            '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" width="1" height="1">',
            '<img src="/web/image/42" width="1" height="1">',
            '<img src="https://photos.example.com/open-house.jpg">',
            '<img src="https://cdn.example.com/x.png" style="width:100%;height:auto">',
        ]
        for tag in keep:
            with self.subTest(tag=tag):
                self.assertEqual(self.strip("<p>%s</p>" % tag), ("<p>%s</p>" % tag, 0))

    def test_mixed_body_counts_and_keeps_text(self):
        body = ('<p>Offer</p><img src="https://cdn.c.com/logo.png" alt="a > b">'
                '<img alt=">" src="https://x.com/t" width="1" height="1"><p>Bye</p>')
        self.assertEqual(self.strip(body), ('<p>Offer</p><img src="https://cdn.c.com/logo.png" alt="a > b"><p>Bye</p>', 1))
        self.assertEqual(self.strip(""), ("", 0))
        self.assertEqual(self.strip(None), ("", 0))


class TestItemProblem(unittest.TestCase):
    """The shape check maildesk_ingest runs on every item (Odoo-free)."""

    GOOD = {"graph_id": "g1", "direction": "in", "received_at": "2026-11-02T09:14:03Z", "subject": "Hi",
            "from": {"name": "Carl", "email": "c@x.example"}, "to": [{"email": "a@y.example"}],
            "headers": {"message-id": "<a@b>"}, "body_html": "<p>x</p>",
            "attachments": [{"name": "a.txt", "data_base64": "YQ==", "is_inline": False}], "options": {}}

    def test_good_items_pass(self):
        self.assertIsNone(mailparts.item_problem(self.GOOD))
        self.assertIsNone(mailparts.item_problem({"graph_id": "g", "direction": "out", "mime_base64": "QUJD\r\nREVG"}))
        self.assertIsNone(mailparts.item_problem(dict(self.GOOD, target={"model": "res.partner", "res_id": 3})))

    def test_bad_items_say_what(self):
        table = [
            ("x", "object"),
            (dict(self.GOOD, graph_id=5), "graph_id must be a string"),
            ({k: v for k, v in self.GOOD.items() if k != "direction"}, "direction is required"),
            (dict(self.GOOD, to="a@y.example"), "to must be a list"),
            (dict(self.GOOD, cc=[None]), "cc[0]"),
            (dict(self.GOOD, attachments={}), "attachments must be a list"),
            (dict(self.GOOD, attachments=[{"name": "a", "data_base64": "a"}]), "not valid base64"),
            (dict(self.GOOD, options=[]), "options must be an object"),
            (dict(self.GOOD, target={"model": "res.partner", "res_id": False}), "res_id"),
            (dict(self.GOOD, received_at="soon"), "received_at"),
            (dict(self.GOOD, headers={"x": None}), "header x"),
            ({"graph_id": "g", "direction": "in", "mime_base64": "Q"}, "mime_base64"),
            ({"graph_id": "g", "direction": "in"}, "neither"),
        ]
        for item, words in table:
            with self.subTest(words):
                self.assertIn(words, mailparts.item_problem(item) or "")

    def test_eml_filename(self):
        self.assertEqual(mailparts.eml_filename("=?utf-8?q?Rechnung_f=C3=BCr?="), "Rechnung für.eml")
        self.assertEqual(mailparts.eml_filename('Re: a/b "c"'), "Re a b c.eml")
        self.assertEqual(mailparts.eml_filename(""), "Forwarded message.eml")


class TestGatewayPolicy(unittest.TestCase):
    RAW = (
        b"From: =?utf-8?q?J=C3=BCrgen?= <j@cust.example>\r\nTo: Sales <sales@ourco.example>, b@x.example\r\n"
        b"Cc: c@x.example\r\nSubject: =?utf-8?q?Pr=C3=BCfung?= of a very long subject line that is folded when it is\r\n"
        b" written again\r\nMessage-ID: <m1@cust.example>\r\nIn-Reply-To: <m0@ourco.example>\r\n"
        b"Date: Mon, 02 Nov 2026 09:14:03 +0000\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/html; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n<p>K=C3=B6ln</p>\r\n--b1\r\n"
        b"Content-Type: application/pdf; name=\"q.pdf\"\r\nContent-Disposition: attachment; filename=\"q.pdf\"\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n"
    )

    def test_reads_like_smtp_and_parses_each_header_once(self):
        import email
        import email.policy

        ours = email.message_from_bytes(self.RAW, policy=mailparts.gateway_policy())
        smtp = email.message_from_bytes(self.RAW, policy=email.policy.SMTP)
        self.assertEqual(ours.items(), smtp.items())
        for name in ("From", "To", "Cc", "Subject", "Message-ID", "Date", "content-type"):
            self.assertEqual(str(ours[name]), str(smtp[name]))
            # (the header registry makes a class for each header it parses)
            self.assertEqual(type(ours[name]).__bases__, type(smtp[name]).__bases__)
            self.assertIs(ours[name], ours.get(name), "parsed once")
        self.assertEqual(ours["To"].addresses, smtp["To"].addresses)
        self.assertEqual(ours["Date"].datetime, smtp["Date"].datetime)
        self.assertEqual([p.get_content_type() for p in ours.walk()], [p.get_content_type() for p in smtp.walk()])
        self.assertEqual([p.get_filename() for p in ours.walk()], [p.get_filename() for p in smtp.walk()])
        self.assertEqual(ours.get_body(("html",)).get_content(), smtp.get_body(("html",)).get_content())
        self.assertEqual(ours.as_bytes(), smtp.as_bytes())
        self.assertIsNone(ours["X-Missing"])
        self.assertEqual(ours.get("X-Missing", "x"), "x")

    def test_a_changed_header_is_read_anew(self):
        import email

        msg = email.message_from_bytes(self.RAW, policy=mailparts.gateway_policy())
        self.assertEqual(str(msg["Subject"])[:7], "Prüfung")
        msg.replace_header("Subject", "Other")
        self.assertEqual(str(msg["Subject"]), "Other")
        del msg["To"]
        self.assertIsNone(msg["To"])
        policy = msg.policy.clone(max_line_length=60)
        self.assertEqual(policy._parsed_headers, {}, "a clone starts afresh")
