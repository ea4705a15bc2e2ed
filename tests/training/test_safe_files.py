"""``l0bayes.training.safe_files``: atomic writes (no write through a link, no FIFO opened),
bounded reads of regular files only, folders replaced as a whole, only our temporaries
removed."""

from __future__ import annotations

import fcntl
import os

import pytest

import l0bayes.training.safe_files as safe_files
from l0bayes.training.safe_files import (
    TEMP_PREFIX,
    file_record,
    read_limited,
    remove_stale_temporaries,
    staged_directory,
    write_atomically,
)


def test_an_atomic_write_replaces_a_hard_link_and_a_fifo_without_writing_through(tmp_path):
    mine = tmp_path / "mine.txt"
    mine.write_text("precious")
    os.link(mine, tmp_path / "table.csv")
    os.mkfifo(tmp_path / "figure.pdf")
    for name in ("table.csv", "figure.pdf"):
        record = write_atomically(tmp_path / name, lambda f: f.write(b"new"))
        assert (tmp_path / name).read_bytes() == b"new" and record == file_record(tmp_path / name)
    assert mine.read_text() == "precious"
    assert not list(tmp_path.glob(f"{TEMP_PREFIX}*"))


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    (tmp_path / "a.json").write_text("old")

    def fail(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_atomically(tmp_path / "a.json", fail)
    assert (tmp_path / "a.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_reads_take_regular_files_of_bounded_size_only(tmp_path):
    (tmp_path / "ok").write_bytes(b"12345")
    assert read_limited(tmp_path / "ok", 5) == b"12345"
    os.mkfifo(tmp_path / "fifo")  # a hang, if it were opened for a blocking read
    (tmp_path / "zero").symlink_to("/dev/zero")
    with open(tmp_path / "big", "wb") as f:
        f.truncate(1 << 30)  # sparse
    for name, match in [("fifo", "is a FIFO"), ("zero", "is a device"), ("big", "1 GiB, larger")]:
        with pytest.raises(ValueError, match=match):
            read_limited(tmp_path / name, 1 << 20, "history")
    with pytest.raises(ValueError, match="is a directory"):
        read_limited(tmp_path, 10)
    with pytest.raises(ValueError, match=r"is 5 bytes, larger than any l0bayes writes \(4 bytes\)"):
        read_limited(tmp_path / "ok", 4)
    with pytest.raises(FileNotFoundError, match="no history at"):
        read_limited(tmp_path / "absent", 4, "history")


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two renames"])
def test_a_staged_folder_replaces_the_old_one_as_a_whole(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(safe_files, "_exchange", lambda a, b: False)
    final = tmp_path / "report"
    final.mkdir()
    (final / "old.md").write_text("old")
    with staged_directory(final) as stage:
        (stage / "new.md").write_text("new")
        assert (final / "old.md").exists()  # the old folder stays whole while the new is built
    assert sorted(p.name for p in final.iterdir()) == ["new.md"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # the old one removed
    with pytest.raises(RuntimeError), staged_directory(final) as stage:
        (stage / "half.md").write_text("half")
        raise RuntimeError("killed")
    assert sorted(p.name for p in final.iterdir()) == ["new.md"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_only_stale_temporaries_of_ours_are_removed(tmp_path):
    users = [tmp_path / n for n in (".notes.tmp", "scratch.tmp", ".l0bayes-tmp-not-ours")]
    for path in users:
        path.write_text("the user's")
    stale_file = tmp_path / f"{TEMP_PREFIX}checkpoint.pt.x1.tmp"
    stale_file.write_bytes(b"half")
    stale_dir = tmp_path / f"{TEMP_PREFIX}report.x2.tmp"
    stale_dir.mkdir()
    live_dir = tmp_path / f"{TEMP_PREFIX}report.x3.tmp"
    live_dir.mkdir()
    fd = os.open(live_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a report still building it
        assert remove_stale_temporaries(tmp_path, "report") == [stale_dir]
        assert stale_file.exists()  # another destination's: left alone when a name is given
        assert remove_stale_temporaries(tmp_path) == [stale_file]
        assert live_dir.is_dir()
    finally:
        os.close(fd)
    assert all(path.read_text() == "the user's" for path in users)
