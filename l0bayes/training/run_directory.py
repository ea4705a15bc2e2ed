"""Run directories: recognised by a marker, written by one process at a time, never a user's.

A run directory is the folder that ``l0bayes train --out RUN`` writes. Four rules keep
the user's files safe, also when the folder comes from someone else:

* **Ours or refused.** A new run goes into a folder that does not exist yet or is empty;
  :func:`prepare_new_run` writes the marker file :data:`MARKER` first, and only a folder that
  holds it (or, for runs of earlier versions, both ``config.json`` and ``checkpoint.pt``) is
  treated as a run. Any other non-empty folder is refused: nothing in it is overwritten or
  deleted.
* **Only what l0bayes wrote.** A marker proves nothing by itself (it may be stale, or copied
  beside a user's files): a run directory may hold only the names l0bayes writes
  (:data:`RUN_FILES`, the marker, the lock, the ``report`` folder and temporaries), and each of
  :data:`RUN_FILES` must be, byte for byte, a content that the marker's manifest records
  (:mod:`l0bayes.training.manifest`). Anything else refuses the folder, naming the files, and
  nothing is changed. (The runs of versions before the manifest are recognised by the shape of
  their files, and given a manifest when next resumed.)
* **One writer.** :func:`run_lock` takes an exclusive, non-blocking ``flock`` on
  :data:`LOCK` for as long as a process trains; a second ``--resume`` is refused with the
  holder's process id, host and start time. The kernel drops the lock when its process dies
  (also by ``SIGKILL``), so a stale lock never blocks a resume. Whatever was checked before
  the lock is checked again under it (:func:`check_new_run`, :func:`claim_run`): a second
  ``train`` that passed the checks while the first ran cannot start over on its finished run.
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

from l0bayes.training.manifest import MARKER, read_marker, recorded, write_marker
from l0bayes.training.safe_files import (
    TEMP_PREFIX,
    FileRecord,
    PathLike,
    file_record,
    read_limited,
    remove_stale_temporaries,
)

#: The lock file of a run directory (held with ``flock`` while a process writes the run).
LOCK = ".l0bayes-lock"
#: The files a run writes (``metrics.json`` once it completes).
RUN_FILES = ("config.json", "checkpoint.pt", "history.csv", "metrics.json")
#: A sweep's next checkpoint, written before every network's is renamed onto
#: ``checkpoint.pt`` (:mod:`l0bayes.training.sweep`); the manifest records it like the others.
PENDING_CHECKPOINT = ".l0bayes-sweep-pending.pt"
#: The folders that commands write in a run directory (``l0bayes report``'s).
OUTPUT_DIRS = ("report",)
#: Files a run of an earlier version (before the marker) is recognised by.
_LEGACY_FILES = ("config.json", "checkpoint.pt")


class RunDirectoryError(ValueError):
    """A folder that cannot be used as asked (not a run, in use, or unsafe to write)."""


def is_run_directory(path: PathLike) -> bool:
    """Whether ``path`` holds l0bayes's marker (a regular file, not a link) or, for runs of
    earlier versions, both ``config.json`` and ``checkpoint.pt`` as regular files."""
    path = Path(path)
    if read_marker(path) is not None:
        return True
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
    refused (resume it instead), and so is any other non-empty folder. Check again with
    :func:`check_new_run` once the lock is held.

    :raises RunDirectoryError: ``out`` is a file, a non-empty folder that is not a run (or
        holds files l0bayes did not write), a run that already has a checkpoint, or cannot
        be created.
    """
    out = refuse_new_run(out, flag)
    _make_dirs(out, flag)
    if read_marker(out) is None:
        try:
            write_marker(out)
        except OSError as err:
            raise RunDirectoryError(f"cannot write in {flag} {out}: {err.strerror}") from None
    return out


def refuse_new_run(out: PathLike, flag: str = "--out") -> Path:
    """Raise now what :func:`prepare_new_run` would refuse, creating and writing nothing (so a
    run whose settings or data fail after this check leaves no folder behind).

    :raises RunDirectoryError: as :func:`prepare_new_run`.
    """
    out = Path(out)
    _check_folder(out, flag)
    if out.is_dir() and _entries(out):
        check_new_run(out, flag)
    return out


def check_new_run(out: PathLike, flag: str = "--out") -> None:
    """Refuse to start a new run in ``out`` unless it is a run directory of l0bayes's files
    (:func:`check_run_files`) without a checkpoint or metrics (call it again under
    :func:`run_lock`: another process may have finished a run there since).

    :raises RunDirectoryError: as :func:`prepare_new_run`.
    """
    out = Path(out)
    if not is_run_directory(out):
        entries = _entries(out)
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise RunDirectoryError(
            f"{flag} {out} is not empty and is not an l0bayes run directory (it holds "
            f"{shown}); nothing was changed: choose a new or empty folder"
        )
    check_run_files(out, flag)
    if any((out / name).exists() for name in ("checkpoint.pt", "metrics.json")):
        raise RunDirectoryError(
            f"{flag} {out} already holds a run; pass --resume to continue it, or choose "
            "another folder"
        )


def check_run_files(out: PathLike, flag: str = "--out") -> dict[str, FileRecord]:
    """Check that the run directory ``out`` holds only what l0bayes wrote there (the module
    docstring's second rule) and return the records of its :data:`RUN_FILES`.

    :raises RunDirectoryError: a file or folder that l0bayes does not write, or one of
        :data:`RUN_FILES` whose content the manifest does not record (or, in a run of a
        version before the manifest, that is not shaped as l0bayes writes it).
    """
    out = Path(out)
    foreign = [name for name in _entries(out) if not _ours_by_name(out / name)]
    if foreign:
        raise RunDirectoryError(
            f"{flag} {out} holds {_names(foreign)}, which l0bayes does not write: it is not "
            "(only) an l0bayes run directory, though it is marked as one; nothing was "
            "changed: move those out, or choose another folder"
        )
    marker = read_marker(out)
    legacy = marker is None or not isinstance(marker.get("files"), dict)
    records, forged = {}, []
    for name in (*RUN_FILES, PENDING_CHECKPOINT):
        path = out / name
        if not path.exists():
            continue
        if legacy:
            ok = _shaped_as_ours(path)
            record = file_record(path) if ok else None
        else:
            record = file_record(path)
            ok = record in recorded(marker, name)
        if ok:
            records[name] = record
        else:
            forged.append(name)
    if forged:
        them = "it" if len(forged) == 1 else "them"
        raise RunDirectoryError(
            f"{flag} {out} holds {_names(forged)} that l0bayes did not write (not as recorded "
            f"in its {MARKER} manifest): nothing was changed; move {them} out, or choose "
            "another folder"
        )
    return records


def claim_run(out: PathLike, flag: str = "--out") -> None:
    """Under :func:`run_lock`: check ``out`` (:func:`check_run_files`) and, where it differs,
    rewrite its manifest with the files as they are (settling a write that a kill
    interrupted, and giving a run of an earlier version its manifest)."""
    records = check_run_files(out, flag)
    marker = read_marker(out) or {}
    if any(recorded(marker, name) != [r] for name, r in records.items()) or not isinstance(
        marker.get("files"), dict
    ):
        write_marker(out, records)


def _ours_by_name(path: Path) -> bool:
    name = path.name
    if name.startswith(TEMP_PREFIX):
        return True
    if name in (MARKER, LOCK, PENDING_CHECKPOINT, *RUN_FILES):
        return _regular_file(path)
    return name in OUTPUT_DIRS and path.is_dir() and not path.is_symlink()


def _names(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


#: How the files of a run of a version before the manifest begin.
_SHAPES = {
    "config.json": lambda head: _json_object_with(head, "network"),
    "metrics.json": lambda head: _json_object_with(head, "test_error"),
    "history.csv": lambda head: head.startswith(b"epoch,step"),
    "checkpoint.pt": lambda head: head.startswith(b"PK\x03\x04"),  # torch's zip format
}


def _shaped_as_ours(path: Path) -> bool:
    if path.is_symlink():
        return False
    limit = 1 << 24 if path.suffix == ".json" else 1 << 16
    try:
        if path.suffix == ".json":
            head = read_limited(path, limit, path.name)
        else:
            with path.open("rb") as f:
                head = f.read(limit)
    except (OSError, ValueError):
        return False
    return _SHAPES["checkpoint.pt" if path.name == PENDING_CHECKPOINT else path.name](head)


def _json_object_with(text: bytes, key: str) -> bool:
    try:
        value = json.loads(text.decode("utf-8"))
    except ValueError:
        return False
    return isinstance(value, dict) and key in value


def open_run(out: PathLike, flag: str = "--resume") -> Path:
    """Check that ``out`` is an l0bayes run directory and return it.

    :raises FileNotFoundError: ``out`` does not exist.
    :raises RunDirectoryError: ``out`` is not a folder, not a run directory, or holds files
        l0bayes did not write (:func:`check_run_files`).
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
    check_run_files(out, flag)
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
    "OUTPUT_DIRS",
    "PENDING_CHECKPOINT",
    "RUN_FILES",
    "RunDirectoryError",
    "check_new_run",
    "check_run_files",
    "claim_run",
    "is_run_directory",
    "open_run",
    "prepare_new_run",
    "prepare_output_dir",
    "refuse_new_run",
    "run_lock",
    "write_marker",
]
