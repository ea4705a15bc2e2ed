"""Data-parallel training: two CPU processes over loopback take the same steps as one."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from l0bayes.training.checkpoint import load_checkpoint
from l0bayes.training.config import TrainConfig
from l0bayes.training.distributed import DistributedError, collective_timeout, spawn
from l0bayes.training.trainer import train

#: float32's unit roundoff: one rounding changes a value by at most this fraction of it.
UNIT_ROUNDOFF = 2.0**-24


@pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    """8 steps of 2 processes are the 8 steps of one process, to float32 rounding.

    With plain SGD (+ momentum) every step adds ``-lr * v`` to the parameters: the addition
    rounds once (at most ``u |θ|``) and the update, whose sums are added in another order by
    two processes, differs by a few ``u`` of itself (here no larger than the parameters). So
    after ``k`` steps a tensor differs by at most about ``k * 8u * max|θ|`` (8u per step for the
    two roundings, the momentum buffer's and the reduction's); measured: 12-40 times below
    that. Gradients weighted 1/2 + 1/2 instead of 13/25 + 12/25 differ by 13-20000 times more
    than that bound, so the test still checks the weighting. (Adam divides by ``sqrt(v)``: a
    gradient element that cancels to near 0 has its rounding amplified to a sizable fraction of
    ``lr`` -- 1.8e-5 after 8 steps -- so Adam's steps are compared for one step only, below.)
    """
    # batch 25 splits 13 + 12: the ranks' gradients must be weighted by their share
    base = dict(
        network="mnist-mlp",
        epochs=2,
        batch_size=25,
        dataset="synthetic",
        train_size=100,
        test_size=50,
        progress=False,
        num_threads=1,
        optimizer="sgd",
    )
    one = train(TrainConfig(out=str(tmp_path / "one"), **base))
    two = train(TrainConfig(out=str(tmp_path / "two"), nproc=2, **base))
    a = load_checkpoint(tmp_path / "one" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "two" / "checkpoint.pt")
    steps = a["run"]["global_step"]
    assert steps == b["run"]["global_step"] == 8
    for name, value in a["net"].items():
        bound = steps * 8 * UNIT_ROUNDOFF * float(value.abs().max())
        torch.testing.assert_close(b["net"][name], value, rtol=0.0, atol=bound)
    assert two["test_error"] == one["test_error"]
    assert two["architecture"] == one["architecture"]


def test_bad_process_count_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="--nproc must be a positive integer"):
        train(TrainConfig(out=str(tmp_path / "r"), nproc=0, dataset="synthetic"))


def _raise_in_rank_one() -> None:
    if int(os.environ["RANK"]) == 1:
        raise RuntimeError("rank one failed")


def test_an_error_in_a_worker_reaches_the_caller():
    with pytest.raises(Exception, match="rank one failed"):
        spawn(_raise_in_rank_one, (), 2)


def test_one_step_of_two_processes_equals_one_process_to_rounding(tmp_path):
    """What holds exactly: each step is the one-process step to float rounding. One process
    trains through the stacked engine (batched matrix products, the KL of all layers at once),
    two through the layers' own loss, so their gradients agree to rounding, and Adam's first
    step lr * g / (|g| + eps) turns a rounding difference of a gradient near eps into up to a
    few thousandths of lr = 1e-3 (observed 1.2e-6): 1e-5 after one step. Over a whole run the
    rounding is amplified by training, so runs are statistically equivalent, not bitwise equal
    (see l0bayes.training.distributed)."""
    base = dict(
        network="mnist-mlp",
        epochs=1,
        batch_size=25,
        dataset="synthetic",
        train_size=25,
        test_size=50,
        progress=False,
        num_threads=1,
    )
    train(TrainConfig(out=str(tmp_path / "one"), **base))
    train(TrainConfig(out=str(tmp_path / "two"), nproc=2, **base))
    a = load_checkpoint(tmp_path / "one" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "two" / "checkpoint.pt")
    assert a["run"]["global_step"] == b["run"]["global_step"] == 1
    for name, value in a["net"].items():
        torch.testing.assert_close(b["net"][name], value, rtol=1e-6, atol=1e-5)


def _stop_rank_one_then_reduce() -> None:
    from l0bayes.training.distributed import init_from_env

    init_from_env("cpu")
    if int(os.environ["RANK"]) == 1:
        os.kill(os.getpid(), signal.SIGSTOP)  # a hung worker
    torch.distributed.all_reduce(torch.ones(1))


def test_a_hung_worker_does_not_hang_the_parent(monkeypatch):
    monkeypatch.setenv("L0BAYES_COLLECTIVE_TIMEOUT", "3")
    tic = time.monotonic()
    with pytest.raises(DistributedError, match="worker 0 failed: .*timed out"):
        spawn(_stop_rank_one_then_reduce, (), 2)
    assert time.monotonic() - tic < 120  # the timeout, the grace period, process start-up


def _kill_rank_one() -> None:
    if int(os.environ["RANK"]) == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)


def test_a_killed_worker_is_a_one_line_error():
    with pytest.raises(DistributedError) as info:
        spawn(_kill_rank_one, (), 2)
    message = str(info.value)
    assert (
        message == "data-parallel worker 1 was killed by signal SIGKILL; the other workers "
        "were stopped"
    )


def test_a_bad_collective_timeout_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("L0BAYES_COLLECTIVE_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="L0BAYES_COLLECTIVE_TIMEOUT must be a positive"):
        collective_timeout()


def test_a_collective_timeout_beyond_30_days_or_infinite_is_a_clear_error(monkeypatch):
    for text in ("inf", "nan", "1e12"):
        monkeypatch.setenv("L0BAYES_COLLECTIVE_TIMEOUT", text)
        with pytest.raises(ValueError, match="L0BAYES_COLLECTIVE_TIMEOUT must be"):
            collective_timeout()


@pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")
@pytest.mark.parametrize("to", ["the process group (Ctrl-C)", "the launcher only"])
def test_sigint_on_two_processes_writes_the_checkpoint_it_announces(tmp_path, to):
    """Ctrl-C reaches the launcher and its workers; a job scheduler signals the launcher
    alone. Either way: exit 130, the message names the step of the checkpoint on disk (not
    the previous epoch's), and no worker trains on afterwards."""
    run = tmp_path / "run"
    argv = [sys.executable, "-m", "l0bayes.cli", "train", "mnist-mlp", "--out", str(run),
            "--nproc", "2", "--dataset", "synthetic", "--train-size", "400", "--test-size",
            "100", "--batch-size", "20", "--epochs", "500", "--no-progress",
            "--threads", "1"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, env=env, start_new_session=True, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not (run / "checkpoint.pt").exists():  # the first epoch is done: mid-run
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.05)
        time.sleep(0.3)
        if to == "the launcher only":
            os.kill(proc.pid, signal.SIGINT)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    said = re.search(r"interrupted at epoch (\d+), step (\d+); checkpoint saved in", err)
    assert said, err
    state = load_checkpoint(run / "checkpoint.pt")["run"]
    assert (state["epoch"] + 1, state["step_in_epoch"]) == tuple(map(int, said.groups()))
    assert state["global_step"] == state["epoch"] * 20 + state["step_in_epoch"]
    before = (run / "checkpoint.pt").read_bytes()
    time.sleep(2.0)  # an epoch of 20 steps: a worker still training would have saved by now
    assert (run / "checkpoint.pt").read_bytes() == before
    assert not (run / "metrics.json").exists()
