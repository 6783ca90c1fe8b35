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

uv_binary() {
  # uv_binary: prints a uv to install with, from PATH or installed once into .cache/uv.
  # Why uv: it downloads in parallel. On this project's machine, with no download cache,
  # `.[server]` took 173 s with pip and 37 s with uv (plus ~18 s once to fetch uv itself).
  if command -v uv >/dev/null 2>&1; then command -v uv; return 0; fi
  if [ ! -x .cache/uv/bin/uv ]; then
    mkdir -p .cache
    python3 -m venv .cache/uv >/dev/null && .cache/uv/bin/pip install --quiet --disable-pip-version-check uv \
      >.cache/uv-install.log 2>&1 || return 1
  fi
  echo "$ROOT/.cache/uv/bin/uv"
}

pip_install() {
  # pip_install VENV LOG ARGS...: install into VENV with uv when it can be had, else with pip.
  local venv="$1" log="$2"; shift 2
  local uv
  if uv="$(uv_binary)"; then
    "$uv" pip install --quiet --python "$venv/bin/python" "$@" >"$log" 2>&1
  else
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >"$log" 2>&1
  fi
}

python_env() {
  # python_env EXTRA [COVERED_BY...]: a virtualenv in .venv with cimhub installed (editable) with EXTRA,
  # unless it already is with EXTRA or with an extra that includes it (`test` includes `server`).
  # The installer's output goes to .venv/install.log and is shown only when the install fails.
  local extra="$1"; shift
  local hash; hash="$(cat pyproject.toml setup.py | sha1sum | cut -c1-12)"
  local wanted
  for wanted in "$extra" "$@"; do
    if [ -f ".venv/.installed-$wanted-$hash" ]; then return 0; fi
  done
  apt_install python3 python3 python3-venv
  echo "installing the Python packages for '$extra' into .venv (log: .venv/install.log)..." >&2
  [ -x .venv/bin/python ] || python3 -m venv .venv
  if ! pip_install .venv .venv/install.log -e ".[$extra]"; then
    grep -v "^WARNING: Location " .venv/install.log | tail -30 >&2
    echo "installing '.[$extra]' failed: see .venv/install.log" >&2
    exit 1
  fi
  touch ".venv/.installed-$extra-$hash"
}
