# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Alias and alias domain searches of Odoo's gateway, once per ingest batch
(see lib/gateway_cache.py). Outside MailDesk's gateway ingest nothing changes."""

from odoo import api, models

from ..lib import gateway_cache


def _alias_index(env, cache):
    """Every alias's full address, and the local part of those accepting mail
    on any domain: read once per batch (and again after an alias changed)."""
    if cache.alias_index is None:
        rows = (
            env["mail.alias"]
            .sudo()
            .with_context(active_test=False, **{gateway_cache.CONTEXT_KEY: None})
            .search_read([("alias_full_name", "!=", False)], ["alias_full_name", "alias_name", "alias_incoming_local"])
        )
        cache.alias_index = (
            {row["alias_full_name"] for row in rows},
            {row["alias_name"] for row in rows if row["alias_incoming_local"] and row["alias_name"]},
        )
    return cache.alias_index


def _invalidating(env, change):
    """Runs a change of aliases or alias domains with the batch's answers
    dropped before it (a lookup during it asks the database) and after it."""
    gateway_cache.invalidate(env)
    try:
        return change()
    finally:
        gateway_cache.invalidate(env)


def _search_fetch(records, search, domain, offset, limit, order):
    """``search()`` calls ``search_fetch``: the batch's answer, or the
    database's (then kept for the batch)."""
    cache = gateway_cache.active(records.env)
    key = cache is not None and gateway_cache.search_key(records, "search", domain, offset, limit, order)
    if not key:
        return search()
    ids = cache.searches.get(key)
    if ids is not None:
        return records.browse(ids)
    if records._name == "mail.alias" and gateway_cache.alias_lookup_is_empty(domain, _alias_index(records.env, cache)):
        cache.searches[key] = ()
        return records.browse()
    found = search()
    cache.searches[key] = found._ids
    return found


def _search_count(records, count, domain, limit):
    cache = gateway_cache.active(records.env)
    key = cache is not None and gateway_cache.search_key(records, "count", domain, limit)
    if not key:
        return count()
    if key not in cache.searches:
        if records._name == "mail.alias" and gateway_cache.alias_lookup_is_empty(
            domain, _alias_index(records.env, cache)
        ):
            cache.searches[key] = 0
        else:
            cache.searches[key] = count()
    return cache.searches[key]


class MailAlias(models.Model):
    _inherit = "mail.alias"

    def search_fetch(self, domain, field_names=None, offset=0, limit=None, order=None):
        return _search_fetch(
            self,
            lambda: super(MailAlias, self).search_fetch(domain, field_names, offset=offset, limit=limit, order=order),
            domain, offset, limit, order,
        )

    def search_count(self, domain, limit=None):
        return _search_count(self, lambda: super(MailAlias, self).search_count(domain, limit=limit), domain, limit)

    # Any change of an alias: the batch asks the database again.
    @api.model_create_multi
    def create(self, vals_list):
        return _invalidating(self.env, lambda: super(MailAlias, self).create(vals_list))

    def write(self, vals):
        return _invalidating(self.env, lambda: super(MailAlias, self).write(vals))

    def unlink(self):
        return _invalidating(self.env, lambda: super(MailAlias, self).unlink())


class MailAliasDomain(models.Model):
    _inherit = "mail.alias.domain"

    def search_fetch(self, domain, field_names=None, offset=0, limit=None, order=None):
        return _search_fetch(
            self,
            lambda: super(MailAliasDomain, self).search_fetch(
                domain, field_names, offset=offset, limit=limit, order=order
            ),
            domain, offset, limit, order,
        )

    def search_count(self, domain, limit=None):
        return _search_count(
            self, lambda: super(MailAliasDomain, self).search_count(domain, limit=limit), domain, limit
        )

    # An alias domain's name makes its aliases' addresses.
    @api.model_create_multi
    def create(self, vals_list):
        return _invalidating(self.env, lambda: super(MailAliasDomain, self).create(vals_list))

    def write(self, vals):
        return _invalidating(self.env, lambda: super(MailAliasDomain, self).write(vals))

    def unlink(self):
        return _invalidating(self.env, lambda: super(MailAliasDomain, self).unlink())
