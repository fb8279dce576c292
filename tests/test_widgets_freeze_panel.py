"""FreezePanel without a browser: what travels to the page, and what the page's commands do.

Models are built on the ``meta`` device where only shapes and ``requires_grad`` matter, so large
architectures cost no memory; the BatchNorm tests use a small real model.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import timm
import torch
from torch import nn

import tlwidgets as tlw
from tlwidgets.freeze import PRESETS
from tlwidgets.widgets.freeze_panel import FreezePanel

XSS = "<img src=x onerror=alert(1)>"


def meta_model(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return timm.create_model(name, pretrained=False, **kwargs)


@pytest.fixture
def panels():
    made: list[FreezePanel] = []

    def make(model: nn.Module, **kwargs) -> FreezePanel:
        panel = FreezePanel(model, **kwargs)
        made.append(panel)
        return panel

    yield make
    for panel in made:
        panel.close()


class Recorder:
    """Stands in for the comm's send: records every message the widget sends to the page."""

    def __init__(self, panel: FreezePanel) -> None:
        self.messages: list[dict] = []
        panel.comm.send = self.send

    def send(self, data=None, metadata=None, buffers=None):
        self.messages.append({"data": data, "buffers": buffers or []})

    def updates(self) -> list[dict]:
        """The state of each update message, binary fields (sent as buffers) included."""
        out = []
        for m in self.messages:
            if m["data"].get("method") != "update":
                continue
            state = dict(m["data"]["state"])
            for path, buffer in zip(m["data"].get("buffer_paths", []), m["buffers"]):
                state[path[0]] = buffer
            out.append(state)
        return out


def decode(panel: FreezePanel) -> dict:
    tree = panel.tree
    return {
        "n": tree["n"],
        "parent": np.frombuffer(tree["parent"], dtype="<i4"),
        "depth": np.frombuffer(tree["depth"], dtype="<u2"),
        "params": np.frombuffer(tree["params"], dtype="<f8"),
        "type": [tree["type_names"][i] for i in np.frombuffer(tree["type_index"], dtype="<u4")],
        "names": tree["names"],
        "trainable": np.frombuffer(panel.trainable, dtype="<f8"),
    }


def paths_of(t: dict) -> list[str]:
    """The dotted path of every node (groups: ''), as the page's nodePath computes it."""
    out = []
    for i in range(t["n"]):
        if t["depth"][i] == 0:
            out.append("")
        elif t["depth"][i] == 1:
            out.append(t["names"][i])
        else:
            out.append(f"{out[t['parent'][i]]}.{t['names'][i]}")
    return out


def page_click(panel: FreezePanel, content: dict) -> None:
    """A custom message from the page, delivered the way the comm delivers it."""
    panel.comm.handle_msg(
        {"content": {"data": {"method": "custom", "content": content}}, "buffers": []}
    )


def group_node(panel: FreezePanel, name: str) -> int:
    t = decode(panel)
    return next(i for i in range(t["n"]) if t["depth"][i] == 0 and t["names"][i] == name)


def module_node(panel: FreezePanel, path: str) -> int:
    return paths_of(decode(panel)).index(path)


# ---- the tree ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_b0"])
def test_the_tree_is_the_layer_groups_over_the_module_tree_with_exact_counts(panels, name):
    model = meta_model(name, num_classes=7)
    panel = panels(model)
    t = decode(panel)
    groups = tlw.layer_groups(model)

    tops = [i for i in range(t["n"]) if t["parent"][i] < 0]
    assert [t["names"][i] for i in tops] == [g.name for g in groups]
    assert [int(t["params"][i]) for i in tops] == [g.params for g in groups]
    assert panel.totals == {"trainable": sum(p.numel() for p in model.parameters()),
                            "total": sum(p.numel() for p in model.parameters())}

    # Every module under a group's paths appears once, with its type and parameter count.
    modules = dict(model.named_modules())
    expected = [p for g in groups for gp in g.paths for p in modules
                if p == gp or p.startswith(gp + ".")]
    node_paths = [p for p in paths_of(t) if p]
    assert sorted(node_paths) == sorted(expected)
    for i, path in enumerate(paths_of(t)):
        if path:
            assert t["type"][i] == type(modules[path]).__name__
            assert t["params"][i] == sum(p.numel() for p in modules[path].parameters())
    # Pre-order: each node's parent comes before it, one level up.
    for i in range(t["n"]):
        if t["parent"][i] >= 0:
            assert t["parent"][i] < i and t["depth"][i] == t["depth"][t["parent"][i]] + 1


def test_the_tree_travels_as_binary_columns_and_names_once(panels):
    model = meta_model("efficientnet_b0")
    panel = panels(model)
    tree = panel.tree
    for key in ("parent", "depth", "params", "type_index"):
        assert isinstance(tree[key], bytes)
    assert len(tree["params"]) == 8 * tree["n"]
    # Types are sent once each, not per node.
    assert len(tree["type_names"]) == len(set(tree["type_names"])) < tree["n"] / 10
    assert len(panel.trainable) == 8 * tree["n"]


def test_parameters_outside_any_module_get_rows_of_their_own(panels):
    model = meta_model("vit_tiny_patch16_224", img_size=32, num_classes=3)
    panel = panels(model)
    t = decode(panel)
    stem = group_node(panel, "stem")
    loose = [t["names"][i] for i in range(t["n"]) if t["parent"][i] == stem
             and t["type"][i] == "Parameter"]
    assert loose == ["cls_token", "pos_embed"]
    assert int(t["params"][stem]) == tlw.layer_groups(model)[0].params

    page_click(panel, {"cmd": "set", "node": module_node(panel, "cls_token"),
                       "trainable": False, "req": "v:1"})
    assert not model.cls_token.requires_grad
    assert model.pos_embed.requires_grad and model.patch_embed.proj.weight.requires_grad


def test_names_are_sent_as_plain_text_whatever_they_contain(panels):
    evil_type = type(XSS, (nn.Module,), {
        "__init__": lambda self: (nn.Module.__init__(self), setattr(self, "fc", nn.Linear(2, 2)))[0],
        "forward": lambda self, x: self.fc(x),
    })
    model = nn.Sequential()
    model.add_module(XSS, nn.Linear(4, 2))
    model.add_module("evil", evil_type())
    panel = panels(model)
    t = decode(panel)
    assert XSS in t["names"] and XSS in t["type"]


# ---- commands from the page -------------------------------------------------------------------


def test_a_checkbox_click_flips_requires_grad_and_is_answered_in_one_update(panels):
    model = meta_model("resnet18", num_classes=3)
    panel = panels(model)
    rec = Recorder(panel)
    page_click(panel, {"cmd": "set", "node": group_node(panel, "layer4"),
                       "trainable": False, "req": "view:1"})
    assert all(not p.requires_grad for p in model.layer4.parameters())
    assert all(p.requires_grad for p in model.layer3.parameters())
    assert model.fc.weight.requires_grad

    updates = rec.updates()
    assert len(updates) == 1, updates
    assert {"trainable", "ack", "version"} <= set(updates[0])
    assert updates[0]["ack"] == "view:1" and panel.error == ""
    t = decode(panel)
    layer4 = group_node(panel, "layer4")
    assert t["trainable"][layer4] == 0
    assert panel.totals["trainable"] == panel.totals["total"] - t["params"][layer4]

    # One module deep inside, then back.
    page_click(panel, {"cmd": "set", "node": module_node(panel, "layer4.1.conv2"),
                       "trainable": True, "req": "view:2"})
    assert model.layer4[1].conv2.weight.requires_grad
    assert not model.layer4[1].conv1.weight.requires_grad
    t = decode(panel)
    assert 0 < t["trainable"][layer4] < t["params"][layer4]  # partial


def test_slider_and_preset_commands_call_the_core(panels):
    model = meta_model("resnet18", num_classes=3)
    panel = panels(model)
    page_click(panel, {"cmd": "freeze_to", "n": 2, "req": "a"})
    assert [g.state for g in tlw.layer_groups(model)] == [
        "frozen", "frozen", "trainable", "trainable", "trainable", "trainable"]
    page_click(panel, {"cmd": "preset", "name": "head", "req": "b"})
    assert [g.name for g in tlw.layer_groups(model) if g.trainable_params] == ["head"]
    assert panel.totals["trainable"] == 512 * 3 + 3
    assert panel.ack == "b"


def test_a_failing_command_is_reported_in_the_page_not_raised(panels):
    model = meta_model("resnet18")
    panel = panels(model)
    page_click(panel, {"cmd": "freeze_to", "n": 99, "req": "c"})
    assert "out of range" in panel.error and panel.ack == "c"
    page_click(panel, {"cmd": "preset", "name": "everything", "req": "d"})
    assert "unknown freeze preset" in panel.error
    page_click(panel, {"cmd": "set", "node": "first", "req": "e"})
    assert "could not read the command" in panel.error and panel.ack == "e"
    page_click(panel, {"cmd": "set", "node": 10_000, "trainable": False, "req": "f"})
    assert "does not exist" in panel.error
    page_click(panel, {"cmd": "preset", "name": "none", "req": "g"})
    assert panel.error == ""
    assert not any(p.requires_grad for p in model.parameters())


def test_a_model_without_parameters_gives_an_empty_panel(panels):
    panel = panels(nn.Sequential(nn.ReLU(), nn.Flatten()))
    assert panel.tree["n"] == 0 and panel.groups == []
    assert panel.totals == {"trainable": 0, "total": 0} and panel.warnings == []


def test_the_preset_buttons_are_the_cores_presets(panels):
    panel = panels(meta_model("resnet18"))
    assert [p[0] for p in panel.presets] == list(PRESETS)
    assert [p[1] for p in panel.presets] == ["Train head", "Train last stage + head", "Train all",
                                             "Freeze all"]


# ---- changes made in code ---------------------------------------------------------------------


def test_freeze_to_in_code_shows_in_the_panel_without_recreating_it(panels):
    model = meta_model("resnet18", num_classes=3)
    panel = panels(model)
    tree_before = panel.tree
    version = panel.version
    tlw.freeze_to(model, -2)
    t = decode(panel)
    assert panel.version > version
    assert panel.tree is tree_before  # counts only: the structure was not re-sent
    trainable_groups = [t["names"][i] for i in range(t["n"])
                        if t["parent"][i] < 0 and t["trainable"][i] > 0]
    assert trainable_groups == ["layer4", "head"]


def test_a_bare_requires_grad_change_is_picked_up_by_the_poll_thread(panels):
    model = meta_model("resnet18", num_classes=3)
    panel = panels(model, poll_interval=0.05)
    model.fc.weight.requires_grad_(False)
    deadline = time.monotonic() + 10
    fc = module_node(panel, "fc")
    while time.monotonic() < deadline and decode(panel)["trainable"][fc] != 3:
        time.sleep(0.02)
    assert decode(panel)["trainable"][fc] == 3  # only the bias still trains
    # refresh() has nothing left to do once the poll thread has sent it.
    assert panel.refresh() is False


def test_refresh_reports_a_change_and_close_stops_the_thread():
    model = meta_model("resnet18", num_classes=3)
    panel = FreezePanel(model, poll_interval=60)
    model.fc.bias.requires_grad_(False)
    assert panel.refresh() is True
    assert panel.refresh() is False
    poller = panel._poller
    panel.close()
    poller.join(timeout=5)
    assert not poller.is_alive()


# ---- warnings ---------------------------------------------------------------------------------


def test_warns_when_nothing_is_trainable_or_the_head_is_frozen(panels):
    model = meta_model("resnet18", num_classes=3)
    panel = panels(model)
    assert panel.warnings == []
    tlw.apply_preset(model, "none")
    assert len(panel.warnings) == 1 and panel.warnings[0].startswith("Nothing is trainable")
    tlw.unfreeze(model)
    tlw.freeze(model, "fc")
    assert len(panel.warnings) == 1 and "head" in panel.warnings[0] and "frozen" in panel.warnings[0]
    tlw.unfreeze(model, "fc")
    assert panel.warnings == []


# ---- learning-rate multipliers ----------------------------------------------------------------


def test_lr_multipliers_scale_the_optimizer_groups(panels):
    model = meta_model("resnet18", num_classes=3)
    panel = panels(model)
    assert panel.lr_multipliers == {g: 1.0 for g in panel.groups}
    tlw.freeze_to(model, -2)
    panel.lr_multipliers = {**panel.lr_multipliers, "head": 10.0, "layer4": 0.5}
    groups = panel.param_groups(1e-3)
    lrs = {g["group"]: g["lr"] for g in groups}
    assert lrs == pytest.approx({"layer4": 5e-4, "head": 1e-2})
    assert sum(p.numel() for g in groups for p in g["params"]) == panel.totals["trainable"]

    # 0 leaves a group out; with weight decay the core splits groups and each half is scaled.
    panel.lr_multipliers = {**panel.lr_multipliers, "layer4": 0.0}
    groups = panel.param_groups(1e-3, weight_decay=0.05)
    assert {g["group"] for g in groups} == {"head"}
    assert all(g["lr"] == pytest.approx(1e-2) for g in groups)
    torch.optim.AdamW(groups)

    panel.lr_multipliers = {**panel.lr_multipliers, "head": 0.0}
    with pytest.raises(tlw.NothingTrainableError, match="multiplier"):
        panel.param_groups(1e-3)


def test_lr_multipliers_are_the_models_own_both_ways(panels):
    model = meta_model("resnet18", num_classes=3)
    panel = panels(model)
    panel.lr_multipliers = {**panel.lr_multipliers, "head": 10.0}
    assert tlw.lr_multipliers(model)["head"] == 10.0  # what the Trainer will use
    tlw.set_lr_multipliers(model, {"layer4": 0.5})  # from code: the panel follows
    assert panel.lr_multipliers["layer4"] == 0.5 and panel.lr_multipliers["head"] == 10.0


def test_lr_multipliers_follow_the_panel_rows_under_finer_core_groups(panels):
    model = meta_model("vit_tiny_patch16_224", img_size=32, num_classes=3)
    panel = panels(model)
    panel.lr_multipliers = {**panel.lr_multipliers, "head": 3.0}
    groups = panel.param_groups(1e-3, layer_decay=0.5)
    head = [g for g in groups if g["group"] == "head"]
    assert head and all(g["lr"] == pytest.approx(3e-3) for g in head)


def test_bad_lr_multipliers_and_bad_arguments_are_clear_errors(panels):
    panel = panels(meta_model("resnet18"))
    with pytest.raises(tlw.ConfigError, match="layer4"):
        panel.lr_multipliers = {"layer9": 1.0}
    with pytest.raises(tlw.ConfigError, match=">= 0"):
        panel.lr_multipliers = {"layer4": -1.0}
    with pytest.raises(tlw.ConfigError, match="'eval'"):
        panel.bn = "sometimes"
    with pytest.raises(tlw.ConfigError, match="nn.Module"):
        FreezePanel("resnet18")
    with pytest.raises(tlw.ConfigError, match="poll_interval"):
        FreezePanel(meta_model("resnet18"), poll_interval=0)


# ---- BatchNorm policy -------------------------------------------------------------------------


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2),
    )


def test_the_panels_bn_policy_is_used_and_reapplied_to_what_is_frozen(panels):
    model = small_cnn()
    total = sum(p.numel() for p in model.parameters())
    panel = panels(model, bn="frozen")
    node = group_node(panel, panel.groups[1])  # the first BatchNorm2d
    page_click(panel, {"cmd": "set", "node": node, "trainable": False, "req": "f"})
    assert type(model[1]).__name__ == "FrozenBatchNorm2d"
    t = decode(panel)
    # The tree followed the swap, and the frozen layer's parameters still count, as frozen.
    assert "FrozenBatchNorm2d" in t["type"]
    assert panel.totals == {"total": total, "trainable": total - 16}

    panel.bn = "eval"
    assert isinstance(model[1], nn.BatchNorm2d) and not model[1].weight.requires_grad
    model.train()
    assert model[1].training is False  # held in eval mode by the "eval" policy
    assert panel.totals == {"total": total, "trainable": total - 16}


# ---- "Score layers" ---------------------------------------------------------------------------


def bright_channel_data(per_class: int = 8, size: int = 32):
    """Three classes told apart by their brightest channel."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), per_class)
    images = rng.random((len(labels), size, size, 3), dtype=np.float32) * 0.3
    for c in range(3):
        images[labels == c, :, :, c] += 0.6
    return tlw.ImageData.from_arrays(images, labels, classes=["r", "g", "b"], valid_pct=0.25,
                                     img_size=size, batch_size=8)


def test_score_layers_waits_for_data_and_refuses_what_is_not_data(panels):
    panel = panels(timm.create_model("resnet18", pretrained=False, num_classes=3))
    assert panel.scoring["state"] == "unavailable" and panel.layer_scores == {}
    assert "panel.data = data" in panel.scoring["text"]
    with pytest.raises(tlw.ConfigError, match="no data to score"):
        panel.score_layers()
    with pytest.raises(tlw.ConfigError, match="score the layers first"):
        panel.apply_suggested()
    with pytest.raises(tlw.ConfigError, match="tlw.ImageData"):
        panel.data = "photos/"
    with pytest.raises(tlw.ConfigError, match="tlw.ImageData"):
        FreezePanel(panel.model, data=42)
    panel.data = bright_channel_data()
    assert panel.scoring["state"] == "ready"


def test_score_layers_from_the_page_then_apply_the_suggestion_in_one_click(panels):
    import threading

    model = timm.create_model("resnet18", pretrained=False, num_classes=3)
    panel = panels(model, data=bright_channel_data())
    senders: list[str] = []
    send = panel.comm.send

    def recording_send(*args, **kwargs):
        senders.append(threading.current_thread().name)
        return send(*args, **kwargs)

    panel.comm.send = recording_send
    page_click(panel, {"cmd": "score_layers", "req": "v:1"})
    assert panel.ack == "v:1" and panel.scoring["state"] == "running"
    panel._scoring_job.wait(120)
    assert panel.scoring["state"] == "done"
    table = panel.layer_score_table
    assert table["name"].tolist() == panel.groups[:-1]  # every group before the head
    scores = panel.layer_scores
    assert [r["name"] for r in scores["rows"]] == table["name"].tolist()
    np.testing.assert_allclose([r["logme"] for r in scores["rows"]], table["logme"], rtol=1e-9)
    np.testing.assert_allclose([r["knn_pct"] for r in scores["rows"]],
                               100 * table["knn_accuracy"], rtol=1e-9)
    n = int(table.attrs["suggested_freeze_to"])
    assert scores["suggested_freeze_to"] == n == panel.suggested_freeze_to
    assert scores["suggested_name"] == table.loc[table["suggested"], "name"].item()
    assert f"freeze up to {scores['suggested_name']}" in panel.scoring["text"]
    assert "tlw-rank-layers" not in senders and "tlw-rank-layers-publisher" in senders
    # scoring left the model as it was: everything trains
    assert all(p.requires_grad for p in model.parameters())
    # one click: tlw.freeze_to(model, n), answered with the new state
    page_click(panel, {"cmd": "apply_suggested", "req": "v:2"})
    assert panel.ack == "v:2" and panel.error == ""
    groups = tlw.layer_groups(model)
    for g in groups:
        trains = {p.requires_grad for name, p in model.named_parameters() if name in g.param_names}
        assert trains == ({False} if g.index < n else {True}), g.name
    assert panel.totals["trainable"] == sum(
        p.numel() for p in model.parameters() if p.requires_grad)
