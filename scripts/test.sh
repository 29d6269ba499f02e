#!/usr/bin/env bash
# Run the whole test suite on SQLite, then again on a throwaway PostgreSQL
# cluster. Installs PostgreSQL and Chromium from Debian's packages when they
# are missing (as root, or through sudo without a password).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${VENV:-.venv}/bin"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"
  else
    echo "error: '$*' needs root; install PostgreSQL and Chromium first (see README)" >&2
    exit 1
  fi
}

apt_install() {
  echo "Installing $* from Debian's packages…"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium chromium-driver)
[ -n "$(pg_bin)" ] || missing+=(postgresql)
# The PDF report tests read the reports' text back with pdftotext.
[ -x /usr/bin/pdftotext ] || missing+=(poppler-utils)
# WeasyPrint renders the reports' PDFs with Pango.
compgen -G '/usr/lib*/*/libpangoft2-1.0.so.0' >/dev/null \
  || compgen -G '/usr/lib*/libpangoft2-1.0.so.0' >/dev/null \
  || missing+=(libpango-1.0-0 libpangoft2-1.0-0)
if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
PG_BIN="$(pg_bin)"

echo "== ruff"
"$BIN/ruff" check registry3d tests bench

run_suite() {
  local label="$1"; shift
  echo "== tests on $label"
  set +e
  "$BIN/pytest" -p no:cacheprovider "$@"
  local code=$?
  set -e
  return $code
}

# --- SQLite ---------------------------------------------------------------------
sqlite_status=0
env -u DATABASE_URL "$BIN/python" -c 'import sqlite3; print("SQLite", sqlite3.sqlite_version)'
run_suite SQLite "$@" || sqlite_status=$?

# --- PostgreSQL -----------------------------------------------------------------
pg_dir="$(mktemp -d /tmp/registry3d-pg.XXXXXX)"
pg_port="$("$BIN/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
pg_user_run=()
if [ "$(id -u)" = 0 ]; then
  # PostgreSQL refuses to run as root. Its programs start in the cluster's
  # own folder, since the checkout may not be readable by the postgres user.
  chown postgres: "$pg_dir"
  pg_user_run=(env -C "$pg_dir" runuser -u postgres --)
fi
stop_pg() {
  "${pg_user_run[@]}" "$PG_BIN/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap stop_pg EXIT
"${pg_user_run[@]}" "$PG_BIN/initdb" -D "$pg_dir/data" -U postgres --auth=trust -E UTF8 --no-locale >/dev/null
"${pg_user_run[@]}" "$PG_BIN/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w \
  -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null
"$PG_BIN/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -Atc "select version()"
pg_status=0
DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/registry3d" run_suite PostgreSQL "$@" || pg_status=$?

echo "== summary: SQLite exit $sqlite_status, PostgreSQL exit $pg_status"
if [ "$sqlite_status" != 0 ] || [ "$pg_status" != 0 ]; then exit 1; fi
