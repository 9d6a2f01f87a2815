#!/bin/sh
# Creates the secret files deploy/compose.yaml mounts, once. Run from deploy/.
# Existing files are kept (the key must never change under a database).
set -eu
umask 077
mkdir -p secrets
new() { # new FILE OWNER: write a random base64 secret unless FILE exists
	if [ -e "secrets/$1" ]; then echo "secrets/$1 exists, kept"; return; fi
	head -c 32 /dev/urandom | base64 > "secrets/$1"
	echo "secrets/$1 created"
}
new postgres_password
new maildesk_shared_secret
new maildesk_key
# Bind-mounted secrets keep their host owner and mode: let the containers'
# users read them (postgres 999 and odoo 101 read the database password; the
# sidecar runs as 65532).
chmod 0444 secrets/postgres_password
chown 65532:65532 secrets/maildesk_shared_secret secrets/maildesk_key 2>/dev/null ||
	echo "note: run as root to chown secrets/maildesk_* to 65532 (the sidecar's user), or chmod 0444 them"
chmod 0400 secrets/maildesk_shared_secret secrets/maildesk_key
echo "Paste secrets/maildesk_shared_secret into Odoo: Settings > MailDesk > Shared secret."
echo "Back up secrets/maildesk_key apart from the database backups: without it no backup opens."
