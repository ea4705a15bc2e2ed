"""Every paper row runs end to end (tiny synthetic data) with the paper's settings."""

import json

import pytest

TINY = ["--dataset", "synthetic", "--epochs", "1", "--train-size", "200", "--test-size", "50",
        "--no-progress", "--threads", "1"]  # fmt: skip


@pytest.mark.parametrize(
    ("row", "extra", "lam", "units"),
    [
        ("mlp", [], [0.1], 3),
        ("lenet5", [], [0.1], 4),
        ("lenet5-sep", [], [10.0, 0.5, 0.1, 0.1], 4),
        ("wrn-28-10", ["--depth", "10", "--width", "1"], [0.001], 3),
    ],
)
def test_paper_row_trains_with_the_papers_settings(tmp_path, load_script, row, extra, lam, units):
    script = load_script("models/paper_networks.py")
    out = tmp_path / row
    assert script.run([row, "--out", str(out), *TINY, *extra]) == 0
    config = json.loads((out / "config.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert config["lam"] == lam and config["batch_size"] == (128 if row == "wrn-28-10" else 100)
    assert metrics["lam_per_parameter_nats"] == lam
    assert len(metrics["architecture"]) == units
    assert metrics["compact_flops"] <= metrics["dense_flops"]


def test_rows_use_the_papers_weight_decay_unless_a_precision_is_given(load_script):
    script = load_script("models/paper_networks.py")
    args = script.command("lenet5", [])
    assert args[args.index("--weight-decay") + 1] == "5e-4"
    args = script.command("lenet5", ["--weight-precision", "5e-4"])
    assert "--weight-decay" not in args and args[-2:] == ["--weight-precision", "5e-4"]


def test_unknown_row_is_a_clear_error(load_script):
    script = load_script("models/paper_networks.py")
    with pytest.raises(SystemExit, match="unknown row 'vgg'"):
        script.run(["vgg", "--out", "x"])
