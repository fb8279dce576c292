"""The kernel's share of the FreezePanel's speed, measured side by side with the core alone.

For models with over 1,000 modules (built on the ``meta`` device: the panel reads only shapes
and ``requires_grad``), in one run:

1. Building the panel (``FreezePanel(model)``: layer groups, tree encoding, first counts) beside
   ``tlw.layer_groups(model)`` alone, and the bytes the tree and the counts take on the wire.
2. One click that freezes / unfreezes the biggest layer group, handled as the page's message is
   (``tlw.freeze``/``unfreeze`` plus the panel's new counts, in one update), beside the bare
   ``tlw.freeze``/``unfreeze`` call on the same group: the panel's overhead as a ratio.
3. A poll that finds nothing changed (what the panel's thread does twice a second).

The page's side (render, expand, click round trip through JupyterLab) is measured in Chromium by
``tests/browser/test_freeze_panel.py::test_timings_with_over_a_thousand_modules``, which prints
its figures.

Run: .venv/bin/python benchmarks/bench_freeze_panel.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import timm
import torch

import tlwidgets as tlw
from tlwidgets.widgets.freeze_panel import FreezePanel

MODELS = ["efficientnet_b7", "maxvit_xlarge_tf_224"]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"FreezePanel kernel-side benchmark — {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, torch {torch.__version__}, timm {timm.__version__}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; median of {args.repeats}")
    for name in MODELS:
        with torch.device("meta"):
            model = timm.create_model(name, pretrained=False)
        modules = len(list(model.modules()))
        groups_s = statistics.median(timed(lambda: tlw.layer_groups(model), args.repeats))
        panels: list[FreezePanel] = []
        build = timed(lambda: panels.append(FreezePanel(model, poll_interval=3600)), args.repeats)
        for extra in panels[1:]:
            extra.close()
        panel = panels[0]
        tree_bytes = sum(len(v) for v in panel.tree.values() if isinstance(v, bytes))
        names_bytes = len(json.dumps(panel.tree["names"])) + len(json.dumps(panel.tree["type_names"]))

        groups = tlw.layer_groups(model)
        big = max(groups, key=lambda g: g.params)
        node = panel.tree["names"].index(big.name)
        state = {"frozen": False, "bare_frozen": False}
        # The bare core call runs on a twin model that no panel listens to.
        with torch.device("meta"):
            twin = timm.create_model(name, pretrained=False)
        twin_big = next(g for g in tlw.layer_groups(twin) if g.name == big.name)

        def core_click() -> None:
            if state["bare_frozen"]:
                tlw.unfreeze(twin, twin_big)
            else:
                tlw.freeze(twin, twin_big)
            state["bare_frozen"] = not state["bare_frozen"]

        def panel_click() -> None:
            # exactly what the page's checkbox sends
            panel._handle_message(panel, {"cmd": "set", "node": node,
                                          "trainable": state["frozen"], "req": "bench"})
            state["frozen"] = not state["frozen"]

        # Interleaved so both see the same machine load.
        core_times, panel_times = [], []
        for _ in range(args.repeats):
            core_times += timed(core_click, 2)
            panel_times += timed(panel_click, 2)
        core = statistics.median(core_times)
        via_panel = statistics.median(panel_times)
        poll = statistics.median(timed(panel.refresh, args.repeats * 3))
        panel.close()

        print(f"\n{name}: {modules} modules, {panel.tree['n']} tree rows, {len(groups)} groups")
        print(f"  build: FreezePanel(model) {ms(statistics.median(build))} "
              f"vs tlw.layer_groups(model) {ms(groups_s)}")
        print(f"  sent once: tree {tree_bytes / 1024:.1f} KiB binary + {names_bytes / 1024:.1f} KiB "
              f"of names; per change: {len(panel.trainable) / 1024:.1f} KiB of counts")
        print(f"  click on {big.name} ({big.params:,} params): through the panel {ms(via_panel)} "
              f"vs bare tlw.freeze/unfreeze {ms(core)} (ratio {via_panel / core:.2f})")
        print(f"  poll with nothing changed: {ms(poll)}")


if __name__ == "__main__":
    main()
