"""The data-efficiency curve on the offline sample photographs, with the packaged ImageNet
EfficientNet-Lite0 against the same network from random weights: pretrained is above scratch at
every size below the largest.

The head-only curves train on cached features (a few seconds); the full grid of the issue
(5 sizes x 2 inits x head/all, about 1-3 minutes on the 2-core CPU) is marked slow and is also
what ``benchmarks/bench_experiments.py`` times.
"""

from __future__ import annotations

import pytest
import torch

import tlwidgets as tlw
from tlwidgets import experiments as ex

SIZES = (1, 2, 4, 8, 16)
ARCH = "tf_efficientnet_lite0"


@pytest.fixture(scope="module")
def data():
    return tlw.sample_data(model=ARCH, img_size=64, augment="none")


def curves(table):
    return ex.summarize(table).pivot_table("mean", ["init", "recipe"], "size")


def assert_pretrained_above(acc, recipe):
    below = [s for s in SIZES if s < max(SIZES)]
    for size in below:
        pre, scr = acc.loc[("pretrained", recipe), size], acc.loc[("scratch", recipe), size]
        assert pre > scr, (recipe, size, pre, scr)


def test_head_only_pretrained_is_above_scratch_at_every_smaller_size(data):
    torch.manual_seed(0)
    table = ex.data_efficiency(data, ARCH, sizes=SIZES, recipes=("head",), repeats=1)
    assert len(table) == 10 and (table["status"] == "finished").all()
    acc = curves(table)
    assert_pretrained_above(acc, "head")
    # and the pretrained features carry: one photo per class is enough on this sample
    assert acc.loc[("pretrained", "head"), 1] >= 0.9
    text = ex.read_data_efficiency(table)
    assert text.startswith("With 1 image per class the pretrained model (head only) reaches")


@pytest.mark.slow
def test_the_full_grid_shows_pretrained_above_scratch(data):
    table = ex.data_efficiency(data, ARCH, sizes=SIZES, repeats=1)
    assert len(table) == 20 and (table["status"] == "finished").all()
    acc = curves(table)
    for recipe in ("head", "all"):
        assert_pretrained_above(acc, recipe)
