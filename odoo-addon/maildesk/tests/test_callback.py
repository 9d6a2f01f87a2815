# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from unittest.mock import patch

from odoo.exceptions import UserError
from odoo.tests import HttpCase, tagged

from .common import FakeSidecar


@tagged("post_install", "-at_install")
class TestOAuthCallback(HttpCase):
    def setUp(self):
        super().setUp()
        self.sidecar = FakeSidecar()
        self.startPatcher(
            patch.object(type(self.env["maildesk.sidecar"]), "_call", autospec=True, side_effect=self.sidecar)
        )
        self.mailbox = self.env["maildesk.mailbox"].create({"email": "cb@contoso.example"})
        self.mailbox.with_context(maildesk_from_sidecar=True).state = "reauth_required"
        self.mailbox._schedule_reauth_activity("invalid_grant")
        self.sidecar.calls.clear()

    def test_success_page_and_state(self):
        self.sidecar.answers["oauth.complete"] = {
            "id": self.mailbox.sidecar_id, "email": "cb@contoso.example", "state": "connected",
        }
        res = self.url_open("/maildesk/oauth/callback?code=abc&state=st1")
        self.assertEqual(res.status_code, 200)
        self.assertIn("Connected", res.text)
        self.assertIn("cb@contoso.example", res.text)
        self.assertEqual(self.sidecar.calls[-1], ("oauth.complete", {"code": "abc", "state": "st1"}))
        self.mailbox.invalidate_recordset()
        self.assertEqual(self.mailbox.state, "connected")
        self.assertFalse(self.mailbox.activity_ids, "the sign-in reminder is gone")

    def test_microsoft_error_is_explained(self):
        self.sidecar.errors["oauth.complete"] = UserError("The sign-in was cancelled.")
        res = self.url_open("/maildesk/oauth/callback?error=access_denied&error_description=cancel&state=st2")
        self.assertEqual(res.status_code, 400)
        self.assertIn("The sign-in was cancelled.", res.text)
        self.assertIn("Connect", res.text)
        self.assertEqual(
            self.sidecar.calls[-1],
            ("oauth.complete", {"state": "st2", "error": "access_denied", "error_description": "cancel"}),
        )

    def test_admin_consent_return(self):
        res = self.url_open("/maildesk/oauth/callback?admin_consent=True&tenant=t1&scope=x&state=s1")
        self.assertEqual(res.status_code, 200)
        self.assertIn("Admin consent granted", res.text)
        res = self.url_open(
            "/maildesk/oauth/callback?error=access_denied&error_description=AADSTS65004%3a+User+declined&admin_consent=True"
        )
        self.assertEqual(res.status_code, 400)
        self.assertIn("AADSTS65004", res.text)
        self.assertFalse(self.sidecar.calls, "admin consent redeems nothing at the sidecar")

    def test_missing_state(self):
        res = self.url_open("/maildesk/oauth/callback?code=abc")
        self.assertEqual(res.status_code, 400)
        self.assertFalse(self.sidecar.calls)


@tagged("post_install", "-at_install")
class TestAttachmentRoute(HttpCase):
    def setUp(self):
        super().setUp()
        self.sidecar = FakeSidecar()
        self.startPatcher(
            patch.object(type(self.env["maildesk.sidecar"]), "_call", autospec=True, side_effect=self.sidecar)
        )
        admin = self.env.ref("base.user_admin")
        self.mailbox = self.env["maildesk.mailbox"].create({"email": "att@contoso.example", "owner_id": admin.id})
        self.sidecar.answers["message.attachment"] = {
            "name": "quote <1>.html", "content_type": "text/html", "data_base64": "PGI+aGk8L2I+",
        }

    def test_download_is_an_attachment_for_allowed_users_only(self):
        url = "/maildesk/attachment/%s/m1/a1" % self.mailbox.id
        res = self.url_open(url, allow_redirects=False)
        self.assertIn(res.status_code, (302, 303), "login first")
        self.authenticate("admin", "admin")
        res = self.url_open(url)
        self.assertEqual(res.status_code, 200)
        self.assertEqual(res.content, b"<b>hi</b>")
        self.assertTrue(res.headers["Content-Disposition"].startswith("attachment"))
        self.assertEqual(res.headers["X-Content-Type-Options"], "nosniff")
        self.assertEqual(self.sidecar.calls[-1][1], {"mailbox_id": self.mailbox.sidecar_id, "message_id": "m1",
                                                     "attachment_id": "a1"})
        # Someone not assigned to the mailbox gets nothing.
        from odoo.tests import new_test_user

        new_test_user(self.env, login="md_eve", password="md_eve_pass", groups="maildesk.group_maildesk_user")
        self.authenticate("md_eve", "md_eve_pass")
        calls = len(self.sidecar.calls)
        res = self.url_open(url)
        self.assertEqual(res.status_code, 404)
        self.assertEqual(len(self.sidecar.calls), calls, "the sidecar is not asked")
