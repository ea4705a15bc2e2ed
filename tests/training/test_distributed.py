"""Data-parallel training: two CPU processes over loopback take the same steps as one."""

from __future__ import annotations

import os
import signal
import time

import pytest
import torch

from l0bayes.training.checkpoint import load_checkpoint
from l0bayes.training.config import TrainConfig
from l0bayes.training.distributed import DistributedError, collective_timeout, spawn
from l0bayes.training.trainer import train


@pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
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
    )
    one = train(TrainConfig(out=str(tmp_path / "one"), **base))
    two = train(TrainConfig(out=str(tmp_path / "two"), nproc=2, **base))
    a = load_checkpoint(tmp_path / "one" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "two" / "checkpoint.pt")
    assert a["run"]["global_step"] == b["run"]["global_step"] == 8
    for name, value in a["net"].items():
        torch.testing.assert_close(b["net"][name], value, rtol=1e-5, atol=1e-5)
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
