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
        self.browser_js(
            "/web/tests?headless&loglevel=2&preset=desktop&timeout=15000&tag=maildesk",
            "", "", login="admin", timeout=900, success_signal=SUCCESS, error_checker=hoot_error_checker,
        )
