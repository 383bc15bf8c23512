#!/usr/bin/env bash
# Install what is missing, and nothing that is already there:
#   - PostgreSQL 15 + PostGIS 3 from Debian's packages (only when DATABASE_URL is not set),
#   - with --browser, Debian's Chromium for the end-to-end browser tests,
#   - the Python virtual environment .venv with the project and its dev tools.
# Works as root or as a user with sudo. Safe to run again: each step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
fi

apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: apt-get not found; install these yourself: $*" >&2
    exit 1
  fi
  echo "bootstrap: installing Debian packages: $*"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

with_browser=""
[ "${1:-}" = "--browser" ] && with_browser=1

missing=()
if [ -n "$with_browser" ] && ! command -v chromium >/dev/null 2>&1; then
  missing+=(chromium)
fi
if [ -z "${DATABASE_URL:-}" ]; then
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ] || missing+=(postgresql-15)
  ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1 || missing+=(postgresql-15-postgis-3)
  # runuser runs the server as an unprivileged user when we are root.
  command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
fi

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PYTHON=$(command -v "$candidate"); break
    fi
  done
fi
if [ -z "$PYTHON" ]; then
  missing+=(python3 python3-venv python3-dev)
elif ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi

if [ ${#missing[@]} -gt 0 ]; then
  apt_install "${missing[@]}"
  [ -n "$PYTHON" ] || PYTHON=$(command -v python3)
fi

# The Python environment, reinstalled when pyproject.toml changes.
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi
echo "bootstrap: ready ($(.venv/bin/python --version))"
