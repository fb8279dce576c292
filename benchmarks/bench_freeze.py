"""How long the freeze core takes on big models (target: layer_groups and trainable_summary < 1 s).

The models are built on the ``meta`` device, so they cost no memory and no weights are needed;
every function measured must work on meta tensors (shapes only, no values).

Run: ``.venv/bin/python benchmarks/bench_freeze.py``
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import timm
import torch

import tlwidgets as tlw

MODELS = ["maxvit_xlarge_tf_224", "efficientnet_b7"]
TARGET_S = 1.0


def timed(fn: Callable[[], object], repeat: int = 5) -> float:
    """Median wall time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(name: str) -> list[tuple[str, float, bool]]:
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False)
    n_modules = sum(1 for _ in model.modules())
    n_params = sum(p.numel() for p in model.parameters())
    print(f"\n{name}: {n_modules} modules, {n_params / 1e6:.1f} M parameters (meta device)")
    groups = tlw.layer_groups(model)
    fine = tlw.layer_groups(model, fine=True)
    print(f"  {len(groups)} coarse groups: {', '.join(g.name for g in groups)}; "
          f"{len(fine)} fine groups")

    rows: list[tuple[str, float, bool]] = []

    def row(label: str, seconds: float, target: bool = False) -> None:
        rows.append((label, seconds, target))
        mark = ("  OK" if seconds < TARGET_S else "  OVER") if target else ""
        print(f"  {label:<48} {seconds * 1e3:9.2f} ms{mark}")

    row("layer_groups(model)", timed(lambda: tlw.layer_groups(model)), True)
    row("layer_groups(model, fine=True)", timed(lambda: tlw.layer_groups(model, fine=True)), True)
    row("trainable_summary(model)", timed(lambda: tlw.trainable_summary(model)), True)
    row("trainable_summary(model, depth=2)", timed(lambda: tlw.trainable_summary(model, depth=2)),
        True)
    row("trainable_summary(..., input_size=(3,224,224))",
        timed(lambda: tlw.trainable_summary(model, input_size=(3, 224, 224)), repeat=1))
    row("freeze_to(model, -1)  (bn='eval')", timed(lambda: tlw.freeze_to(model, -1)))
    row("freeze_to(model, -2, bn='frozen')", timed(lambda: tlw.freeze_to(model, -2, bn="frozen")))
    row("apply_preset(model, 'all')", timed(lambda: tlw.apply_preset(model, "all")))
    row("param_groups(model, 1e-3, lr_min=1e-5)",
        timed(lambda: tlw.param_groups(model, 1e-3, lr_min=1e-5)))
    walk = timed(lambda: list(model.parameters()), repeat=50)
    row("reference: list(model.parameters())", walk)
    poll = timed(lambda: tlw.freeze_version(model), repeat=50)
    row("freeze_version(model), no change", poll)
    print(f"  {'  = parameter walks per poll':<48} {poll / walk:9.2f} x")

    last = list(model.parameters())[-1]

    def change_behind_back() -> None:
        last.requires_grad_(not last.requires_grad)
        tlw.freeze_version(model)

    before = tlw.freeze_version(model)
    row("requires_grad_ flip + freeze_version", timed(change_behind_back, repeat=50))
    assert tlw.freeze_version(model) == before + 50, "every change behind our back was seen"
    return rows


def main() -> None:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, timm {timm.__version__}; median of repeated calls")
    over = []
    for name in MODELS:
        for label, seconds, target in bench(name):
            if target and seconds >= TARGET_S:
                over.append(f"{name}: {label}")
    print("\nall targets met (< 1 s)" if not over else "\nOVER TARGET: " + "; ".join(over))


if __name__ == "__main__":
    main()
