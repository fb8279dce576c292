"""How long ``offline_weight_names`` takes for every timm pretrained name (what the catalog asks).

Builds a fake Hugging Face cache (real layout) holding REPOS of the names, plus a torch.hub
checkpoints folder, in a temp dir, then times, side by side in one run:

- ``offline_weight_names`` (lists each cache folder once), and
- the naive way: one cache look-up (stat of refs/ and snapshot files) and one cfg copy per name.

Run: ``.venv/bin/python benchmarks/bench_weights.py``. No network is used.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import timm
import timm.models

from tlwidgets import _hf_cache
from tlwidgets import weights as tw

REPOS = 150
CHECKPOINTS = 20
RUNS = 7


def build_cache(root: Path, hub_ids: dict[str, str | None]) -> None:
    commit = "0" * 40
    with_ids = [n for n, h in hub_ids.items() if h]
    for name in with_ids[:: max(1, len(with_ids) // REPOS)][:REPOS]:
        repo = root / "hub" / _hf_cache.repo_folder_name(hub_ids[name])
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(commit)
        (repo / "blobs").mkdir()
        (repo / "blobs" / "b").write_bytes(b"x")
        snap = repo / "snapshots" / commit
        snap.mkdir(parents=True)
        (snap / "model.safetensors").symlink_to("../../blobs/b")
    checkpoints = root / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    urls = [tw._url_filename(timm.models.get_pretrained_cfg(n)) for n in list(hub_ids)[:200]]
    for url_file in [u for u in urls if u][:CHECKPOINTS]:
        (checkpoints / url_file).write_bytes(b"x")


def naive(hub_ids: dict[str, str | None]) -> set[str]:
    found = {n for n in hub_ids if tw._packaged_path(n) is not None}
    checkpoints = _hf_cache.torch_hub_checkpoints_dir()
    for name, hub_id in hub_ids.items():
        cfg = timm.models.get_pretrained_cfg(name)
        if hub_id and _hf_cache.find_hf_cached_weights(hub_id, tw._hf_filenames(cfg)):
            found.add(name)
        elif cfg.url and (checkpoints / tw._url_filename(cfg)).is_file():
            found.add(name)
    return found


def timed(fn, *args) -> tuple[float, object]:
    times, result = [], None
    for _ in range(RUNS):
        start = time.perf_counter()
        result = fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    hub_ids = {n: timm.models.get_pretrained_cfg(n).hf_hub_id for n in timm.list_pretrained()}
    with tempfile.TemporaryDirectory() as tmp:
        build_cache(Path(tmp), hub_ids)
        os.environ["HF_HUB_CACHE"] = str(Path(tmp) / "hub")
        os.environ["TORCH_HOME"] = str(Path(tmp) / "torch")
        start = time.perf_counter()
        tw.offline_weight_names(hub_ids)
        first = time.perf_counter() - start
        fast, fast_result = timed(tw.offline_weight_names, hub_ids)
        slow, slow_result = timed(naive, hub_ids)
    assert fast_result == slow_result, (len(fast_result), len(slow_result))
    print(f"names checked: {len(hub_ids)}; cached repos: {REPOS}; torch.hub files: {CHECKPOINTS}")
    print(f"found offline: {len(fast_result)} (both methods agree)")
    print(f"offline_weight_names first call: {first * 1e3:.1f} ms (builds the url index once)")
    print(f"offline_weight_names median of {RUNS}: {fast * 1e3:.1f} ms")
    print(f"naive stat + cfg per name, median of {RUNS}: {slow * 1e3:.1f} ms")
    print(f"ratio naive / offline_weight_names: {slow / fast:.1f}x")


if __name__ == "__main__":
    main()
