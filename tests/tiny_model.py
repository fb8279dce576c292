"""The tiny conv net the trainer and evaluation tests share: trains in milliseconds on 16 px."""

from __future__ import annotations

import torch
from torch import nn


class Tiny(nn.Module):
    """Conv + BatchNorm + pool + a linear head, with timm's ``get_classifier()``.

    ``fail_at=k`` makes the k-th training forward return NaN (or raise ``exc``), to test how a run
    survives failures.
    """

    def __init__(self, num_classes: int = 2, fail_at: int | None = None,
                 exc: BaseException | None = None) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.fc = nn.Linear(8, num_classes)
        self.fail_at, self.exc, self.calls = fail_at, exc, 0

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc(self.features(x))
        if self.training and self.fail_at is not None:
            self.calls += 1
            if self.calls == self.fail_at:
                if self.exc is not None:
                    raise self.exc
                return out * float("nan")
        return out
