"""Nothing lost: atomic file writes, random-number-generator state, training checkpoints.

Every file a run writes goes through :func:`atomic_write`
(:func:`~l0bayes.training.safe_files.write_atomically`: a temporary file, ``fsync``, an atomic
rename), so a reader or a run resumed after ``SIGKILL`` sees the old file or the new one,
never a half-written one; a write into a marked run directory is recorded in its manifest
(:mod:`l0bayes.training.manifest`).

A checkpoint holds everything a resumed run needs to continue *bitwise* as if it had never
stopped (on the same device and versions): the network's and optimizer's state, the EMA and
Lagrange multipliers, the epoch and step counters, the training history so far, and the states
of torch's CPU (and CUDA) generators, numpy's and Python's. The data order of an epoch is a
function of the seed and the epoch number, so it needs no saving.

**Files from others are untrusted input.** A checkpoint is read with
``torch.load(weights_only=True)``: only tensors and plain Python containers and numbers are
unpickled, so a crafted ``checkpoint.pt`` cannot run code. The random-number states are stored
as plain types for that reason (checkpoints of earlier versions, which hold numpy arrays, are
read with exactly numpy's array-rebuilding globals allow-listed, nothing else).

**Nothing of the user's is touched.** Temporary files are named with
:data:`~l0bayes.training.safe_files.TEMP_PREFIX`, and
:func:`~l0bayes.training.safe_files.remove_stale_temporaries` deletes nothing else.
"""

from __future__ import annotations

import functools
import io
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from l0bayes.training.manifest import recording
from l0bayes.training.safe_files import (
    TEMP_PREFIX,
    PathLike,
    check_regular_file,
    remove_stale_temporaries,
    write_atomically,
)

#: Keys every checkpoint of :class:`l0bayes.training.trainer.Trainer` holds.
CHECKPOINT_KEYS = frozenset({"version", "config", "net", "optimizer", "run", "rng"})
#: The largest checkpoint read (a Wide-ResNet-28-10's, with its optimizer and average, is
#: about 0.6 GiB): a larger file is refused, not loaded.
CHECKPOINT_LIMIT = 16 << 30


def atomic_write(path: PathLike, write: Callable[[io.BufferedWriter], None]) -> None:
    """Write a file atomically: ``write(f)`` fills a temporary file in the same folder, which
    is fsynced and renamed onto ``path`` (removed on failure). In a marked run directory the
    new content is recorded in the manifest (:func:`~l0bayes.training.manifest.recording`)."""
    write_atomically(path, write, guard=functools.partial(recording, path))


def write_json(path: PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""
    text = json.dumps(obj, indent=2, sort_keys=False) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def write_text(path: PathLike, text: str) -> None:
    """Atomically write a text file."""
    atomic_write(path, lambda f: f.write(text.encode()))


def rng_state() -> dict[str, Any]:
    """The states of torch's CPU and CUDA generators, numpy's global and Python's, as tensors
    and plain Python types (so that a checkpoint loads with ``weights_only=True``)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": str(name),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": [int(version), [int(v) for v in internal], gauss_next],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators saved by :func:`rng_state`. The states are byte tensors on the
    CPU, as torch wants them, also when the checkpoint was loaded onto a GPU."""
    torch.set_rng_state(state["torch"].cpu())
    saved = state["numpy"]
    if isinstance(saved, dict):
        keys = saved["keys"].cpu().numpy().astype(np.uint32)
        saved = (saved["bit_generator"], keys, saved["pos"], saved["has_gauss"],
                 saved["cached_gaussian"])  # fmt: skip
    np.random.set_state(saved)
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_checkpoint(path: PathLike, state: dict[str, Any]) -> None:
    """Atomically save a checkpoint (a dict of tensors, numbers and containers)."""
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(
    path: PathLike,
    map_location: str | torch.device = "cpu",
    required: frozenset[str] = CHECKPOINT_KEYS,
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, safely.

    The file is read with ``weights_only=True``: tensors, numbers, strings and containers only,
    so a crafted file cannot execute code. Checkpoints of l0bayes versions that stored numpy's
    random state as an array are read with numpy's array-rebuilding globals allow-listed (and
    nothing else).

    :param path: the checkpoint file.
    :param map_location: where the tensors go.
    :param required: keys the checkpoint must hold (a torch file that is not an l0bayes
        checkpoint is rejected with the name of the file).
    :raises FileNotFoundError: no checkpoint at ``path``.
    :raises ValueError: the file is not a readable, safe l0bayes checkpoint.
    """
    path = Path(path)
    try:
        check_regular_file(path, CHECKPOINT_LIMIT, "checkpoint")
    except FileNotFoundError:
        raise FileNotFoundError(f"no checkpoint at {path}: nothing to resume") from None
    try:
        with torch.serialization.safe_globals(_LEGACY_NUMPY_GLOBALS):
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated, foreign or unsafe: say which file, in one line
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "Weights only load failed" in reason or "Unsupported global" in str(err):
            reason = "it holds Python objects other than tensors and plain data (refused: "
            reason += "loading it could run code)"
        raise ValueError(f"cannot read checkpoint {path}: {reason}") from None
    missing = sorted(required - set(state)) if isinstance(state, dict) else sorted(required)
    if missing:
        raise ValueError(f"{path} is not an l0bayes checkpoint (it lacks {', '.join(missing)})")
    return state


def _legacy_numpy_globals() -> list:
    """The globals a pickled numpy array needs: numpy's array reconstructor, ``ndarray`` and
    the dtypes of the arrays earlier checkpoints held (numpy's MT19937 key is ``uint32``)."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return [_reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


_LEGACY_NUMPY_GLOBALS = _legacy_numpy_globals()


__all__ = [
    "CHECKPOINT_KEYS",
    "CHECKPOINT_LIMIT",
    "TEMP_PREFIX",
    "atomic_write",
    "load_checkpoint",
    "remove_stale_temporaries",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "write_json",
    "write_text",
]
