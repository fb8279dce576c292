"""Which backbone, and which layers, for *my* data: transferability scores before fine-tuning.

- :func:`logme`, :func:`knn_accuracy` (``scores``): scores of an ``(N, D)`` feature array;
- :func:`rank_models` (``models``): candidate backbones scored on the user's images, beside the
  static prior (ImageNet top-1, size, CPU speed);
- :func:`rank_layers` (``layers``): the scores after each layer group, with a suggested
  ``freeze_to`` point;
- :func:`imagenet_similarity` (``similarity``): how the model's own ImageNet head sees the
  images (confidence, entropy, the ImageNet classes they look like);
- ``features.backbone_features``: the one function that computes features (the place the
  persistent feature cache plugs in); ``progress``: progress bars, callbacks and cancelling.

>>> import tlwidgets as tlw
>>> data = tlw.sample_data(img_size=128)                     # doctest: +SKIP
>>> tlw.rank_models(data)                                    # doctest: +SKIP
>>> tlw.rank_layers("tf_efficientnet_lite0", data)           # doctest: +SKIP
>>> print(tlw.imagenet_similarity("tf_efficientnet_lite0", data))  # doctest: +SKIP
"""

from __future__ import annotations

from .layers import rank_layers
from .models import rank_models
from .scores import knn_accuracy, logme, logme_by_class
from .similarity import ImageNetSimilarity, imagenet_similarity

__all__ = [
    "ImageNetSimilarity",
    "imagenet_similarity",
    "knn_accuracy",
    "logme",
    "logme_by_class",
    "rank_layers",
    "rank_models",
]
