"""The one step loop: batches in, optimizer steps out.

``fit``, ``fine_tune``, ``lr_find`` and the cached-feature path all run :meth:`StepLoop.run`;
nothing else in tlwidgets calls ``loss.backward()`` or ``optimizer.step()``. It does, per batch:

1. :meth:`Control.between_steps` — where pause (blocks on an Event, paused time counted
   apart) and stop (:class:`StopRun`) take effect;
2. ``before_update()`` when a new optimizer step begins (the caller sets the learning rate);
3. move the batch with the :class:`~tlwidgets._runtime.DeviceContext` (tensors or dicts of
   tensors), forward under its autocast, cross-entropy in float32, backward (scaled by the
   grad scaler for fp16, divided by ``grad_accum``); when ``forward`` is a
   ``DistributedDataParallel`` and ``grad_accum > 1``, the micro-batches that only accumulate run
   under its ``no_sync()``, so gradients are all-reduced once per optimizer step, not per batch;
4. every ``grad_accum`` batches (and at the last batch): gradient clipping (timm's
   ``dispatch_clip_grad``), the optimizer step, ``zero_grad``, ``after_update()``;
5. the loss value: on the CPU read at once and checked *before* the optimizer step; on CUDA/MPS
   copied without blocking and read one step later, after the next step's work is queued, with
   the trainable weights and buffers copied on the device before each optimizer step so that a
   late-detected non-finite loss is undone (:class:`NonFiniteLoss`);
6. ``on_step(info)`` with ``step``, ``batch``, ``loss``, ``lrs`` and ``n`` (examples).

BN statistics move in the forward pass: a step that fails half-way (out of memory, a non-finite
loss, Ctrl-C) puts them back as they were before it.

>>> import torch
>>> from tlwidgets._runtime import DeviceContext
>>> model = torch.nn.Linear(2, 2)
>>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
>>> loop = StepLoop(DeviceContext.create("cpu"), Control())
>>> seen = []
>>> batches = [(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]))] * 3
>>> loop.run(batches, model, model, opt, on_step=seen.append)
>>> [i["step"] for i in seen]
[1, 2, 3]
"""

from __future__ import annotations

import math
from contextlib import nullcontext
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from .._runtime import DeviceContext, batch_size_of

__all__ = ["Control", "NonFiniteLoss", "StepLoop", "StopRun"]


class StopRun(Exception):
    """The loop saw the stop flag (or a Ctrl-C) and leaves at a step boundary."""


class NonFiniteLoss(Exception):
    """The loss of step ``step`` was ``value`` (inf/NaN) at learning rates ``lrs``."""

    def __init__(self, step: int, lrs: list[float], value: float) -> None:
        super().__init__(step, lrs, value)
        self.step, self.lrs, self.value = step, lrs, value


class Control:
    """Commands into a running loop, applied between steps, and paused time kept apart.

    ``on_pause(paused: bool)`` is called on the loop's thread when it blocks and when it goes on;
    ``on_wait()``, if set, every ``wait_interval`` seconds while it is paused (a run folder's
    control file and heartbeat; under torchrun, the broadcast that keeps every rank in step).

    >>> c = Control()
    >>> c.request_stop(); c.stop_requested
    True
    """

    def __init__(self, on_pause: Callable[[bool], None] | None = None) -> None:
        self._go = threading.Event()
        self._go.set()
        self._stop = threading.Event()
        self.on_pause = on_pause
        self.on_wait: Callable[[], None] | None = None
        self.wait_interval = 0.5
        self.paused_seconds = 0.0  # time spent paused in finished pauses since reset()
        self._paused_at: float | None = None

    def reset(self) -> None:
        self._stop.clear()
        self._go.set()
        self.paused_seconds = 0.0
        self._paused_at = None

    def paused_total(self) -> float:
        """Seconds spent paused since :meth:`reset`, the pause in progress included."""
        at = self._paused_at
        return self.paused_seconds + (time.perf_counter() - at if at is not None else 0.0)

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def pause_requested(self) -> bool:
        return not self._go.is_set()

    def request_stop(self) -> None:
        self._stop.set()
        self._go.set()  # wake a paused loop so it can leave

    def pause(self) -> None:
        self._go.clear()

    def resume(self) -> None:
        self._go.set()

    def between_steps(self) -> None:
        """Raise :class:`StopRun` if asked to stop; block while paused (no spinning)."""
        if self._stop.is_set():
            raise StopRun
        if not self._go.is_set():
            self._paused_at = t0 = time.perf_counter()
            if self.on_pause is not None:
                self.on_pause(True)
            while not self._go.wait(self.wait_interval if self.on_wait is not None else None):
                assert self.on_wait is not None
                self.on_wait()
            self.paused_seconds += time.perf_counter() - t0
            self._paused_at = None
            if self._stop.is_set():
                raise StopRun
            if self.on_pause is not None:
                self.on_pause(False)


class _Snapshot:
    """Device-side copy of what a step can change (trainable weights and/or buffers)."""

    def __init__(self, model: nn.Module, params: bool) -> None:
        self.live = [p for p in model.parameters() if p.requires_grad and params] + [
            b for b in model.buffers() if b.is_floating_point() or b.dtype == torch.long
        ]
        self.copies = [t.detach().clone() for t in self.live]
        self.valid = False

    @torch.no_grad()
    def take(self) -> None:
        if self.live:
            torch._foreach_copy_(self.copies, [t.detach() for t in self.live])
        self.valid = True

    @torch.no_grad()
    def restore(self) -> None:
        if self.valid and self.live:
            torch._foreach_copy_([t.detach() for t in self.live], self.copies)


def _clip(optimizer: torch.optim.Optimizer, value: float) -> None:
    from timm.utils import dispatch_clip_grad

    params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    dispatch_clip_grad(params, value, mode="norm")


class StepLoop:
    """Runs optimizer steps over batches with one device context (see the module docstring).

    - ``grad_accum``: batches per optimizer step; ``clip_grad``: max gradient norm or ``None``;
    - ``criterion(logits, targets)``: cross-entropy by default;
    - ``count_update``: called after every optimizer step (tests and ``lr_find`` count them).
    """

    def __init__(self, ctx: DeviceContext, control: Control, grad_accum: int = 1,
                 clip_grad: float | None = None,
                 criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
                 ) -> None:
        self.ctx = ctx
        self.control = control
        self.grad_accum = grad_accum
        self.clip_grad = clip_grad
        self.criterion = criterion or nn.functional.cross_entropy
        self._buffers: _Snapshot | None = None
        self._step_open = False
        #: seconds spent waiting for a step's loss to reach the host (one step late on CUDA: the
        #: wait overlaps the next step's queued work, so this stays far below the step time)
        self.sync_seconds = 0.0

    def run(
        self,
        batches: Iterable[Any],
        forward: Callable[[Any], torch.Tensor],
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        scaler: Any = None,
        max_batches: int | None = None,
        first_batch: int = 0,
        first_step: int = 0,
        before_update: Callable[[], None] | None = None,
        after_update: Callable[[], None] | None = None,
        on_step: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """Train on ``batches`` (pairs ``(x, y)``, ``x`` a tensor or a dict of tensors).

        ``forward(x)`` gives logits (the model, or the head on cached features); ``model`` is
        what a failed step is rolled back on. ``max_batches`` stops early; ``first_batch`` and
        ``first_step`` number the batches (a resumed epoch) and the global steps.
        """
        ctx, accum = self.ctx, self.grad_accum
        lag = ctx.is_accelerator
        # DistributedDataParallel's no_sync, where the accumulation's end is known in advance (a
        # sized loader or max_batches): the last micro-batch of each step then syncs for all
        no_sync = getattr(forward, "no_sync", None) if accum > 1 else None
        if no_sync is not None and max_batches is None and not hasattr(batches, "__len__"):
            no_sync = None
        self._buffers = _Snapshot(model, params=False)
        weights = _Snapshot(model, params=True) if lag else None
        pending: list[tuple[dict[str, Any], torch.Tensor, Any]] = []
        micro = 0
        step = first_step
        it = iter(batches)
        i = 0
        try:
            while max_batches is None or i < max_batches:
                self.control.between_steps()
                try:
                    x, y = next(it)
                except StopIteration:
                    break
                if micro == 0 and before_update is not None:
                    before_update()
                self._buffers.take()
                self._step_open = True
                updates = (micro + 1 == accum or (max_batches is not None and i + 1 >= max_batches)
                           or self._exhausted_next(batches, i + 1))
                x, y = ctx.move(x), ctx.move(y)
                # DDP: a micro-batch that only accumulates skips the gradient all-reduce
                with no_sync() if no_sync is not None and not updates else nullcontext():
                    with ctx.autocast():
                        out = forward(x)
                    loss = self.criterion(out.float(), y)
                    lrs = [g["lr"] for g in optimizer.param_groups]
                    step += 1
                    if not lag:
                        value = float(loss.detach())
                        if not math.isfinite(value):
                            raise NonFiniteLoss(step, lrs, value)
                    scaled = loss / accum if accum > 1 else loss
                    if scaler is not None:
                        scaler.scale(scaled).backward()
                    else:
                        scaled.backward()
                micro += 1
                i += 1
                if updates:
                    if lag:
                        # The previous step's loss, read now that this step's work is queued.
                        self._resolve(pending, on_step)
                        assert weights is not None
                        weights.take()
                    self._update(optimizer, scaler)
                    micro = 0
                    if after_update is not None:
                        after_update()
                self._step_open = False
                info = {"step": step, "batch": first_batch + i, "lrs": lrs,
                        "n": batch_size_of(y)}
                if lag:
                    pending.append((info, *self._to_host(loss)))
                else:
                    info["loss"] = value
                    if on_step is not None:
                        on_step(info)
            if micro:
                # the batches ran out mid-accumulation: apply what was accumulated
                if lag:
                    assert weights is not None
                    weights.take()
                self._update(optimizer, scaler)
                if after_update is not None:
                    after_update()
            if lag:
                self._resolve(pending, on_step)
        except NonFiniteLoss:
            self.undo(optimizer)
            if weights is not None:
                weights.restore()
            raise
        except BaseException:
            self.undo(optimizer)
            raise

    @staticmethod
    def _exhausted_next(batches: Iterable[Any], i: int) -> bool:
        # A sized loader tells where the epoch ends, so its last batch closes the accumulation.
        try:
            return i >= len(batches)  # type: ignore[arg-type]
        except TypeError:
            return False

    def undo(self, optimizer: torch.optim.Optimizer | None) -> None:
        """Drop half-made gradients and put back a half-done step's BN statistics."""
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
        if self._step_open and self._buffers is not None:
            self._buffers.restore()
        self._step_open = False

    def _update(self, optimizer: torch.optim.Optimizer, scaler: Any) -> None:
        if self.clip_grad is not None:
            if scaler is not None:
                scaler.unscale_(optimizer)
            _clip(optimizer, self.clip_grad)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def _to_host(self, loss: torch.Tensor) -> tuple[torch.Tensor, Any]:
        if self.ctx.device.type == "cuda":
            # lands in pinned host memory; the event says when it is there
            host = loss.detach().to("cpu", non_blocking=True)
            ev: Any = torch.cuda.Event()
            ev.record()
            return host, ev
        return loss.detach(), None  # MPS: reading it a step later syncs then

    def _resolve(self, pending: list[tuple[dict[str, Any], torch.Tensor, Any]],
                 on_step: Callable[[dict[str, Any]], None] | None) -> None:
        while pending:
            info, host, ev = pending.pop(0)
            if ev is not None:
                t0 = time.perf_counter()
                ev.synchronize()  # waits for that step only; later steps stay queued
                self.sync_seconds += time.perf_counter() - t0
            value = float(host)
            if not math.isfinite(value):
                raise NonFiniteLoss(info["step"], info["lrs"], value)
            info["loss"] = value
            if on_step is not None:
                on_step(info)
