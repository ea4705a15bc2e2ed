"""Run directories: recognised by a marker, written by one process at a time, never a user's.

A run directory is the folder that ``l0bayes train --out RUN`` writes. Three rules keep
the user's files safe, also when the folder comes from someone else:

* **Ours or refused.** A new run goes into a folder that does not exist yet or is empty;
  :func:`prepare_new_run` writes the marker file :data:`MARKER` first, and only a folder that
  holds it (or, for runs of earlier versions, both ``config.json`` and ``checkpoint.pt``) is
  treated as a run. Any other non-empty folder is refused: nothing in it is overwritten or
  deleted.
* **One writer.** :func:`run_lock` takes an exclusive, non-blocking ``flock`` on
  :data:`LOCK` for as long as a process trains; a second ``--resume`` is refused with the
  holder's process id, host and start time. The kernel drops the lock when its process dies
  (also by ``SIGKILL``), so a stale lock never blocks a resume.
* **No writes through links.** :func:`prepare_output_dir` refuses a symlink anywhere on the
  path of a folder that a command writes under ``RUN`` (and any symlink inside it), so
  ``RUN/report -> /elsewhere`` cannot redirect a report outside the run.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from l0bayes.training.checkpoint import PathLike, remove_stale_temporaries, write_json

#: The file that marks a folder as an l0bayes run directory (only l0bayes writes it).
MARKER = ".l0bayes-run"
#: The lock file of a run directory (held with ``flock`` while a process writes the run).
LOCK = ".l0bayes-lock"
_MARKER_KIND = "l0bayes run directory"
#: Files a run of an earlier version (before the marker) is recognised by.
_LEGACY_FILES = ("config.json", "checkpoint.pt")


class RunDirectoryError(ValueError):
    """A folder that cannot be used as asked (not a run, in use, or unsafe to write)."""


def is_run_directory(path: PathLike) -> bool:
    """Whether ``path`` holds l0bayes's marker (a regular file, not a link) or, for runs of
    earlier versions, both ``config.json`` and ``checkpoint.pt`` as regular files."""
    path = Path(path)
    marker = path / MARKER
    if marker.is_file() and not marker.is_symlink():
        try:
            return json.loads(marker.read_text()).get("kind") == _MARKER_KIND
        except (OSError, ValueError, AttributeError):
            return False
    return all(_regular_file(path / name) for name in _LEGACY_FILES)


def _regular_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _check_folder(path: Path, flag: str) -> None:
    if path.is_symlink() and not path.exists():
        raise RunDirectoryError(f"{flag} {path} is a broken symbolic link")
    if path.exists() and not path.is_dir():
        raise RunDirectoryError(f"{flag} {path} is a file, not a directory")


def _entries(path: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in path.iterdir())
    except OSError as err:
        raise RunDirectoryError(f"cannot list {path}: {err.strerror}") from None


def _make_dirs(path: Path, flag: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunDirectoryError(f"cannot create {flag} {path}: {err.strerror}") from None


def prepare_new_run(out: PathLike, flag: str = "--out") -> Path:
    """Make ``out`` ready for a new run and mark it; returns it as a :class:`~pathlib.Path`.

    ``out`` may be missing (it is created), empty, or a run directory that never reached its
    first checkpoint (its own files are replaced). A run with a checkpoint or metrics is
    refused (resume it instead), and so is any other non-empty folder.

    :raises RunDirectoryError: ``out`` is a file, a non-empty folder that is not a run, a run
        that already has a checkpoint, or cannot be created.
    """
    out = Path(out)
    _check_folder(out, flag)
    if out.is_dir():
        entries = _entries(out)
        if entries and not is_run_directory(out):
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            raise RunDirectoryError(
                f"{flag} {out} is not empty and is not an l0bayes run directory (it holds "
                f"{shown}); nothing was changed: choose a new or empty folder"
            )
        if any((out / name).exists() for name in ("checkpoint.pt", "metrics.json")):
            raise RunDirectoryError(
                f"{flag} {out} already holds a run; pass --resume to continue it, or choose "
                "another folder"
            )
    _make_dirs(out, flag)
    if not is_run_directory(out):
        try:
            write_marker(out)
        except OSError as err:
            raise RunDirectoryError(f"cannot write in {flag} {out}: {err.strerror}") from None
    return out


def write_marker(out: PathLike) -> None:
    """Write :data:`MARKER` into ``out`` (atomically)."""
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    write_json(Path(out) / MARKER, {"kind": _MARKER_KIND, "created": stamp})


def open_run(out: PathLike, flag: str = "--resume") -> Path:
    """Check that ``out`` is an l0bayes run directory and return it.

    :raises FileNotFoundError: ``out`` does not exist.
    :raises RunDirectoryError: ``out`` is not a folder, or not a run directory.
    """
    out = Path(out)
    if not out.exists() and not out.is_symlink():
        raise FileNotFoundError(f"{flag}: no run directory at {out}, so no checkpoint to resume")
    _check_folder(out, flag)
    if not is_run_directory(out):
        raise RunDirectoryError(
            f"{flag}: {out} is not an l0bayes run directory (no {MARKER} marker, and not both "
            "config.json and checkpoint.pt)"
        )
    return out


@contextlib.contextmanager
def run_lock(out: PathLike, command: str = "l0bayes train") -> Iterator[None]:
    """Hold the run directory's exclusive lock for the block; clears stale temporaries.

    :raises RunDirectoryError: another process holds the lock (its pid, host and start time
        are named), or the lock file cannot be opened (e.g. a read-only folder).
    """
    path = Path(out) / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as err:
        raise RunDirectoryError(f"cannot lock the run directory {out}: {err.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirectoryError(
                f"the run directory {out} is in use by {_holder(fd)}; wait for it to finish "
                "or stop it first"
            ) from None
        _write_holder(fd, command)
        remove_stale_temporaries(out)
        yield
    finally:
        os.close(fd)  # closing drops the flock


def _write_holder(fd: int, command: str) -> None:
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    text = json.dumps(
        {"pid": os.getpid(), "host": socket.gethostname(), "since": stamp, "command": command}
    )
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode())
        return f"{info['command']} (process {info['pid']} on {info['host']}, since {info['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def prepare_output_dir(root: PathLike, *parts: str) -> Path:
    """Create the folder ``root/parts...`` for a command's output, refusing links.

    Every component below ``root`` must be absent or a real folder (not a symbolic link), and
    nothing inside the final folder may be a symbolic link, so that no file is written outside
    ``root`` and no file outside it is overwritten through a link.

    :raises RunDirectoryError: a symbolic link on the way or inside.
    """
    root = Path(root)
    path = root
    for part in parts:
        path = path / part
        if path.is_symlink():
            raise RunDirectoryError(
                f"{path} is a symbolic link: refusing to write through it (remove it first)"
            )
        _check_folder(path, "output folder")
        _make_dirs(path, "output folder")
    links = [entry.name for entry in path.iterdir() if entry.is_symlink()]
    if links:
        raise RunDirectoryError(
            f"{path} holds symbolic links ({', '.join(sorted(links))}): refusing to write "
            "through them (remove them first)"
        )
    return path


__all__ = [
    "LOCK",
    "MARKER",
    "RunDirectoryError",
    "is_run_directory",
    "open_run",
    "prepare_new_run",
    "prepare_output_dir",
    "run_lock",
    "write_marker",
]
