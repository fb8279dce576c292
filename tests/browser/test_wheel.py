"""The built wheel is enough: installed into a fresh venv with no Node on PATH, it renders.

Proves that `pip wheel .` carries the bundled JS (tlwidgets/static/*.js) and that nothing at
run time reaches back into the checkout or needs Node.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO, NotebookOpener, _safe, start_lab

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def run(*cmd: str | Path, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, (
        f"{cmd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A venv holding only the tlwidgets wheel; the other packages come from this venv."""
    base = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", REPO, "--no-deps", "-w", base / "dist", timeout=600)
    (wheel,) = (base / "dist").glob("tlwidgets-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert (
        "tlwidgets/static/run_controls.js" in names and "tlwidgets/static/run_controls.css" in names
    )

    env_dir = base / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--quiet", wheel)
    site = Path(
        run(
            python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        ).stdout.strip()
    )
    # Dependencies (torch included) through a .pth to this venv rather than a reinstall. A .pth
    # line adds a path but runs none of that folder's own .pth files, so this venv's editable
    # tlwidgets stays out of the way.
    (site / "_tlw_main_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    share = Path(sys.prefix) / "share" / "jupyter"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "VIRTUAL_ENV", "NODE_PATH", "PYTHONHOME")
    }
    env.update(
        # Only the new venv's bin: no node, no npm.
        PATH=str(env_dir / "bin"),
        VIRTUAL_ENV=str(env_dir),
        # JupyterLab's built app and the widget extensions live in this venv's share/jupyter.
        JUPYTERLAB_DIR=str(share / "lab"),
        JUPYTER_PATH=str(share),
    )
    assert shutil.which("node", path=env["PATH"]) is None
    assert shutil.which("npm", path=env["PATH"]) is None
    where = run(
        python, "-c", "import tlwidgets; print(tlwidgets.__file__)", env=env, cwd=base
    ).stdout
    assert Path(where.strip()).is_relative_to(site), f"tlwidgets came from {where}, not the wheel"
    return python, env


def test_the_installed_wheel_renders_run_controls_without_node(wheel_venv, browser, request):
    python, env = wheel_venv
    with start_lab(python=python, env=env) as lab:
        opener = NotebookOpener(lab, browser, _safe(request.node.name))
        failed = True
        try:
            nb = opener(
                [
                    "import os, shutil, sys, tlwidgets as tlw\n"
                    "print(tlw.__file__, sys.executable, shutil.which('node'))",
                    "controls = tlw.RunControls(state='paused')\n"
                    "pressed = []\n"
                    "controls.on_action(pressed.append)\n"
                    "controls",
                ]
            )
            where = nb.kernel("print(tlw.__file__); print(shutil.which('node'))").split()
            assert Path(where[0]).is_relative_to(python.parent.parent), where
            assert where[1] == "None"
            page = nb.page
            page.wait_for_function(
                "() => document.querySelector('.tlw-run-controls .tlw-badge')?.textContent"
                " === 'Paused'",
                timeout=60_000,
            )
            page.locator('.tlw-run-controls button[data-action="resume"]').click()
            nb.wait_for("pressed == ['resume']")
            failed = False
        finally:
            opener.close_all(failed=failed)
