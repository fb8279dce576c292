"""Layer groups of Hugging Face encoders (embeddings, each encoder layer, pooler, head): the
functions live in :mod:`tlwidgets._hf_groups`, below ``tlwidgets.freeze``, which uses them too.

>>> from tlwidgets.text.groups import encoder_layout, encoder_group_matcher
"""

from __future__ import annotations

from .._hf_groups import (
    EncoderLayout,
    encoder_group_matcher,
    encoder_layout,
    frozen_units,
    hf_group_matcher,
)

__all__ = [
    "EncoderLayout", "encoder_group_matcher", "encoder_layout", "frozen_units", "hf_group_matcher",
]
