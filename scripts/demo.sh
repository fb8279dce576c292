#!/usr/bin/env bash
# `make demo`: set up, then JupyterLab on the quickstart notebook (loopback only, with a token;
# no browser is opened, so it works on a headless machine: open the printed URL).
# `make demo-headless` (scripts/demo.sh --headless): run the quickstart with nbclient instead and
# fail loudly if any cell fails.
#
# The demo works in a folder outside the repository, TLW_DEMO_DIR (default
# ~/.cache/tlwidgets-demo): the notebooks are copied there (a copy is refreshed when the
# repository's notebook is newer), so runs (./runs of a Trainer without run_dir), saved outputs
# and checkpoints never land in the checkout. JupyterLab's "Would you like to get notified about
# official Jupyter news?" pop-up is turned off for this server only (a settings override in an
# app settings folder of the demo's own, plus --LabApp.news_url=None); a choice the user already
# made in their own JupyterLab settings still wins.
# TLW_DEMO_SKIP_SETUP=1 skips scripts/setup.sh (tests start the demo server from a set-up venv).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TLW_VENV:-$REPO/.venv}"
DEMO_DIR="${TLW_DEMO_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tlwidgets-demo}"
[ "${TLW_DEMO_SKIP_SETUP:-}" = 1 ] || bash "$REPO/scripts/setup.sh"

mkdir -p "$DEMO_DIR"
DEMO_DIR="$(cd "$DEMO_DIR" && pwd)"
case "$DEMO_DIR/" in
  "$REPO"/*) echo "[demo] TLW_DEMO_DIR ($DEMO_DIR) is inside the repository: choose a folder outside it" >&2
             exit 2 ;;
esac
# -u: copy only what is missing or older than the repository's notebook
cp -u "$REPO"/notebooks/*.ipynb "$DEMO_DIR"/

if [ "${1:-}" = "--headless" ]; then
  echo "[demo] executing quickstart.ipynb headless in $DEMO_DIR"
  exec "$VENV/bin/python" "$REPO/tests/test_notebooks.py" "$DEMO_DIR/quickstart.ipynb"
fi

# JupyterLab reads settings overrides from its app settings folder: use one of the demo's own
# (starting from the venv's, if it has one) so nothing outside the demo folder changes.
SETTINGS="$DEMO_DIR/.jupyterlab-app-settings"
mkdir -p "$SETTINGS"
APP_SETTINGS="$("$VENV/bin/python" -c 'import jupyterlab.commands as c, os; print(os.path.join(c.get_app_dir(), "settings"))')"
"$VENV/bin/python" - "$APP_SETTINGS" "$SETTINGS" <<'PY'
import json, pathlib, shutil, sys

source, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
overrides = {}
if source.is_dir():
    for item in source.iterdir():
        if item.name != "overrides.json" and item.is_file():
            shutil.copy2(item, target / item.name)
    if (source / "overrides.json").is_file():
        overrides = json.loads((source / "overrides.json").read_text())
overrides.setdefault("@jupyterlab/apputils-extension:notification", {}).update(
    {"fetchNews": "false", "checkForUpdates": False}
)
(target / "overrides.json").write_text(json.dumps(overrides, indent=2) + "\n")
PY

PORT="${PORT:-8888}"
TOKEN="${TOKEN:-$("$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(16))')}"
echo
echo "  JupyterLab: http://127.0.0.1:${PORT}/lab/tree/quickstart.ipynb?token=${TOKEN}"
echo "  (on a remote machine: ssh -L ${PORT}:127.0.0.1:${PORT} ... then open the URL; Ctrl-C stops)"
echo "  Notebooks and runs: $DEMO_DIR"
echo
cd "$DEMO_DIR"
exec "$VENV/bin/python" -m jupyterlab --no-browser --ip=127.0.0.1 --port="$PORT" \
  --IdentityProvider.token="$TOKEN" --ServerApp.root_dir="$DEMO_DIR" \
  --LabApp.default_url=/lab/tree/quickstart.ipynb \
  --LabApp.app_settings_dir="$SETTINGS" --LabApp.news_url=None \
  --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate \
  $( [ "$(id -u)" = 0 ] && echo --allow-root )
