# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from odoo.tests import HttpCase, tagged


def hoot_error_checker(message):
    return "[HOOT]" not in message or message == "[HOOT] test failed (see above for details)"


@tagged("post_install", "-at_install")
class TestInboxHoot(HttpCase):
    """The addon's Hoot unit tests (static/tests/*.test.js, tag maildesk)."""

    def test_hoot(self):
        self.browser_js(
            "/web/tests?headless&loglevel=2&preset=desktop&timeout=15000&tag=maildesk",
            "", "", login="admin", timeout=900, success_signal="[HOOT] test suite succeeded",
            error_checker=hoot_error_checker,
        )
