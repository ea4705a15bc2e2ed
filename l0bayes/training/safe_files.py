"""Files written whole or not at all, and read only when they are what they claim to be.

**Writes.** :func:`write_atomically` fills a temporary file in the destination folder, flushes
it to disk (``fsync``) and renames it onto the destination with :func:`os.replace`, atomic on
POSIX and Windows: a reader, or a run resumed after ``SIGKILL``, sees the old file or the new
one, never a mix. The rename makes a new file, so a hard link at the destination keeps its
old content (nothing is written *through* it), and a FIFO there is replaced, not opened. A
folder of files is put in place as a whole by :func:`staged_directory`: it is built under a
temporary name beside its destination, then exchanged with the old folder in one
``renameat2(RENAME_EXCHANGE)`` (Linux), so the destination holds the complete old folder or
the complete new one at every instant.

**Reads.** :func:`read_limited` reads a *regular* file of at most a given size: a FIFO, a
device such as ``/dev/zero``, a directory or a huge file is refused with a one-line
``ValueError`` naming it, instead of a hang or a ``MemoryError``.

**Nothing of the user's is removed.** Temporary files and folders are named
``.l0bayes-tmp.<name>.<random>.tmp`` (:data:`TEMP_PREFIX`), and :func:`remove_stale_temporaries`
deletes only those: files left by a killed write, and staged folders whose builder is gone (a
builder holds an ``flock`` on its folder while it works).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import io
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

PathLike = str | os.PathLike

#: Prefix of every temporary file or folder l0bayes creates (and the only ones
#: :func:`remove_stale_temporaries` deletes).
TEMP_PREFIX = ".l0bayes-tmp."
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileRecord:
    """A file's size in bytes and the SHA-256 of its content (what a manifest records)."""

    size: int
    sha256: str

    def as_dict(self) -> dict:
        return {"size": self.size, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, value: object) -> FileRecord | None:
        """The record in ``value`` (a manifest entry), ``None`` when it is not one."""
        if not isinstance(value, dict):
            return None
        size, digest = value.get("size"), value.get("sha256")
        if isinstance(size, bool) or not isinstance(size, int) or not isinstance(digest, str):
            return None
        return cls(size, digest)


def file_record(path: PathLike) -> FileRecord:
    """The :class:`FileRecord` of the regular file at ``path`` (read in 1 MiB chunks)."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return FileRecord(size, digest.hexdigest())


Guard = Callable[[FileRecord], contextlib.AbstractContextManager]


def write_atomically(
    path: PathLike, write: Callable[[io.BufferedWriter], None], guard: Guard | None = None
) -> FileRecord:
    """Write a file atomically and return its :class:`FileRecord`.

    ``write(f)`` fills a temporary file in the same folder, which is fsynced and renamed onto
    ``path``; ``guard(record)``, when given, is a context manager held around the rename (a
    manifest records the new content there). The temporary file is removed on failure.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; give it open()'s mode
        record = file_record(tmp)
        with guard(record) if guard is not None else contextlib.nullcontext():
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return record


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ----------------------------------------------------------------------------- reads
def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _size(limit: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if limit >= scale:
            return f"{limit / scale:g} {unit}"
    return f"{limit} bytes"


def check_regular_file(path: PathLike, limit: int, what: str = "file") -> int:
    """The size of ``path`` after checking that it is a regular file of at most ``limit``
    bytes (opened without blocking, so a FIFO is refused rather than waited on).

    :raises FileNotFoundError: nothing at ``path``.
    :raises ValueError: a FIFO, device, socket or directory, or a file over ``limit``.
    """
    fd = _open_for_reading(path, what)
    try:
        return _checked_size(fd, path, limit, what)
    finally:
        os.close(fd)


def read_limited(path: PathLike, limit: int, what: str = "file") -> bytes:
    """The bytes of the regular file ``path``, of at most ``limit`` bytes (see
    :func:`check_regular_file`; a file that grows past ``limit`` while read is refused too)."""
    fd = _open_for_reading(path, what)
    try:
        _checked_size(fd, path, limit, what)
        chunks, total = [], 0
        while chunk := os.read(fd, min(_CHUNK, limit + 1 - total) or 1):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise ValueError(f"{what} {path} is larger than {_size(limit)}: not read")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _open_for_reading(path: PathLike, what: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise FileNotFoundError(f"no {what} at {path}") from None
    except IsADirectoryError:
        raise ValueError(f"{what} {path} is a directory, not a file") from None
    except OSError as err:
        raise ValueError(f"cannot read {what} {path}: {err.strerror}") from None


def _checked_size(fd: int, path: PathLike, limit: int, what: str) -> int:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{what} {path} is {_kind(info.st_mode)}: refused (not read)")
    if info.st_size > limit:
        raise ValueError(
            f"{what} {path} is {_size(info.st_size)}, larger than any l0bayes writes "
            f"({_size(limit)}): refused (not read)"
        )
    return info.st_size


# ----------------------------------------------------------------------------- folders
@contextlib.contextmanager
def staged_directory(final: PathLike) -> Iterator[Path]:
    """Build a folder that replaces ``final`` as a whole.

    Yields a new empty folder beside ``final`` (named with :data:`TEMP_PREFIX`, locked with
    ``flock`` while the block runs); when the block ends without error, every file in it is
    fsynced and it takes the place of ``final`` in one atomic exchange (``renameat2`` with
    ``RENAME_EXCHANGE``; where the system lacks it, two renames in a row), after which the
    old folder is deleted. On an error the staged folder is deleted and ``final`` is left
    as it was.
    """
    final = Path(final)
    stage = Path(
        tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{final.name}.", suffix=".tmp", dir=final.parent)
    )
    os.chmod(stage, 0o777 & ~_umask())  # mkdtemp makes it private; give it mkdir()'s mode
    fd = os.open(stage, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield stage
            _fsync_tree(stage)
            _put_in_place(stage, final)
        finally:
            shutil.rmtree(stage, ignore_errors=True)  # the old folder, or the failed new one
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            fd = os.open(Path(folder) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(folder))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a directory
        pass
    finally:
        os.close(fd)


def _put_in_place(stage: Path, final: Path) -> None:
    """Move ``stage`` to ``final``; the old ``final`` (if any) ends up at ``stage``."""
    if not final.exists():
        os.rename(stage, final)
    elif not _exchange(stage, final):
        os.rename(final, f"{stage}.old")  # a kill between these renames leaves no `final`
        os.rename(stage, final)
        os.rename(f"{stage}.old", stage)
    _fsync_dir(final.parent)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` atomically with Linux's ``renameat2``; ``False`` where the
    system or file system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    done = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if done == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def remove_stale_temporaries(folder: PathLike, name: str | None = None) -> list[Path]:
    """Delete what a killed write left in ``folder`` (``SIGKILL`` gives it no chance to clean
    up; the final files are intact): regular files named with :data:`TEMP_PREFIX`, and staged
    folders so named that no process holds locked; only the temporaries of the destination
    ``name`` when it is given. Never a file of the user's."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = []
    pattern = f"{TEMP_PREFIX}{name}.*" if name is not None else f"{TEMP_PREFIX}*.tmp*"
    for path in sorted(folder.glob(pattern)):
        if path.is_symlink():
            continue
        if path.is_file() and path.suffix == ".tmp":
            path.unlink(missing_ok=True)
            stale.append(path)
        elif path.is_dir() and _unlocked(path):
            shutil.rmtree(path, ignore_errors=True)
            stale.append(path)
    return stale


def _unlocked(folder: Path) -> bool:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


__all__ = [
    "FileRecord",
    "TEMP_PREFIX",
    "check_regular_file",
    "file_record",
    "read_limited",
    "remove_stale_temporaries",
    "staged_directory",
    "write_atomically",
]
