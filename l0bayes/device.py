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

To use more, say so: ``--threads N`` on the command line, ``num_threads`` in the API, the
environment variable ``L0BAYES_THREADS`` (then ``OMP_NUM_THREADS``) for every run, or
``torch.set_num_threads(n)`` in your own code.

The Python API follows the same policy as the command line, applied **once, when l0bayes is
imported** (:func:`apply_thread_policy`): if torch's thread count is still torch's own
default (one per physical core, or ``$OMP_NUM_THREADS``/``$MKL_NUM_THREADS``), it is set to
:func:`default_threads`; a count set before the import (``torch.set_num_threads``) is left
alone, and one set after it wins, since l0bayes never sets it again: every function that runs
torch (:func:`torch_threads` with no count) keeps a count the user chose and applies the
policy otherwise, and restores the count it found. So a Pyro loop of your own (``svi.step``
over gated sites) runs on one thread after ``import l0bayes``, as ``l0bayes train`` does.
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


#: The most intra-op threads accepted: a thread pool of 100,000 crashes torch (segmentation
#: fault), and more threads than cores never speed a fit up.
MAX_THREADS = 1024


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


def torch_default_threads() -> int:
    """The intra-op thread count torch starts with: ``$OMP_NUM_THREADS``, then
    ``$MKL_NUM_THREADS`` (a positive integer), else one per physical core, which torch also
    uses for its inter-op pool (so read from it; that pool is never resized by l0bayes)."""
    for name in ("MKL_NUM_THREADS", "OMP_NUM_THREADS"):  # torch: OMP's value, then MKL's wins
        text = os.environ.get(name, "").strip()
        if text.isdigit() and int(text) > 0:
            return int(text)
    return torch.get_num_interop_threads()


#: torch's thread count as :func:`apply_thread_policy` left it (None before it ran).
_policy_threads: list[int] = []


def apply_thread_policy() -> int:
    """Set torch's intra-op threads to :func:`default_threads` unless they were already
    changed from :func:`torch_default_threads` (module docstring). Called once when l0bayes
    is imported; returns the count torch now has. A bad ``$L0BAYES_THREADS`` leaves torch
    alone here (importing never fails) and is reported by the first function that runs
    torch."""
    current = torch.get_num_threads()
    if current == torch_default_threads():
        try:
            current = default_threads()
        except ValueError:
            pass
        else:
            torch.set_num_threads(current)
    _policy_threads[:] = [current]
    return current


def user_threads() -> int | None:
    """The thread count the user set with ``torch.set_num_threads`` after l0bayes applied its
    policy, or None if torch still runs on the policy's count."""
    current = torch.get_num_threads()
    return current if _policy_threads and current != _policy_threads[0] else None


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
        return check_threads(value, f"${name}")
    return 1


def check_threads(n: object, name: str = "--threads") -> int:
    """``n`` as a thread count: a positive integer of at most :data:`MAX_THREADS` (torch's
    thread pool crashes the process far beyond the machine's cores); ``name`` is what the
    error calls it (the flag, or the environment variable).

    :raises ValueError: otherwise.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    if n > MAX_THREADS:
        cores = os.cpu_count() or 1
        raise ValueError(
            f"{name} must be at most {MAX_THREADS} (this machine has {cores} cores; more "
            f"threads than cores only slow a fit down), got {n}"
        )
    return n


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Set torch's intra-op threads to ``n`` for the block and restore them afterwards.
    ``None``: the count the user set with ``torch.set_num_threads`` (:func:`user_threads`),
    else the policy's :func:`default_threads`.

    :raises ValueError: ``n`` is not a thread count (:func:`check_threads`).
    """
    if n is not None:
        check_threads(n)
    threads = n or user_threads() or default_threads()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


__all__ = [
    "MAX_THREADS",
    "THREADS_ENV_VARS",
    "THREADS_HELP",
    "apply_thread_policy",
    "check_threads",
    "default_threads",
    "resolve_device",
    "torch_default_threads",
    "torch_threads",
    "user_threads",
]
