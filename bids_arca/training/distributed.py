"""Several GPUs through ``torchrun`` (DistributedDataParallel, one process per GPU).

``torchrun --nproc-per-node=N -m bids_arca BIDS OUT group --train ...`` starts N copies of the
command; each reads its rank from the environment torchrun sets. Each process draws its own
patches (its rank is in the sampler's seed), gradients are averaged by DDP, validation counts
are summed over processes, and only rank 0 writes files. Without torchrun the same code runs as
one plain process. NCCL connects GPUs; gloo serves CPU runs (and the tests).

Collectives time out (10-30 minutes) so that a hung process stops the run; waiting while rank 0
preprocesses the data can take hours, so that wait (:meth:`Context.wait`) goes through a gloo
group of its own with a timeout of days.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist

from bids_arca.errors import UsageError

WAIT_TIMEOUT = timedelta(days=7)


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device('cpu'))
    initialised: bool = False  # a process group exists (launched by torchrun)
    local_rank: int = 0  # the process's number on its node
    waiting_group: object = None  # gloo group with a long timeout, for wait()

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def node_main(self) -> bool:
        """The first process of its node (the one that may prepare node-local data)."""
        return self.local_rank == 0

    def barrier(self) -> None:
        if self.initialised:
            dist.barrier()

    def wait(self) -> None:
        """A barrier for steps that take hours, such as preprocessing a dataset."""
        if self.initialised:
            dist.barrier(group=self.waiting_group)

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum over processes (in place on a copy); a no-op for one plain process."""
        values = values.clone()
        if self.initialised:
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def any(self, flag: bool) -> bool:
        """True on every process if it is true on one (agreeing on when to stop)."""
        if not self.initialised:
            return flag
        value = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())


def launched_by_torchrun() -> bool:
    return all(key in os.environ for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'))


def select_training_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` takes this process's GPU when CUDA is visible."""
    kind = name.split(':')[0]
    if kind == 'auto':
        kind = 'cuda' if torch.cuda.is_available() else 'cpu'
    if kind == 'cuda':
        if not torch.cuda.is_available():
            raise UsageError(f'--device {name}: no CUDA GPU is visible to this process')
        return torch.device('cuda', local_rank if ':' not in name else int(name.split(':')[1]))
    return torch.device('cpu')


def init(device_name: str = 'auto') -> Context:
    """The process group when launched by torchrun, else a single-process context."""
    if not launched_by_torchrun():
        return Context(device=select_training_device(device_name))
    rank, world = int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
    local_rank = int(os.environ['LOCAL_RANK'])
    device = select_training_device(device_name.split(':')[0], local_rank)
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(
            backend='nccl' if device.type == 'cuda' else 'gloo',
            device_id=device if device.type == 'cuda' else None,
        )
    waiting = dist.new_group(backend='gloo', timeout=WAIT_TIMEOUT)
    return Context(rank, world, device, True, local_rank, waiting)


def shutdown(context: Context) -> None:
    if context.initialised and dist.is_initialized():
        dist.destroy_process_group()
