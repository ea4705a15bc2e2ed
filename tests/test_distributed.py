"""Data-parallel training: two CPU processes over loopback take the same steps as one."""

from __future__ import annotations

import os

import pytest
import torch

from l0bayes.checkpoint import load_checkpoint
from l0bayes.distributed import spawn
from l0bayes.train import TrainConfig, train


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
