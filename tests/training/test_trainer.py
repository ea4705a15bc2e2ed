"""The training engine: metrics and run files, bitwise resume (also after SIGKILL), SIGINT,
the trace ELBO, the sparsity target and clear errors. All on the synthetic image set."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from l0bayes.data.images import epoch_order, synthetic_images
from l0bayes.nn.networks import get_network
from l0bayes.training.averaging import ParameterEMA
from l0bayes.training.checkpoint import load_checkpoint
from l0bayes.training.config import TrainConfig
from l0bayes.training.datasets import load_dataset
from l0bayes.training.trainer import Trainer, build_network, load_network, train

ISSUE_METRICS = {
    "test_error",
    "architecture",
    "expected_flops",
    "compact_flops",
    "dense_flops",
    "nonzero_params",
    "train_seconds",
    "epochs",
    "seed",
    "device",
    "torch_version",
}


def config(tmp_path: Path, name: str = "run", **kwargs) -> TrainConfig:
    base = dict(
        network="mnist-mlp",
        out=str(tmp_path / name),
        epochs=2,
        dataset="synthetic",
        train_size=400,
        test_size=200,
        progress=False,
        num_threads=1,
    )
    base.update(kwargs)
    return TrainConfig(**base)


def test_run_writes_metrics_history_and_config(tmp_path):
    metrics = train(config(tmp_path, epochs=8))  # 32 steps: 3 epochs left seed 1 at chance
    run = tmp_path / "run"
    assert ISSUE_METRICS <= set(metrics)
    assert json.loads((run / "metrics.json").read_text()) == metrics
    assert json.loads((run / "config.json").read_text())["network"] == "mnist-mlp"
    rows = list(csv.DictReader((run / "history.csv").read_text().splitlines()))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 9))
    assert {"units_1", "expected_l0_3", "test_error", "train_loss"} <= set(rows[0])
    # lambda in both forms, and the error definitions
    assert metrics["lam_per_parameter_nats"] == [0.1]
    assert metrics["lam_per_data_point"] == [pytest.approx(0.1 / 400)]
    # weight decay in both forms: 5e-4 per data point is a slab precision of N * 5e-4
    assert metrics["weight_decay_per_data_point"] == pytest.approx(5e-4)
    assert metrics["weight_precision_per_data_set"] == pytest.approx(400 * 5e-4)
    assert metrics["best_test_error"] <= metrics["test_error"]
    assert metrics["dense_flops"] == 784 * 300 + 300 * 100 + 100 * 10
    assert metrics["compact_flops"] <= metrics["dense_flops"]
    assert metrics["test_error"] < 0.5  # ten classes: chance is 0.9; the set is learnable
    # the trained network is rebuilt with the run's N-scaled slab
    _, net = load_network(run)
    assert [layer.weight_precision for layer in net.gated_layers()] == pytest.approx([0.2] * 3)


def test_same_seed_same_result_and_epoch_order_depends_only_on_seed_and_epoch(tmp_path):
    a = train(config(tmp_path, "a", epochs=1))
    b = train(config(tmp_path, "b", epochs=1))
    assert a["test_error"] == b["test_error"] and a["expected_flops"] == b["expected_flops"]
    assert torch.equal(epoch_order(0, 3, 50), epoch_order(0, 3, 50))
    assert not torch.equal(epoch_order(0, 3, 50), epoch_order(0, 4, 50))


def final_state(run: Path) -> dict:
    return load_checkpoint(run / "checkpoint.pt")["net"]


def assert_same_parameters(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_resume_after_an_epoch_is_bitwise_identical(tmp_path, device):
    train(config(tmp_path, "straight", epochs=3, device=device))
    train(config(tmp_path, "split", epochs=1, device=device))
    resumed = TrainConfig.from_run(tmp_path / "split", epochs=3)
    train(resumed, resume=True)
    assert_same_parameters(final_state(tmp_path / "straight"), final_state(tmp_path / "split"))
    history = (tmp_path / "split" / "history.csv").read_text().splitlines()
    assert len(history) == 4  # header + 3 epochs, none lost or repeated


def test_a_run_from_before_an_option_keeps_its_old_behaviour(tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"network": "mnist-mlp", "out": str(run)}))
    cfg = TrainConfig.from_run(run).resolved()
    assert (cfg.standardize, cfg.weight_init) == (True, "uniform")
    # before --weight-decay was per data point, runs saved the slab precision itself
    config = {"network": "mnist-mlp", "out": str(run), "weight_precision": 5e-4}
    (run / "config.json").write_text(json.dumps(config))
    cfg = TrainConfig.from_run(run).resolved()
    assert cfg.weight_decay is None and cfg.slab_precision(60000) == 5e-4


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "l0bayes.cli", "train", "mnist-mlp", *args]


COMMON = [
    "--dataset", "synthetic", "--train-size", "1000", "--test-size", "100",
    "--epochs", "2", "--no-progress", "--threads", "1",
]  # fmt: skip


def wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the training process did not get there in time")
        time.sleep(0.05)


def checkpoint_step(run: Path) -> int:
    try:
        return load_checkpoint(run / "checkpoint.pt")["run"]["global_step"]
    except (FileNotFoundError, ValueError, KeyError):
        return 0


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path):
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(cli("--out", str(straight), *COMMON), check=True, env=env, capture_output=True)
    proc = subprocess.Popen(
        cli("--out", str(killed), "--checkpoint-every", "3", *COMMON),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: checkpoint_step(killed) >= 4)  # step 6 of 10 in the first epoch
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    state = load_checkpoint(killed / "checkpoint.pt")["run"]
    assert 0 < state["step_in_epoch"] or state["epoch"] > 0
    assert not (killed / "metrics.json").exists()  # only a finished run has metrics
    # every file under its final name is complete (a killed write leaves only a .tmp file)
    json.loads((killed / "config.json").read_text())
    if (killed / "history.csv").exists():  # written at the end of each epoch
        list(csv.DictReader((killed / "history.csv").read_text().splitlines()))
    subprocess.run(
        cli("--out", str(killed), "--resume", "--no-progress"),
        check=True,
        env=env,
        capture_output=True,
    )
    assert_same_parameters(final_state(straight), final_state(killed))
    assert not list(killed.glob(".*.tmp"))  # the resumed run cleared what the kill left
    a = json.loads((straight / "metrics.json").read_text())
    b = json.loads((killed / "metrics.json").read_text())
    assert a["test_error"] == b["test_error"] and a["architecture"] == b["architecture"]


def test_sigint_saves_a_checkpoint_and_says_how_to_resume(tmp_path):
    run = tmp_path / "run"
    args = cli("--out", str(run), *COMMON[:-5], "--epochs", "50", "--no-progress")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: checkpoint_step(run) > 0)  # the first epoch is done: mid-run
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "--resume" in err and "Traceback" not in err
    assert (run / "checkpoint.pt").is_file() and not (run / "metrics.json").exists()


def test_trace_elbo_path_takes_the_same_steps(tmp_path, device):
    """Pyro's traced TraceMeanField_ELBO and the closed form give the same parameters."""
    data = synthetic_images((784,), n_train=300, n_test=50)
    runs = {}
    for elbo in ("analytic", "trace"):
        t = Trainer(config(tmp_path, elbo, elbo=elbo, epochs=1, device=device), data=data)
        t.run()
        runs[elbo] = dict(t.net.named_parameters())
    for name, value in runs["analytic"].items():
        torch.testing.assert_close(value, runs["trace"][name], rtol=1e-4, atol=1e-5)


def test_target_fraction_of_parameters_is_met(tmp_path, device):
    metrics = train(
        config(
            tmp_path,
            device=device,
            epochs=16,
            batch_size=20,
            lam=[0.0],
            ema=0.0,
            target="params",
            target_fraction=0.3,
            lagrange_lr=0.5,
            lr=3e-2,
        )
    )
    achieved = metrics["target"]["achieved_expected_fraction"][0]
    assert achieved < 0.3 + 0.05  # from about 0.7 of the parameters at initialisation
    assert metrics["nonzero_params"] < 0.5 * metrics["dense_params"]


def test_sizes_beyond_a_data_set_are_drawn_when_synthetic_and_refused_when_real(
    tmp_path, monkeypatch
):
    big = load_dataset(config(tmp_path, train_size=2500, test_size=600))
    assert (len(big.y_train), len(big.y_test)) == (2500, 600)
    # within the default sizes the synthetic set is the default one, cut: old runs stay as they were
    full = load_dataset(config(tmp_path, train_size=None, test_size=None))
    assert np.array_equal(load_dataset(config(tmp_path)).x_train, full.x_train[:400])
    tiny = dataclasses.replace(synthetic_images((784,), n_train=50, n_test=20), name="mnist")
    monkeypatch.setattr("l0bayes.training.datasets.load_mnist", lambda data_dir: tiny)
    with pytest.raises(ValueError, match="--train-size 60 is more than the 50 examples mnist"):
        load_dataset(config(tmp_path, dataset="mnist", train_size=60))
    with pytest.raises(ValueError, match="--test-size 21 is more than the 20 examples mnist"):
        load_dataset(config(tmp_path, dataset="mnist", train_size=None, test_size=21))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(network="resnet"), ValueError, "unknown network 'resnet'"),
        (dict(lam=[-1.0]), ValueError, "--lam must be finite and >= 0"),
        (dict(target="params"), ValueError, "--target and --target-fraction go together"),
        (dict(epochs=0), ValueError, "--epochs must be a positive integer"),
        (dict(dataset="imagenet"), ValueError, "--dataset must be one of"),
        (dict(weight_init="xavier"), ValueError, "--weight-init must be one of"),
        (dict(weight_decay=1e-4, weight_precision=6.0), ValueError, "not both"),
        (dict(weight_decay=-1e-4), ValueError, "--weight-decay must be finite and >= 0"),
        (dict(weight_precision=math.inf), ValueError, "--weight-precision must be finite"),
        (dict(dataset="mnist", data_dir="/nonexistent/dir"), FileNotFoundError, "mnist"),
    ],
)
def test_bad_configurations_get_clear_errors(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        train(config(tmp_path, **kwargs))


@pytest.mark.parametrize("network", ["mnist-mlp", "lenet5"])
def test_weight_init_reaches_every_gated_layer(tmp_path, network):
    layers = {"mnist-mlp": 3, "lenet5": 4}[network]
    default = config(tmp_path, network=network).resolved().weight_init
    assert default == get_network(network).weight_init
    for scheme in ("uniform", "he"):
        cfg = config(tmp_path, network=network, weight_init=scheme).resolved()
        net = build_network(cfg, num_train=400)
        assert [layer.weight_init for layer in net.gated_layers()] == [scheme] * layers


@pytest.mark.parametrize(
    ("network", "beta"), [("mnist-mlp", 0.999), ("lenet5", 0.999), ("wrn", 0.99)]
)
def test_parameters_are_averaged_as_the_paper_unless_turned_off(tmp_path, network, beta):
    """The paper's temporal averaging is every network's default; ``--ema 0`` turns it off."""
    assert config(tmp_path, network=network).resolved().ema == beta
    assert config(tmp_path, network=network, ema=0.0).resolved().ema == 0.0  # off
    assert config(tmp_path, network=network, ema=0.9).resolved().ema == 0.9


def test_ema_is_read_bias_corrected_and_restored():
    """Inside ``applied`` the parameters are the bias-corrected averages; after it, restored."""
    module = torch.nn.Linear(2, 1, bias=False)
    ema = ParameterEMA(module, 0.9)
    for value in (1.0, 3.0):
        with torch.no_grad():
            module.weight.fill_(value)
        ema.update(module)
    average = (0.9 * 0.1 * 1.0 + 0.1 * 3.0) / (1 - 0.9**2)
    with ema.applied(module):
        torch.testing.assert_close(module.weight.detach(), torch.full((1, 2), average))
    torch.testing.assert_close(module.weight.detach(), torch.full((1, 2), 3.0))


@pytest.mark.parametrize("network", ["mnist-mlp", "lenet5", "wrn"])
def test_weight_decay_is_per_data_point_and_precision_per_data_set(tmp_path, network):
    def precisions(num_train, **kwargs):
        cfg = config(tmp_path, network=network, depth=10, width=1, **kwargs).resolved()
        values = [layer.weight_precision for layer in build_network(cfg, num_train).gated_layers()]
        assert len(set(values)) == 1, values
        return values[0]

    assert precisions(60000) == pytest.approx(60000 * get_network(network).weight_decay)
    assert precisions(1000, weight_decay=1e-3) == pytest.approx(1.0)
    assert precisions(1000, weight_precision=7.0) == precisions(60000, weight_precision=7.0) == 7.0
    with pytest.raises(ValueError, match="give num_train"):
        precisions(None)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="CUDA is not available"):
        train(config(tmp_path, device="cuda"))


def test_existing_run_is_not_overwritten_and_resume_needs_a_checkpoint(tmp_path):
    train(config(tmp_path, epochs=1))
    with pytest.raises(ValueError, match="already holds a run; pass --resume"):
        train(config(tmp_path, epochs=1))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(config(tmp_path, "fresh"), resume=True)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--lam", "-1"], "--lam must be finite and >= 0"),
        (["--dataset", "mnist", "--data-dir", "/nonexistent/dir"], "mnist"),
        (["--target", "flops"], "--target and --target-fraction go together"),
        (["--epochs", "0"], "--epochs must be a positive integer"),
        (["--weight-decay", "nan"], "--weight-decay must be finite and >= 0"),
    ]
    + ([] if torch.cuda.is_available() else [(["--device", "cuda"], "CUDA is not available")]),
)
def test_cli_train_errors_are_one_line(tmp_path, capsys, args, match):
    from l0bayes.cli import main

    code = main(["train", "mnist-mlp", "--out", str(tmp_path / "r"), "--dataset", "synthetic",
                 "--no-progress", *args])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and match in err, err


def test_cli_unknown_network_is_rejected_by_the_parser(capsys):
    from l0bayes.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["train", "resnet", "--out", "x"])
    assert stop.value.code == 2 and "invalid choice: 'resnet'" in capsys.readouterr().err


def test_cli_weight_decay_and_precision_are_exclusive(capsys):
    from l0bayes.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["train", "lenet5", "--out", "x", "--weight-decay", "5e-4", "--weight-precision", "1"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "not allowed with argument --weight-decay" in err


@pytest.mark.parametrize("network", ["mnist-mlp", "lenet5", "wrn"])
def test_every_network_trains_on_the_device(tmp_path, network, device):
    extra = dict(depth=10, width=1) if network == "wrn" else {}
    metrics = train(config(tmp_path, network=network, device=device, epochs=4, **extra))
    rows = list(csv.DictReader((tmp_path / "run" / "history.csv").read_text().splitlines()))
    losses = [float(row["train_loss"]) for row in rows]
    assert metrics["device"].startswith(device) and all(map(math.isfinite, losses))
    assert losses[-1] < losses[0]
    _, net = load_network(tmp_path / "run", device=device)
    assert {p.device.type for p in net.parameters()} == {device}


# ------------------------------------------------------------ silent wrong results (issue 27)
@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0, 0.0])
def test_a_lagrange_step_size_that_is_not_finite_and_positive_is_refused(tmp_path, value):
    cfg = config(tmp_path, target="params", target_fraction=0.5, lagrange_lr=value)
    with pytest.raises(ValueError, match="--lagrange-lr must be a finite number > 0"):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_resume_cannot_shorten_a_run(tmp_path):
    from l0bayes.training.run_directory import LOCK

    def files():  # the lock file names its latest holder: not the run's content
        return {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.name != LOCK}

    train(config(tmp_path, epochs=3))
    before = files()
    with pytest.raises(ValueError, match="has trained 3 epochs.*--epochs 1 would end it"):
        train(TrainConfig.from_run(tmp_path / "run", epochs=1), resume=True)
    assert files() == before
    metrics = train(TrainConfig.from_run(tmp_path / "run", epochs=3), resume=True)
    assert metrics["epochs"] == 3 and metrics["steps"] == 12  # the same run, not relabelled


def test_ema_off_is_saved_as_off_and_resumes(tmp_path):
    train(config(tmp_path, epochs=1, ema=0.0))
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text())["ema"] == 0.0
    assert TrainConfig.from_run(run).resolved().ema == 0.0
    metrics = train(TrainConfig.from_run(run, epochs=2), resume=True)
    assert "EMA" not in metrics["test_error_note"]
    # a run saved before 0.0 was kept wrote null for --ema 0: read as off too
    saved = json.loads((run / "config.json").read_text())
    saved["ema"] = None
    (run / "config.json").write_text(json.dumps(saved))
    assert TrainConfig.from_run(run).resolved().ema == 0.0


def test_train_loss_is_the_same_after_an_interrupt_and_resume(tmp_path, monkeypatch):
    """The epoch's loss sum is read at the interrupt (not at the 50-step marks of the
    uninterrupted run): it is exact in float64, so the history is the same to the last bit.
    This is the step-by-step loop (Wide-ResNet, data-parallel runs); the stacked engine's
    twin is tests/training/test_engine.py."""
    import l0bayes.training.trainer as trainer_module
    from l0bayes.training.trainer import TrainingInterrupted

    monkeypatch.setattr(trainer_module, "stackable", lambda cfg, world=1: False)

    train(config(tmp_path, "straight", epochs=2, batch_size=7))  # 58 steps an epoch
    cut = Trainer(config(tmp_path, "cut", epochs=2, batch_size=7))
    step = cut.step

    def interrupted_step(index, progress=None):
        if cut.state.global_step == 83:  # mid second epoch, past its first 50-step read
            cut.request_stop()
        return step(index, progress)

    cut.step = interrupted_step
    with pytest.raises(TrainingInterrupted, match="interrupted at epoch 2, step 26"):
        cut.run()
    train(TrainConfig.from_run(tmp_path / "cut"), resume=True)

    def losses(name):
        rows = csv.DictReader((tmp_path / name / "history.csv").read_text().splitlines())
        return [row["train_loss"] for row in rows]

    assert losses("cut") == losses("straight")


def checkpoint_with(run: Path, change) -> None:
    """Change the run state of the run's checkpoint (and record it, as a forger would)."""
    from l0bayes.training.manifest import write_marker
    from l0bayes.training.run_directory import RUN_FILES
    from l0bayes.training.safe_files import file_record

    state = load_checkpoint(run / "checkpoint.pt")
    change(state["run"])
    torch.save(state, run / "checkpoint.pt")
    write_marker(run, {n: file_record(run / n) for n in RUN_FILES if (run / n).exists()})


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda st: [row.pop("test_error") for row in st["history"]], "cannot be resumed"),
        (lambda st: st.update(epoch=5), "cannot be resumed"),
        (lambda st: st.update(step_in_epoch=99), "cannot be resumed"),
        (
            lambda st: st.update(epoch=7, history=st["history"] * 7),
            "has trained 7 epochs.*--epochs 2 would end it",
        ),
    ],
    ids=[
        "history without test_error",
        "epoch past the history",
        "step past the epoch",
        "epoch past the end",
    ],  # fmt: skip
)
def test_a_checkpoint_whose_run_state_cannot_be_continued_is_named(tmp_path, change, match):
    from l0bayes.cli import main

    train(config(tmp_path, epochs=1))
    run = tmp_path / "run"
    checkpoint_with(run, change)
    with pytest.raises(ValueError, match=match):
        train(TrainConfig.from_run(run, epochs=2), resume=True)
    assert main(["train", "mnist-mlp", "--out", str(run), "--resume", "--epochs", "2"]) == 2
