"""One torch thread against two on this CPU, now: training steps per second, side by side.

On a CPU that other processes share, torch's OpenMP threads wait for each other and a
two-thread run can be many times slower than a one-thread run; on a free CPU two threads are
faster. This prints both rates in alternating rounds (2, 1, 2, 1, ...), the ratio, this process's
CPU seconds per wall second (what ``BusyCPUHint`` in ``tlwidgets/training/hooks.py`` reads)
and the load average, so the advice "on a busy CPU call ``torch.set_num_threads(1)``" is a
measurement, not a guess.

Model: ``tf_efficientnet_lite0`` (random init), batch 16 at 64 px, SGD, ``--seconds`` (8) of
training per round.

Run: ``.venv/bin/python benchmarks/bench_threads.py`` (start something else on the cores to see
the busy case, e.g. the test suite)
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import timm
import torch


def rate(model: torch.nn.Module, opt: torch.optim.Optimizer, threads: int,
         seconds: float) -> tuple[float, float]:
    torch.set_num_threads(threads)
    x, y = torch.randn(16, 3, 64, 64), torch.randint(0, 4, (16,))
    loss = torch.nn.functional.cross_entropy(model(x), y)  # warm-up step, not timed
    loss.backward()
    opt.step()
    t, c, n = time.perf_counter(), time.process_time(), 0
    while time.perf_counter() - t < seconds:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        n += 1
    wall = time.perf_counter() - t
    return n / wall, (time.process_time() - c) / wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = timm.create_model("tf_efficientnet_lite0", num_classes=4)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} before", flush=True)
    rates: dict[int, list[float]] = {1: [], 2: []}
    for r in range(args.rounds):
        for threads in (2, 1):
            steps, used = rate(model, opt, threads, args.seconds)
            rates[threads].append(steps)
            print(f"  round {r + 1}, {threads} thread(s): {steps:.2f} steps/s, "
                  f"{used:.2f} CPU-s per wall second, load {os.getloadavg()[0]:.1f}", flush=True)
    one, two = float(np.median(rates[1])), float(np.median(rates[2]))
    print(f"median steps/s: 1 thread {one:.2f}, 2 threads {two:.2f}; 2 threads / 1 thread = "
          f"{two / one:.2f}; load average {os.getloadavg()[0]:.1f} after")


if __name__ == "__main__":
    main()
