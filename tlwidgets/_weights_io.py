"""Reading a weights file without running anything in it: what kind of file it is
(safetensors, a ``torch.save`` archive, a pickle, or none of these), and the state dict inside a
checkpoint. :mod:`tlwidgets.weights` documents the contract.

>>> from tlwidgets._weights_io import read_weights_file, unwrap
>>> sd, wrapped = unwrap(read_weights_file(path), str(path))  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ConfigError, UnsafeWeightsError, WeightsError, WeightsUnavailableError

# Wrapper keys of training checkpoints, most specific first; EMA weights are used only when no
# plain state dict is there, because the plain one is what the run last trained.
_WRAPPER_KEYS = (
    "state_dict",
    "model_state_dict",
    "model",
    "state_dict_ema",
    "model_ema",
    "ema",
    "module",
)


# --------------------------------------------------------------------------------------------
# reading files


def check_weights_file(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(
            f"Weights must be given as a file path, not {type(path).__name__}. Pass e.g. "
            f"'weights/model.safetensors' (or a state dict to tlw.load_weights)."
        )
    file = Path(path).expanduser()
    if file.is_dir():
        inside = sorted(
            p.name
            for p in file.iterdir()
            if p.suffix in (".safetensors", ".bin", ".pth", ".pt", ".ckpt")
        )
        hint = (
            f" It holds {', '.join(inside[:3])}: pass one of those files, e.g. "
            f"{str(file / inside[0])!r}."
            if inside
            else " Pass the weights file itself (.safetensors, .pth, .pt or .bin)."
        )
        raise ConfigError(f"{str(file)!r} is a directory, not a weights file.{hint}")
    if not file.exists():
        raise WeightsUnavailableError(
            f"No weights file at {str(file)!r}. Check the path (it is relative to "
            f"{os.getcwd()!r}), or use weights='auto' to find the model's pretrained weights."
        )
    return file.resolve()


def is_safetensors(file: Path) -> bool:
    if file.suffix == ".safetensors":
        return True
    with open(file, "rb") as f:
        head = f.read(9)
    # safetensors: an 8-byte little-endian header length, then the JSON header
    return len(head) == 9 and head[8:9] == b"{" and not head.startswith(b"PK")


def read_weights_file(file: Path) -> Any:
    if is_safetensors(file):
        import safetensors.torch

        try:
            return safetensors.torch.load_file(str(file), device="cpu")
        except Exception as err:  # safetensors raises its own SafetensorError and OSError
            raise WeightsError(
                f"{str(file)!r} is not a readable safetensors file ({err}). Re-save it with "
                f"safetensors.torch.save_file(state_dict, path)."
            ) from err
    try:
        # weights_only: tensors and plain containers only, so unpickling cannot run code.
        # argparse.Namespace is allowed because timm's training checkpoints store their args in
        # one, and it only sets attributes.
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        if "Weights only load failed" in text or "Unsupported global" in text:
            found = re.search(r"GLOBAL ([\w.]+)", text)
            what = f" (it asks for {found.group(1)})" if found else ""
            raise UnsafeWeightsError(
                f"Refused to load {str(file)!r}: it is a pickle that would import and run "
                f"code{what}, not just tensors. Nothing in it was executed. If you trust where "
                f"it came from, convert it once in a separate session: "
                f"sd = torch.load(path, weights_only=False); "
                f"safetensors.torch.save_file(sd, 'model.safetensors'); then load that."
            ) from None
        raise WeightsError(
            f"Cannot read {str(file)!r} as a PyTorch weights file ({text.splitlines()[0]}). "
            f"Is it complete? Save weights with torch.save(model.state_dict(), path) or "
            f"safetensors.torch.save_file."
        ) from err
    except Exception as err:  # torch's unpickler fails on garbage with many error types
        raise WeightsError(
            f"Cannot read {str(file)!r} as a weights file ({str(err).splitlines()[0]}). Is it "
            f"complete and really a .safetensors/.pth/.pt/.bin file?"
        ) from err


def unwrap(obj: Any, source: str) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict inside a checkpoint, and the wrapper keys that led to it."""
    path = ""
    for _ in range(4):
        if isinstance(obj, nn.Module):
            obj = obj.state_dict()
        if not isinstance(obj, Mapping):
            break
        wrapper = next(
            (k for k in _WRAPPER_KEYS if isinstance(obj.get(k), (Mapping, nn.Module))), None
        )
        if wrapper is None:
            break
        path += f"[{wrapper!r}]"
        obj = obj[wrapper]
    if isinstance(obj, Mapping):
        tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors, path
        keys = ", ".join(map(str, list(obj)[:8]))
        raise WeightsError(
            f"{source} holds no tensors (top-level keys: {keys or 'none'}). Pass a state dict "
            f"(model.state_dict()) or a checkpoint that wraps one under 'state_dict' or 'model'."
        )
    raise WeightsError(
        f"{source} holds a {type(obj).__name__}, not a state dict. Save weights with "
        f"torch.save(model.state_dict(), path) or safetensors.torch.save_file."
    )
