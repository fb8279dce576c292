"""Low-level helpers shared by the whole core: where a model runs and what must be put back.

Everything here is below ``freeze``, ``data``, ``evaluation`` and ``training`` in the core's layer
order (``tests/test_layering.py``), so any of them can use it without importing each other:

- :class:`DeviceContext` — the one place that knows the device, the autocast dtype, the grad
  scaler, channels-last, and how to move a batch (a tensor, a tuple/list or a dict of tensors) to
  the device. Training, the LR finder, evaluation, predict, export and the feature cache all use
  it, so they cannot drift apart.
- :func:`preserved` — save module modes, ``requires_grad`` flags, RNG states, weights and
  gradients, and put back exactly what was saved (the BN policy of ``tlwidgets.freeze`` lives in
  per-layer overrides, so restoring modes keeps it).
- :func:`side_state` — one mechanism for state kept *beside* a model (its freeze version and LR
  multipliers, its evaluation lock): stored in the model's ``__dict__`` in a container that a
  ``deepcopy`` or a pickle drops, so copies start afresh and nothing unpicklable is saved.
- :func:`model_lock` — the re-entrant lock that evaluations and training runs of a model hold.
- :func:`atomic_write` — write to a temporary file in the same folder, then ``os.replace``.

>>> import torch
>>> ctx = DeviceContext.create("cpu")
>>> ctx.move({"x": torch.zeros(2)})["x"].device.type
'cpu'
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ConfigError

__all__ = [
    "DeviceContext",
    "atomic_write",
    "batch_size_of",
    "finite_number",
    "model_lock",
    "module_device",
    "preserved",
    "resolve_device",
    "side_state",
]


# --------------------------------------------------------------------------------------------
# state kept beside a model


class _SideState(dict):
    """Per-model side state. A copy or a pickle of the model gets an empty one."""

    def __reduce__(self) -> tuple:
        return (_SideState, ())

    def __deepcopy__(self, memo: dict) -> _SideState:
        return _SideState()


_SIDE_ATTR = "_tlw_side_state"
_SIDE_LOCK = threading.Lock()


def side_state(model: nn.Module, key: str, factory: Callable[[], Any]) -> Any:
    """The object stored under ``key`` beside ``model``, made with ``factory()`` on first use.

    >>> import torch
    >>> m = torch.nn.Linear(1, 1)
    >>> side_state(m, "notes", list) is side_state(m, "notes", list)
    True
    """
    store = model.__dict__.get(_SIDE_ATTR)
    if store is None or key not in store:
        with _SIDE_LOCK:
            store = model.__dict__.get(_SIDE_ATTR)
            if store is None:
                store = _SideState()
                object.__setattr__(model, _SIDE_ATTR, store)
            if key not in store:
                store[key] = factory()
    return store[key]


def model_lock(model: nn.Module) -> threading.RLock:
    """The re-entrant lock held by every evaluation of ``model`` and by a trainer's whole run.

    They switch module modes: unserialised, a dashboard's end-of-run evaluation in its thread and
    the next cell's ``trainer.evaluate()`` would restore modes under each other.

    >>> import torch
    >>> with model_lock(torch.nn.Linear(1, 1)): pass
    """
    return side_state(model, "lock", threading.RLock)


# --------------------------------------------------------------------------------------------
# files


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any], fsync: bool = False) -> Path:
    """Call ``write(tmp_path)`` then move ``tmp_path`` onto ``path`` in one ``os.replace``.

    With ``fsync`` the data (and the folder entry) reach the disk before this returns.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
    >>> _ = atomic_write(p, lambda tmp: pathlib.Path(tmp).write_text("ok"))
    >>> p.read_text()
    'ok'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        if fsync:
            _fsync_dir(path.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# devices


def resolve_device(device: Any) -> torch.device:
    """``"auto"`` (CUDA, else MPS, else CPU) or a torch device name, checked.

    >>> resolve_device("cpu").type
    'cpu'
    """
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"device={device!r} is not a device torch knows; use 'auto', 'cpu', 'cuda' or 'mps'."
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' but torch sees no CUDA GPU here; use device='auto'.")
    return dev


def module_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


#: what ``amp=`` accepts (Trainer and DeviceContext)
AMP_CHOICES = ("auto", True, False, "bf16", "fp16")


@dataclass(frozen=True)
class DeviceContext:
    """Where and how a model computes: device, autocast dtype, channels-last.

    Build it with :meth:`create` (which resolves ``"auto"`` and checks ``amp``) or
    :meth:`for_model` (the model's own device, no autocast). ``move`` puts a batch on the device:
    a tensor, or a tuple/list/dict of them (text batches are dicts); 4-d float tensors become
    channels-last when ``channels_last`` is set.

    >>> import torch
    >>> ctx = DeviceContext.create("cpu", amp="auto")
    >>> ctx.amp_dtype is None, ctx.channels_last
    (True, False)
    """

    device: torch.device
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False

    @classmethod
    def create(cls, device: Any = "auto", amp: Any = "auto", model: nn.Module | None = None,
               channels_last: Any = "auto") -> DeviceContext:
        """Resolve ``device`` and ``amp`` (``"auto"``: bf16 on CUDA where supported, else fp16
        with a grad scaler; ``True`` the same but required; ``"bf16"`` or ``"fp16"`` that dtype;
        ``False`` none); channels-last ``"auto"`` = on CUDA for a model with 2-d convolutions."""
        if amp not in AMP_CHOICES:
            raise ConfigError(f"amp must be one of {', '.join(map(repr, AMP_CHOICES))}, got "
                              f"{amp!r}.")
        if channels_last not in ("auto", True, False):
            raise ConfigError(f"channels_last must be 'auto', True or False, got "
                              f"{channels_last!r}.")
        dev = resolve_device(device)
        dtype: torch.dtype | None = None
        if amp is not False:
            if dev.type == "cuda":
                if amp == "fp16":
                    dtype = torch.float16
                elif amp == "bf16" or torch.cuda.is_bf16_supported():
                    dtype = torch.bfloat16
                else:
                    dtype = torch.float16
            elif amp != "auto":
                raise ConfigError(
                    f"amp={amp!r} needs a CUDA GPU; this runs on {dev.type}. Use amp='auto' "
                    "(mixed precision only where it helps)."
                )
        if channels_last == "auto":
            cl = dev.type == "cuda" and model is not None and any(
                isinstance(m, nn.Conv2d) for m in model.modules())
        else:
            cl = bool(channels_last)
        return cls(dev, dtype, cl)

    @classmethod
    def for_model(cls, model: nn.Module, channels_last: bool | None = None) -> DeviceContext:
        """The model's current device, no autocast; channels-last if its first 4-d weight is."""
        dev = module_device(model)
        if channels_last is None:
            w = next((p for p in model.parameters() if p.ndim == 4), None)
            channels_last = bool(w is not None and w.is_contiguous(memory_format=torch.channels_last)
                                 and not w.is_contiguous())
        return cls(dev, None, channels_last)

    def autocast(self) -> Any:
        """The autocast context of this device and dtype (a no-op without AMP)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def new_scaler(self) -> Any:
        """torch's ``GradScaler`` for fp16 autocast (bf16 and fp32 need none), else ``None``.
        The step loop calls its ``scale``/``unscale_``/``step``/``update`` around gradient
        accumulation and clipping itself (timm's ``NativeScaler`` bundles backward and step in
        one call, which leaves no room for the one-step-late loss check)."""
        if self.amp_dtype != torch.float16:
            return None
        return torch.amp.GradScaler(self.device.type)

    def prepare(self, model: nn.Module) -> nn.Module:
        """Move ``model`` to the device (and to channels-last memory when set); returns it."""
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def move(self, batch: Any) -> Any:
        """``batch`` on the device: a tensor, or a tuple/list/dict of tensors (recursively)."""
        if isinstance(batch, torch.Tensor):
            t = batch.to(self.device, non_blocking=True)
            if self.channels_last and t.ndim == 4 and t.is_floating_point():
                t = t.contiguous(memory_format=torch.channels_last)
            return t
        if isinstance(batch, dict):
            return {k: self.move(v) for k, v in batch.items()}
        if isinstance(batch, (list, tuple)):
            return type(batch)(self.move(v) for v in batch)
        return batch

    @property
    def is_accelerator(self) -> bool:
        """True on CUDA/MPS, where reading a number from the device waits for the queue."""
        return self.device.type != "cpu"


def batch_size_of(x: Any) -> int:
    """The number of examples in a model input: a tensor, or a dict/tuple of tensors."""
    if isinstance(x, torch.Tensor):
        return int(x.shape[0]) if x.ndim else 1
    if isinstance(x, dict):
        x = next(iter(x.values()), None)
        return batch_size_of(x) if x is not None else 0
    if isinstance(x, (list, tuple)) and x:
        return batch_size_of(x[0])
    return 0



# --------------------------------------------------------------------------------------------
# saving and restoring what a piece of work may change


@contextlib.contextmanager
def preserved(
    model: nn.Module,
    *,
    modes: bool = True,
    requires_grad: bool = False,
    rng: bool = False,
    weights: bool = False,
    grads: bool = False,
    generators: Iterable[Any] = (),
) -> Iterator[None]:
    """Run the block, then put back what it may have changed in ``model`` (and elsewhere).

    - ``modes``: every module's ``training`` flag (the BN policy of ``tlwidgets.freeze`` stays);
    - ``requires_grad``: every parameter's flag;
    - ``rng``: torch's CPU and CUDA generators and Python's ``random``;
    - ``weights``: the ``state_dict`` (parameters and buffers), bit for bit;
    - ``grads``: every parameter's ``.grad``;
    - ``generators``: ``torch.Generator`` objects (a loader's shuffling) to rewind.

    >>> import torch
    >>> m = torch.nn.Linear(2, 2).train()
    >>> with preserved(m):
    ...     _ = m.eval()
    >>> m.training
    True
    """
    saved_modes = [(m, m.training) for m in model.modules()] if modes else []
    params = list(model.parameters()) if (requires_grad or grads) else []
    saved_flags = [(p, p.requires_grad) for p in params] if requires_grad else []
    saved_grads = [(p, None if p.grad is None else p.grad.detach().clone()) for p in params] \
        if grads else []
    saved_weights = {k: v.detach().clone() for k, v in model.state_dict().items()} \
        if weights else None
    cpu_rng = torch.get_rng_state() if rng else None
    cuda_rng = torch.cuda.get_rng_state_all() if rng and torch.cuda.is_available() else None
    py_rng = random.getstate() if rng else None
    gens = [g for g in generators if g is not None]
    gen_states = [g.get_state() for g in gens]
    try:
        yield
    finally:
        if saved_weights is not None:
            with torch.no_grad():
                model.load_state_dict(saved_weights)
        for p, flag in saved_flags:
            if p.requires_grad != flag:
                p.requires_grad_(flag)
        for p, g in saved_grads:
            p.grad = g
        for m, was in saved_modes:
            m.training = was
        if cpu_rng is not None:
            torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
        if py_rng is not None:
            random.setstate(py_rng)
        for g, s in zip(gens, gen_states):
            g.set_state(s)


def finite_number(name: str, value: Any, *, positive: bool = False, minimum: float | None = None,
                  fix: str = "") -> float:
    """``value`` as a float, or a :class:`ConfigError` naming ``name`` and the fix.

    >>> finite_number("lr", 1e-3, positive=True)
    0.001
    """
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if ok and positive and not value > 0:
        ok = False
    if ok and minimum is not None and value < minimum:
        ok = False
    if not ok:
        need = "a positive finite number" if positive else (
            f"a finite number >= {minimum:g}" if minimum is not None else "a finite number")
        raise ConfigError(f"{name} must be {need}, got {value!r}.{(' ' + fix) if fix else ''}")
    return float(value)

