"""Run directories from someone else, and ordinary mistakes: no code runs from a checkpoint, no
file outside RUN is written, no file of the user's is deleted, one writer at a time, flags on
``--resume`` mean something, and every mistake is a one-line error (exit 2)."""

from __future__ import annotations

import errno
import json
import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import l0bayes.training.safe_files as safe_files
from l0bayes.cli import main
from l0bayes.training.checkpoint import TEMP_PREFIX, load_checkpoint, rng_state, set_rng_state
from l0bayes.training.config import TrainConfig
from l0bayes.training.manifest import write_marker
from l0bayes.training.run_directory import (
    MARKER,
    RUN_FILES,
    RunDirectoryError,
    prepare_new_run,
    run_lock,
)
from l0bayes.training.safe_files import file_record
from l0bayes.training.trainer import train

SMALL = [
    "--dataset", "synthetic", "--train-size", "200", "--test-size", "100",
    "--epochs", "1", "--no-progress", "--threads", "1",
]  # fmt: skip


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished one-epoch MLP run; tests copy it before changing anything."""
    out = tmp_path_factory.mktemp("runs") / "run"
    cfg = TrainConfig(
        network="mnist-mlp",
        out=str(out),
        epochs=1,
        dataset="synthetic",
        train_size=200,
        test_size=100,
        progress=False,
        num_threads=1,
    )
    train(cfg)
    return out


def copy_run(run: Path, tmp_path: Path, name: str = "copy") -> Path:
    dest = tmp_path / name
    shutil.copytree(run, dest)
    return dest


def forge_manifest(run: Path) -> None:
    """Record the run's files as they are now in its marker: what someone who hands over a
    crafted run does (the manifest proves the files are as written, not who wrote them)."""
    write_marker(run, {n: file_record(run / n) for n in RUN_FILES if (run / n).exists()})


def one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"l0bayes {command}: error: "), err
    return err


# ----------------------------------------------------------------- 1. no code from a file
class _Payload:
    """Unpickling this object would create ``self.path`` (what a crafted checkpoint does)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def plant_malicious_checkpoint(run: Path, marker: Path) -> None:
    state = load_checkpoint(run / "checkpoint.pt")
    state["run"]["payload"] = _Payload(marker)
    torch.save(state, run / "checkpoint.pt")
    forge_manifest(run)
    assert not marker.exists()


def test_a_malicious_checkpoint_is_never_executed_by_report(finished_run, tmp_path, capsys):
    run = copy_run(finished_run, tmp_path)
    marker = tmp_path / "pwned"
    plant_malicious_checkpoint(run, marker)
    assert main(["report", str(run), "--samples", "2"]) == 2
    err = one_line_error(capsys, "report")
    assert "checkpoint.pt" in err and "refused" in err
    assert not marker.exists()


def test_a_malicious_checkpoint_is_never_executed_on_resume(finished_run, tmp_path, capsys):
    run = copy_run(finished_run, tmp_path)
    marker = tmp_path / "pwned"
    plant_malicious_checkpoint(run, marker)
    assert main(["train", "mnist-mlp", "--out", str(run), "--resume", "--epochs", "2"]) == 2
    assert "refused" in one_line_error(capsys, "train")
    assert not marker.exists()


def test_rng_state_is_plain_data_and_round_trips():
    torch.manual_seed(3), np.random.seed(4), random.seed(5)
    state = rng_state()
    expected = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    path_state = {"rng": state}
    torch.save(path_state, "/dev/null")  # plain data pickles without custom classes
    np.random.rand(7), random.random(), torch.rand(2)  # move every generator on
    set_rng_state(state)
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert [random.random() for _ in range(3)] == expected[2]


def test_a_checkpoint_of_an_earlier_version_still_resumes(finished_run, tmp_path):
    """Earlier checkpoints stored numpy's state as an array: read with numpy's array globals
    allow-listed, and nothing else."""
    run = copy_run(finished_run, tmp_path)
    state = load_checkpoint(run / "checkpoint.pt")
    state["rng"]["numpy"] = np.random.get_state()
    state["rng"]["python"] = random.getstate()
    torch.save(state, run / "checkpoint.pt")
    (run / MARKER).unlink()  # and it has no marker: recognised by config.json + checkpoint.pt
    metrics = train(TrainConfig.from_run(run, epochs=2), resume=True)
    assert metrics["epochs"] == 2
    assert (run / MARKER).is_file()


def test_a_torch_file_that_is_not_a_checkpoint_is_named(finished_run, tmp_path, capsys):
    run = copy_run(finished_run, tmp_path)
    torch.save({"weights": torch.zeros(3)}, run / "checkpoint.pt")
    forge_manifest(run)
    assert main(["train", "mnist-mlp", "--out", str(run), "--resume"]) == 2
    err = one_line_error(capsys, "train")
    assert "checkpoint.pt is not an l0bayes checkpoint" in err


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", r"config.json is not valid JSON"),
        ("[1, 2]", r"config.json does not hold a JSON object"),
        ('{"network": "mnist-mlp", "epochs": "many"}', r"config.json holds an invalid"),
        (b"\xff\xfe\x00binary", r"config.json is not a text file"),
    ],
)
def test_a_broken_config_is_named_on_resume_and_report(
    finished_run, tmp_path, capsys, content, match
):
    run = copy_run(finished_run, tmp_path)
    path = run / "config.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    forge_manifest(run)
    assert main(["train", "mnist-mlp", "--out", str(run), "--resume"]) == 2
    assert re.search(match, one_line_error(capsys, "train"))
    assert main(["report", str(run)]) == 2
    assert re.search(match, one_line_error(capsys, "report"))


def test_a_binary_history_is_named_by_report(finished_run, tmp_path, capsys):
    run = copy_run(finished_run, tmp_path)
    (run / "history.csv").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    assert main(["report", str(run), "--samples", "2"]) == 2
    assert "history.csv is not a readable history" in one_line_error(capsys, "report")


# ------------------------------------------------------- 2. nothing of the user's is touched
def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_train_refuses_a_folder_of_the_users_and_changes_nothing(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json").write_text('{"mine": true}')
    (folder / "history.csv").write_text("my,own\n1,2\n")
    (folder / "notes.txt").write_text("do not lose")
    (folder / ".draft.tmp").write_text("hidden")
    before = snapshot(folder)
    assert main(["train", "mnist-mlp", "--out", str(folder), *SMALL]) == 2
    err = one_line_error(capsys, "train")
    assert "is not an l0bayes run directory" in err and "nothing was changed" in err
    assert snapshot(folder) == before


def test_only_temporaries_of_ours_are_removed(finished_run, tmp_path, capsys):
    """Files of the user's in a run refuse it, untouched (below); once they are moved out,
    what a killed write of ours left (a file or a staged folder) is cleared by the resume."""
    run = copy_run(finished_run, tmp_path)
    users = [run / ".config.json.abc.tmp", run / ".notes.tmp", run / "scratch.tmp"]
    for path in users:
        path.write_text("the user's")
    ours = run / f"{TEMP_PREFIX}checkpoint.pt.x1y2.tmp"
    ours.write_bytes(b"half a checkpoint")
    staged = run / f"{TEMP_PREFIX}report.abc.tmp"
    (staged / "figures").mkdir(parents=True)
    argv = ["train", "mnist-mlp", "--out", str(run), "--resume", "--epochs", "2"]
    assert main([*argv, "--no-progress"]) == 2
    err = one_line_error(capsys, "train")
    assert "which l0bayes does not write" in err and ".notes.tmp" in err
    assert all(path.read_text() == "the user's" for path in users) and ours.exists()
    for path in users:
        path.rename(tmp_path / path.name)
    train(TrainConfig.from_run(run, epochs=2), resume=True)
    assert not ours.exists() and not staged.exists()
    assert all((tmp_path / p.name).read_text() == "the user's" for p in users)


# ------------------------------------------- 2b. a marker alone does not make a folder ours
def users_folder_with_a_marker(tmp_path: Path, marker: str) -> Path:
    """The issue's case: a stale or forged marker beside the user's own files."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json").write_text('{"network": "mnist-mlp", "mine": true}')
    (folder / "history.csv").write_text("my,own\n1,2\n")
    if marker == "copied":  # a marker of a real run, copied (it records other files)
        prepare_new_run(tmp_path / "real")
        shutil.copy(tmp_path / "real" / MARKER, folder / MARKER)
    else:  # written by hand, or left by an l0bayes version before the manifest
        (folder / MARKER).write_text('{"kind": "l0bayes run directory"}')
    return folder


@pytest.mark.parametrize("marker", ["copied", "old"])
@pytest.mark.parametrize("notes", [True, False])
def test_a_marker_beside_the_users_files_is_refused_and_nothing_changes(
    tmp_path, capsys, marker, notes
):
    folder = users_folder_with_a_marker(tmp_path, marker)
    if notes:
        (folder / "notes.txt").write_text("do not lose")
    before = snapshot(folder)
    for flags in (SMALL, ["--resume"]):
        assert main(["train", "mnist-mlp", "--out", str(folder), *flags]) == 2
        err = one_line_error(capsys, "train")
        if notes:
            assert "notes.txt, which l0bayes does not write" in err
        elif marker == "copied":
            assert "config.json, history.csv that l0bayes did not write" in err
        else:  # an old marker: the files are not shaped as l0bayes writes them
            assert "history.csv that l0bayes did not write" in err
        assert "nothing was changed" in err
        assert snapshot(folder) == before


def test_a_run_file_changed_by_hand_refuses_the_run(finished_run, tmp_path, capsys):
    run = copy_run(finished_run, tmp_path)
    (run / "history.csv").write_text((run / "history.csv").read_text() + "my,own,row\n")
    before = snapshot(run)
    assert main(["train", "mnist-mlp", "--out", str(run), "--resume", "--epochs", "2"]) == 2
    assert "holds history.csv that l0bayes did not write" in one_line_error(capsys, "train")
    assert snapshot(run) == before


def test_the_manifest_records_every_file_of_a_run(finished_run):
    from l0bayes.training.manifest import read_marker, recorded

    marker = read_marker(finished_run)
    for name in RUN_FILES:
        assert recorded(marker, name) == [file_record(finished_run / name)], name


def test_an_old_run_without_a_manifest_resumes_and_gets_one(finished_run, tmp_path):
    from l0bayes.training.manifest import read_marker

    run = copy_run(finished_run, tmp_path)
    (run / MARKER).write_text('{"kind": "l0bayes run directory", "created": "2026"}')
    train(TrainConfig.from_run(run, epochs=2), resume=True)
    assert set(read_marker(run)["files"]) == set(RUN_FILES)


def test_a_second_train_cannot_start_over_a_run_finished_meanwhile(tmp_path):
    """Item 2: "no checkpoint here" is checked again once the lock is held. The second trainer
    passes the first check while the first run is in progress (no checkpoint yet), and takes
    the lock only after the first one finished."""
    from l0bayes.training.trainer import Trainer

    cfg = TrainConfig(
        network="mnist-mlp", out=str(tmp_path / "run"), epochs=1, dataset="synthetic",
        train_size=200, test_size=100, progress=False, num_threads=1,
    )  # fmt: skip
    first, second = Trainer(cfg), Trainer(cfg)  # both checked: an empty folder
    first.run()
    finished = snapshot(tmp_path / "run")
    with pytest.raises(RunDirectoryError, match="already holds a run; pass --resume"):
        second.run()
    assert snapshot(tmp_path / "run") == finished


def test_a_new_run_goes_into_a_new_or_empty_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert prepare_new_run(empty) == empty and (empty / MARKER).is_file()
    assert (prepare_new_run(tmp_path / "a" / "b") / MARKER).is_file()


@pytest.mark.parametrize("target", ["report", "report.md"])
def test_report_never_writes_through_a_symlink(finished_run, tmp_path, capsys, target):
    run = copy_run(finished_run, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "report.md"
    victim.write_text("precious")
    if target == "report":
        (run / "report").symlink_to(outside, target_is_directory=True)
    else:
        (run / "report").mkdir()
        (run / "report" / "report.md").symlink_to(victim)
    assert main(["report", str(run), "--samples", "2"]) == 2
    assert "symbolic link" in one_line_error(capsys, "report")
    assert victim.read_text() == "precious"
    assert sorted(p.name for p in outside.iterdir()) == ["report.md"]


def test_a_second_writer_is_refused_and_told_who_holds_the_run(finished_run, tmp_path, capsys):
    run = copy_run(finished_run, tmp_path)
    with run_lock(run, command="l0bayes train (test)"):
        assert main(["train", "mnist-mlp", "--out", str(run), "--resume", "--epochs", "2"]) == 2
        err = one_line_error(capsys, "train")
        assert "is in use by l0bayes train (test)" in err and f"process {os.getpid()}" in err
        with pytest.raises(RunDirectoryError, match="in use"), run_lock(run):
            pass
    with run_lock(run):  # released when the holder is done (also when it dies: flock)
        pass


# ----------------------------------------------------------- 3. flags on --resume mean something
@pytest.mark.parametrize(
    "flags, named",
    [
        (["--lam", "5"], "--lam 5.0 (the run has 0.1)"),
        (["--seed", "9"], "--seed 9 (the run has 0)"),
        (["--lr", "0.5"], "--lr 0.5"),
        (["--kl-mode", "bayes"], "--kl-mode bayes"),
        (["--no-clamp"], "--clamp-log-alpha False"),
        # the run has --weight-decay (the default): the other of the pair is named, not "both"
        (["--weight-precision", "3"], "--weight-precision 3.0 (the run has None)"),
    ],
)
def test_resume_with_a_different_setting_is_an_error_naming_it(
    finished_run, tmp_path, capsys, flags, named
):
    run = copy_run(finished_run, tmp_path)
    before = snapshot(run)
    assert main(["train", "mnist-mlp", "--out", str(run), "--resume", *flags]) == 2
    err = one_line_error(capsys, "train")
    assert named in err and "--resume keeps the run's settings" in err
    assert snapshot(run) == before


def test_resume_with_the_same_settings_is_fine(finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path)
    argv = ["train", "mnist-mlp", "--out", str(run), "--resume", "--lam", "0.1", "--seed", "0"]
    assert main([*argv, "--epochs", "2", "--no-progress", "--dataset", "synthetic"]) == 0


def test_resume_of_another_network_is_refused(finished_run, tmp_path, capsys):
    run = copy_run(finished_run, tmp_path)
    assert main(["train", "lenet5", "--out", str(run), "--resume"]) == 2
    assert "is a mnist-mlp run, not lenet5" in one_line_error(capsys, "train")


def test_resumable_settings_are_applied_and_recorded(finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path)
    argv = ["train", "mnist-mlp", "--out", str(run), "--resume", "--no-progress"]
    assert main([*argv, "--epochs", "2", "--checkpoint-every", "3", "--threads", "1"]) == 0
    saved = json.loads((run / "config.json").read_text())
    assert (saved["epochs"], saved["checkpoint_every"], saved["num_threads"]) == (2, 3, 1)
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["config"]["epochs"] == 2 and state["run"]["epoch"] == 2


# ------------------------------------------------------------------- 5. one-line errors
@pytest.mark.parametrize(
    "flags, match",
    [
        (["--threads", "-2"], r"--threads must be a positive integer, got -2"),
        (["--threads", "0"], r"--threads must be a positive integer, got 0"),
        (["--seed", "-1"], r"--seed must be an integer in \[0, 4294967295\], got -1"),
        (["--weight-decay", "1e308"], r"--weight-decay 1e\+308 times N = \d+ data points"),
        (["--seed", str(10**20)], r"--seed must be an integer in \[0, 4294967295\], got 10+"),
    ],
)
def test_bad_train_numbers_are_one_line_errors(tmp_path, capsys, flags, match):
    out = tmp_path / "run"
    assert main(["train", "mnist-mlp", "--out", str(out), *SMALL, *flags]) == 2
    assert re.search(match, one_line_error(capsys, "train"))
    assert not out.exists()  # refused before the run folder was made


def test_out_that_is_a_file_or_below_one_is_a_one_line_error(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    assert main(["train", "mnist-mlp", "--out", str(afile), *SMALL]) == 2
    assert "is a file, not a directory" in one_line_error(capsys, "train")
    assert afile.read_text() == "mine"
    assert main(["train", "mnist-mlp", "--out", "/dev/null/run", *SMALL]) == 2
    assert "cannot create --out /dev/null/run" in one_line_error(capsys, "train")


def test_out_on_a_read_only_file_system_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(safe_files.tempfile, "mkstemp", read_only)
    out = tmp_path / "ro"
    out.mkdir()
    assert main(["train", "mnist-mlp", "--out", str(out), *SMALL]) == 2
    err = one_line_error(capsys, "train")
    assert f"cannot write in --out {out}: Read-only file system" in err


def write(tmp: Path, content: str | bytes) -> str:
    path = tmp / "data.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


ROWS = "".join(f"{i},{i % 3},{2 * i + 1}\n" for i in range(12))


@pytest.mark.parametrize(
    "content, flags, match",
    [
        (b"\x89PNG\r\n\x1a\n\xff\xfe\xfa", [], r"data.csv is not a text CSV file"),
        ("a,b,y\x00\n1,2,3\n", [], r"data.csv is not a readable CSV file"),
        ("a,y,y\n" + ROWS, [], r"more than once: \['y'\]"),
        ("a,a,y\n" + ROWS, [], r"more than once: \['a'\]"),
        (
            "a,b,y\n" + ROWS,
            ["--penalty", "bic", "--prior-inclusion", "0.2"],
            r"--prior-inclusion sets the prior of --penalty bayes",
        ),
    ],
)
def test_bad_csv_and_option_combinations_are_one_line_errors(
    tmp_path, capsys, content, flags, match
):
    assert main(["select", write(tmp_path, content), "--target", "y", *flags]) == 2
    assert re.search(match, one_line_error(capsys, "select"))
