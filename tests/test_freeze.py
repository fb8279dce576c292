"""Layer groups, freezing, the BatchNorm policy and per-group learning rates (tlwidgets.freeze)."""

from __future__ import annotations

import copy
import functools
import gc
import io
import threading
import weakref

import pytest
import timm
import torch
from timm.layers import BatchNormAct2d, FrozenBatchNormAct2d
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

import tlwidgets as tlw

torch.set_num_threads(1)

# (timm name, kwargs) — a spread of families; built on the meta device for structural tests
ARCHS = [
    ("resnet18", {}),
    ("resnet50", {}),
    ("efficientnet_b0", {}),
    ("mobilenetv3_small_050", {}),
    ("convnext_atto", {}),
    ("regnetx_002", {}),
    ("vit_tiny_patch16_224", {"img_size": 32}),
    ("swin_tiny_patch4_window7_224", {"img_size": 32, "window_size": 2}),
    ("deit_tiny_patch16_224", {"img_size": 32}),
    ("deit_tiny_distilled_patch16_224", {"img_size": 32}),
]


def make(name: str, meta: bool = False, **kwargs) -> nn.Module:
    if meta:
        with torch.device("meta"):
            return timm.create_model(name, pretrained=False, num_classes=3, **kwargs)
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False, num_classes=3, **kwargs)


def sequential() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Linear(6, 3),
    )


@pytest.fixture(scope="module")
def meta_models() -> dict[str, nn.Module]:
    return {name: make(name, meta=True, **kw) for name, kw in ARCHS}


def classifier_names(model: nn.Module) -> set[str]:
    paths = model.pretrained_cfg["classifier"]
    paths = [paths] if isinstance(paths, str) else list(paths)
    return {n for n, _ in model.named_parameters() if any(n.startswith(p + ".") for p in paths)}


def trainable_by_group(model: nn.Module) -> list[bool | None]:
    """Per group: True all trainable, False all frozen, None mixed — read from requires_grad."""
    out = []
    params = dict(model.named_parameters())
    for g in tlw.layer_groups(model):
        flags = {params[n].requires_grad for n in g.param_names if n in params}
        out.append(flags.pop() if len(flags) == 1 else None)
    return out


# ------------------------------------------------------------------------------------------
# layer groups


@pytest.mark.parametrize("fine", [False, True], ids=["coarse", "fine"])
@pytest.mark.parametrize("name", [a for a, _ in ARCHS])
def test_groups_are_ordered_complete_and_end_with_the_head(meta_models, name, fine):
    model = meta_models[name]
    groups = tlw.layer_groups(model, fine=fine)
    named = [n for n, _ in model.named_parameters()]

    # every parameter in exactly one group
    listed = [n for g in groups for n in g.param_names]
    assert sorted(listed) == sorted(named)
    assert len(set(listed)) == len(listed)
    assert sum(g.params for g in groups) == sum(p.numel() for p in model.parameters())

    # ordered stem -> head: walking the parameters in definition order never goes back a group
    gid = {n: g.index for g in groups for n in g.param_names}
    order = [gid[n] for n in named]
    assert order == sorted(order)
    assert [g.index for g in groups] == list(range(len(groups)))

    assert groups[0].name == "stem"
    assert groups[-1].name == "head"
    assert classifier_names(model) <= set(groups[-1].param_names)
    assert len({g.name for g in groups}) == len(groups)
    assert all(g.params > 0 for g in groups)
    # module paths point at real modules that hold only that group's parameters
    for g in groups:
        for path, module in g.modules:
            assert module is model.get_submodule(path)
            assert {f"{path}.{n}" for n, _ in module.named_parameters()} <= set(g.param_names)


def test_coarse_groups_are_stages_and_fine_groups_are_blocks(meta_models):
    resnet = meta_models["resnet18"]
    assert [g.name for g in tlw.layer_groups(resnet)] == [
        "stem", "layer1", "layer2", "layer3", "layer4", "head"]
    fine = [g.name for g in tlw.layer_groups(resnet, fine=True)]
    assert fine[:3] == ["stem", "layer1.0", "layer1.1"] and fine[-1] == "head" and len(fine) == 10
    vit = tlw.layer_groups(meta_models["vit_tiny_patch16_224"])
    # the ViT's cls_token and pos_embed have no module of their own: they belong to the stem
    assert {"cls_token", "pos_embed"} <= set(vit[0].param_names)
    assert vit[0].paths == ["patch_embed"]
    assert [g.name for g in vit[1:3]] == ["blocks.0", "blocks.1"]
    deit = tlw.layer_groups(meta_models["deit_tiny_distilled_patch16_224"])
    assert deit[-1].paths == ["head", "head_dist"]  # both classifiers of a distilled DeiT


def test_plain_module_falls_back_to_top_level_children():
    model = sequential()
    groups = tlw.layer_groups(model)
    # parameter-less children (ReLU, pooling, Flatten) are not groups; types make names readable
    assert [g.name for g in groups] == [
        "0 (Conv2d)", "1 (BatchNorm2d)", "5 (Linear)", "6 (BatchNorm1d)", "7 (Linear)"]
    assert [g.paths for g in groups] == [["0"], ["1"], ["5"], ["6"], ["7"]]
    assert [g.params for g in groups] == [112, 8, 30, 12, 21]

    class WithToken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.token = nn.Parameter(torch.zeros(4))
            self.body = nn.Linear(4, 4)
            self.out = nn.Linear(4, 2)

    groups = tlw.layer_groups(WithToken())
    assert [g.param_names for g in groups] == [
        ["token", "body.weight", "body.bias"], ["out.weight", "out.bias"]]


# ------------------------------------------------------------------------------------------
# freeze_to and presets


def fastai_freeze_to(n_groups: int, n: int) -> list[bool]:
    """fastai's Learner.freeze_to: ``frozen_idx = n if n >= 0 else len(groups) + n``."""
    frozen_idx = n if n >= 0 else n_groups + n
    return [i >= frozen_idx for i in range(n_groups)]


@pytest.mark.parametrize("name", ["resnet18", "vit_tiny_patch16_224", "convnext_atto"])
def test_freeze_to_matches_fastai(meta_models, name):
    model = meta_models[name]
    count = len(tlw.layer_groups(model))
    for n in range(-count, count + 1):
        tlw.freeze_to(model, n)
        assert trainable_by_group(model) == fastai_freeze_to(count, n), n
        states = [g.state for g in tlw.layer_groups(model)]
        assert states == ["trainable" if t else "frozen" for t in fastai_freeze_to(count, n)]
    tlw.freeze_to(model, 0)


def test_freeze_to_on_a_plain_sequential():
    model = sequential()
    tlw.freeze_to(model, -1)
    assert [p.requires_grad for p in model.parameters()] == [False] * 8 + [True, True]
    tlw.freeze_to(model, 2, fine=True)
    assert trainable_by_group(model) == [False, False, True, True, True]


def test_presets_train_what_they_name(meta_models):
    model = meta_models["efficientnet_b0"]
    tlw.apply_preset(model, "head")
    assert trainable_by_group(model) == [False] * 8 + [True]
    assert all(p.requires_grad == (n.startswith("classifier."))
               for n, p in model.named_parameters())
    tlw.apply_preset(model, "last-stage")
    assert trainable_by_group(model) == [False] * 7 + [True, True]
    assert model.conv_head.weight.requires_grad and model.blocks[6][0].conv_pw.weight.requires_grad
    assert not model.blocks[5][0].conv_pw.weight.requires_grad
    tlw.apply_preset(model, "none")
    assert not any(p.requires_grad for p in model.parameters())
    tlw.apply_preset(model, "all")
    assert all(p.requires_grad for p in model.parameters())


# ------------------------------------------------------------------------------------------
# freeze / unfreeze selections


def test_freeze_and_unfreeze_by_path_module_list_group_and_parameter():
    model = make("vit_tiny_patch16_224", meta=True, img_size=32)
    tlw.freeze(model, "blocks.0")
    assert not any(p.requires_grad for p in model.blocks[0].parameters())
    assert all(p.requires_grad for p in model.blocks[1].parameters())
    tlw.freeze(model, [model.blocks[1], "blocks.2.attn"])
    assert not any(p.requires_grad for p in model.blocks[1].parameters())
    assert not model.blocks[2].attn.qkv.weight.requires_grad
    assert model.blocks[2].mlp.fc1.weight.requires_grad
    tlw.freeze(model, "cls_token")  # a parameter path
    assert not model.cls_token.requires_grad and model.pos_embed.requires_grad
    stem = tlw.layer_groups(model)[0]
    tlw.freeze(model, stem)  # a LayerGroup takes its module-less parameters along
    assert not model.pos_embed.requires_grad and not model.patch_embed.proj.weight.requires_grad
    assert stem.state == "frozen"
    tlw.unfreeze(model, ["blocks.0.mlp", model.pos_embed])
    assert model.blocks[0].mlp.fc2.weight.requires_grad
    assert not model.blocks[0].attn.qkv.weight.requires_grad
    assert model.pos_embed.requires_grad
    assert tlw.layer_groups(model)[1].state == "partial"
    tlw.unfreeze(model)
    assert all(p.requires_grad for p in model.parameters())


# ------------------------------------------------------------------------------------------
# the BatchNorm policy during a real training loop


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def train_a_little(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int = 4) -> None:
    """A plain user loop: model.train(), forward, backward, step — nothing tlwidgets-specific."""
    gen = torch.Generator().manual_seed(1)
    model.train()
    for _ in range(steps):
        x = torch.randn(4, 3, 32, 32, generator=gen) * 3 + 1
        y = torch.randint(0, 3, (4,), generator=gen)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def frozen_and_head_keys(model: nn.Module, head_prefixes: tuple[str, ...]):
    keys = list(model.state_dict())
    head = [k for k in keys if k.startswith(head_prefixes)]
    frozen = [k for k in keys if not k.startswith(head_prefixes)]
    return frozen, head


@pytest.mark.parametrize(
    "name, head",
    [("resnet18", ("fc.",)), ("mobilenetv3_small_050", ("conv_head.", "classifier."))],
)
def test_eval_policy_keeps_every_frozen_parameter_and_bn_buffer_bit_identical(name, head):
    model = make(name)
    tlw.apply_preset(model, "head", bn="eval")
    frozen_keys, head_keys = frozen_and_head_keys(model, head)
    buffers = [k for k in frozen_keys if k.endswith(("running_mean", "running_var",
                                                     "num_batches_tracked"))]
    assert len(buffers) > 20
    before = snapshot(model)
    optimizer = torch.optim.SGD(tlw.param_groups(model, lr=0.1), momentum=0.9, weight_decay=1e-2)
    train_a_little(model, optimizer)
    after = model.state_dict()
    changed = [k for k in frozen_keys if not torch.equal(before[k], after[k])]
    assert changed == []
    assert all(not torch.equal(before[k], after[k]) for k in head_keys if k.endswith("weight"))
    # model.train() was called by the loop, yet the frozen BN layers are still in eval mode
    bns = [m for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)
           and not n.startswith(head)]
    assert bns and not any(m.training for m in bns)
    assert isinstance(bns[0], BatchNormAct2d) == (name == "mobilenetv3_small_050")


def test_train_policy_lets_frozen_bn_statistics_move_but_not_the_weights():
    model = make("resnet18")
    tlw.apply_preset(model, "head", bn="train")
    frozen_keys, _ = frozen_and_head_keys(model, ("fc.",))
    before = snapshot(model)
    train_a_little(model, torch.optim.SGD(tlw.param_groups(model, lr=0.1), momentum=0.9))
    after = model.state_dict()
    stats = [k for k in frozen_keys if k.endswith("running_mean")]
    weights = [k for k in frozen_keys if k.endswith(("weight", "bias")) and "running" not in k]
    assert all(not torch.equal(before[k], after[k]) for k in stats)
    assert all(torch.equal(before[k], after[k]) for k in weights)
    assert not torch.equal(before["fc.weight"], after["fc.weight"])
    assert model.layer1[0].bn1.training


def test_frozen_policy_swaps_in_frozen_bn_and_unfreeze_restores_the_original_layer():
    model = make("mobilenetv3_small_050")
    original_bn1, original_block_bn = model.bn1, model.blocks[1][0].bn1
    count = sum(p.numel() for p in model.parameters())
    tlw.apply_preset(model, "head", bn="frozen")
    assert isinstance(model.bn1, FrozenBatchNormAct2d)
    assert not any(isinstance(m, nn.BatchNorm2d) for n, m in model.named_modules()
                   if not n.startswith(("conv_head", "classifier")))
    # the swapped layers still count as (frozen) parameters: the totals do not depend on bn=
    groups = tlw.layer_groups(model)
    assert sum(g.params for g in groups) == count
    assert sum(g.trainable_params for g in groups) == groups[-1].params
    summary = tlw.trainable_summary(model).set_index("path")
    assert summary.loc["bn1", "bn"] == "frozen" and summary.loc["bn1", "state"] == "frozen"

    before = snapshot(model)
    train_a_little(model, torch.optim.SGD(tlw.param_groups(model, lr=0.1)))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in after
               if not k.startswith(("conv_head", "classifier")))

    tlw.unfreeze(model)
    assert model.bn1 is original_bn1 and model.blocks[1][0].bn1 is original_block_bn
    assert type(model.bn1) is BatchNormAct2d and model.bn1.weight.requires_grad
    assert torch.equal(model.bn1.running_mean, before["bn1.running_mean"])
    assert model.bn1.training  # follows the model's mode again (train, from the loop)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == count


def test_frozen_policy_falls_back_to_eval_for_layers_timm_cannot_freeze():
    model = sequential()
    tlw.freeze(model, bn="frozen")
    assert isinstance(model[1], FrozenBatchNorm2d)
    assert type(model[6]) is nn.BatchNorm1d  # no frozen form: held in eval instead
    before = model[6].running_mean.clone()
    model.train()
    model(torch.randn(4, 3, 8, 8))
    assert torch.equal(model[6].running_mean, before)
    assert tlw.trainable_summary(model).set_index("path").loc["6", "bn"] == "eval"
    tlw.unfreeze(model)
    assert type(model[1]) is nn.BatchNorm2d and model[6].training


def test_a_frozen_bn_comes_back_on_the_device_and_dtype_the_model_moved_to():
    model = sequential()
    tlw.freeze(model, "1", bn="frozen")
    model.double()  # moves the replacement; the stashed original must follow on restore
    tlw.unfreeze(model)
    assert type(model[1]) is nn.BatchNorm2d
    assert model[1].weight.dtype == model[1].running_mean.dtype == torch.float64
    model(torch.randn(2, 3, 8, 8, dtype=torch.float64))


def test_eval_lock_survives_every_way_of_switching_to_train_and_copies():
    model = make("resnet18")
    tlw.freeze(model, "layer1")
    bn = model.layer1[0].bn1
    model.train()
    model.apply(lambda m: m.train())
    assert not bn.training and model.layer2[0].bn1.training
    bn.training = True  # even set by hand, the layer is back in eval for its forward
    before = bn.running_mean.clone()
    model(torch.randn(2, 3, 32, 32))
    assert torch.equal(bn.running_mean, before)

    for clone in (copy.deepcopy(model), torch.load(save(model), weights_only=False)):
        clone.train()
        assert not clone.layer1[0].bn1.training and clone.layer2[0].bn1.training
        tlw.unfreeze(clone)
        assert clone.layer1[0].bn1.training

    tlw.unfreeze(model, "layer1")
    model.train()
    assert bn.training


def save(model: nn.Module) -> io.BytesIO:
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    return buf


def test_freezing_drops_stale_gradients_so_a_held_optimizer_cannot_move_frozen_weights():
    model = make("resnet18")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 1])
    nn.functional.cross_entropy(model(x), y).backward()
    tlw.freeze_to(model, -1)
    before = model.conv1.weight.detach().clone()
    optimizer.step()  # the user forgot zero_grad: the backbone's old gradients must be gone
    assert torch.equal(model.conv1.weight, before)


# ------------------------------------------------------------------------------------------
# trainable_summary


def test_trainable_summary_rows_states_groups_and_shapes():
    model = make("resnet18")
    tlw.freeze(model, ["conv1", "bn1", "layer1", "layer2.0"])
    df = tlw.trainable_summary(model)
    assert list(df.columns) == ["path", "type", "depth", "params", "trainable_params", "state",
                                "group", "bn"]
    assert len(df) == sum(1 for _ in model.modules()) - 1
    rows = df.set_index("path")
    assert rows.loc["layer1", "state"] == "frozen"
    assert rows.loc["layer2", "state"] == "partial"
    assert rows.loc["layer3", "state"] == "trainable"
    assert rows.loc["act1", "state"] == "—" and rows.loc["act1", "params"] == 0
    assert rows.loc["layer2", "trainable_params"] == rows.loc["layer2.1", "params"]
    assert rows.loc["fc", "params"] == 512 * 3 + 3
    assert rows.loc["layer2.0.conv1", "group"] == "layer2"
    assert rows.loc["fc", "group"] == "head" and rows.loc["conv1", "group"] == "stem"
    assert rows.loc["layer1.0.bn1", "bn"] == "eval" and rows.loc["layer3.0.bn1", "bn"] == "train"
    assert rows.loc["layer1.0.conv1", "bn"] == ""
    top = tlw.trainable_summary(model, depth=1)
    assert list(top["path"]) == [n for n, _ in model.named_children()]
    assert top["params"].sum() == sum(p.numel() for p in model.parameters())

    model.train()
    before = model.layer3[0].bn1.running_mean.clone()
    shaped = tlw.trainable_summary(model, depth=2, input_size=(3, 32, 32)).set_index("path")
    assert shaped.loc["layer1", "output_shape"] == "(1, 64, 8, 8)"
    assert shaped.loc["fc", "output_shape"] == "(1, 3)"
    # the dummy pass neither touched BN statistics nor left the model in eval mode
    assert torch.equal(model.layer3[0].bn1.running_mean, before) and model.layer3[0].bn1.training
    with pytest.raises(tlw.ConfigError, match="input_size"):
        tlw.trainable_summary(model, input_size=(5, 32, 32))


def test_everything_works_on_meta_tensors():
    model = make("convnext_atto", meta=True)
    tlw.freeze_to(model, -2)
    df = tlw.trainable_summary(model, depth=1, input_size=(3, 64, 64))
    assert df.set_index("path").loc["stages", "state"] == "partial"
    assert df.set_index("path").loc["head", "output_shape"] == "(1, 3)"
    assert [g["name"] for g in tlw.param_groups(model, 1e-3)] == ["stages.3", "head"]


# ------------------------------------------------------------------------------------------
# param_groups


def test_param_groups_leave_frozen_parameters_out_and_spread_rates_geometrically():
    model = make("resnet18", meta=True)
    tlw.freeze_to(model, 2)
    groups = tlw.param_groups(model, lr=1e-2, lr_min=1e-4)
    assert [g["name"] for g in groups] == ["layer2", "layer3", "layer4", "head"]
    in_groups = {id(p) for g in groups for p in g["params"]}
    assert in_groups == {id(p) for p in model.parameters() if p.requires_grad}
    # fastai's even_mults over all six groups (frozen ones keep their place): stem 1e-4, head 1e-2
    expected = [1e-4 * 100 ** (i / 5) for i in range(2, 6)]
    assert [g["lr"] for g in groups] == pytest.approx(expected)
    assert groups[-1]["lr"] == pytest.approx(1e-2)
    torch.optim.AdamW(groups)  # the dicts are valid optimizer groups

    flat = tlw.param_groups(model, lr=3e-3)
    assert {g["lr"] for g in flat} == {3e-3}


def test_param_groups_layer_decay_and_no_decay_split():
    model = make("vit_tiny_patch16_224", meta=True, img_size=32)
    groups = tlw.param_groups(model, lr=1e-3, layer_decay=0.5, weight_decay=0.05)
    lrs = {g["group"]: g["lr"] for g in groups}
    assert lrs["head"] == pytest.approx(1e-3)
    assert lrs["blocks.11 + norm"] == pytest.approx(5e-4)
    assert lrs["stem"] == pytest.approx(1e-3 * 0.5 ** 13)
    no_decay = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    assert id(model.cls_token) in no_decay and id(model.pos_embed) in no_decay  # no_weight_decay()
    assert id(model.blocks[0].norm1.weight) in no_decay and id(model.head.bias) in no_decay
    assert id(model.blocks[0].attn.qkv.weight) not in no_decay
    assert all(g["weight_decay"] == 0.05 for g in groups if not g["name"].endswith("(no decay)"))
    with pytest.raises(tlw.ConfigError, match="not both"):
        tlw.param_groups(model, lr=1e-3, lr_min=1e-5, layer_decay=0.7)
    with pytest.raises(tlw.ConfigError, match="lr_min"):
        tlw.param_groups(model, lr=1e-3, lr_min=1e-2)


# ------------------------------------------------------------------------------------------
# errors a user can cause


def test_nothing_trainable_says_how_to_unfreeze():
    model = make("resnet18", meta=True)
    tlw.apply_preset(model, "none")
    with pytest.raises(tlw.NothingTrainableError) as err:
        tlw.param_groups(model, lr=1e-3)
    assert "apply_preset(model, 'head')" in str(err.value) and "unfreeze" in str(err.value)


def test_unknown_module_path_lists_close_paths():
    model = make("resnet18", meta=True)
    with pytest.raises(tlw.ModulePathError) as err:
        tlw.freeze(model, "layer1.0.bnn1")
    assert "'layer1.0.bn1'" in str(err.value)
    with pytest.raises(tlw.ModulePathError, match="'layer4'"):
        tlw.unfreeze(model, "layer5")
    with pytest.raises(tlw.ModulePathError, match="not a submodule"):
        tlw.freeze(model, nn.Linear(2, 2))
    assert all(p.requires_grad for p in model.parameters())  # a failed call changed nothing


def test_freeze_to_out_of_range_gives_the_valid_range():
    model = make("resnet18", meta=True)
    with pytest.raises(tlw.FreezeError, match="between -6 and 6") as err:
        tlw.freeze_to(model, 7)
    assert "5=head" in str(err.value)
    with pytest.raises(tlw.FreezeError, match="between -6 and 6"):
        tlw.freeze_to(model, -7)
    with pytest.raises(tlw.FreezeError, match="integer"):
        tlw.freeze_to(model, 1.5)


def test_bad_preset_and_bn_policy_list_the_valid_values():
    model = make("resnet18", meta=True)
    with pytest.raises(tlw.FreezeError) as err:
        tlw.apply_preset(model, "backbone")
    for name in ("'head'", "'last-stage'", "'all'", "'none'"):
        assert name in str(err.value)
    with pytest.raises(tlw.FreezeError, match="'eval', 'train', 'frozen'"):
        tlw.freeze(model, bn="off")


# ------------------------------------------------------------------------------------------
# telling views about changes


def test_freeze_version_and_listeners_see_every_change():
    model = make("resnet18", meta=True)
    seen: list[int] = []
    unsubscribe = tlw.on_freeze_change(model, seen.append)
    v0 = tlw.freeze_version(model)
    assert tlw.freeze_version(model) == v0  # polling without a change does not bump

    tlw.apply_preset(model, "head")
    assert seen == [v0 + 1] and tlw.freeze_version(model) == v0 + 1

    model.layer4[0].conv1.weight.requires_grad_(True)  # behind tlwidgets' back
    assert seen == [v0 + 1]  # not noticed until someone polls
    assert tlw.freeze_version(model) == v0 + 2 and seen == [v0 + 1, v0 + 2]

    model.reset_classifier(5)  # a new head, same flags: still a change the panel must see
    assert tlw.freeze_version(model) == v0 + 3

    unsubscribe()
    tlw.unfreeze(model)
    assert tlw.freeze_version(model) == v0 + 4 and seen == [v0 + 1, v0 + 2, v0 + 3]

    other = make("resnet18", meta=True)
    assert tlw.freeze_version(other) == 0  # state is per model


def test_a_polling_thread_and_freeze_calls_agree():
    model = make("mobilenetv3_small_050", meta=True)
    seen: list[int] = []
    tlw.on_freeze_change(model, seen.append)
    stop, errors = threading.Event(), []

    def poll() -> None:
        try:
            while not stop.is_set():
                tlw.freeze_version(model)
        except Exception as err:  # surfaced by the assertion below
            errors.append(err)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        for i in range(12):
            tlw.freeze_to(model, -1 - i % 3, bn=("eval", "frozen", "train")[i % 3])
    finally:
        stop.set()
        poller.join()
    assert errors == []
    # every change announced once, in order, and the poller never saw a half-done change
    assert seen == list(range(1, 13)) and tlw.freeze_version(model) == 12


def test_a_failing_listener_warns_but_the_freeze_happens():
    model = sequential()

    def broken(version: int) -> None:
        raise RuntimeError("view is gone")

    tlw.on_freeze_change(model, broken)
    with pytest.warns(RuntimeWarning, match="view is gone"):
        tlw.freeze(model)
    assert not any(p.requires_grad for p in model.parameters())


def test_freeze_state_does_not_keep_the_model_alive():
    model = sequential()
    # a listener holding the model strongly, as a view's callback does
    tlw.on_freeze_change(model, functools.partial(lambda m, version: m.training, model))
    tlw.freeze(model, "0")
    groups = tlw.layer_groups(model)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
    with pytest.raises(tlw.FreezeError, match="outlived"):
        _ = groups[0].trainable_params


def test_freeze_is_the_function_whatever_the_import_order():
    import importlib

    module = importlib.import_module("tlwidgets.freeze")
    importlib.reload(module)  # re-import binds the submodule name on the package again
    from tlwidgets import freeze

    assert callable(freeze) and freeze.__name__ == "freeze" and tlw.freeze is freeze
    assert freeze.__module__ == "tlwidgets.freeze"


# ---- learning-rate multipliers in the core ------------------------------------------------------


def test_lr_multipliers_live_with_the_model_and_scale_param_groups() -> None:
    import timm

    model = timm.create_model("resnet18", pretrained=False, num_classes=3)
    assert set(tlw.lr_multipliers(model).values()) == {1.0}
    version = tlw.freeze_version(model)
    tlw.set_lr_multipliers(model, {"head": 10, "layer1": 0})
    assert tlw.freeze_version(model) > version  # a freeze change: panels and trainers follow
    groups = tlw.param_groups(model, lr=1e-3)
    lrs = {g["group"]: g["lr"] for g in groups}
    assert lrs["head"] == pytest.approx(1e-2) and lrs["layer2"] == pytest.approx(1e-3)
    assert "layer1" not in lrs  # 0 leaves the group out
    in_opt = {id(p) for g in groups for p in g["params"]}
    assert not any(id(p) in in_opt for p in model.layer1.parameters())
    # copies start afresh, like the freeze version
    import copy

    assert tlw.lr_multipliers(copy.deepcopy(model))["head"] == 1.0
    with pytest.raises(tlw.ConfigError, match="layer4"):
        tlw.set_lr_multipliers(model, {"layer9": 2})
    with pytest.raises(tlw.ConfigError, match=">= 0"):
        tlw.set_lr_multipliers(model, {"head": -1})
    tlw.set_lr_multipliers(model, {}, replace=True)
    assert set(tlw.lr_multipliers(model).values()) == {1.0}
