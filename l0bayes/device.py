"""Where and how torch runs: the device and the number of CPU threads.

The thread policy
-----------------
When no thread count is given, l0bayes runs torch on **one** intra-op thread
(:func:`default_threads`), not torch's default of one per core. The networks and regressions
here take many small steps (a batch of 100 through a 784-300-100 MLP, a regression's few
thousand numbers), where a step is dominated by per-op overhead: extra threads buy little on an
idle machine and, on a machine whose cores are busy, spin against the other work and make a run
many times slower (measured: up to 28x for training and 2x for ``select`` on a busy 2-core
machine; ``bench/threads_speed.py`` measures it). One thread is never slower than one thread.

To use more, say so: ``--threads N`` on the command line, ``num_threads`` in the API, or the
environment variable ``L0BAYES_THREADS`` (then ``OMP_NUM_THREADS``) for every run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

#: The environment variables read by :func:`default_threads`, first set wins.
THREADS_ENV_VARS = ("L0BAYES_THREADS", "OMP_NUM_THREADS")

#: One line for the ``--threads`` help of the command line.
THREADS_HELP = (
    "torch CPU threads (default: $L0BAYES_THREADS, then $OMP_NUM_THREADS, else 1: more "
    "threads rarely speed up these small steps and are many times slower on busy cores)"
)


def resolve_device(device: str | torch.device) -> torch.device:
    """``torch.device`` for ``device``, with a clear error when CUDA is asked for but absent."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device={device!r} is not a torch device; use 'cpu' or 'cuda'") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} but CUDA is not available on this machine (torch "
            f"{torch.__version__}); use device='cpu'"
        )
    return dev


def default_threads() -> int:
    """The torch intra-op thread count when none is given: ``$L0BAYES_THREADS``, then
    ``$OMP_NUM_THREADS`` (a positive integer; empty counts as unset), else 1 (see the module
    docstring for why).

    :raises ValueError: the variable is set to something other than a positive integer.
    """
    for name in THREADS_ENV_VARS:
        text = os.environ.get(name, "").strip()
        if not text:
            continue
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise ValueError(f"${name} must be a positive integer (threads), got {text!r}")
        return value
    return 1


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Set torch's intra-op threads to ``n`` for the block (``None``: the policy's
    :func:`default_threads`) and restore them afterwards.

    :raises ValueError: ``n`` is not a positive integer.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"--threads must be a positive integer, got {n!r}")
    threads = default_threads() if n is None else n
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


__all__ = ["THREADS_ENV_VARS", "THREADS_HELP", "default_threads", "resolve_device", "torch_threads"]
