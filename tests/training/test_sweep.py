"""``l0bayes sweep``: stacked networks equal separate ``train`` runs; the L0 options of both.

The tolerance: a stacked step computes each network's fully connected layers with one batched
matrix product (``torch.bmm``) instead of ``x @ W``, whose kernels may sum in another order;
everything else (the gate draws from each network's own random stream, Adam, the EMA, the
clamp) is elementwise and equal. After a few steps the parameters agree to ~1e-7 (observed
≤ 6e-8); we test 1e-6.
"""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from l0bayes.training.checkpoint import load_checkpoint
from l0bayes.training.config import TrainConfig
from l0bayes.training.sweep import Sweep, check_sweep, run_name, sweep, sweep_configs
from l0bayes.training.trainer import train

ATOL = 1e-6
TINY = dict(
    dataset="synthetic", train_size=200, test_size=100, batch_size=50, epochs=1, progress=False
)


def _max_diff(a: dict, b: dict) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def _equal_to_separate_runs(tmp_path: Path, network: str, cfgs=None, **options) -> list[dict]:
    base = TrainConfig(network=network, num_threads=1, **{**TINY, **options})
    cfgs = cfgs or sweep_configs(base, [0.1, 3.0], [0, 1], tmp_path / "sweep")
    stacked = sweep(cfgs)
    for cfg, metrics in zip(cfgs, stacked, strict=True):
        alone_dir = tmp_path / ("alone-" + Path(cfg.out).name)
        alone = train(replace(cfg, out=str(alone_dir)))
        a = load_checkpoint(Path(cfg.out) / "checkpoint.pt")
        b = load_checkpoint(alone_dir / "checkpoint.pt")
        assert _max_diff(a["net"], b["net"]) < ATOL
        if a["ema"] is not None:
            assert _max_diff(a["ema"]["shadow"], b["ema"]["shadow"]) < ATOL
        for i, state in a["optimizer"]["state"].items():
            assert _max_diff(state, b["optimizer"]["state"][i]) < ATOL
        assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])  # the same gate draws
        assert metrics["architecture"] == alone["architecture"]
        assert metrics["test_error"] == pytest.approx(alone["test_error"], abs=0.011)
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
    whole = sweep(sweep_configs(replace(base, epochs=2), [0.1], [0, 1], tmp_path / "b"))
    for cfg, metrics in zip(cfgs, whole, strict=True):
        a = load_checkpoint(Path(cfg.out) / "checkpoint.pt")
        b = load_checkpoint(tmp_path / "b" / Path(cfg.out).name / "checkpoint.pt")
        assert _max_diff(a["net"], b["net"]) == 0.0
        saved = json.loads((Path(cfg.out) / "metrics.json").read_text())
        assert saved["test_error"] == metrics["test_error"]


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
