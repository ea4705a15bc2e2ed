"""The stacked engine: its step's objective against the layers' own ELBO (the naive reference),
evaluation on the device, and (on a GPU) the captured CUDA graph against the eager step.

**What "equal" means here.** The engine's objective is the per-data-point negative ELBO of
:meth:`~l0bayes.nn.layers.L0Network.differentiable_loss` (plus the Lagrangian's penalty) with
the gate uniforms of ``counter_noise(seed, step)``; computed by other arithmetic (batched
products, the KL of all layers at once) it agrees with it to float rounding: the value to a
relative 1e-6, the gradients to 1e-5 of their largest entry. On CUDA a replayed graph runs the
eager step's kernels: after 30 steps the parameters agree to 1e-6 (the GPU tests).
"""

from dataclasses import replace

import pytest
import torch

from l0bayes.distributions.counter_noise import counter_noise
from l0bayes.training.capture import CapturedStep
from l0bayes.training.config import TrainConfig
from l0bayes.training.engine import StackedTraining
from l0bayes.training.loop import TrainingInterrupted
from l0bayes.training.trainer import Trainer, finetune_loss

TINY = dict(
    dataset="synthetic", train_size=200, test_size=100, batch_size=50, epochs=2, progress=False
)
CASES = [
    ("mnist-mlp", {}),
    ("mnist-mlp", dict(lam_warmup=2.0, local_rep=True)),
    ("mnist-mlp", dict(lam=[0.0], target="params", target_fraction=0.4, lam_warmup=2.0)),
    ("mnist-mlp", dict(target="params", target_fraction=0.4, target_scope="layer")),
    ("lenet5", dict(target="flops", target_fraction=0.5)),
    ("lenet5", dict(kl_mode="bayes", lam=[1.0, 0.5, 0.1, 0.1])),
]


def _pair(tmp_path, network, options, device="cpu"):
    """A trainer through the engine and an identical one left to the layers' own loss."""
    cfg = TrainConfig(network=network, num_threads=1, device=device, **{**TINY, **options})
    engine_run = Trainer(replace(cfg, out=str(tmp_path / "engine")))
    reference = Trainer(replace(cfg, out=str(tmp_path / "reference")))
    return StackedTraining([engine_run], commit=lambda: None), reference


@pytest.mark.parametrize("network, options", CASES)
def test_the_engines_objective_is_the_layers_elbo(tmp_path, one_thread, network, options):
    engine, ref = _pair(tmp_path, network, options)
    step = 3  # inside the warm-up: λ (or the target) scaled by 3 / (2 epochs x 4 steps)
    engine.step_count.fill_(step)
    index = torch.arange(50)[None]
    if engine.mu is not None:  # a multiplier > 0, so that the penalty's gradient counts
        engine.mu.fill_(0.7)
        ref.lagrangian.mu = torch.full_like(ref.lagrangian.mu, 0.7)
    total, losses, _, _ = engine.train_loss(index)
    total.backward()
    x, y = ref.train.batch(index[0])
    if ref.cfg.lam_warmup:
        ref.set_warmup(step / ref.loop.steps)
    with counter_noise(ref.cfg.seed, step):
        expected = ref.net.differentiable_loss(x, y, len(ref.train)) / len(ref.train)
    assert losses[0].item() == pytest.approx(expected.item(), rel=1e-6)
    if ref.lagrangian is not None:
        expected = expected + ref.lagrangian.penalty()[0]
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    expected.backward()
    _same_gradients(engine, ref)


def _same_gradients(engine: StackedTraining, ref: Trainer) -> None:
    grads = {k: p.grad for k, p in engine.chain.params.items()}
    for name, grad in engine.chain.views(grads, 0).items():
        want = dict(ref.net.named_parameters())[name].grad
        scale = want.abs().max().item()
        torch.testing.assert_close(grad, want, rtol=1e-5, atol=1e-5 * scale)


def test_the_finetuning_objective_is_the_layers_with_frozen_gates(tmp_path, one_thread):
    engine, ref = _pair(tmp_path, "lenet5", {})
    index = torch.arange(50)[None]
    engine.finetune_loss(index).sum().backward()
    x, y = ref.train.batch(index[0])
    (finetune_loss(ref.net, x, y, len(ref.train)) / len(ref.train)).backward()
    _same_gradients(engine, ref)


def test_evaluation_on_the_device_equals_each_runs_own(tmp_path, one_thread):
    """All networks' test errors counted at once (averaged parameters, Eq. 13's gates) equal
    those that each trainer counts batch by batch; the architecture records come from each."""
    cfg = TrainConfig(network="lenet5", num_threads=1, **{**TINY, "epochs": 1})
    trainers = [Trainer(replace(cfg, seed=s, out=str(tmp_path / f"s{s}"))) for s in (0, 1)]
    engine = StackedTraining(trainers, commit=lambda: None)
    for s in range(3):
        engine.program(False)(torch.stack([torch.arange(50) + 7 * s + k for k in (0, 1)]))
        for t in trainers:
            t.ema.steps += 1
    rows = engine.evaluate()
    for t, row in zip(trainers, rows, strict=True):
        assert row == t.evaluate()


def test_lenet5_steps_with_one_grouped_convolution_equal_the_per_network_ones(tmp_path):
    """CUDA's layout (the K networks' convolutions as one grouped convolution) trains each
    network as the CPU's per-network convolutions do, to float rounding: 1e-5 after 5 steps."""
    cfg = TrainConfig(network="lenet5", num_threads=1, **{**TINY, "train_size": 100})
    engines = []
    for grouped in (False, True):
        trainers = [
            Trainer(replace(cfg, lam=[lam], seed=s, out=str(tmp_path / f"{grouped}{lam}{s}")))
            for lam, s in ((0.1, 0), (1.0, 1))
        ]
        engine = StackedTraining(trainers, commit=lambda: None)
        engine.chain.grouped_conv = grouped
        for s in range(5):
            engine.program(False)(torch.stack([torch.arange(50) + 10 * s + k for k in (0, 1)]))
        engines.append(engine)
    for key, value in engines[0].chain.params.items():
        torch.testing.assert_close(engines[1].chain.params[key], value, rtol=0, atol=1e-5)


def test_a_run_stopped_mid_epoch_resumes_with_the_exact_train_loss(tmp_path, one_thread):
    """Stopped after 2 of an epoch's 4 steps and resumed: the epoch's mean training loss (the
    float64 sum carried in the checkpoint) is bitwise that of the uninterrupted run."""
    cfg = TrainConfig(network="mnist-mlp", num_threads=1, **{**TINY, "epochs": 1})
    straight = Trainer(replace(cfg, out=str(tmp_path / "straight")))
    straight.run()
    stopped = Trainer(replace(cfg, out=str(tmp_path / "stopped")))
    stopped.begin()
    engine = StackedTraining(
        [stopped], stopped.save, lambda: stopped.state.step_in_epoch == 2, lambda e, s: "stop"
    )
    with pytest.raises(TrainingInterrupted):
        engine.run()
    assert stopped.state.loss_sum != float(torch.tensor(stopped.state.loss_sum))  # not float32
    resumed = Trainer(replace(cfg, out=str(tmp_path / "stopped")), resume=True)
    resumed.run()
    assert resumed.state.history[0]["train_loss"] == straight.state.history[0]["train_loss"]


def test_a_captured_step_runs_eagerly_on_the_cpu():
    calls = []
    step = CapturedStep(lambda x: calls.append(x.sum().item()), torch.device("cpu"))
    step(torch.ones(3))
    step(torch.ones(3))
    assert calls == [3.0, 3.0] and step.captured == 0 and not step.enabled


# ------------------------------------------------------------------ on a GPU
def _run_steps(tmp_path, name, graph: bool, steps: int = 30, network: str = "mnist-mlp"):
    cfg = TrainConfig(network=network, device="cuda", graph=graph, **TINY, seed=0)
    trainers = [
        Trainer(replace(cfg, lam=[lam], out=str(tmp_path / f"{name}{lam}"))) for lam in (0.1, 1.0)
    ]
    engine = StackedTraining(trainers, commit=lambda: None)
    program = engine.program(False)
    for s in range(steps):
        program(torch.stack([torch.arange(50, device="cuda") + s for _ in trainers]))
    torch.cuda.synchronize()
    return engine, program


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
@pytest.mark.parametrize("network", ["mnist-mlp", "lenet5"])
def test_a_captured_graph_takes_the_eager_steps(tmp_path, network):
    graph, program = _run_steps(tmp_path, "graph", True, network=network)
    eager, _ = _run_steps(tmp_path, "eager", False, network=network)
    assert program.captured == 1
    for key, value in graph.chain.params.items():
        torch.testing.assert_close(value, eager.chain.params[key], rtol=0, atol=1e-6)
    torch.testing.assert_close(graph.loss_sum, eager.loss_sum, rtol=1e-9, atol=0)
    assert int(graph.step_count) == int(eager.step_count) == 30


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
def test_counter_uniforms_are_the_same_on_the_gpu():
    from l0bayes.distributions.counter_noise import (
        counter_uniform,
        positions,
        seed_streams,
        step_keys,
    )

    keys = step_keys(seed_streams([0, 3]), torch.tensor(12))
    on_cpu = counter_uniform(keys, positions(1, 5000))
    on_gpu = counter_uniform(keys.cuda(), positions(1, 5000, "cuda"))
    assert torch.equal(on_cpu, on_gpu.cpu())
