"""Checking every file when a folder is read: a header check against a full decode.

``ImageData.from_folder`` must find a truncated JPEG when the folder is read, not when training
reaches it. PIL's ``verify()`` (the header check tlwidgets used) reads a JPEG's header only,
so a cut-off JPEG passes it; for PNG it walks every chunk and its CRC. The candidates, each
timed on the same files in one run, in alternating rounds after one untimed pass that puts
every file in the page cache (so no method pays for the disk alone):

- ``header``: ``Image.open`` + ``verify()`` (what tlwidgets did).
- ``header+end``: ``header`` plus, for JPEG, the end-of-image marker (``FF D9``) in the last
  4 KiB: a truncation check without decoding (``check_image(path, decode=False)``, what
  ``from_folder(check="header")`` does).
- ``decode``: ``Image.open`` + ``load()``: what training does, one thread.
- ``decode xN``: the same in a thread pool of N (PIL releases the GIL while it decodes).
- ``draft xN``: ``decode xN`` with JPEGs decoded at 1/8 scale (``Image.draft``): libjpeg still
  entropy-decodes the whole stream, so it finds the same truncations, with an eighth of the
  inverse DCT and colour work; what ``from_folder`` does by default (``check_image(path)``).

Two sets: ``--n`` (default 5,000) small images (``--size`` 64 px, half JPEG, half PNG), as the
issue asks, and ``--n-large`` (default 200) 1024x768 JPEGs, the size of a downscaled phone
photo, where decoding costs much more than opening. Then the end-to-end
``ImageData.from_folder`` on the small set with each ``check`` (after one untimed call that
imports timm), and which damaged files each method finds.

Run: ``.venv/bin/python benchmarks/bench_data_check.py [--n 5000] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from tlwidgets.data import ImageData, check_image


def header(path: Path) -> str | None:
    try:
        with Image.open(path) as img:
            img.verify()
    except Exception as err:  # noqa: BLE001  any failure is the answer
        return type(err).__name__
    return None


def header_end(path: Path) -> str | None:
    return check_image(path, decode=False)


def decode(path: Path) -> str | None:
    try:
        with Image.open(path) as img:
            img.load()
    except Exception as err:  # noqa: BLE001  any failure is the answer
        return type(err).__name__
    return None


def run_serial(fn: Callable[[Path], str | None], paths: list[Path]) -> list[str | None]:
    return [fn(p) for p in paths]


def run_pool(fn: Callable[[Path], str | None], paths: list[Path], workers: int
             ) -> list[str | None]:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, paths, chunksize=max(1, min(64, len(paths) // (4 * workers)))))


def make_images(folder: Path, n: int, size: tuple[int, int], jpeg_only: bool) -> list[Path]:
    """Photo-like images (smooth gradients plus a little noise: a 1024x768 q90 JPEG is about
    150 KB, like a downscaled photo, not the 500 KB of white noise), in two class folders."""
    rng = np.random.default_rng(0)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    paths = []
    for i in range(n):
        cls = folder / ("a" if i % 2 else "b")
        cls.mkdir(parents=True, exist_ok=True)
        phase = rng.random(3) * 6.3
        base = np.stack([np.sin(xx / (w / 3) + phase[c]) + np.cos(yy / (h / 2) + phase[c])
                         for c in range(3)], axis=-1)
        noise = rng.normal(0, 0.03, (h, w, 3)).astype(np.float32)
        arr = np.clip((base + 2) / 4 + noise, 0, 1) * 255
        img = Image.fromarray(arr.astype(np.uint8))
        ext = ".jpg" if jpeg_only or i % 2 == 0 else ".png"
        path = cls / f"{i:05d}{ext}"
        img.save(path, quality=90) if ext == ".jpg" else img.save(path)
        paths.append(path)
    return paths


def time_methods(paths: list[Path], methods: dict[str, Callable[[], object]], rounds: int
                 ) -> dict[str, float]:
    run_serial(decode, paths)  # page cache: every method reads warm files
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(rounds):
        for name, fn in methods.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def report(title: str, n: int, med: dict[str, float]) -> None:
    base = med["header"]
    print(f"\n{title}")
    print(f"  {'method':<14}{'seconds':>9}{'ms/file':>9}{'x header':>10}")
    for name, t in med.items():
        print(f"  {name:<14}{t:>9.2f}{t / n * 1000:>9.3f}{t / base:>10.2f}")


def damaged_files(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    jpg, png = io.BytesIO(), io.BytesIO()
    Image.fromarray(arr).save(jpg, "JPEG", quality=90)
    Image.fromarray(arr).save(png, "PNG")
    j, p = jpg.getvalue(), png.getvalue()
    middle = bytearray(j)
    middle[len(j) // 2: len(j) // 2 + 400] = rng.integers(0, 256, 400, dtype=np.uint8).tobytes()
    files = {
        "JPEG cut at 60%": j[: int(len(j) * 0.6)],
        "JPEG cut 200 bytes short": j[:-200],
        "JPEG, 400 bytes garbled mid-file": bytes(middle),
        "PNG cut at 60%": p[: int(len(p) * 0.6)],
        "not an image (text named .jpg)": b"hello " * 100,
        "0-byte .png": b"",
    }
    out = {}
    for k, (name, data) in enumerate(files.items()):
        path = folder / f"damaged_{k}{'.png' if 'PNG' in name or '.png' in name else '.jpg'}"
        path.write_bytes(data)
        out[name] = path
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--n-large", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=min(8, (os.cpu_count() or 1) + 2))
    args = ap.parse_args()
    workers = args.workers
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, thread pool of "
          f"{workers}, median of {args.rounds} alternating rounds, warm page cache")

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        sets = [
            (f"{args.n} images of {args.size}x{args.size} px (half JPEG q90, half PNG)",
             make_images(tmp_path / "small", args.n, (args.size, args.size), False)),
            (f"{args.n_large} JPEGs of 1024x768 px (q90)",
             make_images(tmp_path / "large", args.n_large, (1024, 768), True)),
        ]
        for title, paths in sets:
            mb = sum(p.stat().st_size for p in paths) / 2**20
            methods: dict[str, Callable[[], object]] = {
                "header": lambda ps=paths: run_serial(header, ps),
                "header+end": lambda ps=paths: run_serial(header_end, ps),
                "decode": lambda ps=paths: run_serial(decode, ps),
                f"decode x{workers}": lambda ps=paths: run_pool(decode, ps, workers),
                f"draft x{workers}": lambda ps=paths: run_pool(check_image, ps, workers),
            }
            report(f"{title}, {mb:.1f} MB", len(paths), time_methods(paths, methods, args.rounds))

        small = tmp_path / "small"
        ImageData.from_folder(small, img_size=args.size, progress=False, check="header")
        ff: dict[str, list[float]] = {"decode": [], "header": []}
        for _ in range(args.rounds):
            for check, times in ff.items():
                t0 = time.perf_counter()
                data = ImageData.from_folder(small, img_size=args.size, progress=False,
                                             check=check)
                times.append(time.perf_counter() - t0)
        dec, hdr = (statistics.median(ff[k]) for k in ("decode", "header"))
        print(f"\nImageData.from_folder on the {args.n} small images (list, check, split), "
              f"{len(data.train_items) + len(data.valid_items)} images: check='decode' "
              f"{dec:.2f} s, check='header' {hdr:.2f} s, ratio {dec / hdr:.2f}")

        print("\nWhich damaged files each method refuses (x = refused, . = passed as good):")
        damaged = damaged_files(tmp_path)
        checks = {"header": header, "header+end": header_end, "decode": decode,
                  "draft": check_image}
        print(f"  {'file':<36}" + "".join(f"{k:>12}" for k in checks))
        for name, path in damaged.items():
            marks = ["x" if fn(path) else "." for fn in checks.values()]
            print(f"  {name:<36}" + "".join(f"{m:>12}" for m in marks))


if __name__ == "__main__":
    main()
