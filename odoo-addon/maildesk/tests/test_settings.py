# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo.exceptions import UserError
from odoo.tests import tagged

from odoo.addons.maildesk.compat import SERIES, USER_GROUPS

from .common import MaildeskCase


@tagged("post_install", "-at_install")
class TestSettings(MaildeskCase):
    def setUp(self):
        super().setUp()
        self.env["ir.config_parameter"].sudo().set_param("maildesk.sidecar_url", "http://127.0.0.1:9")

    def test_pair_creates_bridge_user_and_key(self):
        settings = self.env["res.config.settings"].with_user(self.admin_user).create({})
        settings.action_maildesk_pair()
        method, params = self.sidecar.calls[-1]
        self.assertEqual(method, "settings.set")
        odoo = params["odoo"]
        self.assertEqual(odoo["db"], self.env.cr.dbname)
        self.assertEqual(odoo["login"], "maildesk-bridge")
        # 19.0 deprecates /jsonrpc: the sidecar calls JSON-2 with the key as bearer.
        self.assertEqual(odoo["protocol"], "json2" if SERIES >= 19 else "jsonrpc")
        user = self.env["res.users"].search([("login", "=", "maildesk-bridge")])
        self.assertEqual(user[USER_GROUPS], self.env.ref("maildesk.group_maildesk_bridge"))
        self.assertTrue(user.share, "the bridge user is not an internal user")
        # The key authenticates that user for RPC.
        uid = self.env["res.users.apikeys"]._check_credentials(scope="rpc", key=odoo["api_key"])
        self.assertEqual(uid, user.id)
        # Pairing again replaces the key.
        settings.action_maildesk_pair()
        new_key = self.sidecar.calls[-1][1]["odoo"]["api_key"]
        self.assertNotEqual(new_key, odoo["api_key"])
        self.assertFalse(self.env["res.users.apikeys"]._check_credentials(scope="rpc", key=odoo["api_key"]))
        self.assertEqual(self.env["res.users.apikeys"]._check_credentials(scope="rpc", key=new_key), user.id)
        # The bridge user can ingest and nothing else of the mailbox model.
        res = self.mailbox.with_user(user).maildesk_ingest([self.item("pair-1")])
        self.assertEqual(res[0]["status"], "posted")

    def test_azure_app_goes_to_sidecar_only(self):
        self.sidecar.answers["settings.get"] = {"azure": {"tenant": "", "client_id": ""}}
        settings = self.env["res.config.settings"].with_user(self.admin_user).create(
            {
                "maildesk_azure_tenant": "contoso.onmicrosoft.com",
                "maildesk_azure_client_id": "1111-2222",
                "maildesk_azure_client_secret": "s3cret",
            }
        )
        settings.execute()
        sets = [p for m, p in self.sidecar.calls if m == "settings.set"]
        self.assertEqual(len(sets), 1)
        azure = sets[0]["azure"]
        self.assertEqual(azure["client_secret"], "s3cret")
        self.assertEqual(azure["tenant"], "contoso.onmicrosoft.com")
        self.assertTrue(azure["redirect_uri"].endswith("/maildesk/oauth/callback"))
        params = self.env["ir.config_parameter"].sudo().search([]).mapped("value")
        self.assertNotIn("s3cret", params)
        self.env.cr.execute("SELECT count(*) FROM res_config_settings WHERE id = %s", [settings.id])
        columns = self.env["res.config.settings"]._fields
        self.assertFalse(columns["maildesk_azure_client_secret"].store)

    def test_test_connection_and_consent(self):
        self.sidecar.answers["system.version"] = {"version": "1.2.3", "commit": "abc", "simulate": True}
        self.sidecar.answers["system.health"] = {"status": "ok", "mailboxes": {"connected": 2}}
        settings = self.env["res.config.settings"].with_user(self.admin_user).create({})
        action = settings.action_maildesk_test_connection()
        self.assertIn("1.2.3", action["params"]["message"])
        self.assertEqual(action["params"]["type"], "success")
        self.sidecar.answers["consent.admin_url"] = {"url": "https://login.example/adminconsent"}
        action = settings.action_maildesk_admin_consent()
        self.assertEqual(action["url"], "https://login.example/adminconsent")

    def _real_client_calls(self, call):
        """Answer sidecar calls with ``call(model, method, **params)`` for this test."""
        mock = type(self.env["maildesk.sidecar"])._call
        mock.side_effect = call
        self.addCleanup(setattr, mock, "side_effect", self.sidecar)

    def test_one_save_sets_url_secret_and_azure_app(self):
        """A first setup saves URL, secret and the Azure app in ONE save.

        The real client is built for every call (only the transport is
        faked), so the call must find the URL and secret of this very save.
        """
        icp = self.env["ir.config_parameter"].sudo()
        icp.set_param("maildesk.sidecar_url", False)
        icp.set_param("maildesk.shared_secret", False)
        seen = []

        def call(model, method, **params):
            client = model._client()  # raises "Set the MailDesk sidecar URL first" without one
            seen.append((method, client.url, client.secret, params))
            if method == "settings.get":
                return {"azure": {"tenant": "", "client_id": ""}}
            return True

        # The web client creates the record (inverses run then), then calls execute.
        self._real_client_calls(call)
        settings = self.env["res.config.settings"].with_user(self.admin_user).create(
            {
                "maildesk_sidecar_url": " http://sidecar.test:8070 ",
                "maildesk_shared_secret": "shared-1",
                "maildesk_azure_tenant": "contoso.onmicrosoft.com",
                "maildesk_azure_client_id": "1111-2222",
                "maildesk_azure_client_secret": "s3cret",
            }
        )
        settings.execute()
        sets = [(url, secret, p) for m, url, secret, p in seen if m == "settings.set"]
        self.assertEqual(len(sets), 1, seen)
        url, secret, params = sets[0]
        self.assertEqual(url, "http://sidecar.test:8070")
        self.assertEqual(secret, "shared-1")
        self.assertEqual(params["azure"]["client_id"], "1111-2222")
        self.assertEqual(icp.get_param("maildesk.sidecar_url"), "http://sidecar.test:8070")
        self.assertEqual(icp.get_param("maildesk.shared_secret"), "shared-1")
        self.assertNotIn("s3cret", icp.search([]).mapped("value"))

    def test_azure_app_without_any_url_says_what_to_do(self):
        self.env["ir.config_parameter"].sudo().set_param("maildesk.sidecar_url", False)

        def call(model, method, **params):
            model._client()
            return True

        self._real_client_calls(call)
        with self.assertRaisesRegex(UserError, "sidecar URL"):
            self.env["res.config.settings"].with_user(self.admin_user).create(
                {"maildesk_azure_tenant": "contoso.onmicrosoft.com", "maildesk_azure_client_id": "1"}
            )
