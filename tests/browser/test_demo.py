"""`make demo`'s server (scripts/demo.sh) in headless Chromium, as a first-time user gets it
(fresh Jupyter config and settings): no "Jupyter news" pop-up over the notebook, and a run
started without a run_dir lands outside the repository.

A bare JupyterLab with the same fresh settings is started first as the control: it does show the
pop-up, so the check below can fail.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import pytest

from .conftest import ARTIFACTS, CHROMIUM_ARGS, REPO, VIEWPORT, Lab, _free_port, _stop

pytestmark = pytest.mark.browser

NEWS = "Would you like to get notified about official Jupyter news?"


def _fresh_env(base: Path) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("JUPYTER_CONFIG_DIR", "JUPYTERLAB_SETTINGS_DIR", "JUPYTER_RUNTIME_DIR",
                "JUPYTERLAB_WORKSPACES_DIR"):
        (base / key.lower()).mkdir(parents=True, exist_ok=True)
        env[key] = str(base / key.lower())
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextlib.contextmanager
def _server(command: list[str], env: dict[str, str], port: int, token: str, root: Path,
            log: Path):
    with open(log, "ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, cwd=root)
    lab = Lab(f"http://127.0.0.1:{port}/", token, root,
              Path(env["JUPYTER_RUNTIME_DIR"]), process, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                lab.api("GET", "api/status", timeout=2)
                break
            except (urllib.error.URLError, OSError, ValueError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the server did not start:\n" + lab.log_tail()) from None
                time.sleep(0.3)
        yield lab
    finally:
        _stop(process)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def _news_shown(browser, lab: Lab, wait_s: float) -> bool:
    """Open the quickstart in a fresh page; whether the news pop-up appears within wait_s."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(f"{lab.url}lab/tree/quickstart.ipynb?reset&token={lab.token}",
                  wait_until="domcontentloaded")
        page.wait_for_selector(".jp-Notebook", timeout=90_000)
        try:
            page.wait_for_function("t => document.body.innerText.includes(t)", arg=NEWS,
                                   timeout=wait_s * 1000)
            shown = True
        except Exception:  # noqa: BLE001 - playwright's TimeoutError: not shown
            shown = False
        page.screenshot(path=str(ARTIFACTS / "screenshots" / f"demo-{lab.url.split(':')[-1][:-1]}"
                                                            f"-{'news' if shown else 'clean'}.png"))
        return shown
    finally:
        context.close()


def test_demo_server_has_no_news_popup_and_keeps_runs_out_of_the_repo(browser, tmp_path):
    (ARTIFACTS / "screenshots").mkdir(parents=True, exist_ok=True)
    demo_dir = tmp_path / "demo"
    token = secrets.token_hex(12)

    # the control: a bare JupyterLab, fresh settings, same notebook: the pop-up shows
    bare_root = tmp_path / "bare"
    bare_root.mkdir()
    (bare_root / "quickstart.ipynb").write_bytes((REPO / "notebooks/quickstart.ipynb").read_bytes())
    port = _free_port()
    bare = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={bare_root}", "--ServerApp.allow_root=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    with _server(bare, _fresh_env(tmp_path / "bare-env"), port, token, bare_root,
                 ARTIFACTS / f"demo-control-{port}.log") as lab:
        assert _news_shown(browser, lab, wait_s=30), "control: a bare JupyterLab showed no news pop-up"

    # the demo server
    env = _fresh_env(tmp_path / "demo-env")
    port = _free_port()
    env.update(TLW_DEMO_SKIP_SETUP="1", TLW_DEMO_DIR=str(demo_dir), PORT=str(port), TOKEN=token,
               TLW_VENV=str(Path(sys.executable).parent.parent))
    with _server(["bash", str(REPO / "scripts" / "demo.sh")], env, port, token, tmp_path,
                 ARTIFACTS / f"demo-{port}.log") as lab:
        assert not _news_shown(browser, lab, wait_s=12), "the demo server showed the news pop-up"
        assert (demo_dir / "quickstart.ipynb").is_file()
        # a Trainer without run_dir, in a kernel of the demo's notebook: outside the repository
        session = lab.api("POST", "api/sessions", {"path": "quickstart.ipynb", "type": "notebook",
                                                  "kernel": {"name": "python3"}})
        from jupyter_client import BlockingKernelClient

        client = BlockingKernelClient()
        client.load_connection_file(str(lab.runtime_dir / f"kernel-{session['kernel']['id']}.json"))
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            code = ("import numpy as np, tlwidgets as tlw\n"
                    "m = tlw.create_model('test_resnet', 2, weights='none')\n"
                    "d = tlw.ImageData.from_arrays(np.zeros((8, 3, 32, 32), np.float32), "
                    "np.arange(8) % 2, classes=['a', 'b'], valid_pct=0.25, img_size=32)\n"
                    "print(tlw.Trainer(m, d, epochs=1).run_dir)")
            out: list[str] = []
            reply = client.execute_interactive(code, timeout=120, output_hook=_collect(out))
            assert reply["content"]["status"] == "ok", reply["content"]
        finally:
            client.stop_channels()
        run_dir = Path("".join(out).strip()).resolve()
        assert run_dir.is_relative_to(demo_dir.resolve()), run_dir
        assert not run_dir.is_relative_to(REPO), run_dir


def _collect(out: list[str]):
    def hook(msg: dict) -> None:
        if msg["msg_type"] == "stream" and msg["content"].get("name") == "stdout":
            out.append(msg["content"]["text"])

    return hook
