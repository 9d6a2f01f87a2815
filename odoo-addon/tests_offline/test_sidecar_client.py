"""The sidecar JSON-RPC client against a real HTTP server on 127.0.0.1."""

import json
import socket
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from _paths import ADDON  # noqa: F401 - puts lib/ on sys.path
from lib.sidecar_client import ERROR_KINDS, SidecarClient, SidecarError, error_from_payload

SECRET = "s3cret-shared"


def odoo_error(name, message, code):
    return {
        "code": 200,
        "message": "MailDesk Error",
        "data": {"name": name, "message": message, "arguments": [message], "code": code, "debug": ""},
    }


class Handler(BaseHTTPRequestHandler):
    """Answers by method name, like the sidecar would."""

    def log_message(self, *args):
        pass

    def _send(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout test)

    def do_POST(self):
        server = self.server
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        server.requests.append({"path": self.path, "headers": dict(self.headers), "body": raw})
        if self.path != "/jsonrpc":
            return self._send(404, b"not here", "text/plain")
        if self.headers.get("Authorization") != "Bearer " + SECRET:
            return self._send(401, {"jsonrpc": "2.0", "id": None, "error": odoo_error(
                "odoo.exceptions.AccessDenied", "Access Denied", "unauthenticated")})
        body = json.loads(raw)
        method, rid, params = body["method"], body["id"], body["params"]
        if method == "system.version":
            return self._send(200, {"jsonrpc": "2.0", "id": rid, "result": {"version": "0.1.0", "echo": params}})
        if method == "mailbox.sync_now":
            return self._send(200, {"jsonrpc": "2.0", "id": rid})  # result left out
        if method.startswith("error."):
            name = method.split(".", 1)[1]
            full = {v: k for k, v in ERROR_KINDS.items()}[name]
            return self._send(200, {"jsonrpc": "2.0", "id": rid, "error": odoo_error(full, "it failed: " + name, "code_" + name)})
        if method == "reauth":
            return self._send(200, {"jsonrpc": "2.0", "id": rid, "error": odoo_error(
                "odoo.exceptions.UserError", "Mailbox info@example.com needs its owner to sign in again.",
                "reauth_required")})
        if method == "unknown.exception":
            return self._send(200, {"jsonrpc": "2.0", "id": rid, "error": odoo_error("builtins.KeyError", "x", "")})
        if method == "no.data":
            return self._send(200, {"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "Method not found"}})
        if method == "too.large":
            return self._send(413, b"too large", "text/plain")
        if method == "html.page":
            return self._send(502, b"<html>bad gateway</html>", "text/html")
        if method == "wrong.id":
            return self._send(200, {"jsonrpc": "2.0", "id": rid + 1000, "result": 1})
        if method == "slow":
            server.release.wait(120)  # held until the timeout test ends (it sets release)
            return self._send(200, {"jsonrpc": "2.0", "id": rid, "result": True})
        return self._send(200, {"jsonrpc": "2.0", "id": rid, "error": {
            "code": 404, "message": "MailDesk Error",
            "data": {"name": "werkzeug.exceptions.NotFound", "message": "no method " + method,
                     "code": "method_not_found"}}})


class TestSidecarClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        cls.server.daemon_threads = True
        cls.server.requests = []
        cls.server.release = threading.Event()
        cls.thread = threading.Thread(target=cls.server.serve_forever, daemon=True)
        cls.thread.start()
        cls.url = "http://127.0.0.1:%d" % cls.server.server_address[1]

    @classmethod
    def tearDownClass(cls):
        cls.server.release.set()
        cls.server.shutdown()
        cls.server.server_close()

    # Calls that must answer get a bound only a stuck test reaches; the
    # timeout test passes its own 0.2 s against a server that holds the call.
    def client(self, secret=SECRET, timeout=60.0):
        return SidecarClient(self.url + "/", secret, timeout=timeout)

    def test_success_sends_jsonrpc_with_context_and_bearer(self):
        ctx = {"uid": 2, "lang": "en_US", "tz": "Europe/Berlin"}
        result = self.client().call("system.version", {"a": 1}, context=ctx)
        self.assertEqual(result["version"], "0.1.0")
        self.assertEqual(result["echo"], {"a": 1, "context": ctx})
        req = self.server.requests[-1]
        self.assertEqual(req["path"], "/jsonrpc")
        self.assertEqual(req["headers"]["Content-Type"], "application/json")
        body = json.loads(req["body"])
        self.assertEqual(body["jsonrpc"], "2.0")
        self.assertIsInstance(body["id"], int)

    def test_missing_result_is_none(self):
        self.assertIsNone(self.client().call("mailbox.sync_now", {"mailbox_id": "mbx_1"}))

    def test_each_odoo_error_name_maps_to_its_kind(self):
        for kind in set(ERROR_KINDS.values()) - {"NotFound"}:
            with self.subTest(kind=kind):
                with self.assertRaises(SidecarError) as ctx:
                    self.client().call("error." + kind)
                self.assertEqual(ctx.exception.kind, kind)
                self.assertEqual(ctx.exception.code, "code_" + kind)
                self.assertEqual(ctx.exception.message, "it failed: " + kind)

    def test_reauth_required_is_a_user_error_with_code(self):
        with self.assertRaises(SidecarError) as ctx:
            self.client().call("reauth")
        self.assertEqual(ctx.exception.kind, "UserError")
        self.assertEqual(ctx.exception.code, "reauth_required")
        self.assertIn("sign in again", str(ctx.exception))

    def test_unknown_method_is_not_found(self):
        with self.assertRaises(SidecarError) as ctx:
            self.client().call("no.such.method")
        self.assertEqual(ctx.exception.kind, "NotFound")
        self.assertEqual(ctx.exception.code, "method_not_found")

    def test_wrong_secret_is_access_denied(self):
        with self.assertRaises(SidecarError) as ctx:
            self.client(secret="wrong").call("system.version")
        self.assertEqual(ctx.exception.kind, "AccessDenied")
        self.assertEqual(ctx.exception.http_status, 401)

    def test_unknown_exception_name_is_internal(self):
        with self.assertRaises(SidecarError) as ctx:
            self.client().call("unknown.exception")
        self.assertEqual(ctx.exception.kind, "InternalError")

    def test_plain_jsonrpc_error_without_data(self):
        with self.assertRaises(SidecarError) as ctx:
            self.client().call("no.data")
        self.assertEqual(ctx.exception.kind, "NotFound")

    def test_413_is_a_user_error(self):
        with self.assertRaises(SidecarError) as ctx:
            self.client().call("too.large")
        self.assertEqual((ctx.exception.kind, ctx.exception.code), ("UserError", "too_large"))

    def test_non_json_answer_is_a_protocol_error(self):
        with self.assertRaises(SidecarError) as ctx:
            self.client().call("html.page")
        self.assertEqual(ctx.exception.kind, "Protocol")
        self.assertEqual(ctx.exception.http_status, 502)

    def test_answer_to_another_request_is_refused(self):
        with self.assertRaises(SidecarError) as ctx:
            self.client().call("wrong.id")
        self.assertEqual(ctx.exception.kind, "Protocol")

    def test_unreachable(self):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()  # nothing listens there now
        with self.assertRaises(SidecarError) as ctx:
            SidecarClient("http://127.0.0.1:%d" % port, SECRET, timeout=2).call("system.version")
        self.assertEqual(ctx.exception.kind, "Unreachable")
        self.assertIn("cannot be reached", ctx.exception.message)

    def test_timeout_is_unreachable(self):
        try:
            with self.assertRaises(SidecarError) as ctx:
                self.client(timeout=0.2).call("slow")
            self.assertEqual(ctx.exception.kind, "Unreachable")
        finally:
            self.server.release.set()

    def test_no_url(self):
        with self.assertRaises(SidecarError) as ctx:
            SidecarClient("", SECRET)
        self.assertEqual(ctx.exception.code, "not_configured")

    def test_error_from_payload_is_defensive(self):
        self.assertEqual(error_from_payload("nonsense").kind, "Protocol")
        self.assertEqual(error_from_payload({"code": -32602, "message": "bad"}).kind, "ValidationError")

    def test_secret_never_in_error_text(self):
        with self.assertRaises(SidecarError) as ctx:
            self.client(secret="wrong-secret-value").call("system.version")
        self.assertNotIn("wrong-secret-value", repr(ctx.exception) + str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
