"""Loop overhead: Trainer images/s divided by a minimal hand-written PyTorch loop, before and after.

Both train the same architecture from the same initial weights on the same in-memory data with
the same batch size, optimizer (AdamW) and loader (``data.train_loader()``), and both run the
validation split after every epoch, so the ratio measures what the Trainer adds: events, the
schedule, the step table, history and checkpoint files, the pause/stop checks. Each run is a
process of its own (after a one-epoch warm-up); the hand loop, today's Trainer and the Trainer of
``--baseline`` (the last commit before the one-loop rewrite, exported with ``git archive``) take
turns going first, round after round, and the medians of the per-round ratios are printed, for
32-step and 8-step epochs (targets 0.97 and 0.93: the Trainer's fixed cost per epoch and per run
weighs most on short epochs).

Run on the CPU:  ``.venv/bin/python benchmarks/bench_trainer.py``
On a GPU:        ``.venv/bin/python benchmarks/bench_trainer.py --device cuda --amp --baseline ''``
(``--amp`` uses bf16 autocast where supported, else fp16 with a grad scaler, and channels-last,
in both loops, exactly as the Trainer does on CUDA.)
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import inspect
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import timm
import torch
from torch import nn

import tlwidgets as tlw
from tlwidgets.training import Trainer

#: Trainer / hand-written loop, by training steps per epoch (issue 10)
TARGETS = {32: 0.97, 8: 0.93}
#: the last commit before the one-loop rewrite: its Trainer runs beside today's
BASELINE_REV = "ad439bb"


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
        kwargs = {"verbose": False} if "verbose" in inspect.signature(Trainer).parameters else {}
        trainer = Trainer(model, data, lr=lr, epochs=epochs, device=device,
                          amp="auto" if amp else False, run_dir=run_dir, **kwargs)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        trainer.fit()
        sync()
        return time.perf_counter() - t0, time.process_time() - c0


def worker(args: argparse.Namespace) -> None:
    """One timed run in this process (after a one-epoch warm-up); prints JSON."""
    if args.threads:
        torch.set_num_threads(args.threads)
    n = args.steps * args.batch_size * 5 // 4  # 80 % train: `steps` batches an epoch
    data = make_data(n, args.img_size, args.batch_size, classes=4)
    torch.manual_seed(0)
    base = timm.create_model(args.model, pretrained=False, num_classes=4)
    fn = hand_loop if args.worker == "hand" else trainer_loop
    fn(copy.deepcopy(base), data, 1, 1e-3, args.device, args.amp)
    secs, cpu = fn(copy.deepcopy(base), data, args.epochs, 1e-3, args.device, args.amp)
    images = len(data.train_items) * args.epochs
    print(json.dumps({"img_s": images / secs, "img_cpu_s": images / cpu, "secs": secs}))


def run_worker(which: str, args: argparse.Namespace, steps: int, pythonpath: str | None) -> dict:
    cmd = [sys.executable, __file__, "--worker", which, "--steps", str(steps)]
    for flag in ("model", "img_size", "batch_size", "epochs", "device", "threads"):
        value = getattr(args, flag)
        if value is not None:
            cmd += [f"--{flag.replace('_', '-')}", str(value)]
    if args.amp:
        cmd.append("--amp")
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True, timeout=1800)
    return json.loads(out.stdout.strip().splitlines()[-1])


def baseline_tree(rev: str) -> str:
    """The package as it was at ``rev``, exported to a temporary folder (for PYTHONPATH)."""
    repo = pathlib.Path(__file__).resolve().parent.parent
    folder = tempfile.mkdtemp(prefix="tlw-baseline-")
    archive = subprocess.run(["git", "-C", str(repo), "archive", rev, "tlwidgets"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--img-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, nargs="+", default=[32, 8],
                    help="training steps per epoch; one comparison per value")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", action="store_true")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (1 avoids OpenMP spin-waits on a crowded machine)")
    ap.add_argument("--baseline", default=BASELINE_REV,
                    help="git revision whose Trainer runs beside today's ('' for none)")
    ap.add_argument("--worker", choices=["hand", "trainer"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.amp and args.device != "cuda":
        ap.error("--amp needs --device cuda")
    if args.worker:
        args.steps = args.steps[0]
        worker(args)
        return
    base_path = baseline_tree(args.baseline) if args.baseline else None
    dev = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu"
    print(f"{args.model} {args.img_size}px, batch {args.batch_size}, {args.epochs} epochs per run, "
          f"{args.rounds} rounds, device {args.device} ({dev}), amp={args.amp}, torch threads "
          f"{args.threads or torch.get_num_threads()}; each run in its own process after a "
          f"one-epoch warm-up; load average {os.getloadavg()[0]:.1f}")
    kinds = ["hand", "trainer"] + (["before"] if base_path else [])
    for steps in args.steps:
        rates: dict[str, list[float]] = {k: [] for k in kinds}
        cpu: dict[str, list[float]] = {k: [] for k in kinds}
        for r in range(args.rounds):
            order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]  # rotate who goes first
            for which in order:
                res = run_worker("hand" if which == "hand" else "trainer", args, steps,
                                 base_path if which == "before" else None)
                rates[which].append(res["img_s"])
                cpu[which].append(res["img_cpu_s"])
            print(f"  {steps}-step epochs, round {r + 1}: " + ", ".join(
                f"{k} {rates[k][-1]:.1f} img/s ({cpu[k][-1]:.1f} per CPU-s)" for k in kinds))
        for k in kinds[1:]:
            pair = statistics.median(a / b for a, b in zip(rates[k], rates["hand"]))
            cpu_pair = statistics.median(a / b for a, b in zip(cpu[k], cpu["hand"]))
            target = TARGETS.get(steps)
            verdict = "" if target is None or k != "trainer" else \
                f" (target >= {target}: {'PASS' if pair >= target else 'FAIL'})"
            label = "Trainer now" if k == "trainer" else f"Trainer at {args.baseline}"
            print(f"{steps}-step epochs: {label} / hand loop = {pair:.3f} img/s, "
                  f"{cpu_pair:.3f} per CPU-second (medians of per-round ratios){verdict}")


if __name__ == "__main__":
    main()
