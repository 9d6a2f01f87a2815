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

    def test_bcc_goes_back_into_the_mime(self):
        bcc = mailparts.envelope_bcc(["a@x.org", "b@x.org", "boss@x.org"], "A <a@x.org>", "b@x.org")
        self.assertEqual(bcc, ["boss@x.org"])
        raw = mailparts.add_bcc_header(b"From: a@x.org\r\n\r\nbody", bcc)
        self.assertTrue(raw.startswith(b"Bcc: boss@x.org\r\nFrom:"))
        self.assertEqual(mailparts.add_bcc_header(b"x", []), b"x")


if __name__ == "__main__":
    unittest.main()
