"""Data-parallel training through torchrun, set up as nanoGPT's train.py does.

torchrun starts one process per device and tells each its place in the
environment: RANK (0 .. WORLD_SIZE-1 over all nodes), LOCAL_RANK (its
device on this node) and WORLD_SIZE.  Without them this is one process and
no process group exists.  The backend is NCCL when the device is CUDA (the
process uses ``cuda:LOCAL_RANK``) and gloo on CPUs.  Nothing here depends
on the node: ``torchrun --nnodes N --rdzv-endpoint HOST:PORT`` runs the same
code, since torchrun alone does the rendezvous.

Every rank runs the same steps; only rank 0 writes (log, checkpoints, best
weights).  A decision to stop early (the time limit, Ctrl-C or SIGTERM)
is made by any rank and agreed by all in the step's one small all-reduce
(``Ranks.agree``), so that no rank waits for a partner that has left.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as td

from ..torchrun import env_world, is_main  # noqa: F401  (this module's callers read them here too)


class PeerLost(ValueError):
    """A collective failed because another process of the run stopped or left."""


def is_peer_failure(error: BaseException) -> bool:
    """Whether ``error`` is a collective's failure (gloo, NCCL: a process of the run gone)."""
    text = str(error)
    return isinstance(error, td.DistError) or "gloo" in text or "NCCL" in text


@dataclass(frozen=True)
class Ranks:
    """This process's place in the run and its device."""
    rank: int = 0
    local_rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def grouped(self) -> bool:
        """Whether a process group joins several ranks (so collectives are needed)."""
        return self.world > 1 and td.is_initialized()

    def barrier(self) -> None:
        if self.grouped:
            td.barrier()

    def agree(self, loss: torch.Tensor, *flags: bool) -> tuple[float, tuple[bool, ...]]:
        """(the mean of every rank's ``loss``, for each flag whether any rank
        raised it), in one all-reduce.  Each rank's slice is the same size,
        so the mean of the ranks' means is the global batch's mean."""
        if not self.grouped:
            return float(loss), tuple(bool(f) for f in flags)
        t = torch.tensor([float(f) for f in flags], device=loss.device)
        t = torch.cat([loss.detach().float().reshape(1), t])
        td.all_reduce(t, op=td.ReduceOp.SUM)
        values = t.tolist()
        return values[0] / self.world, tuple(v > 0 for v in values[1:])

    def first_failure(self, failure: str | None, raised: bool | None = None) -> str | None:
        """The first rank's failure message, if any rank has one.  ``raised``:
        whether any rank has one, already agreed (a flag of the step's
        ``agree``); None agrees it here, in an all-reduce of one flag.  The
        messages are gathered only when one is raised."""
        if not self.grouped:
            return failure
        if raised is None:
            _, (raised,) = self.agree(torch.zeros((), device=self.device), failure is not None)
        if not raised:
            return None
        return next(m for m in self.gather(failure) if m is not None)

    def gather(self, obj) -> list:
        """Every rank's ``obj``, in rank order (on every rank)."""
        if not self.grouped:
            return [obj]
        out: list = [None] * self.world
        td.all_gather_object(out, obj)
        return out


def _device(name: str, local_rank: int) -> torch.device:
    from .training import pick_device
    device = pick_device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def init(device: str = "auto") -> Ranks:
    """This process's ``Ranks``, joining torchrun's process group if there is
    one (NCCL on CUDA, gloo otherwise); the group's address and port come
    from torchrun's environment (MASTER_ADDR, MASTER_PORT)."""
    rank, local_rank, world = env_world()
    dev = _device(device, local_rank)
    if world > 1 and not td.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        td.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world,
                              **({"device_id": dev} if dev.type == "cuda" else {}))
    return Ranks(rank, local_rank, world, dev)


def destroy() -> None:
    if td.is_initialized():
        td.destroy_process_group()


@contextmanager
def session(device: str = "auto"):
    """``init`` for a block; the process group is destroyed as it ends, however it ends.  A block that
    ends normally first waits for every rank at a barrier, so that no rank tears the group down while
    another still talks in it (a rank that left a run stopped by its time limit first was seen to
    abort in gloo, about one run in three)."""
    ranks = init(device)
    try:
        yield ranks
        ranks.barrier()
    finally:
        destroy()
