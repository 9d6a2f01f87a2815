#!/usr/bin/env bash
# Odoo-free tests of the maildesk addon (structure, XML ids, access CSV, the
# sidecar JSON-RPC client against a local HTTP server, mail helpers).
# Standard library only; the last line reads "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"
exec "$PY" tests_offline/run.py
