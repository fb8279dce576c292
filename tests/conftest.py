"""Shared pytest setup.

Tests under tests/browser/ are marked ``browser`` automatically, so ``-m "not browser"`` never
starts a JupyterLab or a Chromium even when a browser test forgot its marker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

BROWSER_DIR = Path(__file__).resolve().parent / "browser"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if BROWSER_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)
