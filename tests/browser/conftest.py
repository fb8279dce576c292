"""Real-browser harness: a JupyterLab server, headless Chromium, and notebooks run in them.

Fixtures (every browser test uses these; mark the test ``@pytest.mark.browser``):

- ``lab`` (session): a ``jupyter lab`` from this venv on a free 127.0.0.1 port, with a token and a
  temporary root folder. ``lab.url`` (ends with ``/``), ``lab.token``, ``lab.root`` (Path).
- ``browser`` (session): headless ``/usr/bin/chromium`` through Playwright's sync API.
- ``open_notebook`` (function):
  ``nb = open_notebook(["import tlwidgets as tlw", "tlw.RunControls()"], name=None, theme="light")``
  writes the cells to a notebook, opens it in a fresh page, runs all cells and waits until every
  cell has run (failing with the cell's error if one raised). Then:

  - ``nb.page``: the Playwright Page.
  - ``nb.kernel("print(w.state)") -> str``: runs code in the notebook's own kernel, returns stdout
    (AssertionError with the traceback if it raised).
  - ``nb.run_cell(code)``: adds a cell in the page, runs it, waits until the kernel is idle.
  - ``nb.wait_idle()``, ``nb.wait_for("w.state == 'paused'", timeout=30)``.
  - ``nb.screenshot("name", selector=None) -> Path``: test-artifacts/screenshots/<test>-<name>.png.

A screenshot of each page is written at the end of every test (``-final.png``, or ``-failed.png``
when the test failed), and every notebook's kernel is shut down after the test.

``start_lab`` and ``NotebookOpener`` are importable for tests that need a server of their own
(say, from another venv): ``from tests.browser.conftest import start_lab``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
VIEWPORT = {"width": 1400, "height": 1000}
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# ---------------------------------------------------------------------------------------------
# The server


@dataclass
class Lab:
    """A running JupyterLab server."""

    url: str
    token: str
    root: Path
    runtime_dir: Path
    process: subprocess.Popen
    log_path: Path

    def api(self, method: str, path: str, body: Any = None, timeout: float = 10) -> Any:
        """Call the server's REST API (``path`` without the leading slash); returns the JSON."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
        return json.loads(text) if text else None

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's log, for error messages."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_isolated_config(config_dir: Path, settings_dir: Path) -> None:
    # No news, no update check, and window.jupyterapp for the harness to drive the page.
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "jupyter_server_config.json").write_text(
        json.dumps(
            {
                "LabApp": {
                    "news_url": None,
                    "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                    "expose_app_in_browser": True,
                    "user_settings_dir": str(settings_dir),
                }
            }
        )
    )
    notification = settings_dir / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True, exist_ok=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True})
    )


@contextlib.contextmanager
def start_lab(
    python: str | Path = sys.executable,
    env: dict[str, str] | None = None,
    startup_timeout: float = 120,
) -> Iterator[Lab]:
    """Start ``python -m jupyterlab`` on a free loopback port; always stops it on exit.

    ``env`` replaces the server's environment (default: this process's); the Jupyter config,
    runtime, settings and workspace folders are always fresh temporary ones.
    """
    base = Path(tempfile.mkdtemp(prefix="tlw-lab-"))
    root = base / "root"
    root.mkdir()
    runtime_dir = base / "runtime"
    config_dir = base / "config"
    _write_isolated_config(config_dir, base / "settings")
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"jupyterlab-{os.getpid()}-{base.name}.log"
    token = secrets.token_hex(24)
    server_env = dict(os.environ if env is None else env)
    server_env.update(
        JUPYTER_CONFIG_DIR=str(config_dir),
        JUPYTER_RUNTIME_DIR=str(runtime_dir),
        JUPYTER_PLATFORM_DIRS="1",
        PYTHONUNBUFFERED="1",
    )
    process = None
    try:
        for _attempt in range(3):  # another process may take the free port before the server does
            port = _free_port()
            url = f"http://127.0.0.1:{port}/"
            with open(log_path, "ab") as log:
                process = subprocess.Popen(
                    [
                        str(python),
                        "-m",
                        "jupyterlab",
                        "--no-browser",
                        "--ServerApp.ip=127.0.0.1",
                        f"--ServerApp.port={port}",
                        "--ServerApp.port_retries=0",
                        f"--IdentityProvider.token={token}",
                        f"--ServerApp.root_dir={root}",
                        f"--LabApp.workspaces_dir={base / 'workspaces'}",
                        "--ServerApp.allow_root=True",
                        "--ServerApp.log_level=WARN",
                        "--ServerApp.shutdown_no_activity_timeout=0",
                    ],
                    cwd=root,
                    env=server_env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            lab = Lab(url, token, root, runtime_dir, process, log_path)
            deadline = time.monotonic() + startup_timeout
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    lab.api("GET", "api/status", timeout=2)
                    break
                except (urllib.error.URLError, OSError, ValueError):
                    time.sleep(0.3)
            else:
                if process.poll() is None:
                    raise RuntimeError(
                        f"JupyterLab did not answer on {url} within {startup_timeout:.0f} s:\n"
                        + lab.log_tail()
                    )
                if "address already in use" in lab.log_tail().lower():
                    continue
                raise RuntimeError(
                    f"JupyterLab exited with code {process.returncode}:\n" + lab.log_tail()
                )
            yield lab
            return
        raise RuntimeError("JupyterLab could not get a free port in 3 tries")
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(base, ignore_errors=True)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    # SIGTERM lets the server shut its kernels down; the group kill catches what remains.
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


# ---------------------------------------------------------------------------------------------
# Notebooks in the page

# Reads the notebook's state through window.jupyterapp (exposed by the server config above).
_STATE_JS = """
(path) => {
  const app = window.jupyterapp;
  if (!app) return { found: false };
  const panel = Array.from(app.shell.widgets('main')).find(w => w.context?.path === path);
  if (!panel) return { found: false };
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = panel.content.widgets.map((cell) => {
    const code = cell.model.type === 'code';
    return {
      code,
      count: code ? cell.model.executionCount : null,
      busy: code && !!cell.promptNode && cell.promptNode.textContent.includes('*'),
      errors: code ? cell.model.outputs.toJSON().filter(o => o.output_type === 'error') : [],
      source: cell.model.sharedModel.getSource(),
    };
  });
  return {
    found: true,
    ready: panel.context.isReady && panel.sessionContext.isReady && !!kernel,
    status: kernel ? kernel.status : 'none',
    kernelId: kernel ? kernel.id : null,
    cells,
  };
}
"""

_RUN_ALL_JS = """
async (path) => {
  const app = window.jupyterapp;
  const panel = Array.from(app.shell.widgets('main')).find(w => w.context?.path === path);
  app.shell.activateById(panel.id);
  await panel.sessionContext.ready;
  await app.commands.execute('notebook:run-all-cells');
}
"""

_RUN_CELL_JS = """
async ({ path, code }) => {
  const app = window.jupyterapp;
  const panel = Array.from(app.shell.widgets('main')).find(w => w.context?.path === path);
  app.shell.activateById(panel.id);
  const notebook = panel.content;
  const index = notebook.model.cells.length;
  notebook.model.sharedModel.insertCell(index, { cell_type: 'code', source: code });
  notebook.activeCellIndex = index;
  await app.commands.execute('notebook:run-cell');
  return index;
}
"""


def _error_text(error: dict) -> str:
    traceback = "\n".join(error.get("traceback") or [])
    return _ANSI.sub("", traceback) or f"{error.get('ename')}: {error.get('evalue')}"


class Notebook:
    """A notebook open in a page, with its kernel (see the module docstring)."""

    def __init__(self, lab: Lab, page: Any, path: str, test_name: str) -> None:
        self.lab = lab
        self.page = page
        self.path = path
        self._test_name = test_name
        self._client: Any = None

    # -- page side -----------------------------------------------------------------------------
    def _state(self) -> dict:
        return self.page.evaluate(_STATE_JS, self.path)

    def _wait_cells(self, indices: list[int] | None, timeout: float, what: str) -> dict:
        """Wait until the kernel is idle and the given cells (default: all code cells) ran."""
        deadline = time.monotonic() + timeout
        state: dict = {}
        idle_polls = 0
        while time.monotonic() < deadline:
            state = self._state()
            if state.get("found") and state.get("ready"):
                cells = state["cells"]
                chosen = [cells[i] for i in indices] if indices is not None else cells
                for i, cell in enumerate(chosen):
                    if cell["errors"]:
                        raise AssertionError(
                            f"{what}: cell {indices[i] if indices is not None else i} raised\n"
                            f"--- source ---\n{cell['source']}\n--- error ---\n"
                            + "\n".join(_error_text(e) for e in cell["errors"])
                        )
                done = all(c["count"] is not None for c in chosen if c["code"])
                busy = any(c["busy"] for c in cells)
                # The status flickers idle between queued cells: ask for two idle polls in a row.
                if state["status"] == "idle" and done and not busy:
                    idle_polls += 1
                    if idle_polls >= 2:
                        return state
                else:
                    idle_polls = 0
            time.sleep(0.25)
        pending = [
            i for i, c in enumerate(state.get("cells", [])) if c["code"] and c["count"] is None
        ]
        raise AssertionError(
            f"{what}: timed out after {timeout:.0f} s (kernel status {state.get('status')!r}, "
            f"cells not run: {pending})\n--- server log ---\n{self.lab.log_tail(2000)}"
        )

    def run_all(self, timeout: float = 180) -> None:
        """Run every cell and wait until each has run; fails with the first error."""
        deadline = time.monotonic() + 90
        while not (state := self._state()).get("ready"):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"notebook {self.path} did not open with a kernel in 90 s: {state}\n"
                    + self.lab.log_tail(2000)
                )
            time.sleep(0.25)
        self.page.evaluate(_RUN_ALL_JS, self.path)
        self._wait_cells(None, timeout, f"running {self.path}")

    def run_cell(self, code: str, timeout: float = 120) -> None:
        """Add a code cell at the end of the notebook in the page, run it and wait until idle."""
        index = self.page.evaluate(_RUN_CELL_JS, {"path": self.path, "code": code})
        self._wait_cells([index], timeout, "run_cell")

    def wait_idle(self, timeout: float = 60) -> None:
        """Wait until the kernel is idle and no cell is queued or running."""
        deadline = time.monotonic() + timeout
        idle_polls = 0
        while time.monotonic() < deadline:
            state = self._state()
            if (
                state.get("ready")
                and state["status"] == "idle"
                and not any(c["busy"] for c in state["cells"])
            ):
                idle_polls += 1
                if idle_polls >= 2:
                    return
            else:
                idle_polls = 0
            time.sleep(0.25)
        raise AssertionError(f"the kernel of {self.path} was not idle within {timeout:.0f} s")

    def screenshot(self, name: str, selector: str | None = None) -> Path:
        """Write test-artifacts/screenshots/<test>-<name>.png (of one element if ``selector``)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self._test_name}-{_safe(name)}.png"
        if selector is None:
            self.page.screenshot(path=str(path))
        else:
            self.page.locator(selector).first.screenshot(path=str(path))
        return path

    # -- kernel side ---------------------------------------------------------------------------
    def _kernel_client(self) -> Any:
        if self._client is None:
            from jupyter_client import BlockingKernelClient

            sessions = self.lab.api("GET", "api/sessions")
            matches = [s for s in sessions if s.get("path") == self.path and s.get("kernel")]
            if not matches:
                raise AssertionError(f"no kernel session for {self.path}: {sessions}")
            kernel_id = matches[0]["kernel"]["id"]
            connection_file = self.lab.runtime_dir / f"kernel-{kernel_id}.json"
            if not connection_file.exists():
                raise AssertionError(f"no connection file {connection_file} for kernel {kernel_id}")
            client = BlockingKernelClient()
            client.load_connection_file(str(connection_file))
            client.start_channels()
            client.wait_for_ready(timeout=60)
            self._client = client
        return self._client

    def kernel(self, code: str, timeout: float = 60) -> str:
        """Run ``code`` in the notebook's kernel and return what it printed to stdout."""
        client = self._kernel_client()
        msg_id = client.execute(code, store_history=False, allow_stdin=False)
        stdout: list[str] = []
        errors: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"kernel code did not finish in {timeout:.0f} s:\n{code}")
            try:
                msg = client.get_iopub_msg(timeout=remaining)
            except Exception:  # queue.Empty: loop to the deadline check
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content.get("name") == "stdout":
                stdout.append(content["text"])
            elif kind == "error":
                errors.append(_error_text(content))
            elif kind == "status" and content.get("execution_state") == "idle":
                break
        if errors:
            raise AssertionError(
                f"kernel code raised:\n{code}\n--- error ---\n" + "\n".join(errors)
            )
        return "".join(stdout)

    def wait_for(self, predicate_code: str, timeout: float = 30) -> None:
        """Poll the kernel until the Python expression ``predicate_code`` is true."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            last = self.kernel(f"print(bool({predicate_code}))").strip()
            if last == "True":
                return
            time.sleep(0.2)
        raise AssertionError(f"{predicate_code!r} was still {last or 'not True'} after {timeout} s")

    def close(self) -> None:
        """Stop the kernel client, close the page and shut the notebook's kernel down."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.stop_channels()
            self._client = None
        with contextlib.suppress(Exception):
            self.page.context.close()
        with contextlib.suppress(Exception):
            for session in self.lab.api("GET", "api/sessions"):
                if session.get("path") == self.path:
                    self.lab.api("DELETE", f"api/sessions/{session['id']}")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:120] or "test"


@dataclass
class NotebookOpener:
    """Writes notebooks into a lab's root and opens them in the browser (the ``open_notebook``)."""

    lab: Lab
    browser: Any
    test_name: str
    opened: list[Notebook] = field(default_factory=list)

    def __call__(
        self,
        cells: list[str],
        name: str | None = None,
        theme: str = "light",
        timeout: float = 180,
    ) -> Notebook:
        if theme not in THEMES:
            raise ValueError(f"theme must be one of {sorted(THEMES)}, not {theme!r}")
        if name is None:
            suffix = f"-{len(self.opened) + 1}" if self.opened else ""
            name = f"{self.test_name}{suffix}.ipynb"
        elif not name.endswith(".ipynb"):
            name += ".ipynb"
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
        notebook.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
        }
        nbformat.write(notebook, self.lab.root / name)
        # The theme is a user setting of the (shared) server: set it before the page loads.
        self.lab.api(
            "PUT",
            "lab/api/settings/@jupyterlab/apputils-extension:themes",
            {"raw": json.dumps({"theme": THEMES[theme]})},
        )
        context = self.browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        nb = Notebook(self.lab, page, name, _safe(name.removesuffix(".ipynb")))
        self.opened.append(nb)
        # A workspace of its own, reset, so tabs from earlier tests are not restored.
        workspace = f"tlw-{secrets.token_hex(4)}"
        page.goto(
            f"{self.lab.url}lab/workspaces/{workspace}/tree/{name}?reset&token={self.lab.token}",
            wait_until="domcontentloaded",
        )
        nb.run_all(timeout=timeout)
        return nb

    def close_all(self, failed: bool) -> None:
        for nb in self.opened:
            with contextlib.suppress(Exception):
                nb.screenshot("failed" if failed else "final")
            nb.close()
        self.opened.clear()


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    setattr(item, f"_tlw_report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """A JupyterLab server from this venv (see the module docstring)."""
    with start_lab() as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright's sync API."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def open_notebook(
    lab: Lab, browser: Any, request: pytest.FixtureRequest
) -> Iterator[NotebookOpener]:
    """Open notebooks made of code cells in the page (see the module docstring)."""
    opener = NotebookOpener(lab, browser, _safe(request.node.name))
    try:
        yield opener
    finally:
        report = getattr(request.node, "_tlw_report_call", None)
        opener.close_all(failed=report is None or report.failed)
