"""``l0bayes.training.manifest``: every atomic write into a marked folder is recorded, and a
kill at any instant of a write leaves a manifest that accepts the file on disk."""

from __future__ import annotations

import pytest

import l0bayes.training.manifest as manifest
from l0bayes.training.checkpoint import write_text
from l0bayes.training.manifest import MARKER, read_marker, recorded, write_marker
from l0bayes.training.safe_files import file_record


def test_writes_into_a_marked_folder_are_recorded_and_others_are_not(tmp_path):
    write_text(tmp_path / "notes.txt", "unmarked")
    assert read_marker(tmp_path) is None
    write_marker(tmp_path)
    write_text(tmp_path / "config.json", "{}")
    write_text(tmp_path / "config.json", '{"a": 1}')
    marker = read_marker(tmp_path)
    assert recorded(marker, "config.json") == [file_record(tmp_path / "config.json")]
    assert recorded(marker, "notes.txt") == []


@pytest.mark.parametrize("kill", ["before the rename", "after the rename"])
def test_a_write_killed_between_the_manifest_updates_leaves_either_file_accepted(
    tmp_path, monkeypatch, kill
):
    write_marker(tmp_path)
    write_text(tmp_path / "history.csv", "old")
    old = file_record(tmp_path / "history.csv")
    real = manifest._write
    calls = []

    def dying_write(folder, marker):  # the manifest's first update lists old and new
        calls.append(marker)
        if len(calls) == 1:
            real(folder, marker)
        if kill == "before the rename" or len(calls) == 2:
            raise KeyboardInterrupt  # the process dies here

    monkeypatch.setattr(manifest, "_write", dying_write)
    with pytest.raises(KeyboardInterrupt):
        write_text(tmp_path / "history.csv", "new")
    monkeypatch.undo()
    on_disk = file_record(tmp_path / "history.csv")
    assert (on_disk == old) == (kill == "before the rename")
    assert on_disk in recorded(read_marker(tmp_path), "history.csv")


def test_a_marker_that_is_not_ours_is_none(tmp_path):
    (tmp_path / MARKER).write_text('{"kind": "something else"}')
    assert read_marker(tmp_path) is None
    (tmp_path / MARKER).unlink()
    (tmp_path / MARKER).symlink_to("/dev/zero")
    assert read_marker(tmp_path) is None
