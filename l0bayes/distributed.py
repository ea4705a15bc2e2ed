r"""Data-parallel training with ``torch.distributed`` (gloo on CPU, NCCL on GPU).

Every rank holds the whole network and draws the *same* gates (all ranks share the seed, and
with one gate draw per minibatch the draws do not depend on how the batch is split). The global
minibatch of :math:`B` examples is split into contiguous parts of :math:`B_r` examples; rank
:math:`r` computes the loss as if its part were the whole batch,
:math:`L_r = \frac{N}{B_r}\sum_{i \in r} -\log p(y_i \mid \cdot) + \mathrm{KL}`, and the
gradients are summed with weights :math:`B_r / B`:

.. math::

    \sum_r \frac{B_r}{B} \nabla L_r = \nabla\Big[\frac{N}{B}\sum_{i} -\log p(y_i \mid \cdot)
    + \mathrm{KL}\Big],

the single-process gradient of the same global batch, so the parameters stay identical on all
ranks and equal to a one-process run's up to float rounding (tested: 2 CPU processes over
loopback). With per-example gates (``local_rep``) or CIFAR augmentation the ranks draw
different random numbers: still an unbiased estimate, but no longer the one-process draw.

Launch with ``l0bayes train ... --nproc N`` (spawns N local processes on 127.0.0.1), or with
``torchrun --nproc-per-node N -m l0bayes.cli train ...`` on one or several nodes (the
environment variables ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT`` that torchrun sets are used as they are).
"""

from __future__ import annotations

import gc
import os
import socket
import sys
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def world() -> tuple[int, int]:
    """``(rank, world size)``: ``(0, 1)`` outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def launched_by_torchrun() -> bool:
    """Whether torchrun (or another launcher) set up a multi-process environment."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_from_env(device: str) -> str:
    """Join the process group described by the environment; returns the device this rank
    uses (``cuda:LOCAL_RANK`` for a CUDA run)."""
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if device.startswith("cuda"):
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        torch.cuda.set_device(torch.device(device))
    dist.init_process_group(backend)
    return device


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, nproc: int, port: int, fn: Callable, args: tuple) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(nproc),
    )
    fn(*args)
    # Leave without the interpreter's finalization: gloo objects still alive while modules are
    # torn down can abort a worker that has finished its work (SIGABRT, "terminate called
    # without an active exception"). The run's files are written and closed by now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def spawn(fn: Callable, args: tuple, nproc: int) -> None:
    """Run ``fn(*args)`` in ``nproc`` local processes that form a process group over
    loopback (``fn`` calls :func:`init_from_env`). Errors in a worker are re-raised here."""
    if nproc < 1:
        raise ValueError(f"--nproc must be a positive integer, got {nproc}")
    mp.spawn(_worker, args=(nproc, _free_port(), fn, args), nprocs=nproc, join=True)


def allreduce_gradients(params: list[torch.Tensor], extras: torch.Tensor, weight: float):
    r"""Replace every gradient by :math:`\sum_r w_r\,\text{grad}_r` (this rank's
    ``weight``), in one message with ``extras`` (a small vector summed as it is, e.g. the stop
    flag and the weighted loss). Returns the summed extras."""
    grads = [p.grad for p in params]
    torch._foreach_mul_(grads, weight)
    flat = torch.cat([g.reshape(-1) for g in grads] + [extras.reshape(-1)])
    dist.all_reduce(flat)
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()
    return flat[offset:]


def barrier() -> None:
    """Wait until every rank gets here (nothing to do in a single process)."""
    if world()[1] > 1:
        dist.barrier()


def shutdown() -> None:
    """Leave the process group. After a clean finish every rank should first meet at a
    :func:`barrier` (a rank that tears its connections down while a peer still works can abort
    that peer); after an error it is called at once, as the peers are being stopped anyway."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
        gc.collect()  # free the group's C++ objects now, not during interpreter shutdown


__all__ = [
    "allreduce_gradients",
    "barrier",
    "init_from_env",
    "launched_by_torchrun",
    "shutdown",
    "spawn",
    "world",
]
