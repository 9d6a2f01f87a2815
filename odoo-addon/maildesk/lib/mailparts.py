"""Mail header and HTML helpers for ingest and the inbox, free of any Odoo import.

Structured ingest items arrive already parsed by the sidecar (Go), so ingest
never runs Python's MIME parser for them; these helpers only normalise what
the item carries: addresses, Message-Id lists, dates, auto-reply markers, and
the remote images of mail from unknown senders.
"""

import datetime
import email.utils
import re

_MSGID_RE = re.compile(r"<[^<>\s]+>")
_EMAIL_RE = re.compile(r"([^\s<>\"',;:()\[\]]+@[^\s<>\"',;:()\[\]]+)")


def normalize_email(value):
    """Return the bare, lower-case address in ``value`` or ``""``.

    Accepts ``"Name <a@b>"``, ``"a@b"`` and dicts ``{"name", "email"}``.
    """
    if isinstance(value, dict):
        value = value.get("email") or ""
    if not value:
        return ""
    _name, addr = email.utils.parseaddr(str(value))
    if "@" not in addr:
        match = _EMAIL_RE.search(str(value))
        addr = match.group(1) if match else ""
    return addr.strip().lower()


def format_address(entry):
    """``{"name": "Ann", "email": "a@b"}`` -> ``'"Ann" <a@b>'`` (or the bare address)."""
    if not isinstance(entry, dict):
        return str(entry or "")
    addr = (entry.get("email") or "").strip()
    name = (entry.get("name") or "").strip()
    if name and addr and name.lower() != addr.lower():
        return email.utils.formataddr((name, addr))
    return addr


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


_REMOTE_SRC_RE = re.compile(
    r"""(?P<attr>\s(?:src|background|srcset))\s*=\s*(?P<q>["']?)(?P<url>(?:https?:)?//[^"'\s>]*)(?P=q)""",
    re.IGNORECASE,
)
_REMOTE_CSS_RE = re.compile(r"""url\(\s*(["']?)(?:https?:)?//[^)]*\)""", re.IGNORECASE)


def block_remote_images(html):
    """Neutralise remote resources (tracking pixels) in ``html``.

    ``src``/``background``/``srcset`` pointing at http(s) are replaced by
    ``data-maildesk-<attr>`` (so nothing loads, not even an empty ``src``) and CSS ``url(http...)`` becomes ``url()``;
    inline (``cid:``, ``data:``) images stay. Returns ``(html, count)``.
    """
    if not html:
        return html or "", 0
    count = 0

    def _attr(match):
        nonlocal count
        count += 1
        attr = match.group("attr").strip().lower()
        return ' data-maildesk-%s="%s"' % (attr, match.group("url").replace('"', "&quot;"))

    html = _REMOTE_SRC_RE.sub(_attr, html)

    def _css(match):
        nonlocal count
        count += 1
        return "url()"

    html = _REMOTE_CSS_RE.sub(_css, html)
    return html, count


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
