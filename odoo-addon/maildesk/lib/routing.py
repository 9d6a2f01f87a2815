"""Routing and privacy helpers, free of any Odoo import.

What is never logged (private mail, internal mail, excluded addresses and
domains) and the lists admins type are decided here; ingest and the preview
both call these, so what the preview shows is what lands.
"""

import ast
import re

from . import mailparts

# Graph's message sensitivity values that keep a mail out of Odoo, and the
# MIME header's (RFC 2156: Personal, Private, Company-Confidential).
PRIVATE_SENSITIVITIES = {"private", "confidential", "company-confidential"}

# Public webmail domains are nobody's company domain: never defaults of the
# internal domains, never a company to route to.
PUBLIC_MAIL_DOMAINS = frozenset(
    """
    gmail.com googlemail.com outlook.com hotmail.com hotmail.co.uk hotmail.fr live.com live.fr msn.com
    yahoo.com yahoo.fr yahoo.de yahoo.co.uk ymail.com icloud.com me.com mac.com aol.com gmx.de gmx.net
    gmx.com web.de t-online.de freenet.de orange.fr free.fr laposte.net wanadoo.fr libero.it proton.me
    protonmail.com pm.me mail.com zoho.com yandex.com yandex.ru mail.ru qq.com 163.com 126.com
    """.split()
)

_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$")
_SPLIT_RE = re.compile(r"[\s,;]+")

# Outcomes of a routing decision (ingest statuses and preview lines).
RECORD = "record"  # an existing record
NEW = "new"  # a record that would be / was created
UNROUTED = "unrouted"
EXCLUDED = "excluded"


def split_list(text):
    return [part for part in _SPLIT_RE.split(str(text or "").strip()) if part]


def parse_addresses(text):
    """``"a@b.c, x"`` -> (["a@b.c"], ["x"]): normalised addresses and the bad entries."""
    good, bad = [], []
    for entry in split_list(text):
        address = mailparts.normalize_email(entry)
        if address and "@" in address and is_domain(address.rsplit("@", 1)[1]) and address.count("@") == 1:
            good.append(address)
        else:
            bad.append(entry)
    return list(dict.fromkeys(good)), bad


def is_domain(value):
    return bool(_DOMAIN_RE.match(value or ""))


def parse_domains(text):
    """``"Bank.example, @x.org, http://y"`` -> (["bank.example", "x.org"], ["http://y"])."""
    good, bad = [], []
    for entry in split_list(text):
        domain = entry.strip().lower().lstrip("@").rstrip(".")
        if is_domain(domain):
            good.append(domain)
        else:
            bad.append(entry)
    return list(dict.fromkeys(good)), bad


def address_domain(address):
    address = (address or "").strip().lower()
    return address.rsplit("@", 1)[1] if "@" in address else ""


# Placeholder domains (RFC 2606) Odoo's own data uses (admin@example.com):
# never a company's domain by default.
RESERVED_DOMAINS = frozenset({"example.com", "example.net", "example.org", "localhost", "localdomain"})


def in_domains(address, domains, subdomains=True):
    """True when the address is in one of the domains (or their subdomains)."""
    domain = address_domain(address)
    if not subdomains:
        return domain in domains
    while domain:
        if domain in domains:
            return True
        domain = domain.partition(".")[2] if "." in domain else ""
    return False


def company_domains(addresses):
    """The company domains among addresses (public webmail left out), sorted."""
    domains = set()
    for address in addresses or []:
        domain = address_domain(mailparts.normalize_email(address))
        if domain and is_domain(domain) and domain not in PUBLIC_MAIL_DOMAINS and domain not in RESERVED_DOMAINS:
            domains.add(domain)
    return sorted(domains)


def is_private(sensitivity, headers=None):
    """Outlook marked the mail private or confidential (Graph's sensitivity, or
    the MIME Sensitivity header of raw items)."""
    values = [sensitivity or ""]
    if headers:
        values.append(headers.get("sensitivity") or "")
    return any(str(v).strip().lower() in PRIVATE_SENSITIVITIES for v in values)


def exclusion_reason(participants, correspondents, sensitivity, headers, addresses, domains, conversation_excluded):
    """Why a mail is never logged, or ``""``; the first reason that holds.

    ``participants``: every address of the mail (from, to, cc);
    ``correspondents``: those other than the mailbox itself.
    """
    if is_private(sensitivity, headers):
        return "private (Outlook sensitivity)"
    if conversation_excluded:
        return "excluded conversation"
    for address in correspondents:
        if address in addresses:
            return "excluded address %s" % address
    for address in correspondents:
        if in_domains(address, domains):
            return "excluded domain %s" % address_domain(address)
    return ""


def is_internal(participants, internal_domains, subdomains=True):
    """Every participant in the company's own domains (and there is one).

    ``subdomains``: the admin listed the domains (eu.contoso.com is in
    contoso.com); domains taken from addresses by default match exactly.
    """
    participants = [a for a in participants if a]
    return bool(participants and internal_domains) and all(
        in_domains(a, internal_domains, subdomains) for a in participants
    )


def domain_fields(domain_text):
    """First field names a literal domain uses (``stage_id.fold`` -> ``stage_id``)."""
    try:
        domain = ast.literal_eval(domain_text or "[]")
    except (ValueError, SyntaxError):
        return []
    names = []
    for leaf in domain if isinstance(domain, (list, tuple)) else []:
        if isinstance(leaf, (list, tuple)) and leaf and isinstance(leaf[0], str):
            names.append(leaf[0].split(".", 1)[0])
    return names


def totals(lines):
    """Counts per outcome and per target model: {"record:crm.lead": 3, "excluded": 2, ...}."""
    out = {}
    for line in lines:
        outcome = line.get("outcome")
        key = "%s:%s" % (outcome, line["model"]) if outcome in (RECORD, NEW) and line.get("model") else outcome
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))
