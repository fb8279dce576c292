"""Loop overhead: Trainer images/s divided by a minimal hand-written PyTorch loop (target >= 0.97).

Both train the same architecture from the same initial weights on the same in-memory data with
the same batch size, optimizer (AdamW) and loader (``data.train_loader()``), and both run the
validation split after every epoch, so the ratio measures what the Trainer adds: events, the
schedule, the step table, history and checkpoint files, the pause/stop checks. Runs alternate
(Trainer first on even rounds, the hand loop first on odd ones) and the medians are compared.

The defaults (resnet18, 64 px, 40 steps an epoch, 2 epochs) are a short but real run. The
Trainer's fixed cost per run (epoch checkpoints, history and step files) is about 0.2 s on a
2-core CPU: on a quiet machine the ratio was 0.980 with these defaults and 0.874 on a 16-step
toy run (``--img-size 32 --n 640 --epochs 1``), where that fixed cost is a tenth of the time.

Run on the CPU:  ``.venv/bin/python benchmarks/bench_trainer.py``
On a GPU:        ``.venv/bin/python benchmarks/bench_trainer.py --device cuda --amp``
(``--amp`` uses bf16 autocast where supported, else fp16 with a grad scaler, and channels-last,
in both loops, exactly as the Trainer does on CUDA.)
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import platform
import statistics
import tempfile
import time

import numpy as np
import timm
import torch
from torch import nn

import tlwidgets as tlw
from tlwidgets.training import Trainer

TARGET = 0.97


def make_data(n: int, size: int, batch_size: int, classes: int) -> tlw.ImageData:
    rng = np.random.default_rng(0)
    labels = np.arange(n) % classes
    images = (rng.random((n, size, size, 3)) * 255).astype(np.uint8)
    return tlw.ImageData.from_arrays(images, labels, batch_size=batch_size, img_size=size,
                                     augment="none", valid_pct=0.2)


def hand_loop(model: nn.Module, data: tlw.ImageData, epochs: int, lr: float, device: str,
              amp: bool) -> tuple[float, float]:
    """The loop a careful user writes by hand; returns (wall, process CPU) seconds."""
    model.to(device)
    dtype = None
    scaler = None
    if amp:
        model.to(memory_format=torch.channels_last)
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    kwargs = {"fused": True} if device == "cuda" else {}
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, **kwargs)
    autocast = (lambda: torch.autocast("cuda", dtype=dtype)) if dtype else contextlib.nullcontext
    loader = data.train_loader()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if amp:
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
        model.eval()
        correct = torch.zeros((), device=device, dtype=torch.long)
        with torch.no_grad():
            for x, y in data.valid_loader():
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                if amp:
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast():
                    correct += (model(x).argmax(1) == y).sum()
        float(correct)  # the one readback per epoch the Trainer also does
    sync()
    return time.perf_counter() - t0, time.process_time() - c0


def trainer_loop(model: nn.Module, data: tlw.ImageData, epochs: int, lr: float, device: str,
                 amp: bool) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(model, data, lr=lr, epochs=epochs, device=device,
                          amp="auto" if amp else False, run_dir=run_dir)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        trainer.fit()
        sync()
        return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--img-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--n", type=int, default=1600, help="images (80%% train, 20%% valid)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", action="store_true")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (1 avoids OpenMP spin-waits on a crowded machine)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.amp and args.device != "cuda":
        ap.error("--amp needs --device cuda")

    data = make_data(args.n, args.img_size, args.batch_size, classes=4)
    torch.manual_seed(0)
    base = timm.create_model(args.model, pretrained=False, num_classes=4)
    images = len(data.train_items) * args.epochs
    dev = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu"
    print(f"{args.model} {args.img_size}px, batch {args.batch_size}, {len(data.train_items)} train"
          f" / {len(data.valid_items)} valid images, {args.epochs} epochs per run, "
          f"{args.rounds} rounds, device {args.device} ({dev}), amp={args.amp}, "
          f"torch threads {torch.get_num_threads()}")
    print("optimizer AdamW in both; the Trainer uses foreach=True on CPU (fused on CUDA), the "
          "hand loop torch's default on CPU (a for-loop over tensors) and fused on CUDA")

    # one warm-up of each (allocator, first-call costs)
    hand_loop(copy.deepcopy(base), data, 1, 1e-3, args.device, args.amp)
    trainer_loop(copy.deepcopy(base), data, 1, 1e-3, args.device, args.amp)

    rates: dict[str, list[float]] = {"trainer": [], "hand": []}
    cpu_rates: dict[str, list[float]] = {"trainer": [], "hand": []}
    for r in range(args.rounds):
        order = ["trainer", "hand"] if r % 2 == 0 else ["hand", "trainer"]
        for which in order:
            fn = trainer_loop if which == "trainer" else hand_loop
            secs, cpu = fn(copy.deepcopy(base), data, args.epochs, 1e-3, args.device, args.amp)
            rates[which].append(images / secs)
            cpu_rates[which].append(images / cpu)
        print(f"  round {r + 1}: trainer {rates['trainer'][-1]:.1f} img/s "
              f"({cpu_rates['trainer'][-1]:.1f} img per CPU-s), hand loop "
              f"{rates['hand'][-1]:.1f} img/s ({cpu_rates['hand'][-1]:.1f} img per CPU-s)")
    t, h = statistics.median(rates["trainer"]), statistics.median(rates["hand"])
    ratio = t / h
    # On a shared machine the load drifts between rounds; the ratio within each round (runs
    # back to back) is the steadier figure.
    pair = statistics.median(a / b for a, b in zip(rates["trainer"], rates["hand"]))
    print(f"median: trainer {t:.1f} img/s, hand loop {h:.1f} img/s")
    cpu_pair = statistics.median(a / b for a, b in zip(cpu_rates["trainer"], cpu_rates["hand"]))
    print(f"median of per-round ratios of images per CPU-second (steadier on a shared machine) "
          f"= {cpu_pair:.3f}")
    print(f"ratio of medians trainer / hand loop = {ratio:.3f}; median of per-round ratios = "
          f"{pair:.3f} (target >= {TARGET}): {'PASS' if pair >= TARGET else 'FAIL'}")


if __name__ == "__main__":
    main()
