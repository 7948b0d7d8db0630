#!/usr/bin/env bash
# Picks the Python that `make setup` builds .venv with, and prints
#   <version> <path>          e.g.  3.13.0 /usr/local/bin/python3.13
# or says why not (on stderr) and exits 1.
#   scripts/pick-python.sh            the newest of python3.13, python3.12, python3.11,
#                                     python3 that runs and is a supported version
#   scripts/pick-python.sh PYTHON     that one (a name on PATH or a path), or an error
# A name that does not run as such (a pyenv shim of a version that is installed but
# not selected) falls back to pyenv's installed copy of it.
# Supported: 3.11 to 3.13, as pyproject.toml's requires-python says.
set -uo pipefail

SUPPORTED="3.11 3.12 3.13"
CANDIDATES="python3.13 python3.12 python3.11 python3"

say() { printf 'billing-mesh: %s\n' "$*" >&2; }

# probe NAME: prints "<version> <executable>" when NAME runs as a Python
probe() {
  "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3], sys.executable)' 2>/dev/null
}

# pyenv_root: where pyenv keeps its versions ($PYENV_ROOT when set)
pyenv_root() {
  local root pyenv
  if [ -n "${PYENV_ROOT:-}" ]; then
    [ -d "$PYENV_ROOT/versions" ] && echo "$PYENV_ROOT"
    return
  fi
  pyenv="$(command -v pyenv 2>/dev/null)" && pyenv="$(readlink -f "$pyenv")"
  for root in "$(pyenv root 2>/dev/null)" "${pyenv:+$(dirname "$(dirname "$pyenv")")}" "${HOME:+$HOME/.pyenv}"; do
    [ -n "$root" ] && [ -d "$root/versions" ] && { echo "$root"; return 0; }
  done
  return 1
}

# pyenv_copy NAME: pyenv's newest installed copy of pythonX.Y, when NAME is one
pyenv_copy() {
  local minor root dir best=""
  [[ "$1" =~ ^python(3\.[0-9]+)$ ]] || return 1
  minor="${BASH_REMATCH[1]}"
  root="$(pyenv_root)" || return 1
  for dir in $(ls "$root/versions" 2>/dev/null | grep -E "^${minor//./\\.}\.[0-9]+$" | sort -V); do
    [ -x "$root/versions/$dir/bin/$1" ] && best="$root/versions/$dir/bin/$1"
  done
  [ -n "$best" ] && echo "$best"
}

# find NAME: "<version> <executable>" of NAME (or of pyenv's copy of it)
find_python() {
  local found copy
  found="$(probe "$1")" && [ -n "$found" ] && { echo "$found"; return 0; }
  copy="$(pyenv_copy "$1")" && found="$(probe "$copy")" && [ -n "$found" ] && { echo "$found"; return 0; }
  return 1
}

supported() { [[ " $SUPPORTED " == *" ${1%.*} "* ]]; }

if [ $# -gt 0 ] && [ -n "$1" ]; then
  found="$(find_python "$1")" || {
    say "PYTHON=$1 does not run (not on PATH, or not a Python); set PYTHON to a Python 3.11, 3.12 or 3.13"
    exit 1
  }
  version="${found%% *}"
  supported "$version" || {
    say "PYTHON=$1 is Python $version; billing-mesh needs 3.11, 3.12 or 3.13: set PYTHON=/path/to/python3.13"
    exit 1
  }
  echo "$found"
  exit 0
fi

seen=""
for name in $CANDIDATES; do
  found="$(find_python "$name")" || continue
  version="${found%% *}"
  if supported "$version"; then
    echo "$found"
    exit 0
  fi
  seen="$seen $name ($version)"
done
say "no Python 3.11, 3.12 or 3.13 found (python3.13, python3.12, python3.11, python3 on PATH${seen:+; found:$seen}): install one, or set PYTHON=/path/to/python3.13"
exit 1
