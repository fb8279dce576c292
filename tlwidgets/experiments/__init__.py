"""Transfer learning's four promises as experiments anyone can run, watch and question.

- **Less data**: :func:`data_efficiency` trains pretrained and from-scratch models on nested,
  stratified subsets (1, 2, 4, ... images per class) and scores them on the same validation
  images; :func:`summarize` gives each curve's mean and band.
- **Less compute**: :func:`compute_curve`, accuracy against wall seconds / epochs / steps of
  the same runs.
- **Better generalisation**: the ``gap`` column (training minus validation accuracy) and
  :func:`calibration` (expected calibration error, reliability diagram).
- **More robustness**: :func:`robustness`, accuracy under ImageNet-C-style corruptions
  (:func:`corrupt`, :func:`corruption_parameters`), and :func:`mean_corruption_accuracy`.

Each result is a tidy pandas DataFrame; ``read_*`` functions turn them into a sentence.
``tlw.ExperimentView`` runs all of it in the background and plots it as results arrive.

>>> import tlwidgets as tlw
>>> arch = "tf_efficientnet_lite0"
>>> data = tlw.sample_data(model=arch, img_size=64, augment="none")           # doctest: +SKIP
>>> table = tlw.experiments.data_efficiency(data, arch, sizes=(1, 4, 16),
...                                         repeats=1)                        # doctest: +SKIP
>>> print(tlw.experiments.read_data_efficiency(table))                       # doctest: +SKIP
"""

from __future__ import annotations

from .calibration import Calibration, calibration, expected_calibration_error
from .corruptions import CORRUPTIONS, SEVERITIES, corrupt, corruption_parameters
from .data_efficiency import (
    COLUMNS,
    DEFAULT_LR,
    INITS,
    RunResult,
    compute_curve,
    data_efficiency,
    default_sizes,
    nested_subsets,
    plan_runs,
    summarize,
    table_from_rows,
)
from .readings import (
    read_calibration,
    read_compute,
    read_data_efficiency,
    read_generalization,
    read_robustness,
)
from .robustness import (
    DEFAULT_CORRUPTIONS,
    ROBUSTNESS_COLUMNS,
    corrupted_eval_set,
    mean_corruption_accuracy,
    robustness,
)

__all__ = [
    "data_efficiency",
    "nested_subsets",
    "plan_runs",
    "default_sizes",
    "summarize",
    "compute_curve",
    "table_from_rows",
    "RunResult",
    "COLUMNS",
    "INITS",
    "DEFAULT_LR",
    "robustness",
    "mean_corruption_accuracy",
    "corrupted_eval_set",
    "corrupt",
    "corruption_parameters",
    "CORRUPTIONS",
    "DEFAULT_CORRUPTIONS",
    "SEVERITIES",
    "ROBUSTNESS_COLUMNS",
    "calibration",
    "expected_calibration_error",
    "Calibration",
    "read_data_efficiency",
    "read_compute",
    "read_generalization",
    "read_robustness",
    "read_calibration",
]
