"""Several processes, one run: the distributed context and the few collectives the loop needs.

``torchrun --nproc_per_node N -m babylm train ...`` sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``;
without them the run is rank 0 of 1 and every helper here is a no-op, so the loop never branches
on the process count.
"""

from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass
class Dist:
    """Distributed context (single process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init(device: str) -> Dist:
    """Join the process group torchrun describes (nccl on GPUs, gloo on CPUs); rank 0 of 1 without it."""
    import torch
    import torch.distributed as torchdist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    if not torchdist.is_initialized():
        torchdist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
    return Dist(torchdist.get_rank(), torchdist.get_world_size(), local)


def all_sum(t, dist: Dist) -> float:
    """The sum of a scalar tensor over all ranks, as a Python float (one sync point)."""
    if dist.world > 1:
        import torch.distributed as torchdist

        t = t.clone()
        torchdist.all_reduce(t)
    return float(t)


def all_max(t, dist: Dist) -> int:
    """The maximum of an integer scalar tensor over all ranks."""
    if dist.world > 1:
        import torch.distributed as torchdist

        t = t.clone()
        torchdist.all_reduce(t, op=torchdist.ReduceOp.MAX)
    return int(t)


def barrier(dist: Dist) -> None:
    if dist.world > 1:
        import torch.distributed as torchdist

        torchdist.barrier()


def shutdown(dist: Dist) -> None:
    """Leave the process group (on success and on failure alike, so torchrun does not hang)."""
    if dist.world > 1:
        import torch.distributed as torchdist

        if torchdist.is_initialized():
            torchdist.destroy_process_group()
