#!/bin/sh
# Static checks of the deployment files, none of which needs a Docker engine
# or a running systemd. Run from anywhere: sh deploy/check.sh
#
#   Dockerfile      dockerfile-utils lint (npm package; parses every
#                   instruction and its flags, as VS Code's Docker extension does)
#   compose.yaml    YAML parse (python3), then `docker-compose config -q`
#                   (Debian's docker-compose 1.29, schema validation)
#   maildesk.service  `systemd-analyze verify` in a throw-away root holding the
#                   freshly built binary; any warning fails; prints the
#                   `systemd-analyze security` exposure score
#   nginx snippet   `nginx -t` on a server block that includes it
# A tool that is missing is reported as SKIPPED, never as passed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
ok() { echo "PASS  $*"; }
bad() { echo "FAIL  $*"; fail=1; }
skip() { echo "SKIP  $*"; }

# --- Dockerfile -------------------------------------------------------------
if command -v npm >/dev/null 2>&1; then
	if (cd "$tmp" && npm init -y >/dev/null 2>&1 && npm install --no-audit --no-fund --silent dockerfile-utils@0.16.3 >/dev/null 2>&1); then
		if out=$("$tmp/node_modules/.bin/dockerfile-utils" lint "$here/Dockerfile" 2>&1) && [ -z "$out" ]; then
			ok "Dockerfile: dockerfile-utils lint found nothing"
		else
			bad "Dockerfile: dockerfile-utils lint:"; echo "$out"
		fi
	else
		skip "Dockerfile: could not install dockerfile-utils from npm"
	fi
else
	skip "Dockerfile: npm not found"
fi

# --- compose.yaml -----------------------------------------------------------
if python3 -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' "$here/compose.yaml" 2>"$tmp/yaml.err"; then
	ok "compose.yaml: valid YAML"
else
	bad "compose.yaml: YAML:"; cat "$tmp/yaml.err"
fi
if command -v docker-compose >/dev/null 2>&1; then
	# Compose 1.29 predates the top-level "name" key; validate the rest.
	sed '/^name:/d' "$here/compose.yaml" > "$here/.compose.check.yaml"
	if ODOO_HOST=odoo.example.com docker-compose -f "$here/.compose.check.yaml" config -q 2>"$tmp/compose.err"; then
		ok "compose.yaml: docker-compose config -q"
	else
		bad "compose.yaml: docker-compose config:"; cat "$tmp/compose.err"
	fi
	rm -f "$here/.compose.check.yaml"
else
	skip "compose.yaml: docker-compose not found (apt-get install docker-compose)"
fi

# --- systemd unit -----------------------------------------------------------
if command -v systemd-analyze >/dev/null 2>&1; then
	r="$tmp/root"
	mkdir -p "$r/usr/local/bin" "$r/etc/systemd/system" "$r/usr/lib/systemd"
	(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$r/usr/local/bin/maildesk" ./cmd/maildesk) ||
		{ printf '#!/bin/sh\n' > "$r/usr/local/bin/maildesk"; chmod +x "$r/usr/local/bin/maildesk"; echo "note: cmd/maildesk did not build; verifying the unit against a stub binary"; }
	cp -r /lib/systemd/system "$r/usr/lib/systemd/"
	cp "$here/systemd/maildesk.service" "$r/etc/systemd/system/"
	if out=$(systemd-analyze verify --root="$r" "$r/etc/systemd/system/maildesk.service" 2>&1) && [ -z "$out" ]; then
		ok "maildesk.service: systemd-analyze verify"
	else
		bad "maildesk.service: systemd-analyze verify:"; echo "$out"
	fi
	score=$(systemd-analyze security --offline=true --root="$r" maildesk.service 2>/dev/null | grep 'Overall exposure' || true)
	echo "info  maildesk.service: ${score:-exposure score not available}"
else
	skip "maildesk.service: systemd-analyze not found"
fi

# --- nginx snippet ----------------------------------------------------------
if command -v nginx >/dev/null 2>&1; then
	cat > "$tmp/nginx.conf" <<NGINX
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events {}
http {
    access_log off;
    client_body_temp_path $tmp; proxy_temp_path $tmp; fastcgi_temp_path $tmp; uwsgi_temp_path $tmp; scgi_temp_path $tmp;
    server {
        listen 127.0.0.1:18443;
        include $here/nginx/maildesk.conf;
        location / { proxy_pass http://127.0.0.1:8069; }
    }
}
NGINX
	if nginx -t -q -c "$tmp/nginx.conf" -p "$tmp" 2>"$tmp/nginx.err"; then
		ok "nginx/maildesk.conf: nginx -t"
	else
		bad "nginx/maildesk.conf: nginx -t:"; cat "$tmp/nginx.err"
	fi
else
	skip "nginx/maildesk.conf: nginx not found"
fi

# --- docs true to the code ----------------------------------------------------
# Every metric and every log field the Go code defines must be in docs/operations.md.
ops="$root/docs/operations.md"
missing=""
for m in $(grep -rhoE 'Name: *"maildesk_[a-z_]+"' --include='*.go' --exclude='*_test.go' "$root" | sed -E 's/.*"(maildesk_[a-z_]+)"/\1/' | sort -u); do
	grep -q "\`$m\`" "$ops" || missing="$missing $m"
done
if [ -z "$missing" ]; then ok "docs/operations.md: every metric documented"; else bad "docs/operations.md: metrics not documented:$missing"; fi
missing=""
for f in $(grep -roE '\)\.(Str|Strs|Int|Int64|Uint64|Dur|Bool|Time|Float64|Interface|Bytes)\("[a-z_]+"' --include='*.go' --exclude='*_test.go' \
	"$root/cmd" "$root/rpc" "$root/bridge" "$root/graphsync" "$root/store" "$root/internal" 2>/dev/null |
	grep -v -e /m365sim/ -e /odoosim/ | sed -E 's/.*\("([a-z_]+)"/\1/' | sort -u); do
	grep -q "\`$f\`" "$ops" || missing="$missing $f"
done
if [ -z "$missing" ]; then ok "docs/operations.md: every log field documented"; else bad "docs/operations.md: log fields not documented:$missing"; fi

# --- Caddyfiles ---------------------------------------------------------------
# Caddy is not packaged for Debian 12; `go install
# github.com/caddyserver/caddy/v2/cmd/caddy@v2.8.4` builds one (CADDY=path).
caddy=${CADDY:-$(command -v caddy || true)}
if [ -n "$caddy" ]; then
	if out=$(ODOO_HOST=odoo.example.com "$caddy" validate --adapter caddyfile --config "$here/caddy/Caddyfile" 2>&1); then
		ok "caddy/Caddyfile: caddy validate"
	else
		bad "caddy/Caddyfile: caddy validate:"; echo "$out" | tail -3
	fi
	# The Caddyfile shown in docs/odoo-sh.md.
	sed -n '/^maildesk.example.com {/,/^}/p' "$root/docs/odoo-sh.md" > "$tmp/odoo-sh.Caddyfile"
	if out=$("$caddy" validate --adapter caddyfile --config "$tmp/odoo-sh.Caddyfile" 2>&1); then
		ok "docs/odoo-sh.md Caddyfile: caddy validate"
	else
		bad "docs/odoo-sh.md Caddyfile: caddy validate:"; echo "$out" | tail -3
	fi
else
	skip "caddy/Caddyfile: no caddy binary (set CADDY=/path/to/caddy)"
fi
exit $fail
