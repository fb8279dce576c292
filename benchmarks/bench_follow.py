"""What following a run folder costs: the writer on the training hot path, opening a
100,000-step run, and tailing a growing one with bounded memory.

    .venv/bin/python benchmarks/bench_follow.py [--steps 100000] [--tail 100000]

1. Writer: ``RunWriter.step()`` per call (buffered; whole-line appends at most 4x a second), side
   by side with appending the same dict to a list (what the Trainer does anyway), over the same
   rows; and the total CPU time of writing the folder.
2. Open: ``RunFollower(run_dir, live=False)`` on the finished ``--steps`` folder (reads every
   line, builds the columns, history, state), median of 3; target < 2 s. Also the ``steps``
   DataFrame it hands a dashboard, and ``TrainingDashboard.follow`` when it exists.
3. Tail: another process appends ``--tail`` steps as fast as it can while a live follower
   (poll every 0.25 s) publishes every one; tracemalloc's peak during the tail, against the
   follower's own columns (8 bytes a value), for a tail of a quarter and of all of ``--tail``:
   the peak above what is kept is bounded by the reader's chunk (1 MiB a file per poll), not by
   the length of the files.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import tracemalloc
from pathlib import Path

from tlwidgets.training.run_files import RunWriter
from tlwidgets.training.run_follower import RunFollower


def row(i: int, spe: int = 1000) -> dict:
    return {"step": i, "epoch": (i - 1) // spe + 1, "batch": (i - 1) % spe + 1,
            "loss": 1.0 / (1 + i * 1e-3), "lrs": [1e-4, 1e-3], "img_s": 812.5, "time": i * 0.01}


def epoch_row(e: int) -> dict:
    return {"epoch": e, "train_loss": 0.5, "valid_loss": 0.4, "accuracy": 0.8, "seconds": 10.0,
            "lr": 1e-3, "lrs": [1e-4, 1e-3]}


def write_run(folder: Path, n: int, spe: int = 1000) -> tuple[float, float]:
    """Write an n-step run; returns (wall s, CPU s)."""
    w = RunWriter(folder)
    w.open({"epochs": max(1, n // spe), "lr": 1e-3}, classes=["a", "b"], steps_per_epoch=spe,
           model="bench")
    w0, c0 = time.perf_counter(), time.process_time()
    w.state("running")
    for i in range(1, n + 1):
        w.step(row(i, spe))
        if i % spe == 0:
            w.epoch(epoch_row(i // spe))
    w.state("finished")
    w.close()
    return time.perf_counter() - w0, time.process_time() - c0


def hot_path(n: int, rounds: int = 3) -> tuple[float, float]:
    """ns per row, best of ``rounds`` alternating: RunWriter.step() with every flush and the
    closing one (JSON encoding and writes included) vs list.append(dict(row)) of the same rows."""
    rows = [row(i) for i in range(1, n + 1)]
    best_w = best_l = best_wc = best_lc = math.inf
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            w = RunWriter(tmp)
            w.open({})
            t0, c0 = time.perf_counter(), time.process_time()
            for r in rows:
                w.step(r)
            w.close()  # what is still buffered is encoded and written here: counted
            best_w = min(best_w, time.perf_counter() - t0)
            best_wc = min(best_wc, time.process_time() - c0)
        keep: list = []
        t0, c0 = time.perf_counter(), time.process_time()
        for r in rows:
            keep.append(dict(r))
        best_l = min(best_l, time.perf_counter() - t0)
        best_lc = min(best_lc, time.process_time() - c0)
        del keep
    return best_w / n * 1e9, best_l / n * 1e9, best_wc / n * 1e9, best_lc / n * 1e9


TAIL_WRITER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {bench!r})
    from bench_follow import row, epoch_row
    from tlwidgets.training.run_files import RunWriter
    w = RunWriter({folder!r})
    w.open(append=True)
    w.state("running")
    start, n = {start}, {n}
    for i in range(start + 1, start + n + 1):
        w.step(row(i))
        if i % 1000 == 0:
            w.epoch(epoch_row(i // 1000))
    w.state("finished")
    w.close()
""")


def tail(folder: Path, start: int, n: int) -> dict:
    follower = RunFollower(folder, poll_interval=0.25)
    got = {"steps": 0, "max_batch": 0, "batch": 0}

    def on_event(event) -> None:
        if event.kind == "step":
            got["steps"] += 1
            got["batch"] += 1

    follower.subscribe(on_event)
    base_steps = len(follower.steps)
    tracemalloc.start()
    tracemalloc.reset_peak()
    before, _ = tracemalloc.get_traced_memory()
    t0 = time.perf_counter()
    code = TAIL_WRITER.format(bench=str(Path(__file__).parent), folder=str(folder),
                              start=start, n=n)
    proc = subprocess.Popen([sys.executable, "-c", code])
    while follower.state != "finished" or got["steps"] < n:
        time.sleep(0.05)
        got["max_batch"] = max(got["max_batch"], got["batch"])
        got["batch"] = 0
        if proc.poll() not in (None, 0):
            raise SystemExit(f"tail writer failed with {proc.returncode}")
    proc.wait()
    wall = time.perf_counter() - t0
    now, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    follower.close()
    total = base_steps + got["steps"]
    columns = 7 * 8 * total  # the arrays are reallocated as they grow: all of them are new
    return {"wall": wall, "published": got["steps"], "total": total, "peak_extra": peak - before,
            "kept": now - before, "columns": columns}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--tail", type=int, default=100_000)
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}, "
          f"{os.cpu_count()} CPUs")

    w_ns, l_ns, w_cpu, l_cpu = hot_path(50_000)
    print(f"hot path: RunWriter.step {w_ns:.0f} ns a row wall / {w_cpu:.0f} ns CPU, encoding and "
          f"writes included, vs list.append(dict(row)) {l_ns:.0f} / {l_cpu:.0f} ns; a 10 ms "
          f"training step pays {w_cpu / 1e7 * 100:.3f}% (CPU)")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "run"
        wall, cpu = write_run(folder, args.steps)
        size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
        print(f"wrote {args.steps:,} steps in {wall:.2f} s wall / {cpu:.2f} CPU-s "
              f"({cpu / args.steps * 1e6:.1f} us CPU a step), folder {size / 2**20:.1f} MiB")

        times, cpus, frames = [], [], []
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            f = RunFollower(folder, live=False)
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            t0 = time.perf_counter()
            n = len(f.steps)
            frames.append(time.perf_counter() - t0)
            assert n == args.steps and f.state == "finished", (n, f.state)
        med = statistics.median(times)
        print(f"open {args.steps:,}-step run: median {med:.3f} s wall, "
              f"{statistics.median(cpus):.3f} CPU-s (runs "
              f"{', '.join(f'{t:.3f}' for t in times)}); target < 2 s: "
              f"{'met' if med < 2 else 'MISSED'} (ratio to target {med / 2:.2f}); "
              f"steps DataFrame {statistics.median(frames) * 1e3:.0f} ms")
        try:
            from tlwidgets.widgets.dashboard import TrainingDashboard

            follow = getattr(TrainingDashboard, "follow", None)
        except ImportError:
            follow = None
        if follow is not None:
            t0 = time.perf_counter()
            dash = follow(folder)
            print(f"TrainingDashboard.follow on it: {time.perf_counter() - t0:.3f} s")
            dash.trainer.close()  # its follower stops polling (the tail below is measured alone)
            dash.close()
            del dash
            gc.collect()
        else:
            print("TrainingDashboard.follow: not there yet (not timed)")

        start = args.steps
        for n in (args.tail // 4, args.tail):
            r = tail(folder, start, n)
            start += n
            print(f"tail {n:,} steps appended by another process: all published, "
                  f"{r['wall']:.1f} s; follower holds {r['total']:,} steps; memory peak "
                  f"+{r['peak_extra'] / 2**20:.1f} MiB, kept +{r['kept'] / 2**20:.1f} MiB "
                  f"(its step columns, reallocated as they grew, {r['columns'] / 2**20:.1f} MiB)")
        print("bounded: the peak above what is kept comes from one poll's chunk (1 MiB a file), "
              "so it does not grow with the length of the tail or of the files")


if __name__ == "__main__":
    main()
