"""``l0bayes.reporting.report``: a training run turned into a report folder."""

import argparse
import csv
import json
import os
import re
import shutil

import pytest
import torch

import l0bayes.reporting.report as report
from l0bayes.training.config import TrainConfig
from l0bayes.training.trainer import train


# ----------------------------------------------------------------------------- run reports
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 2-epoch MNIST-MLP run on 200 synthetic images (about a second)."""
    out = tmp_path_factory.mktemp("runs") / "mlp"
    cfg = TrainConfig(
        network="mnist-mlp",
        out=str(out),
        epochs=2,
        dataset="synthetic",
        train_size=200,
        test_size=60,
        num_threads=1,
        progress=False,
    )
    metrics = train(cfg)
    return out, metrics


def report_cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="l0bayes")
    sub = parser.add_subparsers(dest="command", required=True)
    report.add_report_parser(sub)
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def tiny_report(tiny_run):
    """The tiny run's report, made through the ``report`` subcommand."""
    run, _ = tiny_run
    args = report_cli(["report", str(run), "--samples", "4", "--batch-size", "25"])
    return args.handler(args)


def test_report_writes_markdown_figures_and_tables(tiny_run, tiny_report):
    run, metrics = tiny_run
    out = tiny_report
    assert out == run / "report"
    md = (out / "report.md").read_text()
    for heading in ("## Metrics", "## Architecture", "## Posterior inclusion probabilities"):
        assert heading in md
    assert "## Bayesian model averaging vs the deterministic network" in md
    assert "Data not available" not in md
    links = re.findall(r"\]\(([^)]+)\)", md)
    for stem in ("training_curves", "active_units", "pips", "input_gates", "reliability"):
        assert f"figures/{stem}.png" in links and f"figures/{stem}.pdf" in links
    for link in links:
        assert (out / link).is_file(), link
    for png in (out / "figures").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
    for name in ("metrics", "architecture", "costs", "bma"):
        assert (out / "tables" / f"{name}.tex").read_text().startswith(r"\begin{tabular}")
    with (out / "tables" / "architecture.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(float(r["gates"])) for r in rows] == [784, 300, 100]
    with (out / "tables" / "pips.csv").open(newline="") as fh:
        assert sum(1 for _ in csv.DictReader(fh)) == 784 + 300 + 100
    with (out / "tables" / "bma.csv").open(newline="") as fh:
        bma = {r["predictor"]: r for r in csv.DictReader(fh)}
    # the checkpoint's deterministic network, re-evaluated: the run's own test error
    assert float(bma["deterministic"]["error"]) == pytest.approx(metrics["test_error"])
    assert "matches `metrics.json`" in md


def test_report_without_the_data_set_keeps_what_needs_no_data(tiny_run, tmp_path):
    run, _ = tiny_run
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("checkpoint.pt", "history.csv", "metrics.json"):
        shutil.copy(run / name, copy / name)
    config = json.loads((run / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "dataset": "mnist"}))
    (tmp_path / "empty").mkdir()
    out = report.make_report(copy, num_samples=2, data_dir=tmp_path / "empty")
    md = (out / "report.md").read_text()
    assert "**Data not available**: the mnist data set could not be loaded" in md
    assert (out / "figures" / "pips.png").is_file() and (out / "tables" / "costs.tex").is_file()
    assert not (out / "figures" / "reliability.png").exists()
    assert not (out / "tables" / "bma.csv").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
def test_report_on_the_gpu_re_evaluates_the_runs_error(tiny_run, tmp_path):
    run, metrics = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("report"))
    out = report.make_report(copy, num_samples=4, batch_size=25, device="cuda")
    with (out / "tables" / "bma.csv").open(newline="") as fh:
        bma = {r["predictor"]: r for r in csv.DictReader(fh)}
    assert float(bma["deterministic"]["error"]) == pytest.approx(metrics["test_error"])
    assert float(bma["bma"]["nll"]) > 0 and (out / "figures" / "pips.png").is_file()


def test_bad_run_directories_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run directory at"):
        report.make_report(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="has no config.json: not a run directory"):
        report.make_report(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="has no checkpoint.pt"):
        report.make_report(tmp_path)
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json is not valid JSON"):
        report.make_report(tmp_path)
    args = report_cli(["report", str(tmp_path / "missing")])
    with pytest.raises(FileNotFoundError, match="no run directory"):
        report.run_report_command(args)


def test_report_rejects_bad_arguments(tiny_run):
    run, _ = tiny_run
    with pytest.raises(ValueError, match="num_samples must be a positive integer"):
        report.make_report(run, num_samples=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        report.make_report(run, batch_size=0)


# ----------------------------------------------------------------------------- progress
def copy_run(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("report"))
    return copy


@pytest.mark.parametrize("hide", [False, True])
def test_report_shows_its_stages_unless_no_progress(tiny_run, tmp_path, capsys, monkeypatch, hide):
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # the bar is for terminals
    copy = copy_run(tiny_run[0], tmp_path)
    argv = ["report", str(copy), "--samples", "2", "--threads", "1"]
    args = report_cli(argv + ["--no-progress"] * hide)
    args.handler(args)
    captured = capsys.readouterr()
    assert "report written to" in captured.out
    if hide:
        assert captured.err == ""
    else:
        for stage in report.STAGES:
            assert stage in captured.err
        assert "5/5 stages" in captured.err


def test_report_cli_errors_are_one_line(tiny_run, tmp_path, capsys):
    from l0bayes.cli import main

    copy = copy_run(tiny_run[0], tmp_path)
    assert main(["report", str(copy), "--threads", "0", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("l0bayes report: error: ") and len(err.strip().splitlines()) == 1
    assert "--threads must be a positive integer" in err


def test_a_relative_data_dir_is_saved_absolute_and_found_from_elsewhere(
    tmp_path, monkeypatch, capsys
):
    """Issue 28: config.json kept `--data-dir data` as given, so `l0bayes report` run from
    another folder looked in the wrong place and left out the test set."""
    from l0bayes.cli import main

    (tmp_path / "work" / "data").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    argv = ["train", "mnist-mlp", "--out", "run", "--dataset", "synthetic", "--data-dir", "data"]
    sizes = ["--train-size", "100", "--test-size", "40", "--epochs", "1", "--no-progress"]
    assert main([*argv, *sizes]) == 0
    saved = json.loads((tmp_path / "work" / "run" / "config.json").read_text())
    assert saved["data_dir"] == str(tmp_path / "work" / "data")
    asked = []
    original = report.load_dataset

    def spy(cfg):
        asked.append(cfg.data_dir)
        return original(cfg)

    monkeypatch.setattr(report, "load_dataset", spy)
    monkeypatch.chdir(tmp_path / "elsewhere")
    out = report.make_report(tmp_path / "work" / "run", num_samples=2)
    assert asked == [str(tmp_path / "work" / "data")]
    assert "Data not available" not in (out / "report.md").read_text()


# ----------------------------------------------------------------------------- nothing lost
def tree(folder) -> dict[str, bytes]:
    """Every file under ``folder`` by its relative path, with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_a_hard_link_in_the_report_folder_is_not_written_through(tiny_run, tiny_report, tmp_path):
    copy = copy_run(tiny_run[0], tmp_path)
    shutil.copytree(tiny_report, copy / "report")
    mine = tmp_path / "my_table.csv"
    mine.write_text("my own numbers\n")
    target = copy / "report" / "tables" / "metrics.csv"
    target.unlink()
    os.link(mine, target)  # the report's table and the user's file are one inode
    report.make_report(copy, num_samples=2)
    assert mine.read_text() == "my own numbers\n"
    assert target.read_text().startswith("quantity,value")


def test_a_fifo_in_the_report_folder_does_not_hang_the_report(tiny_run, tiny_report, tmp_path):
    copy = copy_run(tiny_run[0], tmp_path)
    shutil.copytree(tiny_report, copy / "report")
    fifo = copy / "report" / "figures" / "pips.pdf"
    fifo.unlink()
    os.mkfifo(fifo)
    report.make_report(copy, num_samples=2)  # a hang here is the bug
    assert fifo.read_bytes()[:5] == b"%PDF-"


@pytest.mark.parametrize("where", ["report.md", "notes.txt", "figures/mine.txt", "drafts/a.md"])
def test_files_of_the_users_in_the_report_folder_refuse_it(
    tiny_run, tiny_report, tmp_path, capsys, where
):
    from l0bayes.cli import main

    copy = copy_run(tiny_run[0], tmp_path)
    shutil.copytree(tiny_report, copy / "report")
    path = copy / "report" / where
    if where == "report.md":  # a name the report writes, as a symbolic link to elsewhere
        outside = tmp_path / "outside.md"
        outside.write_text("precious")
        path.unlink()
        path.symlink_to(outside)
    else:
        path.parent.mkdir(exist_ok=True)
        path.write_text("mine")
    before = tree(copy / "report")
    assert main(["report", str(copy), "--samples", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("l0bayes report: error: ") and len(err.strip().splitlines()) == 1
    assert ("symbolic link" if where == "report.md" else "does not write") in err
    assert tree(copy / "report") == before


def _fifo(path):
    path.unlink(missing_ok=True)
    os.mkfifo(path)


def _dev_zero(path):
    path.unlink(missing_ok=True)
    path.symlink_to("/dev/zero")


def _huge(path):
    with path.open("r+b" if path.exists() else "wb") as f:
        f.truncate(report.RECORD_LIMIT + 1)  # sparse: no disk used


@pytest.mark.parametrize("name", ["metrics.json", "history.csv", "config.json", "checkpoint.pt"])
@pytest.mark.parametrize("spoil", [_fifo, _dev_zero, _huge], ids=["fifo", "dev-zero", "huge"])
def test_run_files_that_are_not_regular_files_of_bounded_size_are_refused(
    tiny_run, tmp_path, capsys, monkeypatch, name, spoil
):
    import l0bayes.training.checkpoint as checkpoint
    from l0bayes.cli import main

    copy = copy_run(tiny_run[0], tmp_path)
    monkeypatch.setattr(checkpoint, "CHECKPOINT_LIMIT", report.RECORD_LIMIT)  # not 16 GiB here
    spoil(copy / name)
    assert main(["report", str(copy), "--samples", "2", "--no-progress"]) == 2  # no hang
    err = capsys.readouterr().err
    assert err.startswith("l0bayes report: error: ") and len(err.strip().splitlines()) == 1
    assert name in err and re.search("FIFO|device|larger than", err), err
    assert not (copy / "report").exists()


STAGED = ".l0bayes-tmp.report.*"


def wait_for_staging(run, alive) -> bool:
    """Wait until a report stages its folder (it is writing); ``False`` if it ended first."""
    import time

    while not list(run.glob(STAGED)):
        if not alive():
            return False
        time.sleep(0.005)
    return True


def test_report_killed_at_random_leaves_the_old_report_or_the_new_one(
    tiny_run, tiny_report, tmp_path
):
    """SIGKILL at random moments while a report writes (a forked copy of this process, to
    spare the start-up): the folder holds the complete old report or the complete new one."""
    import multiprocessing
    import random
    import time

    copy = copy_run(tiny_run[0], tmp_path)
    shutil.copytree(tiny_report, tmp_path / "old")  # the old report: another one's, as bytes
    old = tree(tmp_path / "old")
    tic = time.monotonic()
    report.make_report(copy, num_samples=3, seed=1)
    window = time.monotonic() - tic
    new = tree(copy / "report")
    rng = random.Random(0)
    for _ in range(2):
        shutil.rmtree(copy / "report")
        shutil.copytree(tmp_path / "old", copy / "report")
        child = multiprocessing.get_context("fork").Process(
            target=report.make_report, args=(copy,), kwargs=dict(num_samples=3, seed=1)
        )
        child.start()
        if wait_for_staging(copy, child.is_alive):
            time.sleep(rng.uniform(0.0, 1.2 * window))
        child.kill()
        child.join()
        assert tree(copy / "report") in (old, new), "a mix of the old and the new report"


@pytest.mark.slow
def test_report_killed_twenty_times_leaves_the_old_report_or_the_new_one(tiny_run, tmp_path):
    """The same with the command itself, killed 20 times while it writes (from the appearance
    of its staged folder to a little after its end), then run to the end."""
    import random
    import subprocess
    import sys
    import time

    run = copy_run(tiny_run[0], tmp_path)
    argv = [sys.executable, "-m", "l0bayes.cli", "report", str(run), "--no-progress"]
    argv += ["--threads", "1", "--samples"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def start() -> subprocess.Popen:
        return subprocess.Popen([*argv, "3", "--seed", "1"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    subprocess.run([*argv, "2", "--seed", "0"], check=True, env=env, capture_output=True)
    old = tree(run / "report")
    shutil.copytree(run / "report", tmp_path / "old")
    proc = start()
    assert wait_for_staging(run, lambda: proc.poll() is None)
    tic = time.monotonic()
    assert proc.wait() == 0
    window = time.monotonic() - tic
    new = tree(run / "report")
    rng = random.Random(1)
    left = []
    for _ in range(20):
        shutil.rmtree(run / "report")
        shutil.copytree(tmp_path / "old", run / "report")
        proc = start()
        if wait_for_staging(run, lambda p=proc: p.poll() is None):
            time.sleep(rng.uniform(0.0, 1.3 * window))
        proc.kill()
        proc.wait()
        now = tree(run / "report")
        assert now in (old, new), "a mix of the old and the new report"
        left.append("new" if now == new else "old")
    print(f"the kills left the old report {left.count('old')} times, the new one "
          f"{left.count('new')} times")  # fmt: skip
    subprocess.run([*argv, "3", "--seed", "1"], check=True, env=env, capture_output=True)
    assert tree(run / "report") == new and not list(run.glob(".l0bayes-tmp.*"))
