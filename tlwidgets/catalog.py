"""Every pretrained timm weight as one row of a pandas DataFrame.

>>> import tlwidgets as tlw
>>> df = tlw.catalog()
>>> small = df[(df.params_m < 10) & (df.pretrain == "in1k") & ~df.noncommercial]
>>> best = small.sort_values("top1", ascending=False)
>>> best[["name", "top1", "cpu_img_s"]].head()  # doctest: +SKIP

Where the columns come from
---------------------------
* timm's pretrained cfgs: ``name``, ``architecture``, ``tag``, ``img_size``, ``license``,
  ``hf_hub_id``, ``mean``, ``std``, ``crop_pct``, ``interpolation``, ``paper_ids``,
  ``num_classes``.
* Rules in this module (:func:`family_of`, :func:`pretrain_of`, :func:`is_noncommercial`):
  ``family``, ``pretrain``, ``noncommercial``.
* The shipped snapshot ``tlwidgets/_data/catalog_snapshot.json.gz``, built by
  ``scripts/build_catalog_snapshot.py`` from timm's published result tables: ``params_m``,
  ``gmacs``, ``top1``, ``top5``, ``gpu_img_s``, ``cpu_img_s``. A weight the snapshot does not
  know (a newer timm, a model registered at run time) still gets its row, with NaN statistics.
* :func:`tlwidgets.weights.offline_weight_names`: ``cached``, recomputed on every call because
  it changes when weights are downloaded or registered. The catalog calls it from
  :mod:`tlwidgets._offline`, where it lives without importing torch or timm.

Speed
-----
The static part is built once per process and kept. When timm has not been imported yet and the
installed timm is the version the snapshot was built with, the cfg columns are read from the
snapshot too (they were written by the same functions from the same registry), so the first
call does not pay the ~3 s that ``import timm`` costs (nor torch's: the ``cached`` column uses
a shipped index of timm's weight file names under the same rule). Otherwise the rows come from
timm's live registry. ``catalog(refresh=True)`` rebuilds the static part, for example after
registering a new pretrained cfg with timm.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import json
import re
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CatalogError, ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "COLUMNS",
    "STAT_COLUMNS",
    "SNAPSHOT_PATH",
    "catalog",
    "family_of",
    "pretrain_of",
    "is_noncommercial",
    "load_snapshot",
]

SNAPSHOT_PATH = Path(__file__).parent / "_data" / "catalog_snapshot.json.gz"
SNAPSHOT_FORMAT = 1

COLUMNS: tuple[str, ...] = (
    "name", "architecture", "tag", "family", "pretrain", "params_m", "gmacs", "img_size",
    "top1", "top5", "gpu_img_s", "cpu_img_s", "license", "noncommercial", "cached",
    "hf_hub_id", "mean", "std", "crop_pct", "interpolation", "paper_ids", "num_classes",
)
# Statistics from timm's result tables; NaN where the tables have no figure for the weight.
STAT_COLUMNS: tuple[str, ...] = ("params_m", "gmacs", "top1", "top5", "gpu_img_s", "cpu_img_s")
# Columns read from timm's pretrained cfgs or derived from them by the rules below.
CFG_COLUMNS: tuple[str, ...] = tuple(
    c for c in COLUMNS if c not in STAT_COLUMNS and c != "cached"
)

# ---------------------------------------------------------------------------------------------
# Rules that derive columns from names. The snapshot build script uses these same functions.

# Tag tokens that name a training dataset (or, for "openai", the data of OpenAI's CLIP).
_DATASET_TOKENS = frozenset({
    "in1k", "in12k", "in21k", "in22k", "laion2b", "laion400m", "laiona", "openai",
    "datacomp1b", "datacompxl", "dfn2b", "dfn5b", "dfndr2b", "merged2b", "webli", "cc12m",
    "yfcc15m", "yfcc100m", "ig1b", "jft", "m30m", "m38m", "lvd142m", "lvd1689m", "sa1b",
    "sat493m", "bamboo",
})
# Other spellings of the same datasets.
_DATASET_ALIASES = {"inw21k": "in21k", "metaclip": "metaclip", "metaclip2": "metaclip"}


def pretrain_of(tag: str) -> str:
    """The dataset a weight was first trained on, read from its timm tag.

    The tag is split on ``_``; the first token that names a dataset wins, because timm writes
    the upstream data first (``in21k_ft_in1k`` was pre-trained on in21k, then fine-tuned on
    in1k). A ``ft`` token met before any dataset means the pre-training data are not named, so
    the answer is ``"unknown"`` rather than the fine-tuning set. Tokens that only name a method
    (``mae``, ``dino``, ``fb``, ``apple_pt``) also give ``"unknown"``.

    >>> pretrain_of("augreg2_in21k_ft_in1k"), pretrain_of("clip_laion2b_augreg_ft_in12k_in1k")
    ('in21k', 'laion2b')
    >>> pretrain_of("a1_in1k"), pretrain_of("clip_ft_in1k"), pretrain_of("dino")
    ('in1k', 'unknown', 'unknown')
    """
    for token in tag.lower().split("_"):
        if token == "ft":
            return "unknown"
        if token in _DATASET_TOKENS:
            return token
        if token in _DATASET_ALIASES:
            return _DATASET_ALIASES[token]
    return "unknown"


# Prefixes naming who ported or trained the weights, not the design.
_PORT_PREFIX = re.compile(r"^(?:tf|tv|gluon|legacy|timm)_")
# Whole-name families whose first token alone would mislead.
_NAME_FAMILIES = (
    ("wide_resnet", "resnet"),
    ("tiny_vit", "tiny_vit"),
    ("pvt_v2", "pvt_v2"),
    ("inception_next", "inception_next"),
    ("inception_", "inception"),
    ("mobilenet_edgetpu", "mobilenet_edgetpu"),
    ("nf_", "nfnet"),
    ("nasnetalarge", "nasnet"),
    ("pnasnet5large", "pnasnet"),
    ("test_", "test"),
    ("cs3", "cspnet"),
)
# A first token that only adds a block to another design: the family is the next token's.
_MODIFIER_TOKENS = frozenset({"eca", "gc", "ese", "dm", "bat"})
# Stems merged into one family because users filter them together.
_FAMILY_MERGE = {
    "regnetx": "regnet", "regnety": "regnet", "regnetz": "regnet", "regnetv": "regnet",
    "resnext": "resnet", "seresnet": "resnet", "seresnext": "resnet", "seresnextaa": "resnet",
    "ecaresnet": "resnet", "ecaresnetlight": "resnet", "ecaresnext": "resnet",
    "skresnet": "resnet", "skresnext": "resnet", "resnetrs": "resnet", "resnetblur": "resnet",
    "resnetaa": "resnet", "gcresnet": "resnet", "gcresnext": "resnet",
    "botnet": "botnet", "sebotnet": "botnet", "botnext": "botnet",
    "halonet": "halonet", "sehalonet": "halonet", "halonext": "halonet",
    "halobotnet": "halonet", "halo2botnet": "halonet", "lamhalobotnet": "halonet",
    "haloregnetz": "halonet",
    "densenetblur": "densenet", "darknetaa": "darknet", "cspdarknet": "cspnet",
    "cspresnet": "cspnet", "cspresnext": "cspnet", "res2next": "res2net",
    "maxxvit": "maxvit", "maxxvitv2": "maxvit", "coatnext": "coatnet", "rexnetr": "rexnet",
    "nfnet": "nfnet", "senet": "senet", "semnasnet": "mnasnet", "fbnetc": "fbnet",
    "samvit": "sam",
}


def _stem(token: str) -> str:
    # A trailing "v<N>" names a new design (mobilenetv3, convnextv2, swinv2) and is kept;
    # other trailing digits are depth/size/version numbers (resnet50d, deit3, eva02).
    if re.search(r"[a-z]v\d+$", token):
        return token
    # "102x2" and "50x16" are a width multiplier after the depth
    return re.sub(r"(?:\d+x)?\d+[a-z]{0,3}$", "", token) or token


def family_of(architecture: str) -> str:
    """The model family of a timm architecture name, for filtering the catalog.

    Rules, in order: drop a porting prefix (``tf_``, ``tv_``, ``gluon_``, ``legacy_``,
    ``timm_``); a few whole-name patterns (``wide_resnet*`` is resnet, ``nf_*`` is nfnet,
    ``cs3*`` is cspnet); skip a first token that only adds a block (``eca_``, ``gc_``, ``ese_``,
    ``dm_``, ``bat_``); take the first ``_``-separated token and drop its trailing size digits,
    keeping a ``v<N>`` version suffix (``resnet50d`` → resnet, ``dla102x2`` → dla,
    ``convnextv2_tiny`` → convnextv2, ``deit3_base`` → deit);
    finally merge close variants (regnetx/y/z/v → regnet; resnext, seresnet, ecaresnet,
    skresnet, resnetrs, ... → resnet).

    >>> [family_of(a) for a in ("resnet50d", "tf_efficientnet_b0", "regnety_040")]
    ['resnet', 'efficientnet', 'regnet']
    >>> [family_of(a) for a in ("vit_base_patch16_224", "convnextv2_atto", "mobilenetv3_large_100")]
    ['vit', 'convnextv2', 'mobilenetv3']
    """
    name = _PORT_PREFIX.sub("", architecture.lower())
    for prefix, family in _NAME_FAMILIES:
        if name.startswith(prefix):
            return family
    tokens = name.split("_")
    if len(tokens) > 1 and tokens[0] in _MODIFIER_TOKENS:
        tokens = tokens[1:]
    stem = _stem(tokens[0])
    return _FAMILY_MERGE.get(stem, stem)


# Licence ids whose terms forbid commercial use. Besides ids that say so ("cc-by-nc-4.0",
# "fair-noncommercial-research-license"): Apple's ML Research Model licence (research purposes
# only) and Meta's SEER licence (research use only).
_NONCOMMERCIAL_IDS = frozenset({"apple-amlr", "seer-license"})
_NONCOMMERCIAL_PATTERN = re.compile(r"(?:^|[-_ ])nc(?:[-_ ]|$)|non-?commercial")


def is_noncommercial(license: str | None) -> bool:
    """True when a timm licence id forbids commercial use of the weights.

    ``None`` and ``"unknown"`` give False: not known to be non-commercial, so check ``license``
    before relying on it.

    >>> is_noncommercial("cc-by-nc-4.0"), is_noncommercial("apache-2.0"), is_noncommercial(None)
    (True, False, False)
    """
    if not license:
        return False
    lic = license.lower()
    return lic in _NONCOMMERCIAL_IDS or bool(_NONCOMMERCIAL_PATTERN.search(lic))


def _img_size(input_size: tuple[int, ...]) -> int:
    # Result tables use square sizes; a non-square cfg (sapiens2: 1024x768) reports its longer side.
    return int(max(input_size[-2:]))


def cfg_row(cfg: Any) -> dict[str, Any]:
    """The catalog columns that come from one timm ``PretrainedCfg`` (no statistics).

    >>> from timm.models import get_pretrained_cfg
    >>> row = cfg_row(get_pretrained_cfg("resnet18.a1_in1k"))
    >>> row["family"], row["pretrain"], row["img_size"], row["noncommercial"]
    ('resnet', 'in1k', 224, False)
    """
    license = cfg.license if cfg.license else "unknown"
    paper_ids = cfg.paper_ids
    if isinstance(paper_ids, (list, tuple)):
        paper_ids = ", ".join(str(p) for p in paper_ids)
    return {
        "name": f"{cfg.architecture}.{cfg.tag}",
        "architecture": cfg.architecture,
        "tag": cfg.tag,
        "family": family_of(cfg.architecture),
        "pretrain": pretrain_of(cfg.tag),
        "img_size": _img_size(cfg.input_size),
        "license": license,
        "noncommercial": is_noncommercial(license),
        "hf_hub_id": cfg.hf_hub_id or None,
        "mean": [float(v) for v in cfg.mean],
        "std": [float(v) for v in cfg.std],
        "crop_pct": float(cfg.crop_pct) if cfg.crop_pct is not None else None,
        "interpolation": cfg.interpolation or None,
        "paper_ids": paper_ids or None,
        "num_classes": int(cfg.num_classes),
    }


def timm_cfg_rows() -> list[dict[str, Any]]:
    """One :func:`cfg_row` per ``timm.list_pretrained()`` entry, from timm's live registry.

    >>> rows = timm_cfg_rows()
    >>> rows[0]["name"] == rows[0]["architecture"] + "." + rows[0]["tag"]
    True
    """
    import timm
    from timm.models import get_pretrained_cfg

    rows = []
    for name in timm.list_pretrained():
        cfg = get_pretrained_cfg(name)
        if cfg is None:  # listed but without a cfg: nothing to show
            continue
        row = cfg_row(cfg)
        # list_pretrained is the source of truth for the key (it is what create_model accepts)
        row["name"] = name
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------
# The snapshot and the cached static frame.

def load_snapshot(path: Path | None = None) -> dict[str, Any]:
    """The parsed snapshot: ``timm_version``, ``source`` (commit, tables) and ``columns``.

    >>> from tlwidgets.catalog import load_snapshot
    >>> load_snapshot()["source"]["commit"]  # doctest: +SKIP
    'aa4b5850c1543fa488abf260f18390eda46cf85d'
    """
    path = SNAPSHOT_PATH if path is None else path
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            snap = json.load(fh)
    except (OSError, ValueError) as err:
        raise CatalogError(
            f"Cannot read the catalog snapshot {path} ({err}). Reinstall tlwidgets, or rebuild "
            "the file with `python scripts/build_catalog_snapshot.py` from a source checkout."
        ) from None
    if snap.get("format") != SNAPSHOT_FORMAT:
        raise CatalogError(
            f"The catalog snapshot {path} has format {snap.get('format')!r}, this tlwidgets reads "
            f"format {SNAPSHOT_FORMAT}. Reinstall tlwidgets, or rebuild the file with "
            "`python scripts/build_catalog_snapshot.py`."
        )
    return snap


def _frame(columns: dict[str, list[Any]]) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    n = len(columns["name"])
    data: dict[str, Any] = {}
    for col in COLUMNS:
        values = columns.get(col)
        if col == "cached":
            data[col] = np.zeros(n, dtype=bool)
        elif col in STAT_COLUMNS or col == "crop_pct":
            data[col] = np.array([np.nan if v is None else v for v in values], dtype="float64")
        elif col in ("img_size", "num_classes"):
            data[col] = np.array(values, dtype="int64")
        elif col == "noncommercial":
            data[col] = np.array(values, dtype=bool)
        elif col in ("mean", "std"):
            data[col] = pd.Series([tuple(v) for v in values], dtype=object)
        else:
            data[col] = pd.Series(values)  # strings (None where missing)
    return pd.DataFrame(data, columns=list(COLUMNS))


def _stats_by_key(snap: dict[str, Any]) -> dict[tuple[str, int], tuple[Any, ...]]:
    cols = snap["columns"]
    keys = zip(cols["name"], cols["img_size"])
    return dict(zip(keys, zip(*(cols[c] for c in STAT_COLUMNS))))


def _static_from_timm(snap: dict[str, Any]) -> pd.DataFrame:
    rows = timm_cfg_rows()
    stats = _stats_by_key(snap)
    missing = (None,) * len(STAT_COLUMNS)
    columns: dict[str, list[Any]] = {c: [] for c in COLUMNS if c != "cached"}
    for row in rows:
        # joined on the resolution too: a figure measured at another size would mislead
        values = stats.get((row["name"], row["img_size"]), missing)
        for col in CFG_COLUMNS:
            columns[col].append(row[col])
        for col, value in zip(STAT_COLUMNS, values):
            columns[col].append(value)
    return _frame(columns)


def _snapshot_matches_installed_timm(snap: dict[str, Any]) -> bool:
    try:
        return importlib.metadata.version("timm") == snap.get("timm_version")
    except importlib.metadata.PackageNotFoundError:
        return False


def _build_static(source: str = "auto") -> pd.DataFrame:
    """The catalog without ``cached``; ``source`` is "auto", "snapshot" or "timm"."""
    snap = load_snapshot()
    if source == "auto":
        # Once timm is imported the live registry is cheap and may hold models registered at
        # run time; before that, the snapshot of the same timm version has exactly its rows.
        use_snapshot = "timm" not in sys.modules and _snapshot_matches_installed_timm(snap)
        source = "snapshot" if use_snapshot else "timm"
    if source == "snapshot":
        return _frame(snap["columns"])
    if source == "timm":
        return _static_from_timm(snap)
    raise ValueError(f"source must be 'auto', 'snapshot' or 'timm', not {source!r}")


_lock = threading.Lock()
_static: pd.DataFrame | None = None
_hub_ids: dict[str, str | None] | None = None


def _offline_names(hub_ids: dict[str, str | None]) -> set[str]:
    # _offline, not weights: tlwidgets.weights imports torch, which alone costs more than the
    # whole first call may take; _offline answers the same from the same registry without it.
    from ._offline import offline_weight_names

    return set(offline_weight_names(hub_ids))


def catalog(refresh: bool = False) -> pd.DataFrame:
    """Every pretrained timm weight, one row each, with its statistics and licence.

    Columns: ``name`` (``architecture.tag``, what :func:`tlwidgets.create_model` accepts),
    ``architecture``, ``tag``, ``family``, ``pretrain`` (dataset of the first training, from the
    tag), ``params_m`` (millions), ``gmacs`` (at ``img_size``), ``img_size``, ``top1``/``top5``
    (ImageNet-1k validation, %), ``gpu_img_s`` (images/s, RTX 4090, AMP, large batch),
    ``cpu_img_s`` (images/s, laptop CPU, fp32, batch 1), ``license``, ``noncommercial``,
    ``cached`` (weights loadable now without a network), ``hf_hub_id``, ``mean``, ``std``,
    ``crop_pct``, ``interpolation``, ``paper_ids``, ``num_classes``. Statistics the published
    tables lack are NaN, never estimated.

    The table is built once per process; later calls copy it and recompute only ``cached``.
    Pass ``refresh=True`` to rebuild it, e.g. after registering a new pretrained cfg in timm.
    The returned frame is yours to modify.

    >>> import tlwidgets as tlw
    >>> df = tlw.catalog()
    >>> resnets = df[df.family == "resnet"]
    >>> resnets.nlargest(3, "top1")[["name", "top1", "params_m"]]  # doctest: +SKIP
    >>> df[df.cached]["name"].tolist()  # weights usable offline  # doctest: +SKIP
    """
    global _static, _hub_ids
    if not isinstance(refresh, bool):
        raise ConfigError(
            f"catalog(refresh=...) takes True or False, not {refresh!r}. Use refresh=True to "
            "re-read timm's registry, or leave it out."
        )
    with _lock:
        if refresh or _static is None:
            static = _build_static()
            hub_ids = {
                name: (hub if isinstance(hub, str) else None)
                for name, hub in zip(static["name"].tolist(), static["hf_hub_id"].tolist())
            }
            _static, _hub_ids = static, hub_ids
        static, hub_ids = _static, _hub_ids
    assert hub_ids is not None
    df = static.copy()
    df["cached"] = df["name"].isin(_offline_names(hub_ids)).to_numpy(dtype=bool)
    return df

