#!/usr/bin/env bash
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
#
# Runs the MailDesk end-to-end test on a local Odoo 17.0, 18.0 or 19.0 checkout:
# the modules built for that series (odoo-addon/build.py, into $WORK/addons),
# a fresh database with maildesk, crm and sale_management, Odoo as a server, a freshly built
# `maildesk serve --simulate` with its own data dir, then run.py (with a
# sidecar restart in the middle). Not run in CI (CI has no Odoo).
#
# Usage: odoo-addon/e2e/run_local.sh /path/to/odoo [extra run.py args...]
#   /path/to/odoo is the directory holding odoo-bin (its odoo/release.py says the series).
# Environment (defaults):
#   ODOO_CONF     an odoo.conf for the database connection (none: Odoo's defaults)
#   PYTHON        /usr/bin/python3 (the Python that runs Odoo)
#   DB            maildesk_e2e    (dropped and created again!)
#   ODOO_PORT     8090
#   SIDECAR_PORT  8791            SIM_PORT 8792
#   WORK          /tmp/maildesk-e2e (sidecar binary, data dir, logs; wiped)
#   KEEP_RUNNING  1 leaves Odoo and the sidecar running afterwards
set -euo pipefail

ODOO_DIR="${1:?usage: $0 /path/to/odoo-checkout [run.py args...]}"
shift
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-/usr/bin/python3}"
DB="${DB:-maildesk_e2e}"
ODOO_PORT="${ODOO_PORT:-8090}"
SIDECAR_PORT="${SIDECAR_PORT:-8791}"
SIM_PORT="${SIM_PORT:-8792}"
WORK="${WORK:-/tmp/maildesk-e2e}"
DATA="$WORK/data"
BIN="$WORK/maildesk"

[ -x "$ODOO_DIR/odoo-bin" ] || { echo "no odoo-bin in $ODOO_DIR" >&2; exit 2; }
SERIES="$("$PYTHON" -c 'import re,sys; m=re.search(r"^version_info = \((\d+), (\d+)", open(sys.argv[1]).read(), re.M); print("%s.%s" % m.groups())' "$ODOO_DIR/odoo/release.py")"
echo "== Odoo $SERIES in $ODOO_DIR"
rm -rf "$WORK" && mkdir -p "$DATA"
"$PYTHON" "$REPO/odoo-addon/build.py" "$SERIES" --out "$WORK/addons" >/dev/null
# addons/ beside odoo-bin (a git checkout) or only odoo/addons (a pip sdist)
ADDONS="$ODOO_DIR/odoo/addons,$WORK/addons/$SERIES"
[ -d "$ODOO_DIR/addons" ] && ADDONS="$ODOO_DIR/addons,$ADDONS"
ODOO_ARGS=(--addons-path "$ADDONS" -d "$DB"
           --http-interface 127.0.0.1 --http-port "$ODOO_PORT" --db-filter "^${DB}\$")
[ -n "${ODOO_CONF:-}" ] && ODOO_ARGS=(-c "$ODOO_CONF" "${ODOO_ARGS[@]}")
# 19.0 installs no demo data unless asked (and wants a boolean here)
NO_DEMO=(--without-demo=all)
[ "${SERIES%%.*}" -ge 19 ] && NO_DEMO=()

echo "== building the sidecar"
(cd "$REPO" && go build -o "$BIN" ./cmd/maildesk)

echo "== database $DB with maildesk, crm and sale_management (log $WORK/odoo-init.log)"
if command -v dropdb >/dev/null; then dropdb --if-exists "$DB" ${PGHOST:+-h "$PGHOST"} ${PGUSER:+-U "$PGUSER"} || true; fi
"$PYTHON" "$ODOO_DIR/odoo-bin" "${ODOO_ARGS[@]}" -i maildesk,crm,sale_management "${NO_DEMO[@]}" --stop-after-init \
  > "$WORK/odoo-init.log" 2>&1 || { tail -30 "$WORK/odoo-init.log"; exit 2; }

PIDS=()
cleanup() {
  if [ "${KEEP_RUNNING:-0}" != 1 ]; then
    for pid in "${PIDS[@]}" $(cat "$WORK/sidecar.pid" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
  fi
}
trap cleanup EXIT

# The sidecar, and the command run.py uses to restart it (same data dir, ports).
cat > "$WORK/sidecar.sh" <<EOF
#!/usr/bin/env bash
# start | restart the e2e sidecar
if [ "\${1:-start}" = restart ] && [ -f "$WORK/sidecar.pid" ]; then
  pid=\$(cat "$WORK/sidecar.pid"); kill "\$pid" 2>/dev/null
  for i in \$(seq 1 60); do kill -0 "\$pid" 2>/dev/null || break; sleep 0.5; done
fi
nohup "$BIN" serve --simulate --listen 127.0.0.1:$SIDECAR_PORT --sim-listen 127.0.0.1:$SIM_PORT \\
  --data-dir "$DATA" >> "$WORK/sidecar.log" 2>&1 &
echo \$! > "$WORK/sidecar.pid"
for i in \$(seq 1 60); do curl -fsS -o /dev/null http://127.0.0.1:$SIDECAR_PORT/healthz && exit 0; sleep 1; done
echo "sidecar did not start; see $WORK/sidecar.log" >&2; exit 1
EOF
chmod +x "$WORK/sidecar.sh"
echo "== sidecar on 127.0.0.1:$SIDECAR_PORT, simulator on 127.0.0.1:$SIM_PORT (log $WORK/sidecar.log)"
"$WORK/sidecar.sh" start

echo "== Odoo on http://127.0.0.1:$ODOO_PORT (log $WORK/odoo.log)"
"$PYTHON" "$ODOO_DIR/odoo-bin" "${ODOO_ARGS[@]}" > "$WORK/odoo.log" 2>&1 &
PIDS+=($!)
for i in $(seq 1 180); do
  curl -fsS -o /dev/null "http://127.0.0.1:$ODOO_PORT/web/login" && break
  kill -0 "${PIDS[0]}" 2>/dev/null || { tail -30 "$WORK/odoo.log"; exit 2; }
  sleep 1
done

echo "== end-to-end test"
set +e
/usr/bin/python3 "$HERE/run.py" --odoo "http://127.0.0.1:$ODOO_PORT" --db "$DB" \
  --admin-login admin --admin-password admin \
  --sidecar "http://127.0.0.1:$SIDECAR_PORT" --secret-file "$DATA/shared-secret" \
  --sim-ca "$DATA/simulator-ca.pem" --restart-cmd "$WORK/sidecar.sh restart" "$@"
RC=$?
echo "run.py exit code $RC (logs: $WORK/odoo.log, $WORK/sidecar.log)"
exit $RC
