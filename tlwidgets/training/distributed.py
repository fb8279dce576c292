"""The Trainer under ``torchrun``: one process per device, one DDP job, one run folder.

When the launcher's environment says this process is one of a job (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, as ``torchrun`` / ``python -m torch.distributed.run`` set them),
:meth:`Distributed.from_env` joins the process group (NCCL on CUDA, gloo on CPU) and the
Trainer's one loop runs with these collaborators; there is no second loop:

- the device is ``cuda:LOCAL_RANK`` (else the CPU);
- the forward pass goes through :class:`~torch.nn.parallel.DistributedDataParallel` (rebuilt
  when the freeze state changes, which also re-broadcasts rank 0's weights);
- each rank reads its own part of the training set (:class:`DistributedSampler`, seeded with
  the data's ``seed`` and set to each epoch), so a rank sees a disjoint ``1/world_size`` of it
  per epoch and the global batch is ``world_size * batch_size``;
- the logged loss and image count of each step are summed over ranks (one small all-reduce,
  which also carries rank 0's pending pause/resume/stop command to every rank, so all ranks act
  at the same step), validation runs on every rank on disjoint shards and the sums are reduced,
  so every rank holds the same history and takes the same early-stopping decision;
- only rank 0 has the run-files and checkpoint hooks (``is_main``);
- while paused, every rank takes part in one broadcast every ``wait_interval`` seconds that
  brings rank 0's next command (read from ``control.json``).

>>> Distributed.from_env() is None   # not started by torchrun
True
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import os
from typing import Any, Callable

import torch
from torch import nn

from .hooks import Hook
from .state import RunState

__all__ = ["Distributed", "DistributedHook", "launched_by_torchrun", "COMMAND_CODES"]

COMMAND_CODES = {None: 0, "pause": 1, "resume": 2, "stop": 3}
_CODE_COMMANDS = {v: k for k, v in COMMAND_CODES.items()}


def launched_by_torchrun(env: Any = None) -> bool:
    """Whether the environment says a torch distributed launcher started this process.

    >>> launched_by_torchrun({"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0"})
    True
    """
    env = os.environ if env is None else env
    return all(k in env for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


class Distributed:
    """This process's place in a torchrun job, and the collectives the Trainer needs.

    ``on_command(name)`` is called on every rank, at the same step, with each command rank 0
    took from its run folder; ``command_source()`` (rank 0) returns the next one or ``None``.
    """

    def __init__(self, rank: int, local_rank: int, world_size: int, device: torch.device,
                 backend: str) -> None:
        self.rank, self.local_rank, self.world_size = rank, local_rank, world_size
        self.device, self.backend = device, backend
        self.on_command: Callable[[str], None] | None = None
        self.command_source: Callable[[], str | None] | None = None
        self.pending: str | None = None
        self._ddp: nn.Module | None = None
        self._ddp_key: Any = None
        self._samplers: list[Any] = []

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes the run folder and the checkpoints."""
        return self.rank == 0

    @classmethod
    def from_env(cls, device: Any = "auto", timeout_s: float = 600.0) -> "Distributed | None":
        """Join the job the environment describes; ``None`` outside torchrun.

        ``device`` is the Trainer's: ``"auto"`` or ``"cuda"`` give ``cuda:LOCAL_RANK`` when CUDA
        is there, ``"cpu"`` keeps every rank on the CPU (gloo)."""
        if not launched_by_torchrun():
            return None
        import torch.distributed as dist

        from ..errors import ConfigError

        local = int(os.environ["LOCAL_RANK"])
        want = str(device)
        if want.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError("device='cuda' but this torchrun worker sees no CUDA GPU; use "
                              "device='auto' or 'cpu'.")
        cuda = torch.cuda.is_available() and (want == "auto" or want.startswith("cuda"))
        if cuda:
            if local >= torch.cuda.device_count():
                raise ConfigError(
                    f"LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA devices here: "
                    "start at most one process per GPU (--nproc-per-node)."
                )
            dev = torch.device("cuda", local)
            torch.cuda.set_device(dev)
        elif want not in ("auto", "cpu"):
            raise ConfigError(f"device={device!r} cannot be used under torchrun; use 'auto', "
                              "'cuda' or 'cpu'.")
        else:
            dev = torch.device("cpu")
        backend = "nccl" if cuda else "gloo"
        if not dist.is_initialized():
            kw: dict[str, Any] = {"timeout": datetime.timedelta(seconds=timeout_s)}
            if cuda:
                kw["device_id"] = dev
            dist.init_process_group(backend, **kw)
        job = cls(dist.get_rank(), local, dist.get_world_size(), dev, backend)
        atexit.register(job.close)
        return job

    # ------------------------------------------------------------------ model and data
    def wrap(self, model: nn.Module, version: Any = None) -> nn.Module:
        """The DDP wrapper that the forward pass goes through (made again when ``version``, the
        model's freeze version, changes: DDP fixes its trainable parameters when it is made)."""
        from torch.nn.parallel import DistributedDataParallel as DDP

        key = (id(model), version)
        if self._ddp is None or self._ddp_key != key:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self._ddp = DDP(model, device_ids=ids)  # buffers follow rank 0 at each forward
            self._ddp_key = key
        return self._ddp

    def train_loader(self, loader: Any, seed: int = 0) -> Any:
        """``loader`` over this rank's part of its dataset: a :class:`DistributedSampler`
        (shuffled, seeded with ``seed``, set to the epoch by :meth:`set_epoch`)."""
        from torch.utils.data import DataLoader, DistributedSampler

        sampler = DistributedSampler(loader.dataset, num_replicas=self.world_size, rank=self.rank,
                                     shuffle=True, seed=int(seed), drop_last=False)
        self._samplers.append(sampler)
        return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler,
                          num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                          pin_memory=loader.pin_memory, drop_last=loader.drop_last,
                          persistent_workers=loader.num_workers > 0)

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle every training sampler for ``epoch`` (same order on every rank)."""
        for s in self._samplers:
            s.set_epoch(epoch)

    def valid_loader(self, loader: Any) -> Any:
        """``loader`` over this rank's shard of the validation set (items ``rank::world``, no
        padding, so each item is validated exactly once over all ranks)."""
        from torch.utils.data import DataLoader, Subset

        part = Subset(loader.dataset, range(self.rank, len(loader.dataset), self.world_size))
        return DataLoader(part, batch_size=loader.batch_size, shuffle=False,
                          num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                          pin_memory=loader.pin_memory)

    # ------------------------------------------------------------------ collectives
    def _all_reduce(self, values: list[float]) -> list[float]:
        import torch.distributed as dist

        dev = self.device if self.backend == "nccl" else torch.device("cpu")
        t = torch.tensor(values, dtype=torch.float64, device=dev)
        dist.all_reduce(t)
        return [float(v) for v in t.cpu()]

    def reduce_step(self, info: dict[str, Any]) -> dict[str, Any]:
        """The step's loss averaged over every example of every rank and ``n`` summed, with
        rank 0's pending command delivered to all (``on_command``)."""
        n = float(info["n"])
        code = float(COMMAND_CODES.get(self.pending, 0)) if self.is_main else 0.0
        self.pending = None
        loss_sum, total, cmd = self._all_reduce([float(info["loss"]) * n, n, code])
        out = {**info, "loss": loss_sum / total if total else info["loss"], "n": int(total)}
        self._deliver(int(cmd))
        return out

    def reduce_validation(self, valid_loss: float, accuracy: float, n: int) -> tuple[float, float]:
        """The validation loss and accuracy over all ranks' shards (each of ``n`` items)."""
        ok = n > 0 and valid_loss == valid_loss
        s_loss, s_acc, total = self._all_reduce(
            [valid_loss * n if ok else 0.0, accuracy * n if ok else 0.0, float(n if ok else 0)])
        if total == 0:
            return float("nan"), float("nan")
        return s_loss / total, s_acc / total

    def agree(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (each rank calls it at the same point)."""
        import torch.distributed as dist

        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def wait_tick(self) -> None:
        """While paused: one broadcast from rank 0 with its next command (every rank calls it
        at the same pace, so the pause never blocks in a collective long enough to time out)."""
        import torch.distributed as dist

        if self.is_main and self.command_source is not None:
            self.pending = self.command_source() or self.pending
        dev = self.device if self.backend == "nccl" else torch.device("cpu")
        code = COMMAND_CODES.get(self.pending, 0) if self.is_main else 0
        self.pending = None
        t = torch.tensor([code], dtype=torch.int64, device=dev)
        dist.broadcast(t, src=0)
        self._deliver(int(t.item()))

    def _deliver(self, code: int) -> None:
        cmd = _CODE_COMMANDS.get(code)
        if cmd is not None and self.on_command is not None:
            self.on_command(cmd)

    def close(self, barrier: bool = False) -> None:
        """Leave the process group. With ``barrier`` (a run that ended well on every rank) wait
        for the others first, so no rank tears down a group another one still uses; torch
        aborts a process that exits with its group still up, so this also runs at exit."""
        import torch.distributed as dist

        if not dist.is_initialized():
            return
        if barrier:
            with contextlib.suppress(RuntimeError):
                dist.barrier()
        dist.destroy_process_group()


class DistributedHook(Hook):
    """On every rank: reshuffles the training samplers for each epoch (``set_epoch``), so the
    ranks draw disjoint parts of a new permutation, the same on all of them."""

    name, order = "distributed", 5

    def __init__(self, dist: Distributed) -> None:
        self.dist = dist

    def on_epoch_start(self, run: RunState) -> None:
        self.dist.set_epoch(run.epochs_done)
