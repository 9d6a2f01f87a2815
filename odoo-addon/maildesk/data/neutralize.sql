-- A neutralized copy (Odoo.sh staging, a restored test database) must not
-- talk to production's sidecar: forget its URL and shared secret, and turn
-- the MailDesk outgoing mail servers off.
DELETE FROM ir_config_parameter WHERE key IN ('maildesk.sidecar_url', 'maildesk.shared_secret');
UPDATE ir_mail_server SET active = false WHERE smtp_authentication = 'maildesk';
