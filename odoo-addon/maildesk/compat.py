# Copyright 2026 MailDesk contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""What differs between the Odoo series the addon runs on (17.0, 18.0, 19.0).

Code and tests use these names instead of the series' own, so one source tree
serves every series. Data files that differ live in ``odoo-addon/series/``
(see ``odoo-addon/build.py``).
"""

from odoo import release

SERIES = release.version_info[0]

# res.users → its groups (19.0 renamed it; res.groups.users is user_ids there,
# see odoo-addon/series/19.0).
USER_GROUPS = "group_ids" if SERIES >= 19 else "groups_id"

# How the sidecar calls Odoo: 19.0 deprecates the external /jsonrpc API in
# favour of JSON-2 (/json/2/<model>/<method>, API key as bearer).
ODOO_PROTOCOL = "json2" if SERIES >= 19 else "jsonrpc"


def check_access(records, operation):
    """``records.check_access(operation)`` (17.0: access rights, then rules)."""
    if SERIES >= 18:
        return records.check_access(operation)
    records.check_access_rights(operation)
    return records.check_access_rule(operation)


def has_access(records, operation):
    """``records.has_access(operation)``: the check without raising."""
    if SERIES >= 18:
        return records.has_access(operation)
    from odoo.exceptions import AccessError

    if not records.check_access_rights(operation, raise_exception=False):
        return False
    try:
        records.check_access_rule(operation)
    except AccessError:
        return False
    return True


def generate_api_key(apikeys, scope, name):
    """A key for ``apikeys.env.user`` that does not expire (17.0 keys never do)."""
    if SERIES >= 18:
        return apikeys._generate(scope, name, None)
    return apikeys._generate(scope, name)


def store_add_values(store, records, values):
    """Add ``values`` (a dict) to ``records`` in a mail Store from inside
    ``_to_store`` (19.0: ``add_records_fields``, which does not call
    ``_to_store`` again)."""
    if SERIES >= 19:
        return store.add_records_fields(records, values)
    return store.add(records, values)


def registry_in_test_mode(registry):
    """Whether a test made ``registry.cursor()`` hand out the test's cursor
    (HttpCase). 19.0 patches the registry instead of a ``test_cr``."""
    if SERIES >= 19:
        from odoo.modules import module

        test = module.current_test
        return bool(test) and bool(getattr(type(test), "_registry_patched", False))
    return registry.in_test_mode()


# ir.mail_server's public helpers became private in 19.0.
MAIL_SERVER_CONNECT = "_connect__" if SERIES >= 19 else "connect"
MAIL_SERVER_BUILD_EMAIL = "_build_email__" if SERIES >= 19 else "build_email"


def mail_server_connect(mail_server, **kwargs):
    return getattr(mail_server, MAIL_SERVER_CONNECT)(**kwargs)


def build_email(mail_server, *args, **kwargs):
    return getattr(mail_server, MAIL_SERVER_BUILD_EMAIL)(*args, **kwargs)


def record_path(model, res_id):
    """The web client's path of a record's form (17.0: /web#…)."""
    if SERIES >= 18:
        return "/odoo/%s/%s" % (model, res_id)
    return "/web#model=%s&id=%s&view_type=form" % (model, res_id)


def action_path(xmlid, res_id=None):
    """The web client's path of an action, or of a record in it (17.0: /web#…)."""
    if SERIES >= 18:
        return "/odoo/action-%s%s" % (xmlid, "/%s" % res_id if res_id else "")
    return "/web#action=%s%s" % (xmlid, "&id=%s&view_type=form" % res_id if res_id else "")


def running_tests():
    """Odoo runs tests now (17.0 leaves ``current_test`` unset for post-install
    tests and marks the thread instead)."""
    import threading

    from odoo.modules import module

    return bool(module.current_test) or bool(getattr(threading.current_thread(), "testing", False))


def gateway_post_process(thread, message, msg_dict, routes):
    """What ``message_process`` does between routing a mail and processing
    its routes: 19.0 finds the mail's author and recipients then
    (``_message_parse_post_process``: a lead made of a customer's mail has
    the customer as ``partner_id``); 17.0 and 18.0 found them while checking
    the routes (``_routing_check_route``), already done."""
    if hasattr(thread, "_message_parse_post_process"):
        msg_dict.update(thread._message_parse_post_process(message, msg_dict, routes))
