"""The marker of a run directory and its manifest: what l0bayes wrote there.

A folder is marked as an l0bayes run directory by the file :data:`MARKER`, a small JSON
object::

    {"kind": "l0bayes run directory", "created": "2026-12-04T10:00:00+00:00",
     "files": {"config.json": [{"size": 1234, "sha256": "9f2c..."}], ...}}

``files`` is the **manifest**: for every file that l0bayes wrote into the folder, the size and
SHA-256 of what it wrote. Every atomic write into a marked folder updates it
(:func:`recording`), in two steps around the rename so that a kill at any instant leaves a
manifest that accepts the file on disk: before the rename the entry lists the old and the new
content, after it only the new one. A file whose content matches no record was not written by
l0bayes (or was changed since), which is how a stale or forged marker beside a user's files is
told apart from a run (:mod:`l0bayes.training.run_directory`).
"""

from __future__ import annotations

import contextlib
import datetime
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from l0bayes.training.safe_files import FileRecord, PathLike, read_limited, write_atomically

#: The file that marks a folder as an l0bayes run directory (only l0bayes writes it).
MARKER = ".l0bayes-run"
#: Its ``kind``.
MARKER_KIND = "l0bayes run directory"
#: The largest marker read (a manifest of a few files is a few hundred bytes).
MARKER_LIMIT = 1 << 20


def read_marker(folder: PathLike) -> dict[str, Any] | None:
    """The marker of ``folder`` as a dict, ``None`` when there is none or it is not one of
    l0bayes's (not a regular file, not JSON, another ``kind``). ``"files"`` is absent in the
    markers of versions before the manifest."""
    path = Path(folder) / MARKER
    if path.is_symlink():
        return None
    try:
        marker = json.loads(read_limited(path, MARKER_LIMIT, "marker").decode("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("kind") != MARKER_KIND:
        return None
    return marker


def recorded(marker: Mapping[str, Any], name: str) -> list[FileRecord]:
    """The records of ``name`` in a marker's manifest (none when it was never written)."""
    files = marker.get("files")
    entry = files.get(name) if isinstance(files, dict) else None
    records = [FileRecord.from_dict(v) for v in entry] if isinstance(entry, list) else []
    return [r for r in records if r is not None]


def write_marker(folder: PathLike, files: Mapping[str, FileRecord] | None = None) -> None:
    """Mark ``folder`` (atomically), with a manifest of ``files`` (name → record)."""
    previous = read_marker(folder) or {}
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    marker = {
        "kind": MARKER_KIND,
        "created": previous.get("created", stamp),
        "files": {name: [r.as_dict()] for name, r in (files or {}).items()},
    }
    _write(Path(folder), marker)


def _write(folder: Path, marker: dict[str, Any]) -> None:
    text = json.dumps(marker, indent=1) + "\n"
    write_atomically(folder / MARKER, lambda f: f.write(text.encode()))


@contextlib.contextmanager
def recording(path: PathLike, record: FileRecord) -> Iterator[None]:
    """Around the rename that puts ``record``'s content at ``path``: when the folder is marked
    (with a manifest), the entry of ``path`` lists the old and new content during the block
    and only the new one after it. Nothing happens for the marker itself or an unmarked
    folder."""
    path = Path(path)
    marker = read_marker(path.parent)
    if path.name == MARKER or marker is None or not isinstance(marker.get("files"), dict):
        yield
        return
    old = recorded(marker, path.name)[-1:]
    marker["files"][path.name] = [r.as_dict() for r in (*old, record)]
    _write(path.parent, marker)
    yield
    marker["files"][path.name] = [record.as_dict()]
    _write(path.parent, marker)


__all__ = ["MARKER", "MARKER_KIND", "read_marker", "recorded", "recording", "write_marker"]
