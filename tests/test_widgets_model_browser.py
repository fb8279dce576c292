"""ModelBrowser without a browser: what travels to the page, and the kernel side of selection."""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any

import comm
import numpy as np
import pandas as pd
import pytest
import torch

import tlwidgets as tlw
from tlwidgets.widgets.model_browser import ModelBrowser, encode_catalog

NUMERIC = [
    "params_m",
    "gmacs",
    "img_size",
    "top1",
    "top5",
    "gpu_img_s",
    "cpu_img_s",
    "crop_pct",
    "num_classes",
]


def small_catalog() -> pd.DataFrame:
    """Four rows shaped like tlw.catalog(), with the awkward cases: NaN, None, lists, odd names."""
    return pd.DataFrame(
        {
            "name": [
                "resnet18.a1_in1k",
                "vit_base_patch16_224.augreg_in21k",
                "convnext_tiny.fb_in22k",
                "<img src=x onerror=alert(1)>.evil",
            ],
            "architecture": [
                "resnet18",
                "vit_base_patch16_224",
                "convnext_tiny",
                "<img src=x onerror=alert(1)>",
            ],
            "tag": ["a1_in1k", "augreg_in21k", "fb_in22k", "evil"],
            "family": ["resnet", "vit", "convnext", "resnet"],
            "pretrain": ["in1k", "in21k", "in22k", None],
            "params_m": [11.69, 86.57, 28.59, math.nan],
            "gmacs": [1.82, 17.58, 4.47, math.nan],
            "img_size": [224, 224, 224, 64],
            "top1": [71.49, math.nan, 82.06, math.nan],
            "top5": [89.99, math.nan, 95.86, math.nan],
            "gpu_img_s": [9123.4, 1210.5, math.nan, math.nan],
            "cpu_img_s": [55.3, 4.1, 12.0, math.nan],
            "license": ["apache-2.0", "apache-2.0", "cc-by-nc-4.0", None],
            "noncommercial": [False, False, True, False],
            "cached": [True, False, False, False],
            "hf_hub_id": [
                "timm/resnet18.a1_in1k",
                "google/vit-base",
                "timm/convnext_tiny.fb_in22k",
                None,
            ],
            "mean": [(0.485, 0.456, 0.406), (0.5, 0.5, 0.5), (0.485, 0.456, 0.406), None],
            "std": [(0.229, 0.224, 0.225), (0.5, 0.5, 0.5), (0.229, 0.224, 0.225), None],
            "crop_pct": [0.95, 0.9, 0.875, math.nan],
            "interpolation": ["bicubic", "bicubic", "bicubic", "bilinear"],
            "paper_ids": [
                "arXiv:2110.00476",
                ["arXiv:2106.10270", "arXiv:2010.11929v2"],
                None,
                "evil",
            ],
            "num_classes": [1000, 21843, 21841, 2],
        }
    )


class RecordingComm:
    """Stands in for the kernel's comm: keeps what the widget sends, and the opening message."""

    comm_id = "test-comm"
    kernel = "test"

    def __init__(self, **kwargs: Any) -> None:
        self.opened = kwargs
        self.messages: list[tuple[dict, list]] = []

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self.messages.append((data, list(buffers or [])))

    def on_msg(self, callback: Any) -> None:
        self.callback = callback

    def on_close(self, callback: Any) -> None:
        pass

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.fixture
def comms(monkeypatch: pytest.MonkeyPatch) -> list[RecordingComm]:
    made: list[RecordingComm] = []

    def create_comm(**kwargs: Any) -> RecordingComm:
        made.append(RecordingComm(**kwargs))
        return made[-1]

    monkeypatch.setattr(comm, "create_comm", create_comm)
    return made


def decode(state: dict, buffer_paths: list, buffers: list) -> dict[str, Any]:
    """Decode the opening message the way the page does, independently of the encoder."""
    for path, buf in zip(buffer_paths, buffers):
        target = state
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = bytes(buf)
    payload = state["_catalog"]
    names = payload["columns"]["name"]["values"]
    out: dict[str, Any] = {"name": names}
    for key, col in payload["columns"].items():
        if col["kind"] in ("num", "bool"):
            data = np.frombuffer(col["data"], dtype=col["dtype"])
            out[key] = data.reshape(-1, col["width"]) if "width" in col else data
        elif col["kind"] == "dict":
            codes = np.frombuffer(col["codes"], dtype=col["dtype"])
            out[key] = [col["values"][c] for c in codes]
        elif col["kind"] == "name_ref":
            out[key] = [col["prefix"] + n if v == 1 else v for v, n in zip(col["values"], names)]
        else:
            out[key] = col["values"]
    return out


def opening(comm_: RecordingComm) -> tuple[dict, int, int]:
    """The decoded opening message, its JSON size and its binary size in bytes."""
    data = comm_.opened["data"]
    buffers = comm_.opened["buffers"]
    json_bytes = len(json.dumps(data).encode())
    binary_bytes = sum(memoryview(b).nbytes for b in buffers)
    return (
        decode(json.loads(json.dumps(data["state"])), data["buffer_paths"], buffers),
        json_bytes,
        binary_bytes,
    )


def assert_round_trip(frame: pd.DataFrame, got: dict[str, Any]) -> None:
    assert got["name"] == frame["name"].tolist()
    for key in NUMERIC:
        expected = (
            pd.to_numeric(frame[key], errors="coerce").to_numpy(dtype=np.float64).astype(np.float32)
        )
        np.testing.assert_array_equal(got[key], expected, err_msg=key)  # NaN == NaN here
        assert got[key].dtype == np.float32
    for key in ("noncommercial", "cached"):
        assert got[key].tolist() == [int(bool(v)) for v in frame[key]]
    for key in ("family", "pretrain", "license", "interpolation", "hf_hub_id"):
        assert got[key] == [
            None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in frame[key]
        ], key


def test_the_payload_round_trips_every_column(comms):
    frame = small_catalog()
    ModelBrowser(catalog=frame)
    got, _, _ = opening(comms[-1])
    assert_round_trip(frame, got)
    # lists of paper ids travel as one text; missing as null
    assert got["paper_ids"] == [
        "arXiv:2110.00476",
        "arXiv:2106.10270, arXiv:2010.11929v2",
        None,
        "evil",
    ]
    np.testing.assert_allclose(got["mean"][0], [0.485, 0.456, 0.406], rtol=1e-6)
    assert np.isnan(got["std"][3]).all()
    # names are "arch.tag", so the halves do not travel a second time
    assert "architecture" not in got and "tag" not in got


def test_numbers_travel_as_binary_buffers_not_json(comms):
    ModelBrowser(catalog=small_catalog())
    opened = comms[-1].opened
    columns = opened["data"]["state"]["_catalog"]["columns"]
    paths = {tuple(p) for p in opened["data"]["buffer_paths"]}
    for key in NUMERIC + ["noncommercial", "cached", "mean", "std"]:
        assert ("_catalog", "columns", key, "data") in paths, key
        assert "data" not in columns[key]  # taken out of the JSON
    assert ("_catalog", "columns", "family", "codes") in paths


def test_architecture_and_tag_travel_when_they_are_not_the_halves_of_the_name(comms):
    frame = small_catalog()
    frame.loc[1, "architecture"] = "vit_base_custom"
    ModelBrowser(catalog=frame)
    got, _, _ = opening(comms[-1])
    assert got["architecture"][1] == "vit_base_custom"
    assert got["tag"] == frame["tag"].tolist()


def test_the_whole_catalog_travels_once_well_under_a_megabyte(comms):
    frame = tlw.catalog()
    browser = ModelBrowser(check_hub=False)  # no background probe messages in the count below
    got, json_bytes, binary_bytes = opening(comms[-1])
    assert_round_trip(frame, got)
    total = json_bytes + binary_bytes
    print(
        f"\nModelBrowser opening message for {len(frame)} models: {json_bytes / 1024:.1f} KiB JSON "
        f"(incl. {len(browser._esm) / 1024:.1f} KiB of view JS) + {binary_bytes / 1024:.1f} KiB binary "
        f"= {total / 1024:.1f} KiB"
    )
    assert len(frame) > 1000
    assert total < 512 * 1024
    # selecting a model sends only the name, not the catalog again
    browser.selected = frame["name"].iloc[10]
    ((update, buffers),) = comms[-1].messages
    assert update["state"] == {"selected": frame["name"].iloc[10]} and buffers == []


def test_selected_accepts_catalog_names_and_rejects_others_with_a_hint():
    browser = ModelBrowser(catalog=small_catalog(), selected="resnet18.a1_in1k")
    assert browser.selected == "resnet18.a1_in1k"
    assert browser.selected_row["top1"] == pytest.approx(71.49)
    with pytest.raises(
        tlw.ModelNotFoundError,
        match=r"'resnet18\.a1_in1kk' is not in this browser's catalog.*Did you mean 'resnet18\.a1_in1k'",
    ):
        browser.selected = "resnet18.a1_in1kk"
    assert browser.selected == "resnet18.a1_in1k"
    browser.selected = ""
    assert browser.selected_row is None
    with pytest.raises(tlw.ModelNotFoundError, match="not in this browser's catalog"):
        ModelBrowser(catalog=small_catalog(), selected="no_such_model.x")


def test_a_selection_from_the_page_reaches_observers():
    browser = ModelBrowser(catalog=small_catalog())
    seen = []
    browser.observe(lambda change: seen.append(change["new"]), "selected")
    browser.set_state({"selected": "convnext_tiny.fb_in22k"})  # what a click in the page sends
    assert seen == ["convnext_tiny.fb_in22k"]
    assert browser.selected_row["license"] == "cc-by-nc-4.0"


def test_catalogs_that_cannot_be_shown_are_refused_with_a_fix():
    with pytest.raises(tlw.ConfigError, match="must be a pandas DataFrame"):
        ModelBrowser(catalog=[{"name": "resnet18.a1_in1k"}])
    with pytest.raises(tlw.ConfigError, match="no 'name' column"):
        ModelBrowser(catalog=pd.DataFrame({"model": ["resnet18"]}))
    with pytest.raises(
        tlw.ConfigError, match=r"names resnet18\.a1_in1k more than once.*drop_duplicates"
    ):
        ModelBrowser(catalog=pd.DataFrame({"name": ["resnet18.a1_in1k", "resnet18.a1_in1k"]}))
    with pytest.raises(tlw.ConfigError, match="rows without a name"):
        ModelBrowser(catalog=pd.DataFrame({"name": ["resnet18.a1_in1k", None]}))


def test_a_filtered_catalog_with_only_some_columns_still_encodes():
    payload = encode_catalog(pd.DataFrame({"name": ["a.x", "b.y"], "top1": [1.0, None]}))
    assert payload["n"] == 2 and set(payload["columns"]) == {"name", "top1"}
    assert np.isnan(np.frombuffer(payload["columns"]["top1"]["data"], dtype=np.float32)[1])


def test_create_model_without_a_selection_says_what_to_do():
    browser = ModelBrowser(catalog=small_catalog())
    with pytest.raises(tlw.ConfigError, match="No model is selected.*click a row"):
        browser.create_model(num_classes=3)


def test_create_model_builds_the_selected_model_with_a_new_head():
    browser = ModelBrowser(catalog=small_catalog(), selected="resnet18.a1_in1k")
    model = browser.create_model(num_classes=3, weights="none")
    assert model.get_classifier().out_features == 3
    assert model.pretrained_cfg["architecture"] == "resnet18"


# ---------------------------------------------------------------- issue 12: order and hub
def test_it_opens_sorted_for_a_first_choice_and_says_why(comms):
    from tlwidgets.widgets.model_browser import CPU_GMACS, ORDER_NOTE, recommended_rank

    frame = tlw.catalog()
    ModelBrowser(catalog=frame, check_hub=False)
    got, _, _ = opening(comms[-1])
    rank = got["rank"]
    assert np.array_equal(rank, recommended_rank(frame))
    order = frame.iloc[np.argsort(rank)]
    n_offline = int(frame["cached"].sum())
    assert n_offline >= 1 and order["cached"].iloc[:n_offline].all()  # offline weights first
    light = order.iloc[n_offline:n_offline + 20]
    assert (light["gmacs"] <= CPU_GMACS).all()  # then models a laptop CPU can train
    top = light["top1"].to_numpy()
    assert np.all(np.diff(top) <= 0)  # by top-1
    # nobody starts from a billion-parameter model any more
    assert order["params_m"].iloc[:50].max() < 100
    assert "Offline" in ORDER_NOTE and "top-1" in ORDER_NOTE and "CPU" in ORDER_NOTE
    assert comms[-1].opened["data"]["state"]["_catalog"]["order_note"] == ORDER_NOTE


def test_rank_puts_unknown_top1_last_in_its_group():
    from tlwidgets.widgets.model_browser import recommended_rank

    frame = pd.DataFrame({"name": ["a.x", "b.x", "c.x", "d.x"],
                          "top1": [math.nan, 70.0, 80.0, 90.0],
                          "gmacs": [1.0, 1.0, 1.0, 100.0], "cached": [False] * 4})
    assert recommended_rank(frame).tolist() == [2, 1, 0, 3]


def test_the_hub_status_reaches_the_page(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    browser = ModelBrowser(catalog=small_catalog(), check_hub=False)
    assert browser.hub == "unknown"
    assert browser.check_hub() == "unreachable"
    assert browser.hub_detail == "HF_HUB_OFFLINE is set"
    # in the background by default, when some row needs the hub
    background = ModelBrowser(catalog=small_catalog())
    deadline = time.monotonic() + 10
    while background.hub == "checking" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert background.hub == "unreachable"
    # nothing to check when every row is offline
    everything_cached = small_catalog().assign(cached=True)
    assert ModelBrowser(catalog=everything_cached).hub == "unknown"


# ---- "Rank on my data" ---------------------------------------------------------------------


def bright_channel_data(per_class: int = 8, size: int = 32) -> Any:
    """Three classes told apart by their brightest channel: a pretrained model separates them."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), per_class)
    images = rng.random((len(labels), size, size, 3), dtype=np.float32) * 0.3
    for c in range(3):
        images[labels == c, :, :, c] += 0.6
    return tlw.ImageData.from_arrays(images, labels, classes=["r", "g", "b"], valid_pct=0.25,
                                     img_size=size, batch_size=8)


def decode_scores(payload: dict) -> dict[str, Any]:
    """The score payload's columns as numpy arrays / lists, independently of the encoder."""
    out: dict[str, Any] = {}
    for key, col in payload["columns"].items():
        out[key] = (np.frombuffer(bytes(col["data"]), dtype=col["dtype"]) if col["kind"] == "num"
                    else col["values"])
    return out


class SlowFeatures(torch.nn.Module):
    """A headless model whose every batch takes a while, so a ranking can be cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.3)
        return self.conv(x).mean((2, 3))



def test_rank_on_my_data_waits_for_data_and_refuses_what_is_not_data():
    browser = ModelBrowser(catalog=small_catalog(), check_hub=False)
    assert browser.ranking["state"] == "unavailable"
    assert "browser.data = data" in browser.ranking["text"]
    with pytest.raises(tlw.ConfigError, match="no data to rank"):
        browser.rank()
    with pytest.raises(tlw.ConfigError, match="tlw.ImageData"):
        browser.data = [1, 2, 3]
    browser.data = bright_channel_data()
    assert browser.ranking["state"] == "ready"
    assert "3 classes, 18 training images" in browser.ranking["text"]
    assert ModelBrowser(catalog=small_catalog(), check_hub=False,
                        data=bright_channel_data()).ranking["state"] == "ready"


def test_a_ranking_runs_off_the_kernel_thread_and_lands_in_the_table(monkeypatch):
    senders: list[str] = []

    class ThreadComm(RecordingComm):
        def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
            senders.append(threading.current_thread().name)
            super().send(data, metadata, buffers)

    monkeypatch.setattr(comm, "create_comm", lambda **kw: ThreadComm(**kw))
    catalog = tlw.catalog()
    data = bright_channel_data()
    scratch = tlw.create_model("tf_efficientnet_lite0", 3, weights="none")
    browser = ModelBrowser(catalog=catalog, check_hub=False, data=data,
                           candidates=["tf_efficientnet_lite0", scratch], per_class=6)
    browser._handle_message(browser, {"cmd": "rank"})  # what the page's button sends
    assert browser.ranking["state"] == "running"
    result = browser.wait_ranking(120)
    assert browser.ranking["state"] == "done"
    assert browser.ranking["text"].startswith("Ranked 2 models on 18 of your images")
    assert sorted(result["model"]) == ["tf_efficientnet_lite0",
                                       "tf_efficientnet_lite0 (random init)"]
    # the catalog's lite0 row gets the pretrained model's scores; the random-init model, which
    # is no catalog row, gets a row of its own after the catalog's
    payload = browser._scores
    lite0 = int(np.flatnonzero(catalog["name"] == "tf_efficientnet_lite0.in1k")[0])
    row_of = {"tf_efficientnet_lite0": lite0, "tf_efficientnet_lite0 (random init)": len(catalog)}
    assert payload["index"] == [row_of[m] for m in result["model"]]  # in rank order
    assert payload["extra"]["columns"]["name"]["values"] == ["tf_efficientnet_lite0 (random init)"]
    got = decode_scores(payload)
    np.testing.assert_allclose(got["logme"], result["logme"], rtol=1e-6)
    np.testing.assert_allclose(got["knn_pct"], 100 * result["knn_accuracy"], rtol=1e-6)
    assert got["score_rank"].tolist() == [1.0, 2.0] and got["score_order"].tolist() == [1.0, 2.0]
    assert got["logme"][0] >= got["logme"][1]
    assert got["feature_dim"].tolist() == [1280.0, 1280.0]
    assert got["rank_error"] == ["", ""]
    card = payload["similarity"]["tf_efficientnet_lite0.in1k"]
    assert 0 < card["mean_max_prob"] <= 1 and card["looks_like"]
    assert set(payload["explain"]) == {"logme", "knn_accuracy", "top1", "similarity"}
    # the worker scored; only the kernel's and the publisher's threads talked to the page
    assert "tlw-rank-models" not in senders and "tlw-rank-models-publisher" in senders
    # the new row can be selected; create_model makes that random-init architecture
    browser.selected = "tf_efficientnet_lite0 (random init)"
    assert browser.selected_row["score_rank"] == int(
        result.set_index("model").loc["tf_efficientnet_lite0 (random init)", "rank"])
    made = browser.create_model(num_classes=3)
    assert tlw.is_random_init(made) and made.get_classifier().out_features == 3


def test_a_failed_candidate_keeps_its_row_and_says_why(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    browser = ModelBrowser(catalog=small_catalog(), check_hub=False, data=bright_channel_data())
    browser.rank(["resnet18.a1_in1k", tlw.create_model("resnet18", 3, weights="none")],
                 per_class=4, wait=True)
    got = decode_scores(browser._scores)
    assert math.isnan(got["score_rank"][1]) and got["score_rank"][0] == 1
    assert "WeightsUnavailableError" in got["rank_error"][1]
    assert browser._scores["index"][1] == 0  # resnet18.a1_in1k's own catalog row
    assert "1 could not be scored" in browser.ranking["text"]


def test_cancel_keeps_what_was_scored():
    browser = ModelBrowser(catalog=small_catalog(), check_hub=False,
                           data=bright_channel_data(per_class=12))
    browser.rank({"slow": SlowFeatures(), "slow too": SlowFeatures()}, per_class=12,
                 batch_size=2)
    deadline = time.monotonic() + 60
    while browser.ranking.get("done", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    browser._handle_message(browser, {"cmd": "cancel"})
    result = browser.wait_ranking(60)
    assert browser.ranking["state"] == "cancelled"
    assert browser.ranking["text"].startswith("Cancelled")
    assert (result["error"] == "cancelled").all()
    with pytest.raises(tlw.ConfigError, match="already running"):
        browser.rank()
        browser.rank()
    browser.cancel_ranking()
    browser.wait_ranking(60)


# ---------------------------------------------------------------- issue 14: the Text tab
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def _wait_text(browser: ModelBrowser, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while browser._text["state"] == "loading" and time.monotonic() < deadline:
        time.sleep(0.05)
    return browser._text


def test_the_text_tab_lists_text_catalog_encoders_offline_first(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    browser = ModelBrowser(catalog=small_catalog(), check_hub=False)
    assert browser.modality == "image" and browser._text["state"] == "unloaded"  # nothing built
    browser.set_state({"modality": "text"})  # a click on "Text" in the page
    state = _wait_text(browser)
    assert state["state"] == "ready"
    expected = tlw.text_catalog()
    rows = state["rows"]
    assert rows[0]["name"] == MINILM  # packaged, so offline: first
    assert sorted(r["name"] for r in rows) == sorted(expected["name"])
    minilm = rows[0]
    assert minilm["cached"] is True and minilm["source"] == "packaged"
    assert minilm["params_m"] == pytest.approx(22.7, abs=0.05)
    assert (minilm["licence"], minilm["languages"], minilm["layers"]) == ("Apache-2.0", "English", 6)
    curated = [r for r in rows if r["source"] == "curated"]
    assert curated and not any(r["cached"] for r in curated)
    sizes = [r["params_m"] for r in curated]
    assert sizes == sorted(sizes)  # then the rest, smallest first
    assert all(r["licence"] and r["languages"] and r["url"].startswith("https://") for r in rows)
    json.dumps(state)  # travels as plain JSON


def test_selecting_a_text_encoder_switches_to_text_and_creates_a_text_classifier(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    browser = ModelBrowser(catalog=small_catalog(), check_hub=False)
    browser.selected = MINILM  # from code: the Text tab opens on it
    assert browser.modality == "text" and browser._text["state"] == "ready"
    assert browser.selected_row["source"] == "packaged"
    model = browser.create_model(num_classes=3)
    from tlwidgets.text.model import TextClassifier

    assert isinstance(model, TextClassifier)
    logits = model(model.tokenizer(["a fine film"], return_tensors="pt"))
    assert logits.shape == (1, 3)
    assert model.tlw_load_report.pretrained
    with pytest.raises(tlw.ModelNotFoundError, match=r"Did you mean .*all-MiniLM-L6-v2.*text_catalog"):
        browser.selected = "sentence-transformers/all-MiniLM-L6-v3"
    browser.selected = "resnet18.a1_in1k"  # image names still work alongside
    assert browser.selected_row["family"] == "resnet"


def test_the_text_tab_takes_a_given_catalog_and_refuses_a_bad_one(monkeypatch):
    frame = pd.DataFrame({"name": ["org/tiny", "org/here"], "params": [4e6, 1.1e8],
                          "available_offline": [False, True], "source": ["curated", "hf cache"],
                          "licence": ["MIT", "MIT"], "languages": ["<b>x</b>", "English"]})
    browser = ModelBrowser(catalog=small_catalog(), check_hub=False, text_catalog=frame,
                           modality="text")
    assert browser._text["state"] == "ready"
    assert [r["name"] for r in browser._text["rows"]] == ["org/here", "org/tiny"]
    assert browser.text_catalog["name"].tolist() == ["org/tiny", "org/here"]
    with pytest.raises(tlw.ConfigError, match="like tlw.text_catalog"):
        ModelBrowser(catalog=small_catalog(), check_hub=False, text_catalog=[{"name": "x/y"}])
    with pytest.raises(tlw.ConfigError, match="the same name twice"):
        ModelBrowser(catalog=small_catalog(), check_hub=False,
                     text_catalog=pd.DataFrame({"name": ["x/y", "x/y"]}))
    with pytest.raises(tlw.ConfigError, match="'image' or 'text'"):
        ModelBrowser(catalog=small_catalog(), check_hub=False, modality="audio")


def test_a_text_catalog_that_cannot_be_built_says_why_in_the_tab(monkeypatch):
    import tlwidgets.text.catalog as text_catalog_module

    def broken(include_cache=True):
        raise OSError("the Hugging Face cache folder is unreadable")

    monkeypatch.setattr(text_catalog_module, "text_catalog", broken)
    browser = ModelBrowser(catalog=small_catalog(), check_hub=False)
    browser.modality = "text"
    state = _wait_text(browser)
    assert state["state"] == "failed" and "unreadable" in state["error"]
    with pytest.raises(OSError, match="unreadable"):  # from code: the error itself
        _ = browser.text_catalog
