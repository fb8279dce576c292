"""Does ranking predict which backbone transfers best? And is it fast enough?

Four small real tasks made from data that ships in wheels:

- ``textures``: ``tlw.sample_data("textures")`` (brick / grass / gravel / stars photographs from
  scikit-image, 160 train / 48 valid, 128 px);
- ``faces``: ``tlw.sample_data("faces")`` (scikit-image's LFW subset, face vs non-face, 25 px
  upscaled to 128, 160 / 40);
- ``photos``: which of 10 scikit-image photographs (astronaut, camera, chelsea, coffee, rocket,
  coins, moon, retina, immunohistochemistry, motorcycle) a 64 px patch comes from; train
  patches from the top 60% of each photo, valid from the bottom 40% (300 / 300);
- ``digits``: scikit-learn's ``load_digits`` scans (all 1,797 8x8 handwritten digits, 10
  classes, 70/30 stratified split, upscaled to 64 px; needs ``pip install scikit-learn``).

Candidates on each task (11): the three offline EfficientNet-Lite models
(``tf_efficientnet_lite0/1/2.in1k``), random-init Lite0 (``torch.manual_seed(0)``, then
``create_model(..., weights="none")``), and seven per-stage cuts of the pretrained Lite0 (the
globally pooled output of layer groups 0-6: stem, blocks.0 ... blocks.5).

Held-out evaluation: each task's validation split is cut into two disjoint stratified halves
(``split_valid``, seed ``SPLIT_SEED``; per class, a random half rounded down goes to ranking):
the **ranking half** is the validation split of the data the scores get, the **test half** is
where the ground truth is measured, so no score sees an image its ground truth is measured on.

Ground truth: the test-half accuracy of a **linear head trained on the frozen features** (the
whole training split, eval transform; standardised features; multinomial logistic regression,
L2 1e-3, full-batch L-BFGS to convergence from zero; deterministic), i.e. head-only fine-tuning
of each candidate. It is slow-ish to compute, so it is stored in
``tests/fixtures/ranking_ground_truth.json`` with how it was made, and recomputed with
``--rebuild-ground-truth`` (or when the fixture lacks a task).

Scores are computed every run through the public API: ``tlw.rank_models`` (full models) and
``tlw.rank_layers`` (cuts), on at most ``--per-class`` (50) training images per class and as
many validation images (k-NN accuracy is held out: validation images against training images;
``knn_loo`` is leave-one-out on the training sample). Printed: Kendall's weighted tau
(``scipy.stats.weightedtau``) of the ``rank`` column (``tlwidgets.ranking.models.rank_order``
over all 11 candidates: k-NN accuracy, ties broken by LogME), LogME, k-NN accuracy, leave-one-
out k-NN and the static prior (ImageNet top-1; random init lowest, cuts share Lite0's) against
the ground truth, and the accuracy points lost by picking each one's top-ranked candidate
instead of the best (among tied scores, the worst of them), both on the test half.

Speed: ranking the 3 offline backbones on 500 images at 128 px (digits, 50 per class), loading
and extraction included; LogME alone on N=2,000, D=1,280, 10 classes.

    .venv/bin/python benchmarks/bench_ranking.py                 # ~5-10 min on 2 loaded cores
    .venv/bin/python benchmarks/bench_ranking.py --rebuild-ground-truth
    # another split, as a check of how much the figures depend on it (its own fixture):
    .venv/bin/python benchmarks/bench_ranking.py --rebuild-ground-truth --skip-speed \
        --split-seed 1 --fixture /tmp/gt_seed1.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import weightedtau

import tlwidgets as tlw
from tlwidgets.ranking.features import backbone_features
from tlwidgets.ranking.models import rank_order

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FIXTURE = ROOT / "tests" / "fixtures" / "ranking_ground_truth.json"
FIXTURE = DEFAULT_FIXTURE  # --fixture elsewhere (e.g. for another --split-seed)
FULL = ["tf_efficientnet_lite0.in1k", "tf_efficientnet_lite1.in1k", "tf_efficientnet_lite2.in1k"]
RANDOM = "tf_efficientnet_lite0 (random init)"
CUT_GROUPS = range(7)  # layer groups of Lite0 before the last body group (stem, blocks.0..5)
WD = 1e-3
SPLIT_SEED = 0  # the ranking / test halves of each validation split


# ------------------------------------------------------------------------------------ tasks


def task_textures() -> tlw.ImageData:
    return tlw.sample_data("textures", img_size=128, augment="none")


def task_faces() -> tlw.ImageData:
    return tlw.sample_data("faces", img_size=128, augment="none")


def digits_arrays(per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    rng = np.random.default_rng(seed)
    idx = np.concatenate([
        rng.choice(np.flatnonzero(d.target == c), per_class, replace=False) for c in range(10)
    ])
    images = (d.images[idx] / 16.0).astype(np.float32)  # (N, 8, 8) in 0..1, grayscale
    return images, d.target[idx]


def task_digits() -> tlw.ImageData:
    from sklearn.datasets import load_digits

    d = load_digits()  # all 1,797 scans
    images, labels = (d.images / 16.0).astype(np.float32), d.target
    return tlw.ImageData.from_arrays(images, labels, classes=[str(i) for i in range(10)],
                                     valid_pct=0.3, img_size=64)


PHOTOS = ["astronaut", "camera", "chelsea", "coffee", "rocket", "coins", "moon", "retina",
          "immunohistochemistry", "stereo_motorcycle"]


def task_photos(per_split: int = 100, side: float = 0.2) -> tlw.ImageData:
    """Which of 10 scikit-image photographs is this small patch from? Patches of 20% of the
    photo's shorter side, 64 px; training patches from the top 60% of each photo, validation
    patches from the bottom 40%, so no validation pixel is seen in training. Written once as
    PNG files (``root/train/<photo>/``, ``root/valid/<photo>/``) and read with from_folder."""
    from PIL import Image
    from skimage import data as skd

    root = Path(tempfile.gettempdir()) / f"tlw-bench-ranking-photos-{per_split}-{side}"
    if not (root / "done").exists():
        rng = np.random.default_rng(0)
        for name in PHOTOS:
            img = getattr(skd, name)()
            img = img[0] if name == "stereo_motorcycle" else img  # (left, right, disparity)
            img = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img[..., :3]
            h, w = img.shape[:2]
            s = int(min(h, w) * side)
            cut = int(h * 0.6)
            for part, (lo, hi) in [("train", (0, cut - s)), ("valid", (cut, h - s))]:
                folder = root / part / name
                folder.mkdir(parents=True, exist_ok=True)
                for i in range(per_split):
                    top, left = rng.integers(lo, hi + 1), rng.integers(0, w - s + 1)
                    patch = Image.fromarray(img[top:top + s, left:left + s]).resize((64, 64))
                    patch.save(folder / f"{i:03d}.png")
        (root / "done").write_text("ok")
    return tlw.ImageData.from_folder(root, img_size=64, augment="none", progress=False)


TASKS = {"textures": task_textures, "faces": task_faces, "digits": task_digits,
         "photos": task_photos}


def split_valid(data: tlw.ImageData, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint stratified halves of the validation positions: (ranking, test). Per class,
    the members are shuffled with ``seed`` and the first ``n // 2`` go to ranking, the rest to
    test (the test half gets the odd one). ``seed`` defaults to ``SPLIT_SEED``."""
    y = np.array([int(lab) for _, lab in data.valid_items])
    rng = np.random.default_rng(SPLIT_SEED if seed is None else seed)
    rank_half, test_half = [], []
    for cls in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == cls))
        rank_half.append(members[: len(members) // 2])
        test_half.append(members[len(members) // 2:])
    return np.sort(np.concatenate(rank_half)), np.sort(np.concatenate(test_half))


def ranking_data(data: tlw.ImageData, seed: int | None = None) -> tlw.ImageData:
    """The data the scores get: the whole training split, the ranking half as validation."""
    rank_half, _ = split_valid(data, seed)
    return data.subset(range(len(data.train_items)), rank_half)


# ------------------------------------------------------------------------------------ models


def random_lite0(num_classes: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return tlw.create_model("tf_efficientnet_lite0", num_classes=num_classes, weights="none")


def cut_label(group_name: str) -> str:
    return f"lite0 @ {group_name}"


# ------------------------------------------------------------------------------------ ground truth


def linear_probe_halves(xtr, ytr, xva, yva, rank_half, test_half) -> dict[str, float]:
    """One head trained on the training features, measured on the test half (``accuracy``,
    ``valid_loss``), the ranking half and the whole validation split (for reference)."""
    sets = {"test": test_half, "rank": rank_half, "all": np.arange(len(yva))}
    res = linear_probe(xtr, ytr, {k: (xva[i], yva[i]) for k, i in sets.items()})
    return {"accuracy": res["test"][0], "valid_loss": res["test"][1],
            "accuracy_rank_half": res["rank"][0], "accuracy_all_valid": res["all"][0]}


def linear_probe(xtr, ytr, evals: dict) -> dict[str, tuple[float, float]]:
    """Accuracy and loss on each of ``evals`` ({name: (features, labels)}) of an
    L2-regularised softmax head trained to convergence on (xtr, ytr)."""
    xtr = torch.as_tensor(xtr, dtype=torch.float64)
    ytr = torch.as_tensor(ytr)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr = (xtr - mu) / sd
    n_cls = int(max([int(ytr.max())] + [int(np.max(y)) for _, y in evals.values()])) + 1
    w = torch.zeros(xtr.shape[1], n_cls, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n_cls, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=1000, tolerance_grad=1e-10,
                            tolerance_change=1e-14, history_size=20,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xtr @ w + b, ytr) + WD / 2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    out = {}
    with torch.no_grad():
        for key, (xva, yva) in evals.items():
            xva = (torch.as_tensor(xva, dtype=torch.float64) - mu) / sd
            yva = torch.as_tensor(yva)
            logits = xva @ w + b
            out[key] = (float((logits.argmax(1) == yva).double().mean()),
                        float(torch.nn.functional.cross_entropy(logits, yva)))
    return out


def ground_truth(data: tlw.ImageData, log) -> dict[str, dict[str, float]]:
    """Per candidate: ``accuracy`` / ``valid_loss`` on the test half (what the benchmark
    compares with), and for reference ``accuracy_rank_half`` / ``accuracy_all_valid``; the
    head is trained on the whole training split."""
    rank_half, test_half = split_valid(data)
    out: dict[str, dict[str, float]] = {}
    models = {name: tlw.create_model(name, num_classes=data.num_classes) for name in FULL}
    models[RANDOM] = random_lite0(data.num_classes)
    for label, model in models.items():
        is_lite0 = label == FULL[0]
        groups = tlw.layer_groups(model)
        layers = [(groups[g].name, groups[g].paths) for g in CUT_GROUPS] if is_lite0 else []
        t = time.perf_counter()
        tr = backbone_features(model, data, split="train", layers=layers)
        va = backbone_features(model, data, split="valid", layers=layers)
        out[label] = linear_probe_halves(tr.features, tr.labels, va.features, va.labels,
                                         rank_half, test_half)
        for name, _ in layers:
            out[cut_label(name)] = linear_probe_halves(
                tr.layers[name], tr.labels, va.layers[name], va.labels, rank_half, test_half)
        log(f"    ground truth {label}: {out[label]['accuracy']:.4f} "
            f"({time.perf_counter() - t:.1f} s)")
    return out


def load_fixture() -> dict:
    if FIXTURE.exists():
        return json.loads(FIXTURE.read_text())
    return {"tasks": {}}


def save_fixture(fixture: dict) -> None:
    fixture["split_seed"] = SPLIT_SEED
    fixture["how"] = (
        "accuracy / valid_loss: accuracy on the TEST HALF of the validation split of a linear "
        "head trained on frozen features of each candidate (head-only fine-tuning). The "
        "validation split is cut into two disjoint stratified halves by "
        f"benchmarks/bench_ranking.py split_valid (seed {SPLIT_SEED}: per class the members "
        "are shuffled with numpy default_rng(seed) and the first n // 2 form the ranking half, "
        "the rest the test half); the scores (rank_models / rank_layers) get only the ranking "
        "half as validation, the ground truth is measured only on the test half "
        "(accuracy_rank_half and accuracy_all_valid are the same head on the other half and "
        "on the whole split, for reference only). Features = "
        "tlw.ranking.features.backbone_features (the classifier's input, eval mode, eval "
        "transform of data.with_model(model)) of the whole train split and the whole valid "
        "split; the head trains on the whole train split; standardised with the train mean/std; multinomial logistic "
        f"regression, L2 {WD} (sum of squared weights / 2), zero init, full-batch L-BFGS "
        "(strong Wolfe, max 1000 iterations, tolerance 1e-10) in float64. Cuts: Lite0's pooled "
        "output of layer groups 0-6. Random init: torch.manual_seed(0) then "
        "tlw.create_model('tf_efficientnet_lite0', k, weights='none'). Made by "
        "benchmarks/bench_ranking.py --rebuild-ground-truth."
    )
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(json.dumps(fixture, indent=1, sort_keys=True) + "\n")


# ------------------------------------------------------------------------------------ scores


def scores(data: tlw.ImageData, per_class: int) -> pd.DataFrame:
    cands = {name: name for name in FULL} | {RANDOM: random_lite0(data.num_classes)}
    ranked = tlw.rank_models(data, cands, per_class=per_class, progress=False)
    bad = ranked[ranked["error"] != ""]
    if len(bad):
        raise SystemExit(f"candidates failed: {bad[['model', 'error']].to_dict('records')}")
    rows = ranked[["model", "logme", "knn_accuracy", "knn_loo", "top1", "seconds"]].copy()
    lite0 = tlw.create_model(FULL[0], num_classes=data.num_classes)
    layers = tlw.rank_layers(lite0, data, per_class=per_class, progress=False)
    cuts = layers[layers["group"].isin(list(CUT_GROUPS))]
    top1_lite0 = float(ranked.set_index("model").loc[FULL[0], "top1"])
    rows = pd.concat([rows, pd.DataFrame({
        "model": [cut_label(n) for n in cuts["name"]], "logme": cuts["logme"].to_numpy(),
        "knn_accuracy": cuts["knn_accuracy"].to_numpy(), "knn_loo": cuts["knn_loo"].to_numpy(),
        "top1": top1_lite0, "seconds": layers.attrs["seconds"] / len(cuts),
    })], ignore_index=True)
    # the rank rank_models/rank_layers put in their ``rank`` column, over all 11 candidates
    rows.insert(0, "rank", rank_order(rows).to_numpy(dtype=float))
    return rows


def tau(score: np.ndarray, truth: np.ndarray) -> float:
    return float(weightedtau(score, truth).statistic)


def evaluate(rows: pd.DataFrame, truth: dict[str, dict[str, float]]) -> dict[str, dict]:
    acc = np.array([truth[m]["accuracy"] for m in rows["model"]])
    loss = np.array([truth[m]["valid_loss"] for m in rows["model"]])
    # accuracy with its ties broken by the validation loss (1e-4 x loss < one image's step)
    acc_then_loss = acc - 1e-4 * loss
    prior = rows["top1"].to_numpy(dtype=float)
    prior = np.where(np.isnan(prior), np.nanmin(prior) - 10, prior)  # random init: lowest
    out = {}
    for name, score in [("rank (default)", -rows["rank"].to_numpy(float)),
                        ("logme", rows["logme"].to_numpy(float)),
                        ("knn_accuracy", rows["knn_accuracy"].to_numpy(float)),
                        ("knn_loo", rows["knn_loo"].to_numpy(float)),
                        ("static prior (top1)", prior)]:
        # the top pick: the best score; among tied scores (the prior's cuts), the worst case
        top = np.flatnonzero(score == score.max())
        pick = top[np.argmin(acc[top])]
        out[name] = {
            "tau": tau(score, acc),
            "tau_tiebroken": tau(score, acc_then_loss),
            "pick": rows["model"].iloc[pick],
            "loss_points": 100 * (acc.max() - acc[pick]),
        }
    return out


# ------------------------------------------------------------------------------------ speed


def bench_speed(log) -> dict[str, float]:
    images, labels = digits_arrays(70, seed=1)
    data = tlw.ImageData.from_arrays(images, labels, classes=[str(i) for i in range(10)],
                                     valid_pct=0.2, img_size=128)  # 56 train images a class
    t, c = time.perf_counter(), time.process_time()
    df = tlw.rank_models(data, FULL, per_class=50, progress=False)  # 500 images
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    n = int(df["n_images"].iloc[0])
    log(f"  rank_models, 3 offline backbones, {n} images at 128 px: {wall:.1f} s wall, "
        f"{cpu:.1f} CPU-s (per model: {', '.join(f'{s:.1f}' for s in df['seconds'])} s wall; "
        f"load {os.getloadavg()[0]:.1f})  target <= 60 s wall")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 2000)
    f = np.abs(rng.normal(size=(2000, 1280))).astype(np.float32) + np.eye(1280)[y * 7]
    times, cpus = [], []
    for _ in range(5):
        t, c = time.perf_counter(), time.process_time()
        tlw.logme(f, y)
        times.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    log(f"  logme N=2,000 D=1,280 10 classes: median {np.median(times):.3f} s wall "
        f"(min {min(times):.3f}), {np.median(cpus):.3f} CPU-s  target <= 2 s")
    return {"rank_3_models_s": wall, "rank_n_images": n, "logme_2000x1280_s": float(np.median(times))}


# ------------------------------------------------------------------------------------ main


def main() -> None:
    global SPLIT_SEED, FIXTURE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="*", default=list(TASKS))
    ap.add_argument("--per-class", type=int, default=50)
    ap.add_argument("--rebuild-ground-truth", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--speed-only", action="store_true")
    ap.add_argument("--split-seed", type=int, default=SPLIT_SEED,
                    help="seed of the ranking / test halves (another seed needs its own "
                         "--fixture, built with --rebuild-ground-truth)")
    ap.add_argument("--fixture", type=Path, default=DEFAULT_FIXTURE)
    args = ap.parse_args()
    SPLIT_SEED, FIXTURE = args.split_seed, args.fixture

    def log(msg: str) -> None:
        print(msg, flush=True)

    log(f"{datetime.datetime.now():%Y-%m-%d %H:%M}  {platform.processor() or platform.machine()}"
        f"  cores {os.cpu_count()}  torch threads {torch.get_num_threads()}  load "
        f"{os.getloadavg()[0]:.1f}  torch {torch.__version__}  python {sys.version.split()[0]}")
    fixture = load_fixture()
    results = {}
    for task in [] if args.speed_only else args.tasks:
        log(f"\n== {task}")
        data = TASKS[task]()
        log(f"  {data}")
        if args.rebuild_ground_truth or task not in fixture["tasks"]:
            truth = ground_truth(data, log)
            rank_half, test_half = split_valid(data)
            fixture["tasks"][task] = {
                "data": repr(data), "n_train": len(data.train_items),
                "n_valid": len(data.valid_items), "n_valid_rank_half": len(rank_half),
                "n_valid_test_half": len(test_half), "split_seed": SPLIT_SEED,
                "candidates": truth,
                "made": f"{datetime.date.today()} torch {torch.__version__}",
            }
            save_fixture(fixture)
        if fixture["tasks"][task].get("split_seed") != SPLIT_SEED:
            raise SystemExit(f"the fixture's {task!r} ground truth is not on the test half of "
                             f"split seed {SPLIT_SEED}; run with --rebuild-ground-truth")
        truth = fixture["tasks"][task]["candidates"]
        rank_data = ranking_data(data)
        log(f"  scores get {rank_data} (ranking half); ground truth on the other "
            f"{fixture['tasks'][task]['n_valid_test_half']} validation images (test half)")
        t = time.perf_counter()
        rows = scores(rank_data, args.per_class)
        log(f"  scores of {len(rows)} candidates in {time.perf_counter() - t:.1f} s")
        rows["accuracy"] = [truth[m]["accuracy"] for m in rows["model"]]
        with pd.option_context("display.width", 160, "display.max_columns", 12):
            log(rows.sort_values("accuracy", ascending=False).to_string(
                index=False, float_format=lambda v: f"{v:.4f}"))
        results[task] = evaluate(rows, truth)
        full = rows[rows["model"].isin([*FULL, RANDOM])]
        for score in ("logme", "knn_accuracy", "rank"):
            worst = full[score].idxmax() if score == "rank" else full[score].idxmin()
            last = full.loc[worst, "model"] == RANDOM
            log(f"  random init last of the 4 full backbones by {score}: {'yes' if last else 'NO'}")
        for name, r in results[task].items():
            log(f"  {name:20s} weighted tau {r['tau']:+.3f} (ties broken by valid loss "
                f"{r['tau_tiebroken']:+.3f})  top pick {r['pick']!r} loses "
                f"{r['loss_points']:.1f} points")
    if results:
        log("\n== summary (mean over tasks)")
        for name in next(iter(results.values())):
            taus = [results[t][name]["tau"] for t in results]
            tbs = [results[t][name]["tau_tiebroken"] for t in results]
            losses = [results[t][name]["loss_points"] for t in results]
            log(f"  {name:20s} mean weighted tau {np.mean(taus):+.3f} "
                f"(per task {', '.join(f'{x:+.2f}' for x in taus)}); ties broken by loss "
                f"{np.mean(tbs):+.3f} ({', '.join(f'{x:+.2f}' for x in tbs)}); top-pick loss "
                f"mean {np.mean(losses):.1f}, worst {max(losses):.1f} points")
        log("  goals: best score's mean tau >= 0.6 and above the static prior's; top pick "
            "loses <= 1 point")
    if not args.skip_speed:
        log("\n== speed")
        bench_speed(log)


if __name__ == "__main__":
    main()
