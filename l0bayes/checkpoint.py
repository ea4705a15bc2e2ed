"""Nothing lost: atomic file writes, random-number-generator state, training checkpoints.

Every file a run writes goes through :func:`atomic_write`: the bytes go to a temporary file
in the destination folder, are flushed to disk (``fsync``), and the temporary file is renamed
over the destination with :func:`os.replace`, which is atomic on POSIX and Windows. A reader
(or a run resumed after ``SIGKILL``) therefore sees either the old file or the new one, never a
half-written one.

A checkpoint holds everything a resumed run needs to continue *bitwise* as if it had never
stopped (on the same device and versions): the network's and optimizer's state, the EMA and
Lagrange multipliers, the epoch and step counters, the training history so far, and the states
of torch's CPU (and CUDA) generators, numpy's and Python's. The data order of an epoch is a
function of the seed and the epoch number, so it needs no saving.
"""

from __future__ import annotations

import io
import json
import os
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

PathLike = str | os.PathLike


def atomic_write(path: PathLike, write: Callable[[io.BufferedWriter], None]) -> None:
    """Write a file atomically: ``write(f)`` fills a temporary file in the same folder, which
    is fsynced and renamed onto ``path``. The temporary file is removed on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; give it open()'s mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_temporaries(folder: PathLike) -> list[Path]:
    """Delete the temporary files that :func:`atomic_write` leaves when its process is killed
    mid-write (``SIGKILL`` gives it no chance to clean up); the final files are intact."""
    stale = sorted(Path(folder).glob(".*.tmp")) if Path(folder).is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def write_json(path: PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""
    text = json.dumps(obj, indent=2, sort_keys=False) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def write_text(path: PathLike, text: str) -> None:
    """Atomically write a text file."""
    atomic_write(path, lambda f: f.write(text.encode()))


def rng_state() -> dict[str, Any]:
    """The states of torch's CPU and CUDA generators, numpy's global and Python's."""
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators saved by :func:`rng_state`. The states are byte tensors on the
    CPU, as torch wants them, also when the checkpoint was loaded onto a GPU."""
    torch.set_rng_state(state["torch"].cpu())
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_checkpoint(path: PathLike, state: dict[str, Any]) -> None:
    """Atomically save a checkpoint (a dict of tensors, numbers and containers)."""
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    :raises FileNotFoundError: no checkpoint at ``path``.
    :raises ValueError: the file is not a readable checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: nothing to resume")
    try:
        # weights_only=False: the state holds numpy's and Python's RNG states; only load
        # checkpoints you wrote yourself.
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # a truncated or foreign file: say which
        raise ValueError(f"cannot read checkpoint {path}: {err}") from err


__all__ = [
    "atomic_write",
    "load_checkpoint",
    "remove_stale_temporaries",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "write_json",
    "write_text",
]
