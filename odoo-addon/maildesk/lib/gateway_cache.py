# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""What Odoo's mail gateway looks up again for every mail of one gateway
ingest batch, answered once per batch.

Odoo's ``message_parse``/``message_route``/``message_new`` search the alias
domains and the aliases (the catchall, the mailbox's own address, each
sender's address: is it an alias?) several times per mail, and ``message_new``
describes every field of the model (``fields_get``) for every record it
creates. Within one batch none of that can change unless an alias or an
alias domain is written, which empties the cache (models/mail_alias.py).

Active only where ``maildesk.ingest._process_gateway`` puts it: in the
context (``maildesk_gateway_cache``) of the gateway's environment, for one
pass over a batch (``_ingest_items``). It holds record ids and field
descriptions, never records: what the gateway reads of the records comes from
the ORM as before.
"""

import pickle

CONTEXT_KEY = "maildesk_gateway_cache"
# Where the batch's cache is found by code that writes aliases in an
# environment without the context key (it empties it too).
CURSOR_KEY = "maildesk.gateway_cache"


class GatewayCache:
    """Per batch: search results (ids) of ``mail.alias`` and
    ``mail.alias.domain``, the addresses the aliases answer to, and
    ``fields_get()`` of the models the gateway creates records of."""

    __slots__ = ("searches", "alias_index", "fields")

    def __init__(self):
        self.fields = {}
        self.clear()

    def clear(self):
        """Forget what depends on the aliases (an alias or alias domain was
        written, or a savepoint holding writes rolled back)."""
        self.searches = {}
        self.alias_index = None

    # Equality by identity: environments compare their contexts.
    __eq__ = object.__eq__
    __hash__ = object.__hash__


def active(env):
    """The batch's cache when ``env`` runs MailDesk's gateway ingest, else None."""
    cache = env.context.get(CONTEXT_KEY)
    return cache if isinstance(cache, GatewayCache) else None


def invalidate(env):
    """Aliases changed: the batch's searches are answered by the database again."""
    for cache in (env.context.get(CONTEXT_KEY), env.cr.cache.get(CURSOR_KEY)):
        if isinstance(cache, GatewayCache):
            cache.clear()


def _plain(value):
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return False


def search_key(records, kind, domain, *args):
    """A key for a search of ``records``' model, or None when the domain holds
    anything but plain values (records, queries, SQL: not cached)."""
    if not isinstance(domain, (list, tuple)) or not _plain(domain):
        return None
    env = records.env
    return (
        kind,
        records._name,
        repr(domain),
        args,
        env.uid,
        env.su,
        env.context.get("active_test", True),
        env.context.get("lang"),
        repr(env.context.get("allowed_company_ids")),
    )


def _leaf(term, field, operators):
    """The values of ``term`` when it is (field, operator, values) with one of
    ``operators``, as a list of non-empty strings; else None."""
    if not isinstance(term, (list, tuple)) or len(term) != 3 or term[0] != field or term[1] not in operators:
        return None
    values = term[2] if isinstance(term[2], (list, tuple)) else [term[2]]
    if not all(isinstance(v, str) and v for v in values):
        return None
    return list(values)


def alias_lookup_is_empty(domain, index):
    """True when ``domain`` is one of the address lookups Odoo's gateway makes
    for each sender and recipient and ``index`` (every alias's full address,
    and local part of those accepting any domain) shows no alias can match:
    ``[('alias_full_name', 'in'|'=', emails)]`` or
    ``['|', ('alias_full_name', 'in', emails), '&', ('alias_name', 'in', local
    parts), ('alias_incoming_local', '=', True)]``. False means "ask the
    database" (an alias matches, or another domain)."""
    full_names, local_names = index
    if not isinstance(domain, (list, tuple)):
        return False
    if len(domain) == 1:
        emails = _leaf(domain[0], "alias_full_name", ("in", "="))
        return emails is not None and not full_names.intersection(emails)
    if len(domain) == 5 and domain[0] == "|" and domain[2] == "&":
        emails = _leaf(domain[1], "alias_full_name", ("in", "="))
        parts = _leaf(domain[3], "alias_name", ("in", "="))
        local = domain[4]
        if emails is None or parts is None or not isinstance(local, (list, tuple)) or list(local) != [
            "alias_incoming_local", "=", True
        ]:
            return False
        return not full_names.intersection(emails) and not local_names.intersection(parts)
    return False


def fields_key(records, allfields, attributes):
    """A key for ``fields_get()`` of ``records``' model (all fields, all
    attributes only), or None."""
    if allfields or attributes:
        return None
    env = records.env
    context = tuple(sorted((k, repr(v)) for k, v in env.context.items() if not k.startswith("maildesk_")))
    return (records._name, env.uid, env.su, context)


def remember_fields(cache, key, description):
    try:
        cache.fields[key] = pickle.dumps(description, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        pass


def recall_fields(cache, key):
    """A fresh copy of the description (callers may change it), or None."""
    blob = cache.fields.get(key)
    if blob is None:
        return None
    return pickle.loads(blob)
