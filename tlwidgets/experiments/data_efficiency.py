"""Data-efficiency experiments: the same model trained on more and more of the same images.

:func:`data_efficiency` trains every combination of training-set size (images per class),
initialisation (``"pretrained"`` or ``"scratch"``) and recipe (a freeze preset: ``"head"`` or
``"all"``) ``repeats`` times, and returns one tidy row per run. The subsets are **nested** and
**stratified** (:func:`nested_subsets`): within a repeat, the 4-per-class subset holds the
2-per-class one plus two more images of each class, so a curve measures more data, not other
data; every run is scored on the same, whole validation split. Runs are ordered repeat by
repeat and, within a repeat, from the smallest size up, so a stopped experiment keeps whole
curves.

From the table: :func:`summarize` (mean, spread and band per size), :func:`compute_curve`
(accuracy against wall seconds, epochs or steps) and the train/valid ``gap`` column
(generalisation). Nothing here draws; ``tlw.ExperimentView`` plots the same tables.

>>> import tlwidgets as tlw
>>> arch = "tf_efficientnet_lite0"
>>> data = tlw.sample_data(model=arch, img_size=64, augment="none")           # doctest: +SKIP
>>> table = tlw.experiments.data_efficiency(data, arch, sizes=(1, 4, 16),
...                                         repeats=1)                        # doctest: +SKIP
>>> tlw.experiments.summarize(table)                                          # doctest: +SKIP
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..errors import ConfigError, DataError, TrainingError
from ._evalset import EvalSet
from .calibration import calibration

__all__ = [
    "data_efficiency",
    "nested_subsets",
    "default_sizes",
    "summarize",
    "compute_curve",
    "RunResult",
    "plan_runs",
    "table_from_rows",
    "COLUMNS",
    "INITS",
    "DEFAULT_LR",
]

INITS = ("pretrained", "scratch")
#: Peak learning rate per recipe (and per ``(init, recipe)`` where it differs) when ``lr`` is
#: not given. A zero-initialised head on frozen features takes a large rate; pretrained weights
#: trained whole take a small one (1e-2 cut lite0's accuracy on the sample from 0.98 to 0.75 at
#: 16 images per class); random weights trained whole need a large one (at 1e-3 and 3e-3 the
#: same runs stayed at chance, at 1e-2 they reached 0.79). Measured on the textures sample,
#: tf_efficientnet_lite0 at 64 px, 32 steps.
DEFAULT_LR: dict[Any, float] = {
    "head": 1e-2, "last-stage": 2e-3, "all": 1e-3,
    ("scratch", "last-stage"): 1e-2, ("scratch", "all"): 1e-2,
}

#: Columns of the table :func:`data_efficiency` returns, in order.
COLUMNS = (
    "size", "n_train", "init", "recipe", "repeat", "accuracy", "valid_loss", "train_accuracy",
    "gap", "ece", "seconds", "epochs", "steps", "trainable_params", "status",
)


@dataclass
class RunResult:
    """One finished run: its table ``row`` (a dict with :data:`COLUMNS`) and its ``trainer``
    (``trainer.model`` is the trained model, ``trainer.data`` the training subset)."""

    row: dict[str, Any]
    trainer: Any


def _train_labels(data: Any) -> np.ndarray:
    items = getattr(data, "train_items", None)
    if items is None or not hasattr(data, "classes"):
        raise ConfigError(
            "data must be a tlw.ImageData (it needs classes and train_items); build one with "
            "tlw.sample_data(...) or tlw.ImageData.from_folder(...)."
        )
    return np.asarray([y for _, y in items], dtype=np.int64)


def _class_counts(data: Any) -> np.ndarray:
    return np.bincount(_train_labels(data), minlength=len(data.classes))


def default_sizes(data: Any) -> tuple[int, ...]:
    """1, 2, 4, 8, ... images per class, up to the smallest class's training count.

    >>> default_sizes(tlw.sample_data())   # 40 training images per class   # doctest: +SKIP
    (1, 2, 4, 8, 16, 32)
    """
    smallest = int(_class_counts(data).min())
    if smallest < 1:
        raise DataError(_empty_class_message(data))
    return tuple(2 ** k for k in range(int(math.log2(smallest)) + 1))


def _empty_class_message(data: Any) -> str:
    counts = _class_counts(data)
    empty = [data.classes[i] for i in np.flatnonzero(counts == 0)]
    return (f"class(es) {', '.join(map(repr, empty))} have no training images, so no subset "
            "can hold every class; add images or drop the class.")


def _check_sizes(data: Any, sizes: Any) -> tuple[int, ...]:
    if sizes is None:
        return default_sizes(data)
    if isinstance(sizes, (int, np.integer)) and not isinstance(sizes, bool):
        sizes = (int(sizes),)
    try:
        vals = list(sizes)
    except TypeError:
        vals = []
    if not vals or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1
                       for v in vals):
        raise ConfigError(
            f"sizes must be whole numbers of images per class >= 1, e.g. sizes=(1, 2, 4, 8); "
            f"got {sizes!r}."
        )
    vals = sorted({int(v) for v in vals})
    counts = _class_counts(data)
    if counts.min() < 1:
        raise DataError(_empty_class_message(data))
    if vals[-1] > counts.min():
        small = data.classes[int(counts.argmin())]
        raise DataError(
            f"size {vals[-1]} images per class is more than class {small!r} has "
            f"({int(counts.min())} training images); use sizes up to {int(counts.min())}."
        )
    return tuple(vals)


def nested_subsets(data: Any, sizes: Sequence[int] | None = None, seed: int = 0,
                   repeat: int = 0) -> dict[int, list[int]]:
    """Positions in ``data.train_items`` of a stratified subset for each size (per class).

    Each class's training images are shuffled once per ``(seed, repeat)``, and the subset of
    size ``k`` takes the first ``k`` of every class, so each subset holds every smaller one
    and exactly ``k`` images of each class. Positions are sorted (the order of
    ``data.subset``).

    >>> subsets = nested_subsets(data, sizes=(1, 2, 4))              # doctest: +SKIP
    >>> set(subsets[1]) <= set(subsets[2]) <= set(subsets[4])         # doctest: +SKIP
    True
    >>> small = data.subset(subsets[2])                               # doctest: +SKIP
    """
    sizes = _check_sizes(data, sizes)
    labels = _train_labels(data)
    rng = np.random.default_rng([int(seed), int(repeat)])
    orders = [rng.permutation(np.flatnonzero(labels == c)) for c in range(len(data.classes))]
    return {k: sorted(int(i) for order in orders for i in order[:k]) for k in sizes}


def _check_factory(model_factory: Any, data: Any,
                   inits: tuple[str, ...]) -> Callable[[str], nn.Module]:
    if isinstance(model_factory, str):
        name = model_factory
        unknown = [i for i in inits if i not in INITS]
        if unknown:
            raise ConfigError(
                f"with a model name as model_factory, inits must be 'pretrained' and/or "
                f"'scratch'; got {unknown}. For other initialisations pass a function "
                "init -> model."
            )
        from ..weights import create_model

        def factory(init: str) -> nn.Module:
            return create_model(name, len(data.classes),
                                weights="auto" if init == "pretrained" else "none")

        return factory
    if not callable(model_factory):
        raise ConfigError(
            "model_factory must be a timm model name (e.g. 'tf_efficientnet_lite0') or a "
            "function init -> model, e.g. lambda init: tlw.create_model('resnet18', 4, "
            "weights='auto' if init == 'pretrained' else 'none')."
        )
    return model_factory


def _check_names(values: Any, what: str, allowed: Sequence[str] | None) -> tuple[str, ...]:
    if isinstance(values, str):
        values = (values,)
    try:
        names = tuple(values)
    except TypeError:
        names = ()
    bad = [v for v in names if not isinstance(v, str) or (allowed is not None and v not in allowed)]
    if not names or bad or len(set(names)) != len(names):
        hint = f" from {', '.join(map(repr, allowed))}" if allowed is not None else ""
        raise ConfigError(f"{what} must be distinct names{hint}; got {values!r}.")
    return names


def _lr_for(lr: Any, init: str, recipe: str) -> float:
    table = DEFAULT_LR if lr is None else lr
    if isinstance(table, Mapping):
        for key in ((init, recipe), recipe):
            if key in table:
                return float(table[key])
        if lr is None:
            return 1e-3
        raise ConfigError(f"lr has no rate for recipe {recipe!r}; give one, e.g. "
                          f"lr={{'{recipe}': 1e-3, ...}} or lr={{('{init}', '{recipe}'): 1e-3}}.")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ConfigError(f"lr must be a positive number, a dict, or None; got {lr!r}.")
    return float(lr)


def _positive_int(value: Any, what: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"{what} must be a whole number >= {low}; got {value!r}.")
    return int(value)


class _Watch:
    """Subscribed to one run's events (on its training thread): stops the run when ``stop`` is
    set, reports each epoch to ``on_progress``."""

    def __init__(self, trainer: Any, stop: threading.Event | None,
                 on_progress: Callable[[dict[str, Any]], Any] | None,
                 where: dict[str, Any]) -> None:
        self.trainer, self.stop, self.on_progress, self.where = trainer, stop, on_progress, where

    def __call__(self, event: Any) -> None:
        if self.stop is not None and self.stop.is_set():
            self.trainer.stop()
        if event.kind == "epoch" and self.on_progress is not None:
            self.on_progress({**self.where, "epoch": int(event.data["epoch"])})


def _run_seed(seed: int, repeat: int) -> int:
    # one seed per repeat: every size, init and recipe of a repeat starts from the same random
    # weights and batch-order seed, so differences along a curve come from the data
    return int(np.random.SeedSequence([int(seed), int(repeat)]).generate_state(1)[0])


def plan_runs(
    data: Any,
    model_factory: Any = None,
    sizes: Sequence[int] | None = None,
    inits: Sequence[str] = INITS,
    recipes: Sequence[str] = ("head", "all"),
    repeats: int = 3,
    epochs: int = 8,
    min_steps: int = 16,
    lr: float | Mapping[Any, float] | None = None,
) -> pd.DataFrame:
    """The runs :func:`data_efficiency` would make with these arguments, in its order, without
    training anything: columns ``repeat``, ``size``, ``n_train``, ``init``, ``recipe``,
    ``epochs``, ``steps``, ``lr``. Checks every argument as :func:`data_efficiency` does.

    >>> tlw.experiments.plan_runs(data, "tf_efficientnet_lite0", sizes=(1, 8))   # doctest: +SKIP
    """
    from ..freeze import PRESETS

    sizes = _check_sizes(data, sizes)
    if len(getattr(data, "valid_items", ())) == 0:
        raise DataError("data has no validation images to score the runs on; build it with "
                        "valid_pct > 0 (or a valid/ folder).")
    inits = _check_names(inits, "inits", None)
    recipes = _check_names(recipes, "recipes", tuple(PRESETS))
    if "none" in recipes:
        raise ConfigError("recipe 'none' trains nothing; use 'head', 'last-stage' or 'all'.")
    if model_factory is not None:
        _check_factory(model_factory, data, inits)
    repeats = _positive_int(repeats, "repeats")
    epochs = _positive_int(epochs, "epochs")
    min_steps = _positive_int(min_steps, "min_steps", low=0)
    k = len(data.classes)
    batch = int(getattr(data, "batch_size", 32))
    rows = []
    for repeat in range(repeats):
        for size in sizes:
            per_epoch = math.ceil(size * k / batch)
            n_epochs = max(epochs, math.ceil(min_steps / per_epoch))
            for init in inits:
                for recipe in recipes:
                    rows.append({"repeat": repeat, "size": size, "n_train": size * k,
                                 "init": init, "recipe": recipe, "epochs": n_epochs,
                                 "steps": n_epochs * per_epoch,
                                 "lr": _lr_for(lr, init, recipe)})
    return pd.DataFrame(rows, columns=["repeat", "size", "n_train", "init", "recipe", "epochs",
                                       "steps", "lr"])


def data_efficiency(
    data: Any,
    model_factory: str | Callable[[str], nn.Module],
    sizes: Sequence[int] | None = None,
    inits: Sequence[str] = INITS,
    recipes: Sequence[str] = ("head", "all"),
    repeats: int = 3,
    epochs: int = 8,
    min_steps: int = 16,
    lr: float | Mapping[str, float] | None = None,
    seed: int = 0,
    run_dir: str | Path | None = None,
    stop: threading.Event | None = None,
    on_result: Callable[[RunResult], Any] | None = None,
    on_progress: Callable[[dict[str, Any]], Any] | None = None,
    verbose: bool = False,
    **trainer_kwargs: Any,
) -> pd.DataFrame:
    """Train on nested, stratified subsets of ``data`` and score each run on its whole
    validation split; one row per run (columns :data:`COLUMNS`).

    - ``model_factory``: a timm model name (``"pretrained"`` = ``create_model(name, k)``,
      ``"scratch"`` = ``weights="none"``), or a function ``init -> model`` (then ``inits`` may
      be any names). It is called once per run with torch's RNG seeded per repeat, so the
      random initialisation is the same for every size of a repeat and every time.
    - ``sizes``: images per class (default 1, 2, 4, ... up to the smallest class).
    - ``recipes``: freeze presets (``tlw.apply_preset``): ``"head"``, ``"all"``,
      ``"last-stage"``. Head-only runs on data with ``augment="none"`` train on cached
      features (the Trainer does it by itself), so they cost little.
    - Each run trains ``max(epochs, ceil(min_steps / steps per epoch))`` epochs, so the
      smallest subsets still get ``min_steps`` optimizer steps, with peak rate ``lr`` (a
      float; a dict keyed by recipe and/or ``(init, recipe)``; or None for
      :data:`DEFAULT_LR`). Other keyword arguments go to
      ``tlw.Trainer`` (``optimizer=``, ``weight_decay=``, ``device=``, ...).
    - ``seed``: subsets, initialisation and batch order all follow from it; the same seed
      gives the same table (except ``seconds``).
    - ``run_dir``: keep each run's folder under it (default: a temporary folder, removed).
    - ``stop``: a ``threading.Event``; setting it (from any thread) stops the current run
      after its current step and ends the experiment. The table of the runs that finished is
      returned; the interrupted run is left out.
    - ``on_result(RunResult)`` is called as each run ends (on the calling thread), with the
      row and the trainer; ``on_progress(dict)`` at each run's start and after each epoch,
      with ``done``, ``total``, ``size``, ``init``, ``recipe``, ``repeat``, ``epoch``,
      ``epochs``. ``verbose=True`` prints one line per finished run.
    - Speed: the all-layer runs cost nearly all of it (head-only runs on cached features take
      about a second). On a CPU shared with other work, ``torch.set_num_threads(1)`` first:
      with torch's default two threads on a busy 2-core machine they ran ~10x slower
      (``docs/benchmarks.md``).

    Columns: ``size`` (per class), ``n_train``, ``init``, ``recipe``, ``repeat``,
    ``accuracy`` / ``valid_loss`` (validation split, after the last epoch), ``train_accuracy``
    (the run's training images through the eval transform), ``gap`` (= train_accuracy -
    accuracy), ``ece`` (expected calibration error on validation), ``seconds`` (wall time of
    ``fit()``), ``epochs``, ``steps``, ``trainable_params``, ``status`` (``"finished"``, or
    ``"failed"`` with NaN scores when training diverged).

    >>> import tlwidgets as tlw
    >>> arch = "tf_efficientnet_lite0"
    >>> data = tlw.sample_data(model=arch, img_size=64, augment="none")       # doctest: +SKIP
    >>> table = tlw.experiments.data_efficiency(data, arch, sizes=(1, 2, 4, 8, 16),
    ...                                         repeats=1)                    # doctest: +SKIP
    >>> table.groupby(["init", "recipe", "size"]).accuracy.mean()              # doctest: +SKIP
    """
    from ..evaluation import evaluate
    from ..freeze import apply_preset
    from ..training import Trainer

    plan = plan_runs(data, model_factory, sizes, inits, recipes, repeats, epochs, min_steps, lr)
    sizes = tuple(sorted(set(plan["size"])))
    factory = _check_factory(model_factory, data, tuple(dict.fromkeys(plan["init"])))
    if stop is not None and not hasattr(stop, "is_set"):
        raise ConfigError("stop must be a threading.Event (or None).")
    for reserved in ("epochs", "lr", "run_dir", "seed", "callbacks"):
        if reserved in trainer_kwargs:
            raise ConfigError(f"data_efficiency sets the Trainer's {reserved}= itself.")
    # many short runs: the trainers' own console progress would bury the experiment's
    trainer_kwargs.setdefault("verbose", False)

    rows: list[dict[str, Any]] = []
    tmp = tempfile.TemporaryDirectory(prefix="tlw-experiment-") if run_dir is None else None
    root = Path(tmp.name if tmp is not None else run_dir)  # type: ignore[arg-type]
    try:
        subsets: dict[int, dict[int, list[int]]] = {}
        for n, run in enumerate(plan.itertuples(index=False)):
            repeat, size, init, recipe = int(run.repeat), int(run.size), run.init, run.recipe
            n_epochs = int(run.epochs)
            if stop is not None and stop.is_set():
                break
            if repeat not in subsets:
                subsets[repeat] = nested_subsets(data, sizes, seed, repeat)
            sub = data.subset(subsets[repeat][size])
            run_seed = _run_seed(seed, repeat)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(run_seed)
                model = factory(init)
            if not isinstance(model, nn.Module):
                raise ConfigError(f"model_factory({init!r}) returned {type(model).__name__}, "
                                  "not a torch model.")
            apply_preset(model, recipe)
            where = {"done": n, "total": len(plan), "size": size, "init": init,
                     "recipe": recipe, "repeat": repeat, "epochs": n_epochs}

            trainer = Trainer(model, sub, epochs=n_epochs, lr=float(run.lr),
                              run_dir=root / f"r{repeat}-n{size}-{init}-{recipe}", seed=run_seed,
                              **trainer_kwargs)
            trainer.subscribe(_Watch(trainer, stop, on_progress, where))
            if on_progress is not None:
                on_progress({**where, "epoch": 0})
            row: dict[str, Any] = {
                "size": size, "n_train": len(sub.train_items), "init": init, "recipe": recipe,
                "repeat": repeat, "epochs": n_epochs, "steps": int(run.steps),
                "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            }
            t0 = time.perf_counter()
            try:
                trainer.fit()
                failed = False
            except TrainingError:
                failed = True
            row["seconds"] = time.perf_counter() - t0
            if trainer.state == "stopped":
                break
            if failed:
                row.update(accuracy=np.nan, valid_loss=np.nan, train_accuracy=np.nan,
                           gap=np.nan, ece=np.nan, status="failed")
            else:
                ev = trainer.evaluate()
                train_ev = evaluate(model, EvalSet.train_split(sub))
                row.update(accuracy=ev.accuracy, valid_loss=ev.loss,
                           train_accuracy=train_ev.accuracy,
                           gap=train_ev.accuracy - ev.accuracy, ece=calibration(ev).ece,
                           status="finished")
            row = {c: row[c] for c in COLUMNS}
            rows.append(row)
            if verbose:
                print(f"run {n + 1}/{len(plan)}: {size} per class, {init}, {recipe}: "
                      f"accuracy {row['accuracy']:.3f} (train {row['train_accuracy']:.3f}) "
                      f"in {row['seconds']:.1f} s, {n_epochs} epochs", flush=True)
            if on_result is not None:
                on_result(RunResult(row=dict(row), trainer=trainer))
            del trainer, model
    finally:
        if tmp is not None:
            tmp.cleanup()
    return table_from_rows(rows)


def table_from_rows(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The experiment table (columns :data:`COLUMNS`, fixed dtypes) from row dicts, such as
    the ``RunResult.row`` values a callback collected.

    >>> table_from_rows([]).columns[:3].tolist()
    ['size', 'n_train', 'init']
    """
    df = pd.DataFrame(list(rows), columns=list(COLUMNS))
    ints = ["size", "n_train", "repeat", "epochs", "steps", "trainable_params"]
    floats = ["accuracy", "valid_loss", "train_accuracy", "gap", "ece", "seconds"]
    return df.astype({**{c: "int64" for c in ints}, **{c: "float64" for c in floats},
                      "init": object, "recipe": object, "status": object})


def summarize(table: pd.DataFrame, value: str = "accuracy") -> pd.DataFrame:
    """Mean, standard deviation, lowest and highest of ``value`` over the repeats, per
    ``init``, ``recipe`` and ``size`` (finished runs only): the line and band of a curve.

    >>> tlw.experiments.summarize(table, "gap")                     # doctest: +SKIP
    """
    _check_table(table, value)
    done = table[table["status"] == "finished"]
    g = done.groupby(["init", "recipe", "size"], sort=True)[value]
    out = g.agg(mean="mean", std="std", low="min", high="max", runs="count").reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


def compute_curve(table: pd.DataFrame, x: str = "seconds") -> pd.DataFrame:
    """Accuracy against compute: per ``init``, ``recipe`` and ``size``, the mean ``x``
    (``"seconds"`` of wall time, ``"epochs"`` or ``"steps"``) and mean accuracy of the runs,
    sorted by ``x`` within each curve. Reading along a curve says how much compute buys how
    much accuracy; across curves, how much less one needs for the same accuracy.

    >>> tlw.experiments.compute_curve(table, x="seconds")           # doctest: +SKIP
    """
    if x not in ("seconds", "epochs", "steps"):
        raise ConfigError(f"x must be 'seconds', 'epochs' or 'steps'; got {x!r}.")
    _check_table(table, x)
    done = table[table["status"] == "finished"]
    out = (done.groupby(["init", "recipe", "size"], sort=True)
           .agg(**{x: (x, "mean"), "accuracy": ("accuracy", "mean")}).reset_index())
    return out.sort_values(["init", "recipe", x], kind="stable").reset_index(drop=True)


def _check_table(table: Any, value: str) -> None:
    need = {"init", "recipe", "size", "status", value}
    if not isinstance(table, pd.DataFrame) or not need <= set(table.columns):
        raise ConfigError(
            f"expected the table of tlw.experiments.data_efficiency (columns {sorted(need)}); "
            f"got {type(table).__name__}."
        )
