#!/usr/bin/env bash
# The test command: lint, then the whole suite against a real PostGIS.
# Without DATABASE_URL it starts the embedded PostGIS (and stops it again if it started it);
# the tests create their own databases on that server and drop them afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --browser

started=""
if [ -z "${DATABASE_URL:-}" ]; then
  if ! .venv/bin/gridgov db status >/dev/null 2>&1; then
    .venv/bin/gridgov db start
    started=1
  fi
fi
cleanup() { if [ -n "$started" ]; then .venv/bin/gridgov db stop || true; fi; }
trap cleanup EXIT

.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
