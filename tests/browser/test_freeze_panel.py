"""FreezePanel in a real JupyterLab page: clicks, slider, presets and keys reach the kernel's
model; changes made in code reach the page; names stay text; the timing figures are printed."""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics

import pytest

from .conftest import ARTIFACTS, REPO, NotebookOpener

pytestmark = pytest.mark.browser

ROOT = ".tlw-freeze-panel"
IMAGES = REPO / "docs" / "images"

RESNET = [
    "import torch, timm, tlwidgets as tlw\n"
    "torch.set_num_threads(1)\n"
    "model = timm.create_model('resnet18', pretrained=False, num_classes=5)\n"
    "panel = tlw.FreezePanel(model)\n"
    "panel",
]


def kernel_value(nb, expr: str):
    return json.loads(nb.kernel(f"import json; print(json.dumps({expr}))"))


def timings(page) -> list[dict]:
    return page.evaluate("() => (window.__tlwTimings && window.__tlwTimings.freeze_panel) || []")


def panel_root(page, nth: int = 0):
    return page.locator(ROOT).nth(nth)


def row(root, node: int):
    return root.locator(f'.tlw-fp-item[data-node="{node}"]:not([hidden])')


def visible_names(root) -> list[str]:
    return root.evaluate(
        """r => Array.from(r.querySelectorAll('.tlw-fp-item:not([hidden])'))
             .sort((a, b) => a.dataset.row - b.dataset.row)
             .map(e => e.querySelector('.tlw-fp-text').textContent)"""
    )


def wait_total(page, nb, nth: int = 0) -> int:
    """Wait until the page's footer shows the kernel's trainable count; returns it."""
    expected = kernel_value(nb, "panel.totals['trainable']")
    page.wait_for_function(
        "([sel, nth, want]) => document.querySelectorAll(sel)[nth]?.dataset.trainable === String(want)",
        arg=[ROOT, nth, expected],
        timeout=10_000,
    )
    return expected


def group_states(nb) -> list[str]:
    return kernel_value(nb, "[g.state for g in tlw.layer_groups(model)]")


def test_clicks_slider_presets_keys_and_code_changes_stay_in_step(open_notebook):
    nb = open_notebook(RESNET, name="freeze_panel_two_way")
    page = nb.page
    root = panel_root(page)
    root.locator(".tlw-fp-item").first.wait_for(timeout=60_000)
    groups = kernel_value(nb, "panel.groups")
    assert groups == ["stem", "layer1", "layer2", "layer3", "layer4", "head"]
    assert visible_names(root) == groups
    node = {name: kernel_value(nb, f"panel.tree['names'].index({name!r})") for name in groups}

    # A checkbox click freezes the group in the kernel at once.
    row(root, node["layer4"]).locator(".tlw-fp-check").click()
    nb.wait_for("not any(p.requires_grad for p in model.layer4.parameters())", timeout=10)
    assert group_states(nb) == ["trainable"] * 4 + ["frozen", "trainable"]
    wait_total(page, nb)
    assert row(root, node["layer4"]).get_attribute("data-state") == "frozen"
    assert row(root, node["layer4"]).locator(".tlw-fp-check").is_checked() is False

    # The slider: freeze the first two groups.
    root.locator(".tlw-fp-slider input").fill("2")
    nb.wait_for("[g.state for g in tlw.layer_groups(model)][:3] == ['frozen', 'frozen', 'trainable']")
    assert group_states(nb) == ["frozen", "frozen"] + ["trainable"] * 4
    trainable = wait_total(page, nb)
    footer = root.locator(".tlw-fp-footer-text").inner_text()
    assert f"{trainable:,}" in footer and "11,179,077" in footer

    # A preset.
    root.locator('.tlw-fp-presets button[data-preset="head"]').click()
    nb.wait_for("[g.state for g in tlw.layer_groups(model)] == ['frozen'] * 5 + ['trainable']")
    assert wait_total(page, nb) == 512 * 5 + 5
    assert root.locator(".tlw-fp-slider input").input_value() == "5"

    # A change in code shows in the panel without re-creating it.
    nb.kernel("tlw.freeze_to(model, -2)")
    assert wait_total(page, nb) == kernel_value(
        nb, "sum(p.numel() for m in (model.layer4, model.fc) for p in m.parameters())"
    )
    assert root.locator(".tlw-fp-slider input").input_value() == "4"
    # ... and so does a bare requires_grad change (picked up by the panel's version poll).
    nb.kernel("model.fc.weight.requires_grad_(False)")
    page.wait_for_function(
        "([sel, n]) => document.querySelector(`${sel} .tlw-fp-item[data-node=\"${n}\"]`)?.dataset.state === 'partial'",
        arg=[ROOT, node["head"]],
        timeout=10_000,
    )
    head_box = row(root, node["head"]).locator(".tlw-fp-check")
    assert head_box.evaluate("b => b.indeterminate") is True

    # Warnings: nothing trainable.
    root.locator('.tlw-fp-presets button[data-preset="none"]').click()
    warning = root.locator(".tlw-fp-warning")
    warning.wait_for(timeout=10_000)
    assert warning.inner_text().startswith("Nothing is trainable")

    # Keyboard: move, expand, toggle, go to the parent, collapse.
    root.locator('.tlw-fp-presets button[data-preset="all"]').click()
    nb.wait_for("all(p.requires_grad for p in model.parameters())")
    page.wait_for_function(f"() => !document.querySelector('{ROOT} .tlw-fp-warning')")
    viewport = root.locator(".tlw-fp-viewport")
    viewport.focus()
    for key in ["Home", "ArrowDown", "ArrowRight"]:  # on layer1, expand it
        page.keyboard.press(key)
    assert visible_names(root) == ["stem", "layer1", "layer1", "layer2", "layer3", "layer4", "head"]
    page.keyboard.press("ArrowDown")  # the layer1 module
    page.keyboard.press("ArrowRight")  # expand it: layer1.0, layer1.1
    assert visible_names(root)[2:5] == ["layer1", "0", "1"]
    page.keyboard.press("ArrowDown")  # layer1.0
    page.keyboard.press(" ")
    nb.wait_for("not model.layer1[0].conv1.weight.requires_grad")
    assert kernel_value(nb, "model.layer1[1].conv1.weight.requires_grad") is True
    # Enter acts on what the page shows: wait until it shows the new counts (layer1 partial),
    # or Enter on a parent still drawn as trainable would freeze it instead.
    wait_total(page, nb)
    page.keyboard.press("ArrowLeft")  # to the parent (the layer1 module)
    page.keyboard.press("Enter")  # partial -> trainable
    nb.wait_for("all(p.requires_grad for p in model.layer1.parameters())")
    page.keyboard.press("ArrowLeft")  # collapse it
    assert visible_names(root)[:4] == ["stem", "layer1", "layer1", "layer2"]
    assert page.locator(f"{ROOT} .tlw-fp-focus .tlw-fp-text").inner_text() == "layer1"

    # The light-theme picture for the README: a typical fine-tuning state, one stage opened.
    nb.kernel("tlw.freeze_to(model, -2)")
    wait_total(page, nb)
    page.keyboard.press("ArrowLeft")  # to the layer1 group
    page.keyboard.press("ArrowLeft")  # collapse it
    row(root, node["layer4"]).locator(".tlw-fp-toggle").click()
    nb.kernel("panel.lr_multipliers = {**panel.lr_multipliers, 'layer4': 0.1, 'head': 1.0}")
    page.wait_for_function(
        f"() => document.querySelector('{ROOT} .tlw-fp-lr-input:not([hidden])') !== null"
    )
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    root.scroll_into_view_if_needed()
    shot = nb.screenshot("freeze_panel-light", selector=ROOT)
    # the README's picture: refreshed on request only, so a test run leaves the checkout clean
    if os.environ.get("TLW_UPDATE_DOCS_IMAGES") == "1":
        IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, IMAGES / "freeze_panel-light.png")

    # The BatchNorm policy chosen in the page applies to what is frozen now (layer1..layer3).
    total = kernel_value(nb, "panel.totals")
    root.locator(".tlw-fp-bn select").select_option("frozen")
    nb.wait_for("type(model.layer1[0].bn1).__name__ == 'FrozenBatchNorm2d'")
    assert kernel_value(nb, "[panel.bn, type(model.layer4[0].bn1).__name__]") == ["frozen", "BatchNorm2d"]
    assert kernel_value(nb, "panel.totals") == total  # swapped layers still count, as frozen
    page.wait_for_function(
        f"() => Array.from(document.querySelectorAll('{ROOT} .tlw-fp-item:not([hidden]) .tlw-fp-type'))"
        ".some(e => e.textContent === 'Sequential')"
    )

    # An LR multiplier typed in the page reaches the kernel.
    lr_box = root.locator('.tlw-fp-lr-input[data-group="head"]')
    lr_box.fill("10")
    lr_box.press("Tab")
    nb.wait_for("panel.lr_multipliers['head'] == 10.0")
    assert kernel_value(nb, "[g['lr'] for g in panel.param_groups(1e-3) if g['group'] == 'head']") \
        == pytest.approx([1e-2])


# One dark-theme notebook serves the XSS, dark-theme and timing tests (a notebook costs a
# kernel and a page; the machine is small): panel 0 is an EfficientNet-B0, panel 1 a model whose
# names are markup, panels 2 and 3 the 1,000+-module models for the timings.
DARK_CELLS = [
    "import time, torch, timm, tlwidgets as tlw\n"
    "from torch import nn\n"
    "torch.set_num_threads(1)\n"
    "t = time.perf_counter()\n"
    "tlw.FreezePanel  # imports the widget module (and anywidget, ipywidgets)\n"
    "import_s = time.perf_counter() - t",
    "model = timm.create_model('efficientnet_b0', pretrained=False, num_classes=5)\n"
    "tlw.freeze_to(model, -3)\n"
    "panel = tlw.FreezePanel(model)\n"
    "panel",
    # A class name and child names made of markup.
    "class Evil(nn.Module):\n"
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        self.fc = nn.Linear(4, 2)\n"
    "Evil.__name__ = '<img src=y onerror=alert(3)>'\n"
    "evil = nn.Sequential()\n"
    "evil.add_module('<img src=x onerror=alert(1)>', nn.Linear(4, 4))\n"
    "evil.add_module('<script>alert(2)</script>', Evil())\n"
    "evil_panel = tlw.FreezePanel(evil)\n"
    "evil_panel",
    "with torch.device('meta'):  # shapes and requires_grad are all the panel reads\n"
    "    b7 = timm.create_model('efficientnet_b7', pretrained=False)\n"
    "    mx = timm.create_model('maxvit_xlarge_tf_224', pretrained=False)\n"
    "modules = {'efficientnet_b7': len(list(b7.modules())), 'maxvit_xlarge_tf_224': len(list(mx.modules()))}",
    "start_b7 = time.time(); t = time.perf_counter()\n"
    "p7 = tlw.FreezePanel(b7); kernel_build_b7 = time.perf_counter() - t\np7",
    "start_mx = time.time(); t = time.perf_counter()\n"
    "pmx = tlw.FreezePanel(mx); kernel_build_mx = time.perf_counter() - t\npmx",
]


@pytest.fixture(scope="module")
def dark_nb(lab, browser):
    opener = NotebookOpener(lab, browser, "freeze_panel_dark")
    try:
        yield opener(DARK_CELLS, name="freeze_panel_dark", theme="dark")
    finally:
        opener.close_all(failed=False)


def test_names_are_shown_as_text_and_run_nothing(dark_nb):
    nb = dark_nb
    page = nb.page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    evil_root = panel_root(page, 1)
    evil_root.locator(".tlw-fp-item").first.wait_for(timeout=60_000)
    # Open everything in the evil panel, so every name is (re-)rendered with the listener on.
    evil_root.locator(".tlw-fp-viewport").focus()
    for _ in range(6):
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowDown")
    names = visible_names(evil_root)
    types = evil_root.evaluate(
        "r => Array.from(r.querySelectorAll('.tlw-fp-item:not([hidden]) .tlw-fp-type')).map(e => e.textContent)"
    )
    assert "<img src=x onerror=alert(1)>" in names
    assert "<script>alert(2)</script>" in names
    assert "<img src=y onerror=alert(3)>" in types
    assert evil_root.locator("img, script").count() == 0
    page.wait_for_timeout(300)  # an injected onerror would have fired by now
    assert dialogs == []


def test_the_dark_theme_is_readable(dark_nb):
    nb = dark_nb
    page = nb.page
    root = panel_root(page, 0)
    root.locator(".tlw-fp-item").first.wait_for(timeout=60_000)
    # The tree's background is JupyterLab's dark layout colour, its text light.
    viewport = root.locator(".tlw-fp-viewport")
    bg = viewport.evaluate("v => getComputedStyle(v).backgroundColor")
    fg = root.evaluate("r => getComputedStyle(r).color")
    assert sum(int(c) for c in re.findall(r"\d+", bg)[:3]) / 3 < 80, bg
    assert sum(int(c) for c in re.findall(r"\d+", fg)[:3]) / 3 > 150, fg
    # For the picture: the first trainable stage opened, with one block of it frozen (partial).
    node = kernel_value(nb, "panel.tree['names'].index(panel.groups[-3])")
    nb.kernel("tlw.freeze(model, panel.groups[-3] + '.0')")
    page.wait_for_function(
        "([sel, n]) => document.querySelector(`${sel} .tlw-fp-item[data-node=\"${n}\"]`)?.dataset.state === 'partial'",
        arg=[ROOT, node],
        timeout=10_000,
    )
    row(root, node).locator(".tlw-fp-toggle").click()
    row(root, node + 1).locator(".tlw-fp-toggle").click()
    assert row(root, node + 2).get_attribute("data-state") == "frozen"
    root.scroll_into_view_if_needed()
    shot = nb.screenshot("freeze_panel-dark", selector=ROOT)
    # the README's picture: refreshed on request only, so a test run leaves the checkout clean
    if os.environ.get("TLW_UPDATE_DOCS_IMAGES") == "1":
        IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, IMAGES / "freeze_panel-dark.png")


def test_timings_with_over_a_thousand_modules(dark_nb):
    nb = dark_nb
    page = nb.page
    page.wait_for_function(
        "() => (window.__tlwTimings?.freeze_panel || []).filter(t => t.event === 'render').length >= 4",
        timeout=60_000,
    )
    modules = kernel_value(nb, "modules")
    build = kernel_value(nb, "{'efficientnet_b7': kernel_build_b7, 'maxvit_xlarge_tf_224': kernel_build_mx}")
    started = kernel_value(nb, "{'efficientnet_b7': start_b7 * 1000, 'maxvit_xlarge_tf_224': start_mx * 1000}")
    nodes = kernel_value(nb, "{'efficientnet_b7': p7.tree['n'], 'maxvit_xlarge_tf_224': pmx.tree['n']}")
    renders = {t["nodes"]: t for t in timings(page) if t["event"] == "render"}
    root = panel_root(page, 3)  # maxvit

    # Expanding the biggest group (stages.2, 281M parameters), then its module, then a block.
    big = kernel_value(nb, "max(range(len(pmx.groups)), key=lambda k: pmx._groups[k].params)")
    big_name = kernel_value(nb, f"pmx.groups[{big}]")
    big_params = kernel_value(nb, f"pmx._groups[{big}].params")
    assert big_params > 100e6
    big_node = kernel_value(nb, f"pmx.tree['names'].index({big_name!r})")
    before = len(timings(page))
    row(root, big_node).locator(".tlw-fp-toggle").click()
    row(root, big_node + 1).locator(".tlw-fp-toggle").click()  # the stage module itself
    row(root, big_node + 2).locator(".tlw-fp-toggle").click()  # its first child
    page.wait_for_function(f"() => window.__tlwTimings.freeze_panel.length >= {before + 3}")
    expands = [t for t in timings(page)[before:] if t["event"] == "expand"]
    assert len(expands) == 3

    # Scroll through: the DOM keeps a small window of rows however many are open.
    viewport = root.locator(".tlw-fp-viewport")
    viewport.evaluate("v => { v.scrollTop = v.scrollHeight / 2; }")
    page.wait_for_timeout(100)
    row_elements = root.locator(".tlw-fp-item").count()
    assert row_elements <= 100

    # Freezing the 281M-parameter group round-trips to the kernel and back (five clicks).
    # Back to the top first, so that Playwright's scroll-into-view cannot move the rows (the
    # window reuses row elements) between finding the checkbox and clicking it.
    viewport.evaluate("v => { v.scrollTop = 0; }")
    page.wait_for_timeout(100)
    # Nothing else talks to the kernel meanwhile: the page waits for its own answer.
    trips, kernel_ms = [], []
    for k in range(5):
        before = len(timings(page))
        row(root, big_node).locator(".tlw-fp-check").click()
        page.wait_for_function(
            f"() => window.__tlwTimings.freeze_panel.slice({before}).some(t => t.event === 'roundtrip')",
            timeout=10_000,
        )
        trips += [t for t in timings(page)[before:] if t["event"] == "roundtrip"]
        want = "trainable" if k % 2 else "frozen"
        state = kernel_value(
            nb, f"[pmx._groups[{big}].state, pmx.error, pmx._command_seconds * 1000]"
        )
        assert state[:2] == [want, ""], (state, trips)
        kernel_ms.append(state[2])
        assert row(root, big_node).get_attribute("data-state") == want

    figures = {
        "modules": modules,
        "tree_nodes": nodes,
        "kernel_build_s": build,
        "render_ms": {name: renders[nodes[name]]["ms"] for name in nodes},
        "render_to_paint_ms": {name: renders[nodes[name]]["paint_ms"] for name in nodes},
        # from the kernel starting FreezePanel(model) to the page having painted it (one clock)
        "cell_to_paint_ms": {name: renders[nodes[name]]["painted_at"] - started[name] for name in nodes},
        "expand_ms": [t["ms"] for t in expands],
        "expand_to_paint_ms": [t["paint_ms"] for t in expands],
        "expanded_rows_added": [t["rows"] for t in expands],
        "row_elements_in_dom": row_elements,
        "roundtrip_group": big_name,
        "roundtrip_group_params": big_params,
        "roundtrip_ms": [t["ms"] for t in trips],
        "roundtrip_to_paint_ms": [t["paint_ms"] for t in trips],
        "roundtrip_kernel_ms": kernel_ms,
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "freeze_panel_timings.json").write_text(json.dumps(figures, indent=2))
    print("\nFreezePanel timings (headless Chromium, performance.now() in the page):")
    print(f"  one-time import of the widget module in the kernel (torch and timm already in): {kernel_value(nb, 'import_s') * 1000:.0f} ms")
    for name in nodes:
        print(f"  {name}: {modules[name]} modules, {nodes[name]} tree rows; kernel build "
              f"{build[name] * 1000:.0f} ms; first render {figures['render_ms'][name]:.1f} ms "
              f"({figures['render_to_paint_ms'][name]:.1f} ms to first paint); FreezePanel(model) "
              f"in the kernel to painted in the page: {figures['cell_to_paint_ms'][name]:.0f} ms")
    print(f"  expand (maxvit {big_name}, its module, first child): "
          + ", ".join(f"{a:.1f} ms ({b:.1f} to paint)" for a, b in
                      zip(figures["expand_ms"], figures["expand_to_paint_ms"])))
    print(f"  row elements in the DOM after scrolling: {row_elements}")
    print(f"  freeze/unfreeze {big_name} ({big_params:,} params) click -> kernel -> page: "
          + ", ".join(f"{a:.1f} ms ({b:.1f} to paint)" for a, b in
                      zip(figures["roundtrip_ms"], figures["roundtrip_to_paint_ms"]))
          + f"; median {statistics.median(figures['roundtrip_ms']):.1f} ms; of which the kernel's "
          + "handler: " + ", ".join(f"{m:.1f}" for m in kernel_ms) + " ms")
