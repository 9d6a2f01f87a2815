# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import unittest

from odoo import release
from odoo.tests import HttpCase, tagged

SERIES = release.version_info[0]
# Hoot's last line changed case in 19.0; 17.0 has no Hoot (QUnit only).
SUCCESS = "[HOOT] Test suite succeeded" if SERIES >= 19 else "[HOOT] test suite succeeded"


def hoot_error_checker(message):
    return "[HOOT]" not in message or message == "[HOOT] test failed (see above for details)"


@tagged("post_install", "-at_install")
class TestInboxHoot(HttpCase):
    """The addon's Hoot unit tests (static/tests/*.test.js, tag maildesk)."""

    def test_hoot(self):
        if SERIES < 18:
            raise unittest.SkipTest("Odoo 17.0 has no Hoot")
        # timeout: Hoot's per-test limit in ms (its default 5 s; Odoo's own
        # suites pass 15 s). 60 s: a test that mounts the inbox with the mail
        # models' mock server can take seconds on a busy machine, and the
        # limit only ends a stuck test. Read by Hoot's config on 18.0 and
        # 19.0 alike (web/static/lib/hoot/core/config.js, "timeout").
        self.browser_js(
            "/web/tests?headless&loglevel=2&preset=desktop&timeout=60000&tag=maildesk",
            "", "", login="admin", timeout=900, success_signal=SUCCESS, error_checker=hoot_error_checker,
        )
