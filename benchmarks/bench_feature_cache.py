"""Feature cache: a head-only epoch without the cache divided by one with it (target >= 50x).

EfficientNet-Lite0 (timm ``tf_efficientnet_lite0``, random init: the speed does not depend on
the weights) at 128 px, everything but the classifier frozen (BN policy "eval"), on the offline
sample photos (``tlw.sample_data``, augmentation off so the cache applies). Each trainer runs
three epochs; the figure compares the epochs after the first (training plus validation, as the
history's ``seconds``). Computing the features (one pass of the backbone over both splits,
before the first epoch) is timed and printed separately.
Runs alternate between the two settings; the medians are compared. The feature store on disk is
emptied before each cached run (each computes its features), and a last run on the same data and
model shows the second run skipping extraction (its time printed).

Run: ``.venv/bin/python benchmarks/bench_feature_cache.py``
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time

import timm
import torch

import tlwidgets as tlw
from tlwidgets.training import Trainer
from tlwidgets.training.feature_store import FeatureStore

TARGET = 50.0


def epoch_seconds(model: torch.nn.Module, data: tlw.ImageData, cache: bool, epochs: int
                  ) -> tuple[list[float], float, float, float]:
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(model, data, lr=1e-3, epochs=epochs, cache_features=cache,
                          run_dir=run_dir, verbose=False)
        t0 = time.perf_counter()
        trainer.fit()
        wall = time.perf_counter() - t0
        assert (trainer.feature_cache is not None) == cache
        h = trainer.history
        extract = trainer.feature_cache.seconds if cache else 0.0
        return h["seconds"].tolist(), float(h["accuracy"].iloc[-1]), wall, extract


def main() -> None:
    os.environ["TLWIDGETS_CACHE_DIR"] = tempfile.mkdtemp(prefix="tlw-bench-cache-")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--img-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    torch.manual_seed(0)
    base = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=4)
    tlw.freeze_to(base, -1)
    data = tlw.sample_data(model=base, img_size=args.img_size, augment="none")
    print(f"tf_efficientnet_lite0 (random init) {args.img_size}px, head only, "
          f"{len(data.train_items)} train / {len(data.valid_items)} valid images, "
          f"batch {data.batch_size}, {args.epochs} epochs per run, torch threads "
          f"{torch.get_num_threads()}")
    later: dict[bool, list[float]] = {False: [], True: []}
    per_epoch_wall: list[float] = []
    extract_times: list[float] = []
    store = FeatureStore()
    for r in range(args.rounds):
        for cache in ([False, True] if r % 2 == 0 else [True, False]):
            if cache:
                store.clear()  # each cached run computes its features
            secs, acc, wall, extract = epoch_seconds(copy.deepcopy(base), data, cache,
                                                     args.epochs)
            later[cache].extend(secs[1:])
            if cache:
                per_epoch_wall.append((wall - extract) / args.epochs)
                extract_times.append(extract)
            print(f"  round {r + 1}, cache={cache}: epoch seconds "
                  f"{', '.join(f'{s:.4f}' for s in secs)}; whole fit() {wall:.2f} s"
                  + (f" (features computed in {extract:.2f} s)" if cache else "")
                  + f"; accuracy {acc:.3f}")
    secs, acc, wall, extract = epoch_seconds(copy.deepcopy(base), data, True, args.epochs)
    print(f"  second run on the same data and model: features read from the store in "
          f"{extract:.3f} s (extraction skipped: the first cached run computed them in "
          f"{statistics.median(extract_times):.2f} s), whole fit() {wall:.2f} s")
    without, with_cache = statistics.median(later[False]), statistics.median(later[True])
    ratio = without / with_cache
    print(f"median epoch after the first: without cache {without:.3f} s, with cache "
          f"{with_cache:.4f} s")
    print(f"ratio without / with cache = {ratio:.1f}x (target >= {TARGET:.0f}x, moonshot "
          f"100x): {'PASS' if ratio >= TARGET else 'FAIL'}")
    print(f"cached epoch including its bookkeeping (fit() wall minus extraction, per epoch): "
          f"{statistics.median(per_epoch_wall):.4f} s; ratio {without / statistics.median(per_epoch_wall):.1f}x")


if __name__ == "__main__":
    main()
