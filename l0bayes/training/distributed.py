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

the single-process gradient of the same global batch. What holds, precisely:

* the ranks always hold identical parameters (they apply the same summed gradient);
* each step is the one-process step of the same estimator from the same parameters, equal to it
  up to float rounding: the sums over the batch are added in another order (tested: one step of
  2 CPU processes over loopback equals one process to 1e-6, and 8 SGD steps to float32
  rounding, :math:`8u` of each tensor's largest parameter per step);
* over a whole run these rounding differences are amplified by training, as between any two
  machines: after 150 steps the parameters differ by about 1e-2 while test errors agree. A
  data-parallel run is a statistically equivalent run, not a bitwise copy of a one-process run.

With per-example gates (``local_rep``) or CIFAR augmentation the ranks draw different random
numbers: still an unbiased estimate, but no longer the one-process draw.

**Failures.** Every collective has a timeout (:data:`COLLECTIVE_TIMEOUT`, or the environment
variable ``L0BAYES_COLLECTIVE_TIMEOUT`` in seconds): a worker that hangs (say, stopped with
``SIGSTOP``) makes its peers fail after that time instead of waiting for ever, and the parent
then stops every worker. A worker that dies or raises becomes one :class:`DistributedError`
naming the rank and the signal or error.

**Interrupts.** The workers of ``--nproc N`` run in a process group of their own, so the
terminal's Ctrl-C reaches the launcher alone, and the launcher relays every SIGINT it gets to
each worker (also a SIGINT sent to the launcher's pid only, as a job scheduler does). The
ranks agree on the stop in the next step's all-reduce, rank 0 writes the checkpoint, every
rank waits for it at a barrier and exits with :data:`INTERRUPTED`; :func:`spawn` then raises
:class:`WorkersInterrupted`. A second SIGINT aborts the workers at once (``KeyboardInterrupt``
in the launcher). If the launcher dies, the workers get SIGINT from the kernel (torch sets
``PR_SET_PDEATHSIG``) and stop the same way.

Launch with ``l0bayes train ... --nproc N`` (spawns N local processes on 127.0.0.1), or with
``torchrun --nproc-per-node N -m l0bayes.cli train ...`` on one or several nodes (the
environment variables ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT`` that torchrun sets are used as they are).
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import math
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

#: Seconds a collective waits for the other ranks before it fails (default 10 minutes).
COLLECTIVE_TIMEOUT = 600.0
#: Seconds the parent gives the other workers to stop after one failed, before SIGKILL.
GRACE_PERIOD = 5.0
#: The longest collective timeout accepted (30 days; longer cannot be told from "never").
MAX_COLLECTIVE_TIMEOUT = 30 * 86400.0
#: The exit status of a worker that stopped on SIGINT after the run's checkpoint was written.
INTERRUPTED = 130


class DistributedError(RuntimeError):
    """A data-parallel worker failed, was killed, or a collective timed out."""


class WorkersInterrupted(Exception):
    """Every worker stopped on SIGINT after the checkpoint was written (exit status
    :data:`INTERRUPTED`)."""


def collective_timeout() -> datetime.timedelta:
    """The collectives' timeout: ``$L0BAYES_COLLECTIVE_TIMEOUT`` seconds, else
    :data:`COLLECTIVE_TIMEOUT`."""
    text = os.environ.get("L0BAYES_COLLECTIVE_TIMEOUT", str(COLLECTIVE_TIMEOUT))
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(
            f"L0BAYES_COLLECTIVE_TIMEOUT must be a positive number of seconds, got {text!r}"
        )
    if seconds > MAX_COLLECTIVE_TIMEOUT:
        raise ValueError(
            f"L0BAYES_COLLECTIVE_TIMEOUT must be at most {MAX_COLLECTIVE_TIMEOUT:.0f} seconds "
            f"(30 days), got {text!r}: a hung worker would block the others that long"
        )
    return datetime.timedelta(seconds=seconds)


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
    dist.init_process_group(backend, timeout=collective_timeout())
    return device


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, nproc: int, port: int, fn: Callable, args: tuple) -> None:
    """One spawned rank: its own process group (the launcher relays SIGINT), the process
    group's environment, ``fn(*args)``; the exit status is ``SystemExit``'s code (e.g.
    :data:`INTERRUPTED`), 1 after ``KeyboardInterrupt``, else 0."""
    os.setpgrp()
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(nproc),
    )
    try:
        fn(*args)
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except KeyboardInterrupt:  # a second SIGINT: aborted (torch would report success)
        code = 1
    # Leave without the interpreter's finalization: gloo objects still alive while modules are
    # torn down can abort a worker that has finished its work (SIGABRT, "terminate called
    # without an active exception"). The run's files are written and closed by now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def spawn(fn: Callable, args: tuple, nproc: int) -> None:
    """Run ``fn(*args)`` in ``nproc`` local processes that form a process group over
    loopback (``fn`` calls :func:`init_from_env`).

    When one worker fails, the others get :data:`GRACE_PERIOD` seconds to stop, then
    ``SIGKILL`` (which also ends a stopped process). SIGINT to this process is relayed to
    every worker (the module docstring's *Interrupts*).

    :raises WorkersInterrupted: every worker stopped on SIGINT after the checkpoint was
        written.
    :raises KeyboardInterrupt: SIGINT stopped the workers otherwise (before training, or a
        second SIGINT).
    :raises ValueError: a worker raised ``ValueError`` (a bad setting: its message as it is).
    :raises DistributedError: a worker raised another error or was killed by a signal; the
        message names the rank and the error's last line or the signal.
    """
    if nproc < 1:
        raise ValueError(f"--nproc must be a positive integer, got {nproc}")
    os.environ.setdefault("L0BAYES_COLLECTIVE_TIMEOUT", str(collective_timeout().total_seconds()))
    workers: list = []
    failure: Exception | None = None
    with _relay_sigint(workers) as received:
        context = mp.start_processes(
            _worker, args=(nproc, _free_port(), fn, args), nprocs=nproc, join=False
        )
        workers.extend(context.processes)
        if received:  # a SIGINT came while the workers were being started
            _send_sigint(workers)
        try:
            while not context.join(grace_period=GRACE_PERIOD):
                pass
        except (mp.ProcessExitedException, mp.ProcessRaisedException) as err:
            failure = err
    codes = [process.exitcode for process in workers]
    if received or INTERRUPTED in codes:
        if all(code == INTERRUPTED for code in codes):
            raise WorkersInterrupted("the workers stopped on SIGINT after the checkpoint")
        if all(code == 0 for code in codes):
            return  # the run ended before the stop took effect
        raise KeyboardInterrupt
    if isinstance(failure, mp.ProcessExitedException):
        raise DistributedError(
            f"data-parallel worker {failure.error_index} {_exit_reason(failure.exit_code)}; "
            "the other workers were stopped"
        )
    if isinstance(failure, mp.ProcessRaisedException):
        raise _worker_error(failure)


@contextlib.contextmanager
def _relay_sigint(workers: list) -> Iterator[list[int]]:
    """For the block, SIGINT to this process is sent on to every live process of ``workers``
    (and recorded in the list yielded); outside the main thread nothing is relayed."""
    received: list[int] = []

    def relay(signum, frame) -> None:
        received.append(signum)
        _send_sigint(workers)

    try:
        previous = signal.signal(signal.SIGINT, relay)
    except ValueError:  # not the main thread
        yield received
        return
    try:
        yield received
    finally:
        signal.signal(signal.SIGINT, previous)


def _send_sigint(workers: list) -> None:
    for process in workers:
        if process.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGINT)


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _worker_error(err: mp.ProcessRaisedException) -> Exception:
    """The last line of a worker's traceback (``ValueError: ...``) as one error."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    last = lines[-1] if lines else "an error"
    kind, _, message = last.partition(": ")
    if kind in (
        "ValueError",
        "RunDirectoryError",
        "l0bayes.training.run_directory.RunDirectoryError",
    ):
        return ValueError(message)
    if "timed out" in last.lower() or "timeout" in last.lower():
        last = f"a collective timed out ({last}); a worker hung or died"
    return DistributedError(f"data-parallel worker {err.error_index} failed: {last}")


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
    "COLLECTIVE_TIMEOUT",
    "DistributedError",
    "GRACE_PERIOD",
    "INTERRUPTED",
    "MAX_COLLECTIVE_TIMEOUT",
    "WorkersInterrupted",
    "allreduce_gradients",
    "collective_timeout",
    "barrier",
    "init_from_env",
    "launched_by_torchrun",
    "shutdown",
    "spawn",
    "world",
]
