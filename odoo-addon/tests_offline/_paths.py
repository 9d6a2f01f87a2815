"""Paths shared by the Odoo-free tests; puts the addon's lib/ on sys.path."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ADDON = os.path.normpath(os.path.join(HERE, "..", "maildesk"))

if ADDON not in sys.path:
    # ``import lib`` then loads maildesk/lib without maildesk/__init__.py,
    # which needs Odoo.
    sys.path.insert(0, ADDON)
