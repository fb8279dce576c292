"""Every notebook in notebooks/ runs top to bottom in this venv's kernel."""

from __future__ import annotations

import pathlib
import re
import sys

import nbformat
import pytest

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def notebook_paths() -> list[pathlib.Path]:
    return sorted(p for p in NOTEBOOKS.glob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def run_notebook(path: pathlib.Path, timeout: int = 900) -> nbformat.NotebookNode:
    """Execute ``path`` with nbclient in a kernel running this interpreter, cwd = notebooks/.

    Raises AssertionError naming the cell and its error when a cell fails.
    """
    from jupyter_client.kernelspec import NATIVE_KERNEL_NAME
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        # The native kernel is this very interpreter, so the notebook sees this venv's packages.
        kernel_name=NATIVE_KERNEL_NAME,
        resources={"metadata": {"path": str(path.parent)}},
        allow_errors=False,
    )
    try:
        client.execute()
    except CellExecutionError as error:
        failing = next(
            (
                (index, cell)
                for index, cell in enumerate(notebook.cells)
                if cell.cell_type == "code"
                and any(out.get("output_type") == "error" for out in cell.get("outputs", []))
            ),
            None,
        )
        where = (
            f"cell {failing[0]}:\n--- source ---\n{failing[1].source}\n" if failing else "a cell:\n"
        )
        raise AssertionError(
            f"{path.name} failed in {where}--- error ---\n{_ANSI.sub('', str(error))}"
        ) from None
    return notebook


@pytest.mark.notebook
@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.name)
def test_notebook_runs_without_errors(path):
    notebook = run_notebook(path)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells, f"{path.name} has no code cells"
    assert all(cell.get("execution_count") for cell in code_cells), "a code cell did not run"


def test_there_are_notebooks_to_run():
    # An empty notebooks/ would make the notebook run pass vacuously.
    assert any(p.name == "quickstart.ipynb" for p in notebook_paths())


if __name__ == "__main__":
    # `python tests/test_notebooks.py notebooks/quickstart.ipynb`: used by `make demo-headless`.
    for arg in sys.argv[1:] or [str(p) for p in notebook_paths()]:
        run_notebook(pathlib.Path(arg).resolve())
        print(f"ran {arg}: every cell succeeded")
