"""Data-efficiency experiment: 5 sizes x 2 inits x head-only/all x 1 repeat (goal <= 3 min).

``tlw.experiments.data_efficiency`` on the offline texture photographs (``tlw.sample_data``,
4 classes, 40 train / 12 valid per class, 64 px, augmentation off so head-only runs train on
cached features), with ``tf_efficientnet_lite0`` from the packaged ImageNet weights
(``"pretrained"``) and from random weights (``"scratch"``), sizes 1, 2, 4, 8, 16 images per
class, the library's defaults otherwise (8 epochs, at least 16 steps a run, batch 16,
``DEFAULT_LR``). Prints each run as it ends, the wall and process-CPU time of the whole
experiment (the goal is on wall time), the time per init x recipe, and whether the curve shows
pretrained above scratch at every size below the largest (best recipe of each, and per recipe).
Then times ``robustness`` of the four largest-size models (6 corruptions x severities 1, 3, 5).

Run: ``.venv/bin/python benchmarks/bench_experiments.py`` (``--threads 1`` on a busy machine)
"""

from __future__ import annotations

import argparse
import os
import time

import torch

import tlwidgets as tlw
from tlwidgets import experiments as ex

GOAL_S = 180.0
ARCH = "tf_efficientnet_lite0"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--img-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--no-robustness", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    data = tlw.sample_data(model=ARCH, img_size=args.img_size, augment="none")
    plan = ex.plan_runs(data, ARCH, sizes=args.sizes, repeats=args.repeats)
    print(f"{ARCH} at {args.img_size}px, sizes {args.sizes} per class x {ex.INITS} x "
          f"('head', 'all') x {args.repeats} repeat(s) = {len(plan)} runs; "
          f"{len(data.valid_items)} valid images; torch threads {torch.get_num_threads()}; "
          f"load average before {os.getloadavg()[0]:.1f}")
    kept = {}

    def on_result(result: ex.RunResult) -> None:
        r = result.row
        print(f"  {r['size']:>3} per class  {r['init']:<10} {r['recipe']:<4}  accuracy "
              f"{r['accuracy']:.3f}  train {r['train_accuracy']:.3f}  {r['seconds']:6.1f} s  "
              f"{r['epochs']} epochs", flush=True)
        if r["size"] == max(args.sizes) and r["repeat"] == 0:
            kept[f"{r['init']}, {r['recipe']}"] = result.trainer

    cpu0, t0 = time.process_time(), time.perf_counter()
    table = ex.data_efficiency(data, ARCH, sizes=args.sizes, repeats=args.repeats,
                               on_result=on_result)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    print(f"experiment: {wall:.1f} s wall, {cpu:.1f} CPU-s (process), goal <= {GOAL_S:.0f} s: "
          f"{'met' if wall <= GOAL_S else 'MISSED'}; load average after "
          f"{os.getloadavg()[0]:.1f}")
    print(table.groupby(["init", "recipe"])["seconds"].sum().round(1).to_string())

    acc = ex.summarize(table).pivot_table("mean", ["init", "recipe"], "size")
    print(acc.round(3).to_string())
    below = [s for s in sorted(args.sizes) if s < max(args.sizes)]
    best = acc.groupby(level="init").max()
    ok_best = all(best.loc["pretrained", s] > best.loc["scratch", s] for s in below)
    ok_each = {rc: all(acc.loc[("pretrained", rc), s] > acc.loc[("scratch", rc), s]
                       for s in below) for rc in ("head", "all")}
    print(f"pretrained above scratch at every size below {max(args.sizes)}: best recipe "
          f"{ok_best}; per recipe {ok_each}")
    print("reading:", ex.read_data_efficiency(table))
    print("reading:", ex.read_compute(table))
    print("reading:", ex.read_generalization(table))

    if not args.no_robustness and kept:
        t0 = time.perf_counter()
        robust = ex.robustness(kept, data, severities=(1, 3, 5))
        print(f"robustness of {len(kept)} models, {len(robust)} rows: "
              f"{time.perf_counter() - t0:.1f} s")
        print(ex.mean_corruption_accuracy(robust).round(3).to_string())
        print("reading:", ex.read_robustness(robust))


if __name__ == "__main__":
    main()
