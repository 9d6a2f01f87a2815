"""Mail header and HTML helpers for ingest and the inbox, free of any Odoo import.

Structured ingest items arrive already parsed by the sidecar (Go), so ingest
never runs Python's MIME parser for them; these helpers only normalise what
the item carries: addresses, Message-Id lists, dates, auto-reply markers, and
the remote images of mail from unknown senders.
"""

import base64
import binascii
import datetime
import email.errors
import email.header
import email.policy
import email.utils
import re

_MSGID_RE = re.compile(r"<[^<>\s]+>")
_EMAIL_RE = re.compile(r"([^\s<>\"',;:()\[\]]+@[^\s<>\"',;:()\[\]]+)")
# A bare address of dot-separated atoms, which email.utils.parseaddr returns
# unchanged: the common case, answered without the parser (ingest speed).
_PLAIN_EMAIL_RE = re.compile(r"[A-Za-z0-9_%+\-]+(?:\.[A-Za-z0-9_%+\-]+)*@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\Z")


def normalize_email(value):
    """Return the bare, lower-case address in ``value`` or ``""``.

    Accepts ``"Name <a@b>"``, ``"a@b"`` and dicts ``{"name", "email"}``.
    """
    if isinstance(value, dict):
        value = value.get("email") or ""
    if not value:
        return ""
    if isinstance(value, str) and _PLAIN_EMAIL_RE.match(value):
        return value.lower()
    _name, addr = email.utils.parseaddr(str(value))
    if "@" not in addr:
        match = _EMAIL_RE.search(str(value))
        addr = match.group(1) if match else ""
    return addr.strip().lower()


def decode_header_text(value):
    """Text of a header value with RFC 2047 encoded words decoded.

    ``"=?utf-8?q?J=C3=BCrgen?="`` -> ``"Jürgen"``; plain text is returned as
    it is; undecodable words are kept as they came.
    """
    if value is None:
        return ""
    text = str(value)
    if "=?" not in text:
        return text
    try:
        return str(email.header.make_header(email.header.decode_header(text)))
    except (email.errors.HeaderParseError, LookupError, UnicodeError, ValueError):
        return text


_SPECIALS_RE = re.compile(r'[()<>\[\]:;@\\,."]')


def format_address(entry):
    """``{"name": "Ann", "email": "a@b"}`` -> ``Ann <a@b>`` (or the bare address).

    The result is text for Odoo's ``email_from``/``reply_to`` fields: a
    non-ASCII name stays readable (never RFC 2047-encoded; a name that came
    encoded is decoded), a name with specials is quoted.
    """
    if not isinstance(entry, dict):
        return str(entry or "")
    addr = (entry.get("email") or "").strip()
    name = " ".join(decode_header_text(entry.get("name") or "").split())
    if name and addr and name.lower() != addr.lower():
        if _SPECIALS_RE.search(name):
            name = '"%s"' % name.replace("\\", "\\\\").replace('"', '\\"')
        return "%s <%s>" % (name, addr)
    return addr


def format_address_header(value):
    """An address header as Graph or MIME carries it (``=?utf-8?...?= <a@b>, c@d``)
    -> readable text ``Jürgen <a@b>, c@d``."""
    if not value:
        return ""
    text = re.sub(r"[\r\n\t]+", " ", str(value))
    pairs = email.utils.getaddresses([text])
    out = [format_address({"name": name, "email": addr}) for name, addr in pairs if addr and "@" in addr]
    return ", ".join(filter(None, out)) or decode_header_text(text).strip()


def format_addresses(entries):
    return ", ".join(filter(None, (format_address(e) for e in entries or [])))


def message_ids(header_value):
    """All ``<id>`` tokens of a Message-Id / In-Reply-To / References value, in order."""
    if not header_value:
        return []
    unfolded = re.sub(r"[\r\n\t]+", " ", str(header_value))
    return _MSGID_RE.findall(unfolded)


def thread_references(headers):
    """Message-Ids this mail replies to, newest last (References then In-Reply-To), at most 32."""
    refs = message_ids(headers.get("references")) + message_ids(headers.get("in-reply-to"))
    seen, out = set(), []
    for ref in refs:
        if ref not in seen:
            seen.add(ref)
            out.append(ref)
    return out[-32:]


def lower_headers(headers):
    """Header dict with lower-case names; list values joined by a space."""
    out = {}
    for key, value in (headers or {}).items():
        if isinstance(value, (list, tuple)):
            value = " ".join(str(v) for v in value)
        out[str(key).lower()] = "" if value is None else str(value)
    return out


def is_auto_submitted(headers):
    """True for auto-replies, out-of-office, delivery reports and bulk mail (RFC 3834)."""
    h = lower_headers(headers)
    auto = h.get("auto-submitted", "").strip().lower()
    if auto and auto != "no":
        return True
    if h.get("x-autoreply") or h.get("x-autorespond") or h.get("x-auto-response-suppress", "").lower() in ("all", "oof"):
        return True
    if h.get("precedence", "").strip().lower() in ("auto_reply", "bulk", "junk"):
        return True
    return False


def parse_datetime(value):
    """RFC 3339 (``2026-11-02T09:14:03Z``) or RFC 2822 -> naive UTC datetime, or None."""
    if not value:
        return None
    text = str(value).strip()
    try:
        if text.endswith("Z") or text.endswith("z"):
            text = text[:-1] + "+00:00"
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(str(value))
        except (TypeError, ValueError, IndexError):
            return None
    if parsed is None:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return parsed.replace(microsecond=0)


# An attribute that loads a resource, with its value (quoted or not).
_REMOTE_SRC_RE = re.compile(
    r"""(?P<attr>\s(?:src|background|srcset|poster))\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<uq>[^"'\s>]+))""",
    re.IGNORECASE,
)
# Remote: the value starts with http(s):// or //; for srcset, any of its
# comma-separated candidates does ("a.png 1x, https://t.example/b.png 2x").
_REMOTE_URL_RE = re.compile(r"""^\s*(?:https?:)?//""", re.IGNORECASE)
_REMOTE_SRCSET_RE = re.compile(r"""(?:^|,)\s*(?:https?:)?//""", re.IGNORECASE)
_REMOTE_CSS_RE = re.compile(r"""url\(\s*(["']?)(?:https?:)?//[^)]*\)""", re.IGNORECASE)


# The sidecar's sanitiser moves a remote image's src to data-remote-src
# (bridge.SanitizeMailHTML): nothing loads unless the addon puts it back.
_SIDECAR_REMOTE_RE = re.compile(r"""(<img\b[^>]*?\s)data-remote-src\s*=\s*("https?://[^"]*"|'https?://[^']*')""", re.IGNORECASE)


def sidecar_remote_images(html):
    """``html`` with the sidecar's ``data-remote-src`` back as ``src``, so
    that the tracker filter and ``block_remote_images`` see the mail's remote
    images and the user's "show images" (or a trusted sender) shows them."""
    return _SIDECAR_REMOTE_RE.sub(r"\1src=\2", html or "")


def block_remote_images(html):
    """Neutralise remote resources (tracking pixels) in ``html``.

    ``src``/``background``/``srcset``/``poster`` pointing at http(s) (for
    ``srcset``: any of its candidates) are replaced by
    ``data-maildesk-<attr>`` (so nothing loads, not even an empty ``src``) and CSS ``url(http...)`` becomes ``url()``;
    inline (``cid:``, ``data:``) images stay. Returns ``(html, count)``.
    """
    if not html:
        return html or "", 0
    count = 0

    def _attr(match):
        nonlocal count
        attr = match.group("attr").strip().lower()
        value = next(v for v in (match.group("dq"), match.group("sq"), match.group("uq"), "") if v is not None)
        remote = _REMOTE_SRCSET_RE if attr == "srcset" else _REMOTE_URL_RE
        if not remote.search(value):
            return match.group(0)
        count += 1
        return ' data-maildesk-%s="%s"' % (attr, value.replace('"', "&quot;"))

    html = _REMOTE_SRC_RE.sub(_attr, html)

    def _css(match):
        nonlocal count
        count += 1
        return "url()"

    html = _REMOTE_CSS_RE.sub(_css, html)
    return html, count


_IMG_TAG_RE = re.compile(r"<img\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>", re.IGNORECASE)
_TAG_ATTR_RE = re.compile(
    r"""([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""",
)
_REMOTE_URL_RE = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)
# Open-tracking endpoints of common mailing and sales-engagement services,
# matched on the image URL (lower-cased). Ordinary remote images (logos,
# photos) do not match these.
_TRACKER_URL_RES = [
    re.compile(p)
    for p in (
        r"/track/open",  # Mailchimp (list-manage.com), Mandrill
        r"/wf/open\?",  # SendGrid
        r"\bsendgrid\.net/(?:wf/)?o(?:pen)?\b",
        r"/e1t/o/",  # HubSpot
        r"\bt\.(?:hubspotemail|hubspotlinks|sidekickopen|signaux|senal)\w*\.",
        r"\bmailtrack\.io/",
        r"\byesware\.com/t",
        r"\bbananatag\.com/",
        r"\bmixmax\.com/api/track",
        r"\bstreak\.com/\w*track",
        r"\bmailsuite\.com/",
        r"\bgetnotify\.com/",
        r"\bpixel\.watch/",
        r"\bopen\.aspx\?",  # Salesforce Marketing Cloud (exct.net)
        r"\brs6\.net/on\.jsp",  # Constant Contact
        r"\bsparkpostmail\.com/q/",
        r"\bmandrillapp\.com/track",
        r"\bmailgun\.\w+/o/|\bemail\.mg\.[^/]+/o/",
        r"\blinkedin\.com/emimp/",
        r"\bgoogle-analytics\.com/(?:r/)?collect",
        r"\bfacebook\.com/tr\b",
        r"\bemltrk\.com/",
        r"\bclick\.\w+\.\w+/open\b",
        r"/(?:open|tracking|track|beacon|pixel|trackingpixel|open-pixel)\.(?:gif|png)\b",
        r"/(?:open|beacon|pixel|tracking)\?[^/]*\b(?:id|uid|u|e|m)=",
    )
]
_CSS_DECL_RE = re.compile(r"([-a-zA-Z]+)\s*:\s*([^;]+)")


def _css_length(value):
    """``"1px"``, ``"0"``, ``"1"`` -> float; other units and auto -> None."""
    match = re.match(r"^\s*(-?\d+(?:\.\d+)?)\s*(px)?\s*(?:!important)?\s*$", value or "", re.IGNORECASE)
    return float(match.group(1)) if match else None


def _img_attrs(tag):
    attrs = {}
    body = tag[4:-1].rstrip("/")  # drop "<img" and ">"
    for match in _TAG_ATTR_RE.finditer(body):
        name = match.group(1).lower()
        value = next((g for g in match.groups()[1:] if g is not None), "")
        attrs.setdefault(name, value)
    return attrs


def is_tracking_image(attrs):
    """Whether an ``<img>`` (its attributes, lower-case names) is a remote
    tracking image: a remote source that is 1x1 or 0x0 (attributes or inline
    style), hidden, or served by a known open-tracking endpoint."""
    src = (attrs.get("src") or "").strip()
    if not _REMOTE_URL_RE.match(src):
        return False
    width, height = _css_length(attrs.get("width")), _css_length(attrs.get("height"))
    hidden = False
    for name, value in _CSS_DECL_RE.findall(attrs.get("style") or ""):
        name, value = name.lower(), value.strip().lower()
        if name in ("width", "max-width") and _css_length(value) is not None:
            width = _css_length(value) if width is None else min(width, _css_length(value))
        elif name in ("height", "max-height") and _css_length(value) is not None:
            height = _css_length(value) if height is None else min(height, _css_length(value))
        elif (name, value.replace("!important", "").strip()) in (("display", "none"), ("visibility", "hidden")):
            hidden = True
        elif name == "opacity" and _css_length(value) == 0:
            hidden = True
    if hidden:
        return True
    if width is not None and height is not None and width <= 1 and height <= 1:
        return True
    if width == 0 or height == 0:
        return True
    url = src.lower()
    return any(pattern.search(url) for pattern in _TRACKER_URL_RES)


def strip_tracking_images(html):
    """Remove remote tracking images (open-tracking pixels) from ``html``.

    Inline (``cid:``/``data:``) images and ordinary remote images stay.
    Returns ``(html, count)``.
    """
    if not html:
        return html or "", 0
    count = 0

    def _img(match):
        nonlocal count
        if is_tracking_image(_img_attrs(match.group(0))):
            count += 1
            return ""
        return match.group(0)

    return _IMG_TAG_RE.sub(_img, str(html)), count


def eml_filename(subject):
    """File name for an attached e-mail: its subject + ``.eml`` (as Outlook names them)."""
    name = re.sub(r'[\x00-\x1f\x7f/\\:*?"<>|]+', " ", decode_header_text(subject or ""))
    name = " ".join(name.split()).strip(" .")[:120].rstrip(" .")
    return (name or "Forwarded message") + ".eml"


def add_bcc_header(raw, bcc):
    """Put a ``Bcc:`` header back into raw RFC 822 bytes.

    Odoo removes Bcc before handing a message to the transport and keeps the
    addresses in the SMTP envelope; Graph's MIME send reads recipients from
    the headers only, so the addresses have to travel in the MIME.
    """
    if not bcc:
        return raw
    line = ("Bcc: " + ", ".join(bcc) + "\r\n").encode("ascii", "replace")
    return line + raw


def envelope_bcc(envelope, to_header, cc_header):
    """Envelope recipients that are in neither To nor Cc."""
    visible = {normalize_email(a) for _n, a in email.utils.getaddresses([to_header or "", cc_header or ""])}
    out = []
    for addr in envelope or []:
        norm = normalize_email(addr)
        if norm and norm not in visible and norm not in out:
            out.append(norm)
    return out


# ----------------------------------------------------------------------
# Ingest items: the shape maildesk_ingest accepts (docs/api.md)
# ----------------------------------------------------------------------

_B64_RE = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


def _type_name(value):
    return "null" if value is None else {bool: "boolean", int: "number", float: "number", str: "string",
                                         list: "list", dict: "object"}.get(type(value), type(value).__name__)


def strict_b64decode(value):
    """The bytes of base64 text without whitespace, or None when ``value``
    is not exactly that (callers then strip whitespace and check it the slow
    way). Decodes in C: a 30 KB attachment costs no regular expression."""
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, TypeError, ValueError):
        # TypeError: strict_mode is new in Python 3.11 (Odoo 17 runs on 3.10).
        return None


def b64decode(value):
    """base64 text (whitespace allowed) -> bytes; binascii.Error when invalid."""
    raw = strict_b64decode(value)
    if raw is None:
        raw = base64.b64decode(re.sub(r"\s+", "", value), validate=True)
    return raw


def _base64_problem(value):
    """None when ``value`` is valid base64 text (whitespace allowed), else why not."""
    if strict_b64decode(value) is not None:
        return None
    compact = re.sub(r"\s+", "", value)
    if len(compact) % 4 or not _B64_RE.match(compact):
        return "is not valid base64"
    return None


def _address_problem(value, where):
    if not isinstance(value, dict):
        return "%s must be an object {name, email}, not %s" % (where, _type_name(value))
    for key in ("name", "email"):
        if value.get(key) is not None and not isinstance(value[key], str):
            return "%s.%s must be a string, not %s" % (where, key, _type_name(value[key]))
    return None


def item_problem(item):
    """What is wrong with the shape of one ingest item, or None.

    Checks types and required fields only (not whether targets or models
    exist): ``graph_id`` and ``direction`` are required, then either
    ``mime_base64`` or the structured fields.
    """
    if not isinstance(item, dict):
        return "item must be an object, not %s" % _type_name(item)
    graph_id = item.get("graph_id")
    if graph_id is None or graph_id == "":
        return "graph_id is required"
    if not isinstance(graph_id, str):
        return "graph_id must be a string, not %s" % _type_name(graph_id)
    if item.get("direction") is None:
        return "direction is required"
    if item["direction"] not in ("in", "out"):
        return "direction must be in or out, not %r" % (item["direction"],)
    for key in ("mailbox", "folder", "internet_message_id", "received_at", "mime_base64", "subject",
                "body_html", "conversation_id"):
        if item.get(key) is not None and not isinstance(item[key], str):
            return "%s must be a string, not %s" % (key, _type_name(item[key]))
    if item.get("received_at") and parse_datetime(item["received_at"]) is None:
        return "received_at is not a date: %r" % item["received_at"][:64]
    if item.get("options") is not None and not isinstance(item["options"], dict):
        return "options must be an object, not %s" % _type_name(item["options"])
    target = item.get("target")
    if target is not None:
        if not isinstance(target, dict):
            return "target must be an object {model, res_id}, not %s" % _type_name(target)
        if not isinstance(target.get("model"), str) or not target["model"]:
            return "target.model must be a model name"
        res_id = target.get("res_id")
        if isinstance(res_id, bool) or not isinstance(res_id, int) or res_id <= 0:
            return "target.res_id must be a record id, not %r" % (res_id,)
    if item.get("mime_base64"):
        problem = _base64_problem(item["mime_base64"])
        return "mime_base64 %s" % problem if problem else None
    if not any(item.get(key) for key in ("subject", "from", "to", "body_html", "headers", "attachments")):
        return "item has neither mime_base64 nor message fields (subject, from, to, body_html, ...)"
    if item.get("from") is not None:
        problem = _address_problem(item["from"], "from")
        if problem:
            return problem
    for key in ("to", "cc"):
        value = item.get(key)
        if value is None:
            continue
        if not isinstance(value, list):
            return "%s must be a list of addresses, not %s" % (key, _type_name(value))
        for i, entry in enumerate(value):
            problem = _address_problem(entry, "%s[%d]" % (key, i))
            if problem:
                return problem
    headers = item.get("headers")
    if headers is not None:
        if not isinstance(headers, dict):
            return "headers must be an object, not %s" % _type_name(headers)
        for name, value in headers.items():
            values = value if isinstance(value, list) else [value]
            if not all(isinstance(v, str) for v in values):
                return "header %s must be a string" % name
    attachments = item.get("attachments")
    if attachments is not None:
        if not isinstance(attachments, list):
            return "attachments must be a list, not %s" % _type_name(attachments)
        for i, att in enumerate(attachments):
            where = "attachments[%d]" % i
            if not isinstance(att, dict):
                return "%s must be an object, not %s" % (where, _type_name(att))
            if not isinstance(att.get("data_base64"), str):
                return "%s.data_base64 is required (a string)" % where
            problem = _base64_problem(att["data_base64"])
            if problem:
                return "%s.data_base64 %s" % (where, problem)
            for key in ("name", "content_type", "content_id"):
                if att.get(key) is not None and not isinstance(att[key], str):
                    return "%s.%s must be a string, not %s" % (where, key, _type_name(att[key]))
            if att.get("is_inline") is not None and not isinstance(att["is_inline"], bool):
                return "%s.is_inline must be true or false" % where
    return None


class HeadersParsedOncePolicy(email.policy.EmailPolicy):
    """``email.policy.SMTP`` whose messages parse each header once.

    With SMTP's policy, every read of a header (``msg["To"]``, ``msg.get``,
    ``items()``, ``get_content_type()`` for each part) builds a new header
    object from its raw text; Odoo's gateway reads the same headers of a mail
    many times (``message_parse``, ``message_route``, the payload walk). A
    header object is a pure function of the header's name and raw text, so
    here the one built first is handed out again for the same name and text:
    what a reader gets is equal, only built once. One instance per message
    (``gateway_policy``); a clone starts afresh."""

    def __init__(self, **kw):
        super().__init__(**kw)
        object.__setattr__(self, "_parsed_headers", {})

    def clone(self, **kw):
        policy = super().clone(**kw)
        object.__setattr__(policy, "_parsed_headers", {})
        return policy

    def header_fetch_parse(self, name, value):
        if hasattr(value, "name") or not isinstance(value, str):
            return super().header_fetch_parse(name, value)
        key = (name, value)
        header = self._parsed_headers.get(key)
        if header is None:
            header = self._parsed_headers[key] = super().header_fetch_parse(name, value)
        return header


def gateway_policy():
    """A policy like ``email.policy.SMTP`` for parsing one mail for Odoo's
    gateway (see HeadersParsedOncePolicy)."""
    return HeadersParsedOncePolicy(linesep="\r\n", header_factory=email.policy.SMTP.header_factory)
