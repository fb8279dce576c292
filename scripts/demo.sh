#!/usr/bin/env bash
# `make demo`: set up, then JupyterLab on notebooks/quickstart.ipynb (loopback only, with a token;
# no browser is opened, so it works on a headless machine: open the printed URL).
# `make demo-headless` (scripts/demo.sh --headless): run the quickstart with nbclient instead and
# fail loudly if any cell fails.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TLW_VENV:-$REPO/.venv}"
bash "$REPO/scripts/setup.sh"
cd "$REPO"

if [ "${1:-}" = "--headless" ]; then
  echo "[demo] executing notebooks/quickstart.ipynb headless"
  exec "$VENV/bin/python" tests/test_notebooks.py notebooks/quickstart.ipynb
fi

PORT="${PORT:-8888}"
TOKEN="${TOKEN:-$("$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(16))')}"
echo
echo "  JupyterLab: http://127.0.0.1:${PORT}/lab/tree/quickstart.ipynb?token=${TOKEN}"
echo "  (on a remote machine: ssh -L ${PORT}:127.0.0.1:${PORT} ... then open the URL; Ctrl-C stops)"
echo
exec "$VENV/bin/python" -m jupyterlab --no-browser --ip=127.0.0.1 --port="$PORT" \
  --IdentityProvider.token="$TOKEN" --ServerApp.root_dir="$REPO/notebooks" \
  --LabApp.default_url=/lab/tree/quickstart.ipynb $( [ "$(id -u)" = 0 ] && echo --allow-root )
