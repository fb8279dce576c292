"""The core never imports the UI: scripts and servers can use it without ipywidgets."""

from __future__ import annotations

import ast
import json
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "tlwidgets"
CORE_MODULES = ["catalog", "weights", "data", "freeze", "training", "evaluation"]
FORBIDDEN = ("ipywidgets", "anywidget", "bqplot", "tlwidgets.widgets")


def existing_core_modules() -> list[str]:
    names = []
    for name in CORE_MODULES:
        if (PACKAGE / f"{name}.py").exists() or (PACKAGE / name / "__init__.py").exists():
            names.append(f"tlwidgets.{name}")
    return names


def core_files() -> list[pathlib.Path]:
    return sorted(
        path for path in PACKAGE.rglob("*.py") if "widgets" not in path.relative_to(PACKAGE).parts
    )


def is_forbidden(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN)


def test_importing_the_core_loads_no_widget_library():
    modules = ["tlwidgets", *existing_core_modules()]
    # A fresh interpreter: this test process may already have ipywidgets loaded.
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    offenders = [name for name in loaded if is_forbidden(name)]
    assert offenders == [], f"importing {modules} loaded {offenders}"


def imports_of(path: pathlib.Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package_parts = ["tlwidgets", *path.relative_to(PACKAGE).parent.parts]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # `from tlwidgets import widgets` / `from . import widgets`
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call):
            func = getattr(node.func, "attr", getattr(node.func, "id", ""))
            first = node.args[0] if node.args else None
            dynamic = func in ("import_module", "__import__")
            if dynamic and isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((node.lineno, first.value))
    return found


def test_no_core_file_imports_a_widget_library():
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {module}"
        for path in core_files()
        for line, module in imports_of(path)
        if is_forbidden(module)
    ]
    assert offenders == [], "the core must not import the UI:\n" + "\n".join(offenders)


def test_the_scan_sees_relative_and_absolute_widget_imports(tmp_path, monkeypatch):
    # Guards the guard: a scan that parsed nothing would pass every real file.
    fake = tmp_path / "tlwidgets" / "training"
    fake.mkdir(parents=True)
    bad = fake / "loop.py"
    bad.write_text(
        "import ipywidgets as w\nfrom ..widgets import dashboard\nfrom bqplot.marks import Lines\n"
        "import importlib\nimportlib.import_module('anywidget')\nfrom .. import widgets\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "tlwidgets")
    lines = {line for line, module in imports_of(bad) if is_forbidden(module)}
    # Every forbidden import is caught, and the harmless `import importlib` (line 4) is not.
    assert lines == {1, 2, 3, 5, 6}


@pytest.mark.parametrize("name", ["ipywidgets", "anywidget.widget", "tlwidgets.widgets.dashboard"])
def test_forbidden_names_cover_submodules(name):
    assert is_forbidden(name)
    assert not is_forbidden("ipywidgetsx")
