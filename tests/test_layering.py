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


def test_following_a_run_folder_imports_no_torch():
    # a dashboard that follows a torchrun job reads files: the reader, the follower and the
    # run-folder format load neither torch nor the Trainer
    code = (
        "import json, sys\n"
        "from tlwidgets.training.run_follower import RunFollower\n"
        "from tlwidgets.training.run_reader import RunReader\n"
        "import tlwidgets.training.run_files\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')\n"
        "                        or m == 'tlwidgets.training.trainer')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def imports_of(path: pathlib.Path, package: pathlib.Path | None = None) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package_parts = ["tlwidgets", *path.relative_to(package or PACKAGE).parent.parts]
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


# ---- the order of the core's layers --------------------------------------------------------------
# A unit is a top-level module (tlwidgets/x.py) or package (tlwidgets/x/). Every import counts,
# at module level or inside a function: a lazy import still ties the two modules together.


def _unit(path: pathlib.Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def core_import_graph(package: pathlib.Path | None = None) -> dict[str, set[str]]:
    root = package or PACKAGE
    graph: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).parts
        if rel[0] == "widgets" or rel == ("__init__.py",):
            continue
        unit = rel[0].removesuffix(".py")
        for _, module in imports_of(path, root):
            parts = module.split(".")
            if parts[0] == "tlwidgets" and len(parts) > 1 and parts[1] not in (unit, "widgets"):
                graph.setdefault(unit, set()).add(parts[1])
        graph.setdefault(unit, set())
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_two_core_modules_import_each_other():
    assert cycles(core_import_graph()) == []


#: lower layers never import higher ones (each row may import the rows above it)
LAYERS = [
    {"errors", "_lazy"},
    {"_runtime", "_offline", "_hf_cache", "_bn_policy", "_sample_data", "_weights_io",
     "_weights_fit", "_hf_groups", "_image_files", "_class_folders", "_image_transforms",
     "_data_splits", "_image_arrays", "_image_dataset", "_data_summary"},
    {"catalog", "freeze", "data"},
    {"weights", "text"},
    {"evaluation"},
    {"training"},
]


def test_the_core_layers_keep_their_order():
    graph = core_import_graph()
    layer_of = {unit: i for i, row in enumerate(LAYERS) for unit in row}
    offenders = [
        f"{unit} (layer {layer_of[unit]}) imports {dep} (layer {layer_of[dep]})"
        for unit, deps in graph.items() if unit in layer_of
        for dep in deps if dep in layer_of and layer_of[dep] > layer_of[unit]
    ]
    assert offenders == []
    # the layers named above exist (a rename must update this test, not silently pass)
    assert {"errors", "_runtime", "freeze", "data", "weights", "evaluation", "training"} <= set(graph)


def test_no_core_module_imports_another_modules_private_names():
    offenders = []
    for path in core_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        package_parts = ["tlwidgets", *path.relative_to(PACKAGE).parent.parts]
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.module == "__future__":
                continue
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("tlwidgets"):
                continue
            target = PACKAGE.parent.joinpath(*module.split("."))
            for alias in node.names:
                name = alias.name
                is_module = (target / f"{name}.py").exists() or (target / name).is_dir()
                if name.startswith("_") and not name.startswith("__") and not is_module:
                    offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: "
                                     f"from {module} import {name}")
    assert offenders == [], "\n".join(offenders)


def test_the_layer_checks_see_a_cycle_and_a_private_import(tmp_path):
    fake = tmp_path / "tlwidgets"
    (fake / "training").mkdir(parents=True)
    (fake / "evaluation.py").write_text("def f():\n    from .training import loop\n")
    (fake / "training" / "loop.py").write_text("from ..evaluation import _secret\n")
    assert cycles(core_import_graph(fake)) == [["evaluation", "training"]]
