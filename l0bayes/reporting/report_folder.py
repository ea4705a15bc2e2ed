"""The folder a report writes (``RUN/report/``, ``SWEEP/report/``), replaced as a whole.

A report is built in a staged folder beside the old one and exchanged with it in one step
(:func:`~l0bayes.training.safe_files.staged_directory`), so that a report killed at any point
leaves the old report or the new one, never a mixture; and it refuses to replace a folder that
holds a link or a file of the user's (:func:`check_report_dir`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from l0bayes.training.safe_files import remove_stale_temporaries, staged_directory

#: What a report folder holds: ``report.md``, and the files of ``figures/`` and ``tables/``
#: by their suffixes.
REPORT_FILES = {".": (".md",), "figures": (".png", ".pdf"), "tables": (".csv", ".tex")}


def check_report_dir(path: Path) -> None:
    """Refuse to replace the report folder ``path`` unless it is missing or holds only what
    a report writes (:data:`REPORT_FILES`): a symbolic link there or inside it, or a file of
    the user's, is named, and nothing is changed.

    :raises ValueError: ``path`` is a link or a file, or holds something a report does not
        write.
    """
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not path.is_dir():
        kind = "a symbolic link" if path.is_symlink() else "not a folder"
        raise ValueError(f"{path} is {kind}: refusing to write a report there (remove it first)")
    links, foreign = [], []
    for entry in sorted(path.rglob("*")):
        rel = entry.relative_to(path)
        if entry.is_symlink():
            links.append(str(rel))
        elif entry.is_dir():
            if str(rel) not in REPORT_FILES:
                foreign.append(f"{rel}/")
        elif entry.suffix not in REPORT_FILES.get(str(rel.parent), ()):
            foreign.append(str(rel))
    if links:
        raise ValueError(
            f"{path} holds symbolic links ({', '.join(links)}): refusing to write through "
            "them (remove them first)"
        )
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if foreign[5:] else "")
        raise ValueError(
            f"{path} holds {shown}, which `l0bayes report` does not write; the report replaces "
            "the folder as a whole, so nothing was changed: move those out first"
        )


@contextmanager
def new_report_folder(path: Path) -> Iterator[Path]:
    """Yield an empty staged folder (with ``figures/`` and ``tables/``) that replaces the
    report folder ``path`` as a whole when the block ends without error; ``path`` is checked
    (:func:`check_report_dir`) before and again just before the exchange, and what a killed
    report left beside it is removed first. On an error ``path`` is left as it was."""
    path = Path(path)
    check_report_dir(path)
    remove_stale_temporaries(path.parent, path.name)
    with staged_directory(path) as out:
        for folder in ("figures", "tables"):
            (out / folder).mkdir()
        yield out
        check_report_dir(path)  # it may have changed meanwhile


__all__ = ["REPORT_FILES", "check_report_dir", "new_report_folder"]
