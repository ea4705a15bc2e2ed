"""``l0bayes report SWEEP``: the sweep's table and Pareto figure agree with each network's
metrics; the per-epoch lines of a sweep name their network."""

import csv
import json
import shutil

import numpy as np
import pytest

from l0bayes.cli import main
from l0bayes.reporting import sweep_report
from l0bayes.reporting.sweep_report import (
    is_sweep_folder,
    make_sweep_report,
    network_row,
    pareto_front,
)
from l0bayes.training.config import TrainConfig
from l0bayes.training.sweep import sweep, sweep_configs

TINY = dict(dataset="synthetic", train_size=200, test_size=100, batch_size=50, epochs=1)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "sweep"
    base = TrainConfig(network="mnist-mlp", num_threads=1, progress=False, **TINY)
    cfgs = sweep_configs(base, [0.1, 30.0], [0], out)
    return out, sweep(cfgs)


def test_the_table_is_each_networks_metrics(swept, capsys):
    out, metrics = swept
    assert is_sweep_folder(out) and not is_sweep_folder(out / "lam-0.1_seed-0")
    assert main(["report", str(out)]) == 0
    assert f"sweep report written to {out / 'report' / 'report.md'}" in capsys.readouterr().out
    with (out / "report" / "tables" / "networks.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["network"] for r in rows] == ["lam-0.1_seed-0", "lam-30_seed-0"]
    for row, m in zip(rows, metrics, strict=True):
        assert float(row["test_error"]) == m["test_error"]
        assert float(row["nonzero_params"]) == m["nonzero_params"]
        assert float(row["compact_flops"]) == m["compact_flops"]
        assert row["architecture"] == m["architecture_string"]
    report = (out / "report" / "report.md").read_text()
    for m in metrics:
        assert f"{100 * m['test_error']:.2f}" in report
    assert f"l0bayes report {out / 'lam-30_seed-0'}" in report
    assert (out / "report" / "figures" / "pareto.png").stat().st_size > 10_000
    assert (out / "report" / "tables" / "networks.tex").is_file()


def test_an_unfinished_network_is_shown_from_its_history(swept, tmp_path):
    out, _ = swept
    copy = tmp_path / "sweep"
    shutil.copytree(out, copy)
    (copy / "lam-30_seed-0" / "metrics.json").unlink()
    row = network_row(copy / "lam-30_seed-0")
    with (copy / "lam-30_seed-0" / "history.csv").open() as f:
        last = list(csv.DictReader(f))[-1]
    assert not row["finished"] and row["test_error"] == float(last["test_error"])
    report = make_sweep_report(copy) / "report.md"
    assert "lam-30_seed-0 (unfinished)" in report.read_text()


def test_a_folder_without_runs_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "l0bayes report: error" in err


def test_pareto_front_is_the_non_dominated_points():
    rng = np.random.default_rng(0)
    cost, error = rng.integers(0, 5, 40).astype(float), rng.integers(0, 5, 40).astype(float)
    front = pareto_front(cost, error)
    for i in range(40):
        dominated = any(
            cost[j] <= cost[i]
            and error[j] <= error[i]
            and (cost[j], error[j]) != (cost[i], error[i])
            for j in range(40)
        )
        assert front[i] == (not dominated)


def test_each_epoch_line_of_a_sweep_names_its_network(tmp_path, capsys):
    """Issue 28: a sweep printed two unlabelled 'epoch 1:' lines per epoch."""
    base = TrainConfig(network="mnist-mlp", num_threads=1, progress=True, **TINY)
    sweep(sweep_configs(base, [0.1, 3.0], [0], tmp_path / "s"))
    lines = [line for line in capsys.readouterr().out.splitlines() if "epoch 1:" in line]
    assert sorted(line.split()[0] for line in lines) == ["lam-0.1_seed-0", "lam-3_seed-0"]
    saved = json.loads((tmp_path / "s" / "lam-3_seed-0" / "config.json").read_text())
    assert saved["lam"] == [3.0]


def test_a_sweep_report_stopped_midway_leaves_the_old_report(swept, tmp_path, monkeypatch):
    """The report is staged and exchanged as a whole: an error while it writes (here, in the
    figure) leaves the previous report untouched and nothing staged beside it; a file of the
    user's in the report folder is refused before anything is written."""
    out, _ = swept
    copy = tmp_path / "sweep"
    shutil.copytree(out, copy)
    make_sweep_report(copy)
    before = {p: p.read_bytes() for p in (copy / "report").rglob("*") if p.is_file()}
    (copy / "lam-30_seed-0" / "metrics.json").unlink()  # the next report would differ

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(sweep_report.plotting, "save_figure", broken)
    with pytest.raises(OSError, match="disk full"):
        make_sweep_report(copy)
    after = {p: p.read_bytes() for p in (copy / "report").rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in copy.iterdir() if "report" in p.name) == ["report"]
    monkeypatch.undo()
    (copy / "report" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="notes.txt"):
        make_sweep_report(copy)
    assert (copy / "report" / "notes.txt").read_text() == "mine"
