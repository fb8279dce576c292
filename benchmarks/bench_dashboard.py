"""Dashboard traffic and overhead, measured side by side in one run.

1. Traffic: a simulated 10,000-step run (real TrainerEvents through the trainer's real EventBus,
   at a fixed step rate) watched by a TrainingDashboard whose widgets talk to a recording comm.
   Prints kernel→browser bytes/s and messages/s (targets: ≤ 50 KB/s, ≤ 20 messages/s) and the
   largest number of points that travelled for one series.
2. Overhead: a real Trainer's images/s with a dashboard attached ÷ without (target ≥ 0.95),
   alternating the two and taking medians, on this machine's CPU.

Run: .venv/bin/python benchmarks/bench_dashboard.py [--steps 10000] [--rate 800] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import sys
import threading
import time

import numpy as np
import pandas as pd
import torch

from tlwidgets.training.events import EventBus, TrainerEvent
from tlwidgets.widgets._traffic import record_traffic


class SimulatedRun:
    """Publishes a training run's events (steps, epochs, states) at a fixed step rate."""

    def __init__(self, steps: int, steps_per_epoch: int, groups: int, rate: float) -> None:
        self.total, self.spe, self.groups, self.rate = steps, steps_per_epoch, groups, rate
        self.bus = EventBus()
        self.state = "idle"
        self.epochs = steps // steps_per_epoch
        self.lr = 1e-3
        self.step = 0
        self.start_time = 0.0
        self.steps = pd.DataFrame(columns=["step", "loss"])
        self.history = pd.DataFrame(columns=["epoch", "train_loss", "valid_loss", "accuracy"])

    def subscribe(self, fn):  # the Trainer's subscription API
        return self.bus.subscribe(fn)

    def progress(self) -> dict:
        elapsed = time.monotonic() - self.start_time if self.start_time else 0.0
        return {"epoch": self.step // self.spe, "epochs": self.epochs, "step": self.step,
                "steps_per_epoch": self.spe, "total_steps": self.total, "elapsed": elapsed,
                "eta": (self.total - self.step) / self.rate, "img_s": 32 * self.rate,
                "device": "cpu", "memory": 1.5e9}

    def _set_state(self, state: str) -> None:
        prev, self.state = self.state, state
        self.bus.publish(TrainerEvent("state", {"state": state, "previous": prev}))

    def run(self) -> None:
        rng = np.random.default_rng(0)
        self.start_time = time.monotonic()
        self._set_state("running")
        for step in range(1, self.total + 1):
            self.step = step
            t = step / self.total
            loss = 2.3 * math.exp(-3 * t) + 0.1 + 0.2 * rng.random()
            lr = 1e-3 * math.sin(math.pi * t) + 1e-6
            self.bus.publish(TrainerEvent("step", {
                "step": step, "epoch": (step - 1) // self.spe, "batch": (step - 1) % self.spe,
                "loss": loss, "lrs": [lr * 0.01, lr * 0.1, lr][: self.groups],
                "img_s": 32 * self.rate, "time": time.monotonic() - self.start_time}))
            if step % self.spe == 0:
                self.bus.publish(TrainerEvent("epoch", {
                    "epoch": step // self.spe - 1, "train_loss": loss, "valid_loss": loss * 1.1,
                    "accuracy": min(0.99, 0.3 + 0.7 * t), "seconds": self.spe / self.rate}))
            # keep the step rate without a busy loop
            ahead = step / self.rate - (time.monotonic() - self.start_time)
            if ahead > 0:
                time.sleep(ahead)
        self._set_state("finished")


def traffic(steps: int, rate: float) -> None:
    from tlwidgets.widgets.dashboard import TrainingDashboard

    with record_traffic() as rec:
        run = SimulatedRun(steps=steps, steps_per_epoch=500, groups=3, rate=rate)
        dash = TrainingDashboard(run, evaluate=False)
        sizes: dict[str, int] = {}
        for name in ("raw_line", "smooth_line", "lr_line", "valid_line"):
            mark = getattr(dash, name)
            mark.observe(lambda ch, n=name: sizes.__setitem__(n, max(sizes.get(n, 0),
                                                                     np.asarray(ch["new"]).size)),
                         "y")
        rec.reset()
        t0 = time.monotonic()
        worker = threading.Thread(target=run.run)
        worker.start()
        worker.join()
        time.sleep(0.5)  # the publisher's last flush
        t1 = time.monotonic()
        bps, mps = rec.rates(t0, t1)
        dash.close()
    print(f"traffic: simulated {steps:,} steps at {rate:.0f} steps/s over {t1 - t0:.1f} s, "
          f"refresh {dash.refresh_hz} Hz")
    print(f"  kernel->browser: {bps / 1024:.1f} KB/s (target <= 50), {mps:.1f} messages/s "
          f"(target <= 20), {rec.messages} messages, {rec.bytes / 1e6:.2f} MB in all, "
          f"{rec.binary_bytes / max(rec.bytes, 1):.0%} binary")
    print("  largest array sent per series (values; the LR mark holds one row per group): " + ", ".join(f"{k} {v}" for k, v in sizes.items()))


def overhead(repeats: int) -> None:
    import tlwidgets as tlw
    from tlwidgets.widgets.dashboard import TrainingDashboard

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    images = rng.random((512, 3, 64, 64), dtype=np.float32)
    labels = rng.integers(0, 4, 512)
    model = tlw.create_model("resnet18", num_classes=4, weights="none")

    def one(attached: bool) -> float:
        data = tlw.ImageData.from_arrays(images, labels, valid_pct=0.1, batch_size=32,
                                         model=model, img_size=64)
        trainer = tlw.Trainer(model, data, epochs=1, lr=1e-3, cache_features=False)
        with record_traffic():
            dash = TrainingDashboard(trainer, evaluate=False) if attached else None
            t0 = time.perf_counter()
            trainer.fit()
            seconds = time.perf_counter() - t0
            if dash is not None:
                dash.close()
        n = int(trainer.steps["step"].max()) * 32 if "step" in trainer.steps else 0
        return n / seconds

    one(False)  # warm-up
    with_d, without = [], []
    for _ in range(repeats):
        without.append(one(False))
        with_d.append(one(True))
    ratio = statistics.median(with_d) / statistics.median(without)
    print(f"overhead: resnet18 64px batch 32, {repeats} alternating pairs; images/s without "
          f"{statistics.median(without):.1f}, with dashboard {statistics.median(with_d):.1f}")
    print(f"  with / without = {ratio:.3f} (target >= 0.95)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=800.0, help="simulated steps per second")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-overhead", action="store_true")
    args = ap.parse_args()
    print(f"{time.strftime('%Y-%m-%d')} · {platform.processor() or platform.machine()} · "
          f"{torch.get_num_threads()} torch threads · Python {sys.version.split()[0]}")
    traffic(args.steps, args.rate)
    if not args.skip_overhead:
        overhead(args.repeats)


if __name__ == "__main__":
    main()
