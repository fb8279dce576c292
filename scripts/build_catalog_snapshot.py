"""Build tlwidgets/_data/catalog_snapshot.json.gz, the statistics behind ``tlw.catalog()``.

timm's result tables (accuracy, parameters, GMACs, throughput) are not in the timm wheel, so
tlwidgets ships this compact snapshot and never reads the tables at run time.

Inputs
------
* ``../shared/data/timm-results/`` (``--source``): the ``results/`` folder of
  huggingface/pytorch-image-models at the commit its ``MANIFEST.txt`` names
  (aa4b5850c1543fa488abf260f18390eda46cf85d, 2026-08-08); the commit is copied from the MANIFEST
  into the snapshot.
* The installed timm's pretrained cfgs (``timm.list_pretrained()``); its version is recorded,
  and ``tlw.catalog()`` reads the cfg columns from the snapshot only when the same timm version
  is installed.

Tables used and join rules
--------------------------
Every row is one ``timm.list_pretrained()`` name ``arch.tag``; ``img_size`` is the cfg's input
size (longer side). All figures of a row are for that weight at that resolution; a weight whose
tables lack a figure gets NaN, never a neighbour's value.

* ``top1``, ``top5``: ``results-imagenet.csv`` (ImageNet-1k validation), row keyed by
  ``(arch.tag, img_size)``. The table lists some weights twice (train and test resolution);
  the row at the cfg's resolution is the one taken.
* ``gpu_img_s``: ``benchmark-infer-amp-nchw-pt291-cu128-4090.csv`` (RTX 4090, PyTorch 2.9.1,
  AMP, NCHW, eager, batch up to 1024), ``infer_samples_per_sec`` keyed by ``(arch, img_size)``.
  Chosen as the newest eager table of a widely owned card; it covers 1,700 of 1,826 weights.
* ``cpu_img_s``: ``benchmark-infer-fp32-nchw-pt240-cpu-i7_12700h-dynamo.csv`` (a laptop CPU,
  fp32, batch 1), ``infer_samples_per_sec`` keyed by ``(arch, img_size)``.
* ``gmacs``: ``infer_gmacs`` at ``(arch, img_size)`` from the GPU table, else the CPU table, else
  the other ``benchmark-infer-*`` tables, newest PyTorch first (GMACs do not depend on the
  hardware).
* ``params_m``: ``param_count`` of the accuracy row; else ``param_count`` at ``(arch, img_size)``
  from the benchmark tables in the order above, but only when the weight's ``num_classes`` is
  that of the architecture's default cfg, because the benchmarks build each architecture with
  its default head and a 21k-class head adds millions of parameters.
* Not used: ``model_metadata-in1k.csv`` (old model names; ``pretrain`` is parsed from today's
  tags instead), the robustness ``results-imagenet-*`` tables, the training benchmarks.

Numbers of 1,000 and more are written with a thousands comma in the tables ("1,014.45"); the
CSVs are read with ``thousands=","``.

Rebuild
-------
From the repository root, with the project's venv::

    .venv/bin/python scripts/build_catalog_snapshot.py            # writes the snapshot
    .venv/bin/python scripts/build_catalog_snapshot.py --check    # exit 1 if it is stale

Rebuild after upgrading timm or the shared tables; ``tests/test_catalog.py`` fails while the
shipped file is stale (where ``../shared/data`` exists).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tlwidgets.catalog import (  # noqa: E402  (after the path fix so a checkout works uninstalled)
    CFG_COLUMNS,
    COLUMNS,
    SNAPSHOT_FORMAT,
    SNAPSHOT_PATH,
    STAT_COLUMNS,
    timm_cfg_rows,
)

DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "timm-results"
ACCURACY_TABLE = "results-imagenet.csv"
GPU_TABLE = "benchmark-infer-amp-nchw-pt291-cu128-4090.csv"
CPU_TABLE = "benchmark-infer-fp32-nchw-pt240-cpu-i7_12700h-dynamo.csv"


class SourceError(RuntimeError):
    """The source folder is not the timm results folder this script expects."""


def source_commit(source: Path) -> str:
    """The pytorch-image-models commit named in the source folder's MANIFEST.txt."""
    manifest = source / "MANIFEST.txt"
    if not manifest.is_file():
        raise SourceError(f"{manifest} is missing; pass --source pointing at timm-results/.")
    match = re.search(r"commit\s+([0-9a-f]{40})", manifest.read_text(encoding="utf-8"))
    if not match:
        raise SourceError(f"{manifest} names no 40-hex commit; cannot record the source.")
    return match.group(1)


def _torch_version_key(path: Path) -> tuple[int, str]:
    match = re.search(r"-pt(\d+)-", path.name)
    return (-(int(match.group(1)) if match else 0), path.name)


def benchmark_tables(source: Path) -> list[str]:
    """Benchmark tables in the order figures are taken: GPU, CPU, then newest PyTorch first."""
    others = sorted(
        (p for p in source.glob("benchmark-infer-*.csv") if p.name not in (GPU_TABLE, CPU_TABLE)),
        key=_torch_version_key,
    )
    return [GPU_TABLE, CPU_TABLE, *(p.name for p in others)]


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def build_snapshot(source: Path = DEFAULT_SOURCE) -> dict[str, Any]:
    """The snapshot as a dict: metadata plus one list per catalog column (``cached`` excepted)."""
    import pandas as pd
    import timm
    from timm.models import get_pretrained_cfg

    commit = source_commit(source)
    for name in (ACCURACY_TABLE, GPU_TABLE, CPU_TABLE):
        if not (source / name).is_file():
            raise SourceError(f"{source / name} is missing; the join needs it.")

    acc = pd.read_csv(source / ACCURACY_TABLE, thousands=",")
    accuracy = {
        (r.model, int(r.img_size)): (r.top1, r.top5, r.param_count)
        for r in acc.itertuples(index=False)
    }
    tables = benchmark_tables(source)
    bench: list[dict[tuple[str, int], dict[str, Any]]] = []
    for name in tables:
        df = pd.read_csv(source / name, thousands=",")
        if "infer_img_size" not in df.columns:  # the oldest tables lack the size: cannot join
            bench.append({})
            continue
        bench.append({
            (r["model"], int(r["infer_img_size"])): r
            for r in df.to_dict("records")
        })

    def first(key: tuple[str, int], column: str, tables_: list[dict]) -> float | None:
        for table in tables_:
            row = table.get(key)
            if row is not None and column in row:
                value = _num(row[column])
                if value is not None:
                    return value
        return None

    default_classes: dict[str, int] = {}
    columns: dict[str, list[Any]] = {c: [] for c in COLUMNS if c != "cached"}
    for row in timm_cfg_rows():
        arch, size = row["architecture"], row["img_size"]
        top1, top5, params = accuracy.get((row["name"], size), (None, None, None))
        key = (arch, size)
        if arch not in default_classes:
            default_classes[arch] = int(get_pretrained_cfg(arch).num_classes)
        params = _num(params)
        if params is None and row["num_classes"] == default_classes[arch]:
            params = first(key, "param_count", bench)
        stats = {
            "params_m": params,
            "gmacs": first(key, "infer_gmacs", bench),
            "top1": _num(top1),
            "top5": _num(top5),
            "gpu_img_s": first(key, "infer_samples_per_sec", bench[:1]),
            "cpu_img_s": first(key, "infer_samples_per_sec", bench[1:2]),
        }
        for col in CFG_COLUMNS:
            columns[col].append(row[col])
        for col in STAT_COLUMNS:
            columns[col].append(stats[col])

    return {
        "format": SNAPSHOT_FORMAT,
        "timm_version": timm.__version__,
        "source": {
            "repository": "huggingface/pytorch-image-models",
            "folder": "results/",
            "commit": commit,
            "accuracy_table": ACCURACY_TABLE,
            "gpu_table": GPU_TABLE,
            "cpu_table": CPU_TABLE,
            "gmacs_params_tables": tables,
        },
        "columns": columns,
    }


def encode(snapshot: dict[str, Any]) -> bytes:
    """Deterministic bytes (sorted keys, gzip mtime 0), so an unchanged rebuild is a no-op."""
    text = json.dumps(snapshot, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help="the timm-results folder (default: ../shared/data/timm-results)")
    parser.add_argument("--output", type=Path, default=SNAPSHOT_PATH)
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the output differs from a fresh build")
    args = parser.parse_args(argv)
    try:
        data = encode(build_snapshot(args.source))
    except SourceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.check:
        current = args.output.read_bytes() if args.output.is_file() else b""
        if current != data:
            print(f"{args.output} is stale: run scripts/build_catalog_snapshot.py", file=sys.stderr)
            return 1
        print(f"{args.output} is current")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(data)
    rows = len(json.loads(gzip.decompress(data))["columns"]["name"])
    print(f"wrote {args.output} ({len(data):,} bytes, {rows} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
