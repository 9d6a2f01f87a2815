# Copyright 2026 MailDesk contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
{
    "name": "MailDesk - CRM",
    "summary": "Sales team of the leads a MailDesk gateway mailbox creates",
    "version": "18.0.1.0.0",
    "category": "Sales/CRM",
    "website": "https://github.com/maildesk/maildesk",
    "author": "MailDesk contributors",
    "license": "LGPL-3",
    "depends": ["maildesk", "crm"],
    "data": ["views/maildesk_mailbox_views.xml"],
    "auto_install": True,
    "installable": True,
}
