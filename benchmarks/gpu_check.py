"""The training loop on a real GPU (issue 17): one script, one block of figures, a few minutes.

Installs nothing: it runs in the project's own environment (``make setup``). On a lent GPU::

    .venv/bin/python benchmarks/gpu_check.py            # everything, well under 5 minutes

and on the CPU as a dry run of the same code paths at toy sizes::

    .venv/bin/python benchmarks/gpu_check.py --device cpu

It prints, side by side in one run (runs alternate, medians of per-round ratios):

1. Trainer ÷ hand-written loop images/s for resnet50 at 224 px and vit_base_patch16_224 (random
   init), batch 96: fp32, AMP bf16, AMP fp16 with the grad scaler, each with and without
   channels-last (the ViT without: it has one convolution);
2. head-only on EfficientNet-Lite0 with the feature cache: an uncached epoch ÷ a cached one;
3. a text model's (MiniLM) fine-tune throughput, when ``tlwidgets.text`` and its packages are
   installed;
4. peak memory as the dashboard reports it (``trainer.progress()["memory"]``) against
   ``torch.cuda.max_memory_allocated``;
5. a short real run on the offline sample photos (packaged pretrained Lite0), with its accuracy;
6. the one-step-late loss read: the time the loop waited for losses (``StepLoop.sync_seconds``)
   against the run's time, and a loop that syncs every step, side by side.

Goals (issue 17): Trainer ÷ hand loop ≥ 0.97 everywhere, cached head-only epoch ≥ 20× faster,
AMP bf16 ≥ 1.8× fp32 for resnet50.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import timm
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tlwidgets as tlw  # noqa: E402
from tlwidgets.training import Trainer  # noqa: E402

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def arrays(n: int, size: int, classes: int, batch: int) -> tlw.ImageData:
    rng = np.random.default_rng(0)
    images = (rng.random((n, size, size, 3)) * 255).astype(np.uint8)
    return tlw.ImageData.from_arrays(images, np.arange(n) % classes, batch_size=batch,
                                     img_size=size, augment="none", valid_pct=0.1)


def hand_loop(model: nn.Module, data: tlw.ImageData, epochs: int, device: str, precision: str,
              channels_last: bool, sync_every_step: bool = False) -> float:
    """What a careful user writes; returns images/s over the training steps."""
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    dtype = DTYPES[precision]
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    kw = {"fused": True} if device == "cuda" else {"foreach": True}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, **kw)
    autocast = (lambda: torch.autocast(device, dtype=dtype)) if dtype else contextlib.nullcontext
    loader = data.train_loader()
    model.train()
    sync(device)
    t0, images = time.perf_counter(), 0
    for _ in range(epochs):
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast():
                loss = nn.functional.cross_entropy(model(x).float(), y)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            opt.zero_grad(set_to_none=True)
            if sync_every_step:
                float(loss)  # what reading the loss at once costs
            images += int(y.shape[0])
    sync(device)
    return images / (time.perf_counter() - t0)


def trainer_run(model: nn.Module, data: tlw.ImageData, epochs: int, device: str, precision: str,
                channels_last: bool) -> tuple[float, Trainer]:
    amp = {"fp32": False, "bf16": "bf16", "fp16": "fp16"}[precision]
    with tempfile.TemporaryDirectory() as run_dir:
        t = Trainer(model, data, lr=1e-4, epochs=epochs, device=device, amp=amp,
                    channels_last=channels_last, run_dir=run_dir, verbose=False,
                    schedule="constant")
        sync(device)
        t.fit()
        sync(device)
        # images/s over the training steps only (the hand loop does not validate)
        train = float(t.steps["time"].iloc[-1]) - float(t.steps["time"].iloc[0])
        steps = len(t.steps) - 1
        rate = steps * data.batch_size / train if train > 0 else float("nan")
        return rate, t


def section_loops(args: argparse.Namespace) -> None:
    print("\n1. Trainer / hand-written loop, images/s (training steps), medians of "
          f"{args.rounds} alternating rounds")
    models = [("resnet50", args.size, True), ("vit_base_patch16_224", 224 if args.device ==
                                               "cuda" else args.size, False)]
    if args.device != "cuda":
        models = [("resnet18", args.size, True), ("vit_tiny_patch16_224", args.size, False)]
    precisions = ["fp32", "bf16", "fp16"] if args.device == "cuda" else ["fp32"]
    fp32_rate: dict[str, float] = {}
    for name, size, conv in models:
        kw = {} if name.startswith("resnet") else {"img_size": size}
        torch.manual_seed(0)
        base = timm.create_model(name, pretrained=False, num_classes=10, **kw)
        data = arrays(args.batch * args.steps * 10 // 9, size, 10, args.batch)
        for precision in precisions:
            for cl in ([False, True] if conv else [False]):
                hand_rates, trainer_rates = [], []
                for r in range(args.rounds):
                    order = ("hand", "trainer") if r % 2 == 0 else ("trainer", "hand")
                    for which in order:
                        if which == "hand":
                            hand_rates.append(hand_loop(copy.deepcopy(base), data, 1,
                                                        args.device, precision, cl))
                        else:
                            trainer_rates.append(trainer_run(copy.deepcopy(base), data, 1,
                                                             args.device, precision, cl)[0])
                ratio = statistics.median(t / h for t, h in zip(trainer_rates, hand_rates))
                rate = statistics.median(trainer_rates)
                if precision == "fp32":
                    fp32_rate[f"{name}{cl}"] = rate
                speedup = rate / fp32_rate.get(f"{name}{cl}", rate)
                print(f"   {name:22s} {size}px {precision} channels_last={cl!s:5s} trainer "
                      f"{rate:8.1f} img/s, hand {statistics.median(hand_rates):8.1f}: ratio "
                      f"{ratio:.3f} (>= 0.97: {'PASS' if ratio >= 0.97 else 'FAIL'}); "
                      f"vs fp32 {speedup:.2f}x")


def section_cache(args: argparse.Namespace) -> None:
    print("\n2. head-only with the feature cache (EfficientNet-Lite0, random init)")
    torch.manual_seed(0)
    base = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=10)
    tlw.apply_preset(base, "head")
    data = arrays(args.batch * args.steps * 10 // 9, args.size, 10, args.batch)
    secs = {}
    for cache in (False, True):
        with tempfile.TemporaryDirectory() as run_dir:
            t = Trainer(copy.deepcopy(base), data, epochs=3, device=args.device,
                        cache_features=cache, run_dir=run_dir, verbose=False)
            t.fit()
            secs[cache] = statistics.median(t.history["seconds"].iloc[1:])
    print(f"   epoch {secs[False]:.4f} s uncached, {secs[True]:.4f} s cached: "
          f"{secs[False] / secs[True]:.1f}x (>= 20x: {'PASS' if secs[False] / secs[True] >= 20 else 'FAIL'})")


def section_text(args: argparse.Namespace) -> None:
    print("\n3. text fine-tune throughput (MiniLM)")
    try:
        text = __import__("tlwidgets.text", fromlist=["sample_text_data"])
        model = tlw.create_model("sentence-transformers/all-MiniLM-L6-v2", num_classes=2)
        data = text.sample_text_data(model=model, batch_size=args.batch)
    except Exception as exc:  # noqa: BLE001 - the text issue may not be installed
        print(f"   skipped: {type(exc).__name__}: {exc}")
        return
    with tempfile.TemporaryDirectory() as run_dir:
        t = Trainer(model, data, epochs=1, device=args.device, run_dir=run_dir, verbose=False)
        t.fit()
    print(f"   {t.steps['img_s'].median():.1f} sentences/s (median per step), accuracy "
          f"{t.history['accuracy'].iloc[-1]:.3f}")


def section_memory_and_real_run(args: argparse.Namespace) -> None:
    print("\n4./5. peak memory and a short real run on the offline sample photos")
    model = tlw.create_model("tf_efficientnet_lite0", num_classes=4)
    tlw.apply_preset(model, "last-stage")
    data = tlw.sample_data(model=model, img_size=128)
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as run_dir:
        t = Trainer(model, data, epochs=3, lr=2e-3, device=args.device, run_dir=run_dir,
                    verbose=False)
        t.fit()
        reported = t.progress()["memory"]
    truth = torch.cuda.max_memory_allocated() if args.device == "cuda" else None
    print(f"   accuracy {t.history['accuracy'].iloc[-1]:.3f} after 3 epochs "
          f"({t.history['seconds'].sum():.1f} s); memory reported {reported / 2**20:.1f} MiB"
          + (f", torch.cuda.max_memory_allocated {truth / 2**20:.1f} MiB" if truth else
             " (process RSS on the CPU)"))


def section_overlap(args: argparse.Namespace) -> None:
    print("\n6. the loss read one step late")
    torch.manual_seed(0)
    base = timm.create_model("resnet50" if args.device == "cuda" else "resnet18",
                             pretrained=False, num_classes=10)
    data = arrays(args.batch * args.steps * 10 // 9, args.size, 10, args.batch)
    precision = "bf16" if args.device == "cuda" else "fp32"
    rate, t = trainer_run(copy.deepcopy(base), data, 1, args.device, precision,
                          args.device == "cuda")
    waited = t.step_loop.sync_seconds
    total = float(t.steps["time"].iloc[-1])
    eager = hand_loop(copy.deepcopy(base), data, 1, args.device, precision,
                      args.device == "cuda", sync_every_step=True)
    lazy = hand_loop(copy.deepcopy(base), data, 1, args.device, precision, args.device == "cuda")
    print(f"   trainer waited {waited:.3f} s for losses over a {total:.2f} s run "
          f"({100 * waited / max(total, 1e-9):.1f} %); hand loop reading the loss every step "
          f"{eager:.1f} img/s vs never {lazy:.1f} img/s ({eager / lazy:.3f}); trainer {rate:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None, help="training steps per run")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--only", nargs="*", default=None, help="sections: loops cache text memory overlap")
    args = ap.parse_args()
    gpu = args.device == "cuda"
    args.batch = args.batch or (96 if gpu else 8)
    args.size = args.size or (224 if gpu else 32)
    args.steps = args.steps or (30 if gpu else 3)
    args.rounds = args.rounds or (3 if gpu else 1)
    if gpu:
        torch.backends.cudnn.benchmark = True
        print(f"device {torch.cuda.get_device_name()}, torch {torch.__version__}, "
              f"cuda {torch.version.cuda}, bf16 {torch.cuda.is_bf16_supported()}")
    else:
        torch.set_num_threads(1)
        print(f"dry run on the CPU (toy sizes), torch {torch.__version__}")
    print(f"batch {args.batch}, {args.size}px, {args.steps} steps a run, {args.rounds} rounds")
    t0 = time.perf_counter()
    sections = {"loops": section_loops, "cache": section_cache, "text": section_text,
                "memory": section_memory_and_real_run, "overlap": section_overlap}
    for name, fn in sections.items():
        if args.only is None or name in args.only:
            try:
                fn(args)
            except Exception as exc:  # noqa: BLE001 - one failing section must not hide the rest
                print(f"   {name} FAILED: {type(exc).__name__}: {exc}")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
