#!/usr/bin/env bash
# Makes sure Debian's chromium is installed, for the page tests (Playwright from
# PyPI drives it through executable_path; no browser is ever downloaded), or
# stops saying how to get it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

command -v chromium >/dev/null && exit 0
apt_install chromium || fail "chromium is not installed and this is not root. Run: sudo apt-get install -y chromium"
command -v chromium >/dev/null || fail "installing chromium did not give a chromium command"
say "chromium installed: $(command -v chromium)"
