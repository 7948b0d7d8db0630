#!/usr/bin/env bash
# Makes sure the HTTP load generator wrk is installed (Debian's package), for
# `make bench` and the benchmark's smoke test, or stops saying how to get it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

command -v wrk >/dev/null && exit 0
apt_install wrk || fail "wrk is not installed and this is not root. Run: sudo apt-get install -y wrk"
command -v wrk >/dev/null || fail "installing wrk did not give a wrk command"
say "wrk installed: $(command -v wrk)"
