# Copyright 2026 MailDesk contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
{
    "name": "MailDesk (Microsoft 365 mailboxes)",
    "summary": "Sync Microsoft 365 mailboxes into Odoo chatter and send through "
    "Microsoft 365, via the MailDesk sidecar",
    "version": "18.0.1.0.0",
    "category": "Productivity/Discuss",
    "website": "https://github.com/maildesk/maildesk",
    "author": "MailDesk contributors",
    "license": "LGPL-3",
    "application": True,
    "installable": True,
    "depends": ["mail", "base_setup"],
    "data": [
        "security/maildesk_security.xml",
        "security/ir.model.access.csv",
        "security/maildesk_rules.xml",
        "security/maildesk_folder_rules.xml",
        "data/mail_activity_type_data.xml",
        "data/ir_cron_data.xml",
        "views/maildesk_mailbox_views.xml",
        "views/maildesk_folder_views.xml",
        "views/maildesk_preview_views.xml",
        "views/maildesk_inbox_action.xml",
        "views/res_config_settings_views.xml",
        "views/ir_mail_server_views.xml",
        "views/res_partner_views.xml",
        "views/maildesk_oauth_templates.xml",
        "views/maildesk_menus.xml",
    ],
    "assets": {
        "web.assets_backend": [
            "maildesk/static/src/inbox/*.js",
            "maildesk/static/src/inbox/*.xml",
            "maildesk/static/src/inbox/*.scss",
            "maildesk/static/src/chatter/*",
        ],
        "web.assets_tests": [
            "maildesk/static/tests/tours/*.js",
        ],
        "web.assets_unit_tests": [
            "maildesk/static/tests/*.test.js",
        ],
    },
}
