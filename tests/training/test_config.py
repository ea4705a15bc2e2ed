"""``l0bayes.training.config``: the ``quick`` label and old ``config.json`` files."""

import json
from dataclasses import asdict

import pytest
import torch

from l0bayes.training.config import QUICK, RESUMABLE, TrainConfig
from l0bayes.training.run_directory import MARKER
from l0bayes.training.trainer import train


def tiny(out, **kw) -> TrainConfig:
    base = dict(
        network="mnist-mlp",
        out=str(out),
        epochs=1,
        dataset="synthetic",
        train_size=200,
        test_size=50,
        num_threads=1,
        progress=False,
    )
    return TrainConfig(**{**base, **kw})


def test_quick_is_a_label_that_changes_nothing_else(tmp_path):
    plain, quick = tiny(tmp_path).resolved(), tiny(tmp_path, quick=True).resolved()
    assert quick.quick and not plain.quick
    assert {**asdict(quick), "quick": False} == asdict(plain)


def test_quick_settings_are_a_short_run_for_every_network():
    from l0bayes.nn.networks import NETWORKS
    from l0bayes.training.config import quick_settings

    assert set(QUICK) == set(NETWORKS)
    for name in NETWORKS:
        quick = quick_settings(name)
        assert quick["epochs"] <= 5 and quick["train_size"] <= 10_000
        quick["epochs"] = 99  # a copy: the table is not changed
        assert QUICK[name]["epochs"] <= 5


def test_quick_must_be_a_bool(tmp_path):
    with pytest.raises(ValueError, match="quick must be true or false"):
        tiny(tmp_path, quick="yes").resolved()


def test_a_config_json_without_quick_loads(tmp_path):
    saved = asdict(tiny(tmp_path))
    del saved["quick"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    cfg = TrainConfig.from_run(tmp_path)
    assert cfg.quick is False


def test_a_run_saved_before_quick_existed_resumes(tmp_path):
    """config.json and checkpoint.pt written without the field: --resume still works."""
    out = tmp_path / "run"
    train(tiny(out))
    saved = json.loads((out / "config.json").read_text())
    assert saved.pop("quick") is False
    (out / "config.json").write_text(json.dumps(saved))
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    del ckpt["config"]["quick"]
    torch.save(ckpt, out / "checkpoint.pt")
    (out / MARKER).write_text('{"kind": "l0bayes run directory"}')  # and before the manifest
    cfg = TrainConfig.for_resume(out, network="mnist-mlp", epochs=2)
    metrics = train(cfg, resume=True)
    assert metrics["epochs"] == 2


def test_resume_keeps_a_quick_runs_label(tmp_path):
    train(tiny(tmp_path, quick=True))
    assert TrainConfig.for_resume(tmp_path, epochs=2).quick is True
    assert "quick" in RESUMABLE  # a label: runs from before it compare equal on resume


def test_resume_refusal_does_not_offer_quick_as_a_flag(tmp_path):
    train(tiny(tmp_path))
    with pytest.raises(ValueError, match="differ; only") as info:
        TrainConfig.for_resume(tmp_path, seed=3)
    assert "--quick" not in str(info.value)


def test_a_relative_data_dir_resolves_to_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = TrainConfig(network="mnist-mlp", out="run", data_dir="data").resolved()
    assert cfg.data_dir == str(tmp_path / "data")
    assert TrainConfig(network="mnist-mlp", out="run").resolved().data_dir is None


@pytest.mark.parametrize(
    "setting, match",
    [
        (dict(bma_samples=10**20), r"--bma-samples must be at most 100,000"),
        (dict(num_threads=100_000), r"--threads must be at most 1024"),
    ],
)
def test_counts_that_would_run_for_ever_or_crash_are_refused(tmp_path, setting, match):
    """Issue 27: --bma-samples 1e20 ran for ever; --threads 100000 crashed torch."""
    with pytest.raises(ValueError, match=match):
        tiny(tmp_path, **setting).resolved()
