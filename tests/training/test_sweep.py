"""``l0bayes sweep``: stacked networks equal separate ``train`` runs, bitwise; a sweep's
checkpoints are one commit, so a sweep killed anywhere resumes to the uninterrupted result.

**Equal to a separate run, exactly.** ``train`` and ``sweep`` run the same engine
(:mod:`l0bayes.training.engine`, ``train`` with one network), every network with its own
seed's initialisation, data order and counter-based gate uniforms. On the CPU the batched
products give each network exactly its own product, the convolutions run network by network,
and the stacked gates' rows are padded to whole vector lines; so network ``k`` of a sweep ends
with the parameters, averages, optimiser moments, multipliers and history of its own run,
bit for bit (the RNG state is no longer part of it: nothing draws from torch's generator).
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from l0bayes.cli import main
from l0bayes.training.checkpoint import load_checkpoint, save_checkpoint
from l0bayes.training.config import TrainConfig
from l0bayes.training.run_directory import LOCK, prepare_new_run
from l0bayes.training.sweep import (
    PENDING,
    Sweep,
    check_sweep,
    recover,
    run_name,
    sweep,
    sweep_configs,
)
from l0bayes.training.trainer import train

TINY = dict(
    dataset="synthetic", train_size=200, test_size=100, batch_size=50, epochs=1, progress=False
)


def assert_same_run(a: Path, b: Path) -> None:
    """Two run directories hold bitwise the same final state and records."""
    x, y = load_checkpoint(a / "checkpoint.pt"), load_checkpoint(b / "checkpoint.pt")
    for name in x["net"]:
        assert torch.equal(x["net"][name], y["net"][name]), name
    if x["ema"] is not None:
        for name in x["ema"]["shadow"]:
            assert torch.equal(x["ema"]["shadow"][name], y["ema"]["shadow"][name]), name
    for i, state in x["optimizer"]["state"].items():
        for key, value in state.items():
            assert torch.equal(value, y["optimizer"]["state"][i][key]), (i, key)
    assert (x["mu"] is None) == (y["mu"] is None)
    if x["mu"] is not None:
        assert torch.equal(x["mu"], y["mu"])
    timeless = lambda h: [{k: v for k, v in r.items() if k != "train_seconds"} for r in h]  # noqa: E731
    assert timeless(x["run"]["history"]) == timeless(y["run"]["history"])
    m, n = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    for key in ("test_error", "architecture", "expected_flops", "steps", "epochs"):
        assert m[key] == n[key], key


def _equal_to_separate_runs(tmp_path: Path, network: str, cfgs=None, **options) -> list[dict]:
    base = TrainConfig(network=network, num_threads=1, **{**TINY, **options})
    cfgs = cfgs or sweep_configs(base, [0.1, 3.0], [0, 1], tmp_path / "sweep")
    stacked = sweep(cfgs)
    for cfg, metrics in zip(cfgs, stacked, strict=True):
        alone = tmp_path / ("alone-" + Path(cfg.out).name)
        train(replace(cfg, out=str(alone)))
        assert_same_run(Path(cfg.out), alone)
        assert metrics["sweep"]["networks"] == len(cfgs)
    return stacked


def test_mlp_sweep_equals_separate_runs(tmp_path, one_thread):
    _equal_to_separate_runs(tmp_path, "mnist-mlp", epochs=2)


def test_lenet5_sweep_with_the_l0_options_equals_separate_runs(tmp_path, one_thread):
    stacked = _equal_to_separate_runs(
        tmp_path, "lenet5", lam_warmup=1.0, finetune_epochs=1, bma_samples=2, train_size=100
    )
    assert {"bma", "finetune", "lam_warmup_epochs"} <= set(stacked[0])


def test_target_and_local_draws_equal_separate_runs(tmp_path, one_thread):
    _equal_to_separate_runs(
        tmp_path, "mnist-mlp", target="params", target_fraction=0.5, lam_warmup=1.0,
        local_rep=True,
    )  # fmt: skip


def test_target_fractions_may_differ_between_swept_networks(tmp_path, one_thread):
    base = TrainConfig(
        network="mnist-mlp", num_threads=1, target="params", lam=[0.0], **{**TINY, "epochs": 2}
    )
    cfgs = [
        replace(base, target_fraction=f, seed=s, out=str(tmp_path / f"t{f}-s{s}"))
        for f in (0.2, 0.6)
        for s in (0, 1)
    ]
    _equal_to_separate_runs(tmp_path, "mnist-mlp", cfgs=cfgs)
    mu = [load_checkpoint(Path(c.out) / "checkpoint.pt")["mu"] for c in cfgs]
    assert mu[0] > mu[2] > 0  # the tighter target pushed its own multiplier further
    mixed = [cfgs[0], replace(cfgs[1], target=None, target_fraction=None)]
    with pytest.raises(ValueError, match="target"):
        check_sweep(mixed)


def test_sweep_resumes_to_more_epochs_like_a_longer_sweep(tmp_path, one_thread):
    base = TrainConfig(network="mnist-mlp", num_threads=1, **TINY)
    cfgs = sweep_configs(base, [0.1], [0, 1], tmp_path / "a")
    sweep(cfgs)
    resumed = [TrainConfig.for_resume(c.out, epochs=2, progress=False) for c in cfgs]
    sweep(resumed, resume=True)
    sweep(sweep_configs(replace(base, epochs=2), [0.1], [0, 1], tmp_path / "b"))
    for cfg in cfgs:
        assert_same_run(Path(cfg.out), tmp_path / "b" / Path(cfg.out).name)


def test_sweep_refuses_what_it_cannot_stack(tmp_path):
    base = TrainConfig(network="wrn", **TINY)
    with pytest.raises(ValueError, match="stacks mnist-mlp, lenet5"):
        check_sweep(sweep_configs(base, [0.1], [0], tmp_path))
    mlp = TrainConfig(network="mnist-mlp", **TINY)
    cfgs = sweep_configs(mlp, [0.1], [0, 1], tmp_path)
    with pytest.raises(ValueError, match="differs in"):
        check_sweep([cfgs[0], replace(cfgs[1], lr=0.1)])
    assert run_name([0.1], 3) == "lam-0.1_seed-3"
    assert isinstance(Sweep, type)


# ------------------------------------------------------------------ one commit
def _two_runs(tmp_path: Path) -> list[TrainConfig]:
    base = TrainConfig(network="mnist-mlp", num_threads=1, **{**TINY, "epochs": 2})
    return sweep_configs(base, [0.1], [0, 1], tmp_path / "s")


def _rewind(run: Path, to: Path) -> None:
    """Replace ``run``'s checkpoint by ``to``'s (an older commit of the same sweep)."""
    (run / "checkpoint.pt").write_bytes(to.read_bytes())


def test_an_interrupted_commit_is_finished_or_undone(tmp_path, one_thread):
    """A kill between writing the networks' pending checkpoints and renaming them: when every
    network's new state was written the commit is finished, else undone; either way every
    network resumes from one step."""
    cfgs = _two_runs(tmp_path)
    sweep([replace(c, epochs=1) for c in cfgs])
    a, b = (Path(c.out) for c in cfgs)
    old = {r: (r / "checkpoint.pt").read_bytes() for r in (a, b)}
    resumed = [TrainConfig.for_resume(c.out, epochs=2, progress=False) for c in cfgs]
    sweep(resumed, resume=True)
    new = {r: (r / "checkpoint.pt").read_bytes() for r in (a, b)}
    # killed after the first rename: a holds the new commit, b's waits pending
    (b / PENDING).write_bytes(new[b])
    (b / "checkpoint.pt").write_bytes(old[b])
    assert recover([a, b]) == (8, 2)
    assert (b / "checkpoint.pt").read_bytes() == new[b] and not (b / PENDING).exists()
    # killed while writing the pending files: a's was written, b's not; undone
    (a / PENDING).write_bytes(new[a])
    for r in (a, b):
        (r / "checkpoint.pt").write_bytes(old[r])
    assert recover([a, b]) == (4, 1)
    assert (a / "checkpoint.pt").read_bytes() == old[a] and not (a / PENDING).exists()
    # networks of different commits and nothing pending: refused, nothing changed
    (a / "checkpoint.pt").write_bytes(new[a])
    with pytest.raises(ValueError, match="different steps"):
        recover([a, b])
    assert (a / "checkpoint.pt").read_bytes() == new[a]


def test_a_sweep_killed_before_its_first_commit_resumes_or_restarts_anew(tmp_path, capsys):
    cfgs = _two_runs(tmp_path)
    straight = sweep_configs(replace(cfgs[0], out="x"), [0.1], [0, 1], tmp_path / "straight")
    sweep(straight)
    a, b = (Path(c.out) for c in cfgs)
    sweep(cfgs)  # then as if killed before the first commit: nothing committed, one pending
    state = load_checkpoint(a / "checkpoint.pt")
    for r in (a, b):
        (r / "checkpoint.pt").unlink()
        (r / "metrics.json").unlink()
    save_checkpoint(a / PENDING, state)
    sweep(cfgs, resume=True)  # resume: starts anew
    assert "starts anew" in capsys.readouterr().err
    for cfg, ref in zip(cfgs, straight, strict=True):
        assert_same_run(Path(cfg.out), Path(ref.out))
    for r in (a, b):  # restart without --resume into the folders of an uncommitted sweep
        (r / "checkpoint.pt").unlink()
        (r / "metrics.json").unlink()
    sweep(cfgs)
    for cfg, ref in zip(cfgs, straight, strict=True):
        assert_same_run(Path(cfg.out), Path(ref.out))


def test_a_sweep_killed_before_writing_its_configuration_resumes_anew(tmp_path, capsys):
    """Killed after making its folders (one marked and locked, one still empty) but before any
    ``config.json``: the same command with ``--resume`` starts it anew, as the uninterrupted
    sweep; with other --lam values it is still refused."""
    args = ["sweep", "mnist-mlp", "--lam", "0.1", "--seeds", "0", "1", "--dataset",
            "synthetic", "--train-size", "100", "--test-size", "50", "--batch-size", "50",
            "--epochs", "1", "--threads", "1", "--no-progress"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "straight")]) == 0
    killed = tmp_path / "killed"
    a, b = killed / "lam-0.1_seed-0", killed / "lam-0.1_seed-1"
    prepare_new_run(a)
    (a / LOCK).write_text("{}")
    b.mkdir()
    capsys.readouterr()
    assert main([*args, "--out", str(killed), "--lam", "1", "--resume"]) == 2
    assert "no network of a sweep with these" in capsys.readouterr().err
    assert main([*args, "--out", str(killed), "--resume"]) == 0
    assert "starts anew" in capsys.readouterr().err
    for run in (a, b):
        assert_same_run(tmp_path / "straight" / run.name, run)


# ------------------------------------------------------------------ SIGKILL at random points
SWEEP_ARGS = [
    "sweep", "mnist-mlp", "--lam", "0.1", "1", "--seeds", "0", "1", "--dataset", "synthetic",
    "--train-size", "200", "--test-size", "100", "--batch-size", "50", "--epochs", "2",
    "--checkpoint-every", "2", "--threads", "1", "--no-progress",
]  # fmt: skip


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "l0bayes.cli", *args]


def _holds_lock(run: Path, pid: int) -> bool:
    """Whether process ``pid`` holds the lock of ``run`` (it has started the sweep)."""
    try:
        return json.loads((run / ".l0bayes-lock").read_text())["pid"] == pid
    except (OSError, ValueError, KeyError):
        return False


def _kill_and_resume(tmp_path: Path, kills: int, seed: int) -> None:
    """The same sweep uninterrupted (in this process) and killed ``kills`` times (``SIGKILL``
    at a random moment of its training, which may fall before its first commit, inside a
    commit or after its end) and resumed each time: every network ends bitwise the same."""
    args = [*SWEEP_ARGS, "--out", str(tmp_path / "straight")]
    tic = time.monotonic()
    assert main(args) == 0
    duration = time.monotonic() - tic  # the sweep alone, without a process's start
    killed = tmp_path / "killed"
    rng = random.Random(seed)
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    for trial in range(kills + 1):
        resume = ["--resume"] if trial else []
        command = _cli(*SWEEP_ARGS, "--out", str(killed), *resume)
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        if trial < kills:  # kill it at a random moment after its start (imports)
            while proc.poll() is None and not _holds_lock(killed / "lam-0.1_seed-0", proc.pid):
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, duration))
            proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
        if trial == kills:
            assert proc.returncode == 0, err
    for name in ("lam-0.1_seed-0", "lam-0.1_seed-1", "lam-1_seed-0", "lam-1_seed-1"):
        assert_same_run(tmp_path / "straight" / name, killed / name)
        assert not (killed / name / PENDING).exists()


def test_a_sweep_killed_at_random_resumes_bitwise(tmp_path, capsys):
    _kill_and_resume(tmp_path, kills=2, seed=0)


@pytest.mark.slow
def test_a_sweep_killed_twenty_times_resumes_bitwise(tmp_path, capsys):
    _kill_and_resume(tmp_path, kills=20, seed=1)


def test_sweep_resume_refuses_a_changed_target_fraction(tmp_path, capsys):
    out = tmp_path / "t"
    args = ["sweep", "mnist-mlp", "--lam", "0", "--seeds", "0", "--out", str(out),
            "--target", "params", "--dataset", "synthetic", "--train-size", "100",
            "--test-size", "50", "--epochs", "1", "--no-progress"]  # fmt: skip
    assert main([*args, "--target-fraction", "0.5"]) == 0
    capsys.readouterr()
    before = (out / "lam-0_seed-0" / "checkpoint.pt").read_bytes()
    assert main([*args, "--target-fraction", "0.4", "--epochs", "2", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "--target-fraction 0.4 (the run has 0.5)" in err
    assert main([*args, "--target-fraction", "0.4", "0.5", "--epochs", "2", "--resume"]) == 2
    assert "the values it was started with" in capsys.readouterr().err
    assert (out / "lam-0_seed-0" / "checkpoint.pt").read_bytes() == before
    assert main([*args, "--target-fraction", "0.5", "--epochs", "2", "--resume"]) == 0


# ------------------------------------------------------------------ the L0 options alone
def test_options_default_off_and_load_from_old_configs(tmp_path):
    cfg = TrainConfig()
    assert (cfg.lam_warmup, cfg.finetune_epochs, cfg.bma_samples) == (0.0, 0, 0)
    assert cfg.warmup_factor(0.3) == 1.0
    assert replace(cfg, lam_warmup=2).warmup_factor(0.5) == 0.25
    for bad in (dict(lam_warmup=-1), dict(finetune_epochs=-1), dict(bma_samples=1.5)):
        with pytest.raises(ValueError):
            replace(cfg, **bad).resolved()


def test_warmup_scales_lambda_then_restores_it(tmp_path, one_thread):
    cfg = TrainConfig(network="mnist-mlp", out=str(tmp_path / "r"), lam_warmup=4.0, **TINY)
    from l0bayes.training.trainer import Trainer

    trainer = Trainer(cfg)
    assert trainer.set_warmup(1.0) == 0.25
    assert [layer.lam for layer in trainer.net.gated_layers()] == [0.025] * 3
    metrics = trainer.run()
    assert metrics["lam_warmup_epochs"] == 4.0
    assert [layer.lam for layer in trainer.net.gated_layers()] == [0.1] * 3


def test_finetune_keeps_the_gates_and_trains_the_weights(tmp_path, one_thread):
    out = tmp_path / "ft"
    metrics = train(TrainConfig(network="mnist-mlp", out=str(out), finetune_epochs=1, **TINY))
    hist = (out / "history.csv").read_text().splitlines()
    assert len(hist) == 3 and "phase" in hist[0] and hist[2].count("finetune") == 1
    assert metrics["finetune"]["epochs"] == 1
    train(TrainConfig(network="mnist-mlp", out=str(tmp_path / "b"), **TINY))
    a = load_checkpoint(out / "checkpoint.pt")["net"]
    b = load_checkpoint(tmp_path / "b" / "checkpoint.pt")["net"]
    for name in a:
        if name.endswith("log_alpha"):
            assert torch.equal(a[name], b[name])  # frozen after the main epoch
        else:
            assert not torch.equal(a[name], b[name])


def test_resume_cannot_move_the_start_of_finetuning(tmp_path, one_thread):
    """After fine-tuning has begun (gates frozen after epoch 1), more --epochs would train
    the gates again after it: refused, for train and sweep alike, with the run untouched."""
    out = tmp_path / "ft"
    train(TrainConfig(network="mnist-mlp", out=str(out), finetune_epochs=1, **TINY))
    before = (out / "checkpoint.pt").read_bytes()
    longer = TrainConfig.for_resume(out, epochs=2, progress=False)
    with pytest.raises(ValueError, match="began fine-tuning"):
        train(longer, resume=True)
    with pytest.raises(ValueError, match="began fine-tuning"):
        sweep([longer], resume=True)
    assert (out / "checkpoint.pt").read_bytes() == before


def test_bma_reported_beside_the_deterministic_gates(tmp_path, one_thread):
    out = tmp_path / "bma"
    metrics = train(TrainConfig(network="mnist-mlp", out=str(out), bma_samples=3, **TINY))
    bma = metrics["bma"]
    assert bma["samples"] == 3 and 0.0 <= bma["bma_error"] <= 1.0
    assert bma["deterministic_error"] == pytest.approx(metrics["test_error"])
