"""How long ``tlw.catalog()`` takes, cold and warm, measured side by side in one run.

1. Cold: a fresh interpreter runs ``import tlwidgets as tlw; tlw.catalog()`` and reports the
   time from before ``import tlwidgets`` to the returned frame (target < 2 s), split into the
   static table (snapshot or timm registry) and the first ``cached`` column (from
   ``tlwidgets._offline``, which imports neither torch nor timm), beside a fresh ``import torch``
   for scale. Repeated ``--repeats`` times; the median is printed. Also cold with filled caches:
   a Hugging Face cache entry and a torch.hub checkpoint (made here, a few bytes each), which
   the ``cached`` column must match to file names without asking timm.
2. Cold after ``import timm``: the same, in an interpreter that imported timm first (the catalog
   then reads timm's live registry instead of the snapshot's cfg columns).
3. Warm: repeated calls in one process (target < 50 ms each): median and worst.

Run: .venv/bin/python benchmarks/bench_catalog.py [--repeats 3] [--calls 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COLD = r"""
import json, sys, time
t0 = time.perf_counter()
if {import_timm}:
    import timm
t1 = time.perf_counter()
import importlib
import tlwidgets as tlw
cat = importlib.import_module("tlwidgets.catalog")
t2 = time.perf_counter()
static = cat._build_static()
t3 = time.perf_counter()
timm_after_static = "timm" in sys.modules
hub = static["hf_hub_id"]
cat._offline_names(dict(zip(static["name"], hub.where(hub.notna(), None))))
t4 = time.perf_counter()
print(json.dumps({{"timm_import": t1 - t0, "import": t2 - t1, "static": t3 - t2,
                   "cached": t4 - t3, "total": t4 - t1, "rows": len(static),
                   "timm_loaded_by_static": timm_after_static and not {import_timm},
                   "torch_loaded": "torch" in sys.modules}}))
"""

PLAIN_COLD = r"""
import json, sys, time
t0 = time.perf_counter()
import tlwidgets as tlw
df = tlw.catalog()
t1 = time.perf_counter()
print(json.dumps({"total": t1 - t0, "rows": len(df), "cached": int(df["cached"].sum()),
                  "torch_loaded": "torch" in sys.modules, "timm_loaded": "timm" in sys.modules}))
"""


TORCH_ONLY = r"""
import json, time
t0 = time.perf_counter()
import torch
print(json.dumps({"total": time.perf_counter() - t0}))
"""


def run_fresh(code: str, env: dict[str, str] | None = None) -> dict:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def filled_caches(root: Path) -> dict[str, str]:
    """An environment whose HF hub cache holds resnet18.a1_in1k and whose torch.hub
    checkpoints hold resnet18.tv_in1k's file name (contents are irrelevant to ``cached``)."""
    commit = "0" * 40
    repo = root / "hub" / "models--timm--resnet18.a1_in1k"
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit / "model.safetensors").write_bytes(b"x")
    checkpoints = root / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "resnet18-f37072fd.pth").write_bytes(b"x")  # resnet18.tv_in1k's url file
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TORCH"))}
    return env | {"HF_HUB_CACHE": str(root / "hub"), "TORCH_HOME": str(root / "torch")}


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()

    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{args.repeats} fresh interpreters per cold figure, {args.calls} warm calls, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (timings scale with it)")

    plain = [run_fresh(PLAIN_COLD) for _ in range(args.repeats)]
    with tempfile.TemporaryDirectory() as tmp:
        env = filled_caches(Path(tmp))
        filled = [run_fresh(PLAIN_COLD, env) for _ in range(args.repeats)]
    torch_only = [run_fresh(TORCH_ONLY) for _ in range(args.repeats)]
    split = [run_fresh(COLD.format(import_timm=False)) for _ in range(args.repeats)]
    after_timm = [run_fresh(COLD.format(import_timm=True)) for _ in range(args.repeats)]

    total = median_of(plain, "total")
    print(f"\ncold  import tlwidgets + tlw.catalog(): {total * 1000:8.0f} ms  "
          f"(target 2000 ms, {total / 2.0:.2f}x of target; rows {plain[0]['rows']}; "
          f"torch imported: {plain[0]['torch_loaded']}, timm imported: {plain[0]['timm_loaded']})")
    total = median_of(filled, "total")
    print(f"cold  same, caches filled (HF + torch.hub): {total * 1000:6.0f} ms  "
          f"({total / 2.0:.2f}x of target; cached rows {filled[0]['cached']} vs "
          f"{plain[0]['cached']} empty; torch imported: {filled[0]['torch_loaded']}, "
          f"timm imported: {filled[0]['timm_loaded']})")
    print(f"      for scale, `import torch` alone:      {median_of(torch_only, 'total') * 1000:8.0f} ms"
          "  (same machine, same run)")
    print(f"      of which static table (snapshot):   {median_of(split, 'static') * 1000:8.0f} ms"
          f"  (timm imported by it: {split[0]['timm_loaded_by_static']})")
    print(f"      of which first `cached` column:      {median_of(split, 'cached') * 1000:8.0f} ms"
          f"  (torch imported by it: {split[0]['torch_loaded']})")
    print(f"cold  after `import timm` ({median_of(after_timm, 'timm_import') * 1000:.0f} ms, not "
          f"counted): {median_of(after_timm, 'total') * 1000:8.0f} ms  (static from timm's "
          f"registry: {median_of(after_timm, 'static') * 1000:.0f} ms)")

    import importlib

    import tlwidgets as tlw

    cat = importlib.import_module("tlwidgets.catalog")
    tlw.catalog()
    times = []
    for _ in range(args.calls):
        t = time.perf_counter()
        tlw.catalog()
        times.append(time.perf_counter() - t)
    warm, worst = statistics.median(times), max(times)
    print(f"\nwarm  tlw.catalog() repeated:           {warm * 1000:8.1f} ms median, "
          f"{worst * 1000:.1f} ms worst  (target 50 ms, {warm / 0.05:.2f}x of target)")
    hub_ids = cat._hub_ids
    t = time.perf_counter()
    cat._offline_names(hub_ids)
    print(f"      of which offline_weight_names():    {(time.perf_counter() - t) * 1000:8.1f} ms")
    t = time.perf_counter()
    tlw.catalog(refresh=True)
    print(f"      tlw.catalog(refresh=True):          {(time.perf_counter() - t) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
