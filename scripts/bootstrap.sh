# Shared set-up for scripts/serve and scripts/test (sourced, not run).
# Installs what is missing, from Debian's packages and PyPI only, and is a
# no-op the second time: safe to run on every start.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

apt_install() {
  # apt_install BINARY PACKAGE...: install PACKAGEs unless BINARY is already there.
  local binary="$1"; shift
  if ! command -v "$binary" >/dev/null 2>&1 && [ ! -x "$binary" ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "missing $binary: run as root, or install: $*" >&2; exit 1
    fi
    if [ -z "${APT_UPDATED:-}" ]; then
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  fi
}

python_env() {
  # python_env EXTRAS: a virtualenv in .venv with cimhub installed (editable) and EXTRAS.
  local extras="$1"
  local stamp=".venv/.installed-$extras-$(sha1sum pyproject.toml | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    apt_install python3 python3 python3-venv
    python3 -m venv .venv
    .venv/bin/pip install -q --upgrade pip >/dev/null
    .venv/bin/pip install -q -e ".[$extras]"
    touch "$stamp"
  fi
}
