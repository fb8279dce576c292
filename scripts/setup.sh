#!/usr/bin/env bash
# Creates or reuses .venv, installs tlwidgets (editable, with its test and demo extras), the JS
# build tools and Debian's chromium, and builds the JS views. Idempotent: when nothing changed it
# only checks and rebuilds the JS (well under a second), so `make test` and `make demo` call it
# every time. Source it or run it; TLW_VENV overrides the venv's place.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TLW_VENV:-$REPO/.venv}"
PYTHON_FOR_VENV="${PYTHON:-python3}"
# The torch this project is tested with; never a newer one (see pyproject.toml).
TORCH_PINS=(torch==2.14.1 torchvision==0.29.1)

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[setup] %s\033[0m\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

apt_install() {
  is_root || die "$* missing and not root: install it (sudo apt-get install -y $*) and rerun"
  say "installing $* with apt-get"
  if [ -z "${TLW_APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    TLW_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

cd "$REPO"

# --- system packages ----------------------------------------------------------------------
[ -x /usr/bin/chromium ] || apt_install chromium
command -v npm >/dev/null 2>&1 || apt_install nodejs npm
command -v "$PYTHON_FOR_VENV" >/dev/null 2>&1 || apt_install python3 python3-venv

# --- the venv -----------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  "$PYTHON_FOR_VENV" -m venv "$VENV" || {
    apt_install python3-venv
    "$PYTHON_FOR_VENV" -m venv "$VENV"
  }
fi
"$VENV/bin/python" -c 'import sys; assert sys.version_info >= (3, 10), sys.version' \
  || die "$VENV has Python < 3.10: remove it and rerun with PYTHON=python3.11 (or newer)"

# --- JS build tools (before pip: the editable install runs the JS build) -------------------
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
   || [ package.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# --- Python packages ----------------------------------------------------------------------
# Reinstall only when what decides the install changed: pyproject.toml or this script.
stamp="$VENV/.tlwidgets-install-stamp"
want="$(cat pyproject.toml "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] \
   || ! "$VENV/bin/python" -c 'import tlwidgets, playwright, nbclient, jupyterlab' >/dev/null 2>&1; then
  say "pip install -e '.[test,demo]' ${TORCH_PINS[*]} (the first time takes a few minutes)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "${TORCH_PINS[@]}" -e ".[test,demo]"
  echo "$want" > "$stamp"
fi

# --- JS views -----------------------------------------------------------------------------
# esbuild takes well under a second: always rebuild so tlwidgets/static never lags js/.
npm run --silent build
