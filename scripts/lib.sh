# Shared helpers for the ensure-*.sh scripts (sourced, not run).

say() { printf '%s\n' "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }

# port_open HOST PORT: true when something accepts TCP connections there
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_for_port HOST PORT SECONDS
wait_for_port() {
  local waited=0
  until port_open "$1" "$2"; do
    ((waited >= $3)) && return 1
    sleep 1; waited=$((waited + 1))
  done
}

is_root() { [ "$(id -u)" = 0 ]; }

# apt_install PACKAGE...: Debian packages, only as root
apt_install() {
  is_root || return 1
  command -v apt-get >/dev/null || return 1
  say "installing $* from Debian's packages"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}

is_local() { case "$1" in 127.*|localhost|::1) return 0 ;; *) return 1 ;; esac; }
