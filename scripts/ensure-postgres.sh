#!/usr/bin/env bash
# Makes sure PostgreSQL answers at 127.0.0.1:5432 for the tests: starts an
# installed cluster, or installs Debian's postgresql and starts it (giving the
# postgres role the password "postgres", which the tests' default URL uses), or
# stops with a message saying what to do.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

host=127.0.0.1 port=5432
port_open "$host" "$port" && { say "PostgreSQL answers at $host:$port"; exit 0; }

installed_now=0
if ! command -v pg_ctlcluster >/dev/null; then
  apt_install postgresql || fail "PostgreSQL is not installed and this is not root. Run: sudo apt-get install -y postgresql, then start it"
  installed_now=1
fi
if ! wait_for_port "$host" "$port" 3; then
  is_root || fail "PostgreSQL is installed but not running. Run: sudo pg_ctlcluster <version> main start"
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  say "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  wait_for_port "$host" "$port" 60 || fail "PostgreSQL did not open $host:$port within 60 s"
fi
if [ "$installed_now" = 1 ]; then
  su postgres -c "psql -q -c \"ALTER ROLE postgres PASSWORD 'postgres'\""
fi
say "PostgreSQL answers at $host:$port"
