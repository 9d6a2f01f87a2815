"""JSON-RPC client for the MailDesk sidecar, free of any Odoo import.

The sidecar speaks JSON-RPC 2.0 on ``POST <url>/jsonrpc`` with a bearer shared
secret, and shapes its errors like Odoo's (``error.data.name`` names the Odoo
exception). This module turns those answers into :class:`SidecarError` with a
``kind`` the addon maps onto the matching Odoo exception. It is kept free of
Odoo so the project's CI can test it with the standard library alone.
"""

import itertools
import json
import socket
import urllib.error
import urllib.request

# Exception names the sidecar may put in error.data.name, and the kind the
# addon re-raises. Kinds are plain strings so this module stays Odoo-free.
ERROR_KINDS = {
    "odoo.exceptions.AccessDenied": "AccessDenied",
    "odoo.exceptions.AccessError": "AccessError",
    "odoo.exceptions.ValidationError": "ValidationError",
    "odoo.exceptions.MissingError": "MissingError",
    "odoo.exceptions.UserError": "UserError",
    "werkzeug.exceptions.NotFound": "NotFound",
    "maildesk.InternalError": "InternalError",
}

# Transport failures get a kind of their own: the admin must fix the URL or
# start the sidecar, which is a UserError in Odoo's terms.
KIND_UNREACHABLE = "Unreachable"
KIND_PROTOCOL = "Protocol"

DEFAULT_TIMEOUT = 15.0


class SidecarError(Exception):
    """An error answered by the sidecar, or the failure to reach it.

    ``kind`` is one of the values of :data:`ERROR_KINDS`, ``Unreachable`` or
    ``Protocol``; ``code`` is the sidecar's machine-readable code
    (``reauth_required``, ``not_found``, ...) when it gave one.
    """

    def __init__(self, kind, message, code="", name="", http_status=None, debug=""):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.code = code or ""
        self.name = name or ""
        self.http_status = http_status
        self.debug = debug or ""

    def __repr__(self):
        return "SidecarError(kind=%r, code=%r, message=%r)" % (self.kind, self.code, self.message)


def error_from_payload(error, http_status=None):
    """Build a :class:`SidecarError` from a JSON-RPC ``error`` object.

    Unknown exception names become ``InternalError`` so that nothing a newer
    sidecar invents is silently dropped.
    """
    if not isinstance(error, dict):
        return SidecarError(KIND_PROTOCOL, "The MailDesk sidecar sent a malformed error.",
                            http_status=http_status)
    data = error.get("data") if isinstance(error.get("data"), dict) else {}
    name = data.get("name") or ""
    message = data.get("message") or error.get("message") or "MailDesk sidecar error"
    kind = ERROR_KINDS.get(name)
    if kind is None:
        # JSON-RPC's own codes, when the sidecar answers without Odoo data.
        code = error.get("code")
        if code in (-32601, 404):
            kind = "NotFound"
        elif code in (-32602,):
            kind = "ValidationError"
        else:
            kind = "InternalError"
    return SidecarError(kind, str(message), code=data.get("code") or "", name=name,
                        http_status=http_status, debug=data.get("debug") or "")


class SidecarClient:
    """Calls the sidecar's JSON-RPC methods.

    ``opener`` is injectable for tests; by default a fresh ``urllib`` opener
    without proxies (the sidecar lives beside Odoo, never behind the
    environment's proxy).
    """

    def __init__(self, url, secret, timeout=DEFAULT_TIMEOUT, opener=None):
        if not url:
            raise SidecarError(KIND_UNREACHABLE, "The MailDesk sidecar URL is not set.",
                               code="not_configured")
        self.url = url.rstrip("/")
        self.secret = secret or ""
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._opener = opener or urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method, params=None, context=None):
        """Call ``method`` with named ``params``; return its ``result``.

        ``context`` (the acting Odoo user: uid, lang, tz) travels inside
        params as the contract asks. Raises :class:`SidecarError`.
        """
        params = dict(params or {})
        if context is not None:
            params["context"] = context
        request_id = next(self._ids)
        body = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                           "params": params}).encode("utf-8")
        req = urllib.request.Request(self.url + "/jsonrpc", data=body, method="POST")
        req.add_header("Content-Type", "application/json")
        req.add_header("Accept", "application/json")
        if self.secret:
            req.add_header("Authorization", "Bearer " + self.secret)
        status = None
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                status = resp.status
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            raw = exc.read() or b""
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SidecarError(
                KIND_UNREACHABLE,
                "The MailDesk sidecar at %s cannot be reached (%s). Check the URL in "
                "Settings > MailDesk and that the sidecar is running." % (self.url, reason),
                code="unreachable") from None
        return self._decode(method, status, raw, request_id)

    def _decode(self, method, status, raw, request_id):
        try:
            payload = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, ValueError):
            payload = None
        if isinstance(payload, dict) and payload.get("error") is not None:
            raise error_from_payload(payload["error"], http_status=status)
        if status == 401:
            raise SidecarError("AccessDenied", "The MailDesk sidecar refused the shared secret.",
                               code="unauthenticated", http_status=status)
        if status == 413:
            raise SidecarError("UserError", "The request is too large for the MailDesk sidecar.",
                               code="too_large", http_status=status)
        if status is not None and status >= 400 or not isinstance(payload, dict):
            raise SidecarError(KIND_PROTOCOL,
                               "The MailDesk sidecar answered %s to %s with a body that is not "
                               "JSON-RPC." % (status, method), code="protocol", http_status=status)
        if payload.get("id") not in (None, request_id):
            raise SidecarError(KIND_PROTOCOL, "The MailDesk sidecar answered another request.",
                               code="protocol", http_status=status)
        # Like Odoo, a method that returns nothing may leave result out.
        return payload.get("result")
