"""Reading a weights file without running anything in it: what kind of file it is
(safetensors, a ``torch.save`` archive, a pickle, or none of these), and the state dict inside a
checkpoint. :mod:`tlwidgets.weights` documents the contract.

>>> from tlwidgets._weights_io import read_weights_file, unwrap
>>> sd, wrapped = unwrap(read_weights_file(path), str(path))  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import os
import re
import stat
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
    if not file.is_file():
        # reading a named pipe or a device would block or never end; stat() does neither
        mode = file.stat().st_mode
        what = (
            "a named pipe"
            if stat.S_ISFIFO(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "not a file"
        )
        raise ConfigError(
            f"{str(file)!r} is not a regular file ({what}), so it cannot hold weights; it was "
            f"not read. Pass the path of a weights file (.safetensors, .pth, .pt or .bin)."
        )
    return file.resolve()


_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default format is a zip archive
_SAFETENSORS_MAX_HEADER = 100 * 2**20  # safetensors' own limit on the JSON header
_SCAN_LIMIT = 64 * 2**20  # bytes of a pickle examined for the globals it would import


def _file_kind(head: bytes) -> str:
    """``"zip"``, ``"safetensors"``, ``"pickle"`` or ``"unknown"``, from the first 16 bytes."""
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if len(head) >= 9 and head[8:9] == b"{":
        # safetensors: an 8-byte little-endian header length, then the JSON header
        header_len = int.from_bytes(head[:8], "little")
        if 2 <= header_len <= _SAFETENSORS_MAX_HEADER:
            return "safetensors"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:  # PROTO 2-5: any modern pickle
        return "pickle"
    return "unknown"


def _scan_pickle(file: Path) -> tuple[str, list[str]]:
    """What the start of ``file`` is as a pickle, found by decoding opcodes, never running them.

    Returns (kind, globals): kind ``"pickle"`` (a whole pickle, up to its STOP), ``"truncated"``
    (a pickle's start, cut off) or ``"garbage"`` (no pickle); globals are the ``module.name``
    callables and classes it would import, in order.
    """
    import io
    import pickletools

    with open(file, "rb") as f:
        data = f.read(_SCAN_LIMIT)
    framed = _file_kind(data[:16]) == "pickle"
    names: list[str] = []
    recent: list[Any] = []  # recent pushes, for STACK_GLOBAL's module and name
    memo: dict[int, Any] = {}
    stream = io.BytesIO(data)
    try:
        for op, arg, _ in pickletools.genops(stream):
            if op.name in ("GLOBAL", "INST"):
                names.append(str(arg).replace(" ", "."))
            elif op.name == "STACK_GLOBAL":
                module, name = (recent[-2:] if len(recent) >= 2 else ["?", "?"])
                names.append(f"{module}.{name}")
            if isinstance(arg, str) and op.name not in ("GLOBAL", "INST"):
                recent.append(arg)
            elif op.name == "MEMOIZE":
                memo[len(memo)] = recent[-1] if recent else None
            elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[int(arg)] = recent[-1] if recent else None
            elif op.name in ("GET", "BINGET", "LONG_BINGET"):
                recent.append(memo.get(int(arg)))
            elif op.name not in ("FRAME", "PROTO"):
                recent.append(None)
            del recent[:-2]
            if op.name == "STOP":
                break
    except ValueError as err:  # unknown opcode, or the data ends before STOP
        cut = "exhausted" in str(err) or "but only" in str(err) or "remain" in str(err)
        if cut and len(data) < _SCAN_LIMIT and (framed or names):
            return "truncated", names
        if cut and len(data) >= _SCAN_LIMIT:
            return "pickle", names  # longer than the scan; its start decoded fine
        return "garbage", names
    if not framed:
        # protocol 0/1 pickles have no PROTO marker; random bytes can reach a STOP by chance,
        # so the stack must also balance (pickletools.dis checks it)
        try:
            pickletools.dis(data[: stream.tell()], out=io.StringIO())
        except ValueError:
            return "garbage", names
    return "pickle", names


# modules whose globals a torch or pickle.dump state dict needs; others are named first
_FAMILIAR = ("torch", "collections", "_codecs", "numpy", "builtins", "copyreg")


def _unsafe(file: Path, names: list[str]) -> UnsafeWeightsError:
    shown = sorted(dict.fromkeys(names), key=lambda n: n.split(".", 1)[0] in _FAMILIAR)
    what = (
        f" (it asks for {', '.join(shown[:4])}{', ...' if len(shown) > 4 else ''})"
        if shown
        else ""
    )
    return UnsafeWeightsError(
        f"Refused to load {str(file)!r}: it is a pickle that would import and run code{what}, "
        f"not just tensors. Nothing in it was executed. If you trust where it came from, "
        f"convert it once in a separate session: sd = torch.load(path, weights_only=False); "
        f"safetensors.torch.save_file(sd, 'model.safetensors'); then load that."
    )


def _first_line(err: BaseException) -> str:
    lines = [line for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _not_weights(file: Path, head: bytes, size: int) -> WeightsError:
    text = head.decode("ascii", "replace")
    start = repr(head) if text.isprintable() else head[:8].hex(" ")
    return WeightsError(
        f"{str(file)!r} is not a weights file: it is neither safetensors, nor a torch.save "
        f"archive, nor a pickle ({size:,} bytes starting {start}). Check that the "
        f"path names the weights (.safetensors, .pth, .pt or .bin) and that the file was not "
        f"saved as something else (an HTML error page from a download, say)."
    )


def _read_safetensors(file: Path, head: bytes, size: int) -> Any:
    import json

    import safetensors.torch

    try:
        return safetensors.torch.load_file(str(file), device="cpu")
    except Exception as err:  # safetensors raises its own SafetensorError and OSError
        reason = _first_line(err)
    header_len = int.from_bytes(head[:8], "little") if len(head) >= 8 else 0
    if _file_kind(head) != "safetensors":
        raise _not_weights(file, head, size) from None
    if 8 + header_len > size:
        described = f"its header alone is {header_len:,} bytes"
    else:
        with open(file, "rb") as f:
            f.seek(8)
            try:
                header = json.loads(f.read(header_len))
                ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
            except (ValueError, TypeError, KeyError, IndexError, AttributeError):
                raise WeightsError(
                    f"{str(file)!r} is a damaged safetensors file: its header is not valid "
                    f"({reason}). Save or download it again."
                ) from None
        needed = 8 + header_len + max(ends, default=0)
        if needed <= size:
            raise WeightsError(
                f"{str(file)!r} is a damaged safetensors file ({reason}). Save or download it "
                f"again with safetensors.torch.save_file(state_dict, path)."
            ) from None
        described = f"its header describes {needed:,} bytes"
    raise WeightsError(
        f"{str(file)!r} is incomplete: a safetensors file cut short ({size:,} bytes, but "
        f"{described}). Was the download or copy interrupted? Fetch or save it again."
    ) from None


def read_weights_file(file: Path) -> Any:
    """The object in a weights file, read without running any code in it.

    safetensors is read with safetensors; anything else with ``torch.load(weights_only=True)``.
    Each way a file can fail gets its own :class:`~tlwidgets.errors.WeightsError`: empty,
    cut short, damaged, not a weights file at all, or (:class:`UnsafeWeightsError`) a pickle
    that would import and run code.

    >>> from tlwidgets._weights_io import read_weights_file
    >>> sd = read_weights_file(Path("model.safetensors"))  # doctest: +SKIP
    """
    size = file.stat().st_size
    if size == 0:
        raise WeightsError(
            f"{str(file)!r} is empty (0 bytes), not a weights file: it was probably cut off "
            f"while being written or downloaded. Save or download it again."
        )
    with open(file, "rb") as f:
        head = f.read(16)
    kind = _file_kind(head)
    if kind == "safetensors" or (kind == "unknown" and file.suffix == ".safetensors"):
        return _read_safetensors(file, head, size)
    try:
        # weights_only: tensors and plain containers only, so unpickling cannot run code.
        # argparse.Namespace is allowed because timm's training checkpoints store their args in
        # one, and it only sets attributes.
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # torch's unpickler fails on bad input with many error types
        text = str(err)
        reason = _first_line(err)
        cause = err
    refused = re.findall(r"GLOBAL ([\w.]+)", text)
    if refused:  # torch's weights-only unpickler met a global outside its allow-list
        names = _scan_pickle(file)[1] if kind != "zip" else []
        raise _unsafe(file, names or refused) from None
    if kind == "zip":
        raise WeightsError(
            f"{str(file)!r} is a damaged or incomplete torch.save archive ({reason}). Was the "
            f"download or copy interrupted? Save or download it again."
        ) from cause
    scan, names = _scan_pickle(file)
    if scan == "garbage":
        raise _not_weights(file, head, size) from None
    cut = isinstance(cause, EOFError) or "unexpected EOF" in text or scan == "truncated"
    if cut:
        raise WeightsError(
            f"{str(file)!r} is incomplete: a PyTorch weights file cut short after {size:,} "
            f"bytes ({reason}). Was the download or copy interrupted? Save or download it again."
        ) from None
    if names:  # torch stopped at an opcode it does not support, before judging the globals
        raise _unsafe(file, names) from None
    raise WeightsError(
        f"{str(file)!r} is a Python pickle that torch.load(weights_only=True) cannot read "
        f"({reason}), so not a weights file as tlwidgets reads them. Save weights with "
        f"torch.save(model.state_dict(), path) or safetensors.torch.save_file."
    ) from None


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
