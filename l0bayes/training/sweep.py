r"""A study as one job: every (λ, seed) network of a sweep trained in one process, stacked.

:math:`K` networks that differ only in λ, the seed and the target fraction (one kind of
``target`` for all; each network has its own Lagrange multiplier) are :math:`K` independent
optimisation problems. :class:`Sweep` keeps one :class:`~l0bayes.training.trainer.Trainer`
per network (its run directory, configuration, data order, random stream, average, Lagrangian,
history, checkpoints and metrics, exactly as ``l0bayes train`` writes them), but stores the
:math:`K` networks' parameters as slices ``[k]`` of stacked tensors ``(K, ...)`` and takes
the steps in lockstep:

* **one forward and backward pass** for all networks: fully connected layers as batched
  matrix products :math:`h^{(k)} \mapsto (h^{(k)} \odot z^{(k)}) W^{(k)} + b^{(k)}`, the
  convolutions network by network, the KL terms on the stacked :math:`\log\alpha`;
* **one optimiser step** (Adam and SGD act elementwise, so one step on the stacked tensors is
  the :math:`K` separate steps), one fused update of the parameter averages, one clamp.

Each network keeps what makes it the run it would be alone: its initialisation (the trainer
seeds torch with its seed before building it), its minibatches
(:func:`~l0bayes.data.images.epoch_order` of its seed, through its
:class:`~l0bayes.training.loop.MinibatchLoop`) and its gate draws: the uniforms :math:`u` of
the hard concrete gates are drawn from the network's own saved generator state, in its layers'
order, exactly as :meth:`~l0bayes.distributions.HardConcrete.rsample` draws them. The
per-network loss is the trainer's, :math:`\frac1N[\frac NB\sum_i -\log p(y_i\mid x_i, z, \theta)
+ \sum_\ell \mathrm{KL}_\ell]`; the sum over networks is descended, and since the networks
share no parameter the gradient of each is its own. The results equal separate runs up to the
order of floating-point additions inside batched matrix products (tested).

Only chains of gated layers (``mnist-mlp``, ``lenet5``) are stacked; the Wide-ResNet is refused.

Example::

    cfgs = sweep_configs(TrainConfig("mnist-mlp", epochs=10), [0.1, 1.0], [0, 1], "runs/sweep")
    metrics = Sweep(cfgs).run()      # runs/sweep/lam-0.1_seed-0/, ... as ``l0bayes train``
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pyro
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from l0bayes.data.files import ImageDataset
from l0bayes.device import resolve_device, torch_threads
from l0bayes.distributions import HardConcrete, gate_kl
from l0bayes.distributions.spike_slab import point_mass_kl
from l0bayes.nn.layers import L0Conv2d, L0Linear
from l0bayes.training.averaging import StackedEMA
from l0bayes.training.checkpoint import write_json
from l0bayes.training.config import LOG_ALPHA_RANGE, TrainConfig
from l0bayes.training.datasets import load_dataset
from l0bayes.training.loop import descend, stop_on_sigint
from l0bayes.training.run_directory import run_lock
from l0bayes.training.trainer import Trainer, TrainingInterrupted

#: The networks a sweep stacks (chains of gated layers).
STACKABLE = ("mnist-mlp", "lenet5")
#: The settings in which the networks of a sweep differ (every other one is shared).
SWEPT = frozenset({"lam", "seed", "out", "target_fraction"})
#: Settings that may differ without changing what is computed.
_FREE = frozenset({"progress", "quick"})
#: Ungated modules a stacked chain applies to the flattened ``(K*B, ...)`` activations.
_PLAIN = (nn.ReLU, nn.MaxPool2d, nn.Flatten)


def run_name(lam: Sequence[float], seed: int, target_fraction: float | None = None) -> str:
    """The folder of one network of a sweep: ``lam-<λ>_seed-<s>`` (per-layer λ joined by
    commas), or ``lam-<λ>_target-<t>_seed-<s>`` for one of several target fractions."""
    lam_part = f"lam-{','.join(f'{v:g}' for v in lam)}"
    target_part = "" if target_fraction is None else f"_target-{target_fraction:g}"
    return f"{lam_part}{target_part}_seed-{seed}"


def sweep_configs(
    base: TrainConfig,
    lams: Sequence[float | Sequence[float]],
    seeds: Sequence[int],
    out: str | Path,
    target_fractions: Sequence[float] | None = None,
) -> list[TrainConfig]:
    """One configuration per (λ, seed), λ-major, each in ``out/lam-<λ>_seed-<s>``; with
    ``target_fractions``, one per (λ, target fraction, seed) in
    ``out/lam-<λ>_target-<t>_seed-<s>``.

    :param base: the shared settings.
    :param lams: the λ values (nats per parameter; a number, or one per gated layer).
    :param seeds: the seeds.
    :param out: the sweep's folder.
    :param target_fractions: kept fractions held by the Lagrangian of ``base.target``.
    :raises ValueError: no λ or seed, a repeated network, or target fractions without a
        ``target``.
    """
    if not lams or not seeds:
        raise ValueError("a sweep needs at least one --lam and one --seeds value")
    if target_fractions is not None and base.target is None:
        raise ValueError("several --target-fraction values need --target params or flops")
    fractions = [None] if target_fractions is None else [float(t) for t in target_fractions]
    cfgs = []
    for lam in lams:
        values = [float(lam)] if isinstance(lam, (int, float)) else [float(v) for v in lam]
        for fraction in fractions:
            for seed in seeds:
                path = Path(out) / run_name(values, seed, fraction)
                settings = dict(lam=values, seed=int(seed), out=str(path))
                if fraction is not None:
                    settings["target_fraction"] = fraction
                cfgs.append(replace(base, **settings))
    names = [c.out for c in cfgs]
    if len(set(names)) != len(names):
        raise ValueError("the sweep names the same (λ, seed) twice")
    return cfgs


def check_sweep(cfgs: Sequence[TrainConfig]) -> list[TrainConfig]:
    """The resolved configurations, checked to be stackable: one network among
    :data:`STACKABLE`, the analytic ELBO, one process, and every setting but
    :data:`SWEPT` shared.

    :raises ValueError: one line saying what cannot be stacked.
    """
    if not cfgs:
        raise ValueError("a sweep needs at least one network")
    resolved = [c.resolved() for c in cfgs]
    first = resolved[0]
    if first.network not in STACKABLE:
        raise ValueError(
            f"l0bayes sweep stacks {', '.join(STACKABLE)}; train {first.network} networks "
            "one by one with l0bayes train"
        )
    if first.elbo != "analytic" or first.nproc != 1:
        raise ValueError("a sweep needs --elbo analytic and one process (--nproc 1)")
    shared = lambda c: {k: v for k, v in asdict(c).items() if k not in SWEPT | _FREE}  # noqa: E731
    for cfg in resolved[1:]:
        differ = sorted(k for k, v in shared(cfg).items() if shared(first)[k] != v)
        if differ:
            raise ValueError(f"the networks of a sweep share every setting but λ, the seed "
                             f"and the target fraction; "
                             f"{cfg.out} differs in {differ}")  # fmt: skip
    return resolved


class Sweep:
    """Train the networks of ``cfgs`` stacked (module docstring); :meth:`run` returns each
    network's metrics, as :func:`~l0bayes.training.trainer.train` would.

    :param cfgs: one configuration per network (:func:`sweep_configs`).
    :param data: the data set of every network (default: each loads its own, once per seed for
        the synthetic set, whose images depend on it).
    :param resume: continue every network from its checkpoint.
    """

    def request_stop(self) -> bool:
        """Ask the loop to checkpoint and stop at the next step boundary (SIGINT's handler);
        returns whether a stop had already been asked for."""
        asked, self._stop = self._stop, True
        return asked

    def __init__(
        self, cfgs: Sequence[TrainConfig], data: ImageDataset | None = None, resume=False
    ) -> None:
        self.cfgs = check_sweep(cfgs)
        self.resume = resume
        self.device = resolve_device(self.cfgs[0].device)
        loaded: dict[tuple, ImageDataset] = {}
        images: dict[tuple, tuple] = {}
        self.trainers: list[Trainer] = []
        self._rng: list[tuple] = []  # each network's random stream (torch's global generator)
        for cfg in self.cfgs:
            key = (cfg.seed if cfg.dataset == "synthetic" else None,)
            if data is None and key not in loaded:
                loaded[key] = load_dataset(cfg)
            trainer = Trainer(cfg, data=data if data is not None else loaded[key], resume=resume)
            if key in images:  # share the tensors of the same images
                trainer.train, trainer.test = images[key]
            images.setdefault(key, (trainer.train, trainer.test))
            self.trainers.append(trainer)
            self._rng.append(self._rng_now())  # as its trainer left it: seeded, network built
        self.cfg = self.trainers[0].cfg
        self._stop = False

    # ------------------------------------------------------------------ stacking
    def _stack(self) -> None:
        """Move every network's parameters into stacked tensors (their slices ``[k]``) and set
        up the joint optimiser, averages and random streams."""
        nets = [t.net for t in self.trainers]
        named = [dict(net.named_parameters()) for net in nets]
        self.params: dict[str, nn.Parameter] = {}
        for name in named[0]:
            stacked = nn.Parameter(torch.stack([n[name].detach() for n in named]))
            for k, n in enumerate(named):
                n[name].data = stacked.data[k]
            self.params[name] = stacked
        self._named = named
        first = self.trainers[0]
        if self.cfg.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(
                self.params.values(), lr=self.cfg.lr, momentum=0.9, nesterov=True, foreach=True
            )
        else:
            self.optimizer = torch.optim.Adam(self.params.values(), lr=self.cfg.lr, foreach=True)
        self._join_optimizer_state()
        self.ema = None
        if first.ema is not None:
            self.ema = StackedEMA([t.ema for t in self.trainers], self.params)
        self._plan = self._layer_plan(nets[0])

    def _layer_plan(self, net: nn.Module) -> list[tuple]:
        plan = []
        for i, layer in enumerate(net.layers):
            if isinstance(layer, (L0Linear, L0Conv2d)):
                if layer.gate_kind != "group" or layer.weight_guide != "delta":
                    raise ValueError("a sweep stacks group gates with point-mass weights only")
                params = [self.params.get(f"layers.{i}.{n}") for n in ("weight", "bias")]
                plan.append(("gated", i, layer, *params, self.params[f"layers.{i}.log_alpha"]))
            elif isinstance(layer, _PLAIN):
                plan.append(("plain", i, layer))
            else:
                raise ValueError(f"a sweep cannot stack the layer {type(layer).__name__}")
        return plan

    def _join_optimizer_state(self) -> None:
        """The trainers' optimiser states (restored from checkpoints) stacked into the joint
        optimiser's."""
        for name, stacked in self.params.items():
            states = [
                t.optimizer.state.get(n[name])
                for t, n in zip(self.trainers, self._named, strict=True)
            ]
            if not states[0]:
                continue
            self.optimizer.state[stacked] = {
                key: torch.stack([s[key] for s in states])
                if torch.is_tensor(value) and value.dim() > 0
                else value
                for key, value in states[0].items()
            }

    def _split_optimizer_state(self) -> None:
        """Each trainer's optimiser state as views of the joint one (for its checkpoint)."""
        for name, stacked in self.params.items():
            state = self.optimizer.state.get(stacked)
            if not state:
                continue
            for k, (t, n) in enumerate(zip(self.trainers, self._named, strict=True)):
                t.optimizer.state[n[name]] = {
                    key: value[k] if torch.is_tensor(value) and value.dim() > 0 else value
                    for key, value in state.items()
                }

    # ------------------------------------------------------------------ random streams
    def _rng_now(self) -> tuple:
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        return torch.get_rng_state(), cuda

    def _rng_set(self, state: tuple) -> None:
        torch.set_rng_state(state[0])
        if state[1] is not None:
            torch.cuda.set_rng_state(state[1], self.device)

    @contextlib.contextmanager
    def _stream(self, k: int) -> Iterator[None]:
        """Network ``k``'s random stream as torch's global generator for the block."""
        self._rng_set(self._rng[k])
        try:
            yield
        finally:
            self._rng[k] = self._rng_now()

    # ------------------------------------------------------------------ one step
    def _gates(self, finetune: bool, batch: int) -> list[torch.Tensor]:
        r"""Each gated layer's gates, stacked ``(K, G)`` (``(K, B, G)`` with per-example
        draws): hard concrete draws :math:`z = \min(1, \max(0, \sigma((\log u - \log(1-u) +
        \log\alpha)/\beta)(\zeta-\gamma)+\gamma))` from each network's own uniforms (as
        :meth:`~l0bayes.distributions.HardConcrete.rsample`), or Eq. 13's gates when
        fine-tuning."""
        gated = [p for p in self._plan if p[0] == "gated"]
        if finetune:
            return [HardConcrete(la, g[2].temperature, g[2].stretch).deterministic_gate()
                    for *g, la in gated]  # fmt: skip
        uniforms: list[list[torch.Tensor]] = [[] for _ in gated]
        for k in range(len(self.trainers)):
            with self._stream(k):
                for j, (*_, la) in enumerate(gated):
                    layer = gated[j][2]
                    shape = (batch, la.shape[-1]) if layer.local_rep else (la.shape[-1],)
                    uniforms[j].append(torch.rand(shape, dtype=la.dtype, device=la.device))
        gates = []
        for (_, _, layer, *_, la), us in zip(gated, uniforms, strict=True):
            finfo = torch.finfo(la.dtype)
            u = torch.stack(us).clamp(finfo.tiny, 1.0 - finfo.eps)
            loc = la[:, None, :] if layer.local_rep else la
            s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + loc) / layer.temperature)
            low, high = layer.stretch
            gates.append((s * (high - low) + low).clamp(0.0, 1.0))
        return gates

    def _logits(self, x: torch.Tensor, gates: list[torch.Tensor]) -> torch.Tensor:
        """Logits ``(K, B, C)`` of the stacked inputs ``x`` ``(K, B, ...)``."""
        h, K, B = x, x.shape[0], x.shape[1]
        it = iter(gates)
        for entry in self._plan:
            if entry[0] == "plain":
                h = entry[2](h.flatten(0, 1)).unflatten(0, (K, B))
                continue
            _, _, layer, weight, bias, _ = entry
            z = next(it)
            if isinstance(layer, L0Linear):
                h = torch.bmm(h * (z if z.dim() == 3 else z[:, None, :]), weight)
                h = h if bias is None else h + bias[:, None, :]
            else:
                conv = [
                    F.conv2d(h[k], weight[k], None if bias is None else bias[k],
                             layer.stride, layer.padding)
                    for k in range(K)
                ]  # fmt: skip
                h = torch.stack(conv) * (z if z.dim() == 3 else z[:, None, :])[..., None, None]
        return h

    def _kl(self) -> torch.Tensor:
        r"""Each network's :math:`\sum_\ell \mathrm{KL}_\ell`, ``(K,)``: the gates' term
        (:func:`~l0bayes.distributions.gate_kl` with each network's current code cost
        :math:`\lambda_g`) plus :math:`\sum_g P(z_g \ne 0)\tfrac{\lambda_2}{2}
        \lVert\tilde\theta_g\rVert^2`, as :meth:`~l0bayes.nn.layers.L0Layer.kl_divergence`."""
        total = 0
        for j, (*_, layer, weight, _, la) in enumerate(p for p in self._plan if p[0] == "gated"):
            costs = [t.net.gated_layers()[j].gate_cost() for t in self.trainers]
            cost = torch.tensor(costs, dtype=la.dtype, device=la.device)[:, None]
            q = HardConcrete(la, layer.temperature, layer.stretch)
            gate = gate_kl(q, cost, layer.kl_mode)
            grouped = weight.reshape(len(self.trainers), layer.num_gates, layer.group_size)
            decay = point_mass_kl(grouped, layer.weight_prior(), event_dim=1)
            total = total + gate.sum(-1) + (q.prob_nonzero * decay).sum(-1)
        return total

    def step(self, indexes: list[torch.Tensor], progress: float, finetune: bool) -> torch.Tensor:
        """One step of every network on its minibatch ``indexes[k]``; returns the per-data-point
        losses ``(K,)`` (each as its trainer's :meth:`~Trainer.step`)."""
        batches: dict[tuple, tuple] = {}
        xs, ys = [], []
        for t, index in zip(self.trainers, indexes, strict=True):
            key = (id(t.train), t.cfg.seed)
            if key not in batches:
                batches[key] = t.train.batch(index)
            xs.append(batches[key][0])
            ys.append(batches[key][1])
        x, y = torch.stack(xs), torch.stack(ys)
        K, B = y.shape
        n = len(self.trainers[0].train)
        if self.cfg.lam_warmup and not finetune:
            for t in self.trainers:
                t.set_warmup(progress)
        logits = self._logits(x, self._gates(finetune, B))
        nll = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
        losses = (nll.view(K, B).sum(-1) * (n / B) + self._kl()) / n
        total = losses.sum()
        fractions = [None] * K
        if not finetune:
            for k, t in enumerate(self.trainers):
                if t.lagrangian is not None:
                    penalty, fractions[k] = t.lagrangian.penalty()
                    total = total + penalty
        descend(self.optimizer, total, reduce=self._merge_grads,
                after_step=lambda: self._after_step(fractions))  # fmt: skip
        return losses.detach()

    def _merge_grads(self) -> None:
        """Add the gradients that reached a network's own parameters (a Lagrangian computed on
        its modules) into the stacked tensors' slices."""
        for name, stacked in self.params.items():
            for k, n in enumerate(self._named):
                grad = n[name].grad
                if grad is not None:
                    if stacked.grad is None:
                        stacked.grad = torch.zeros_like(stacked)
                    stacked.grad[k] += grad
                    n[name].grad = None

    @torch.no_grad()
    def _after_step(self, fractions: list) -> None:
        if self.cfg.clamp_log_alpha:
            for entry in self._plan:
                if entry[0] == "gated":
                    entry[-1].clamp_(*LOG_ALPHA_RANGE)
        if self.ema is not None:
            self.ema.update()
        for t, f in zip(self.trainers, fractions, strict=True):
            if f is not None:
                t.lagrangian.ascend(f)

    # ------------------------------------------------------------------ the loop
    def save(self) -> None:
        """Every network's checkpoint (with its own random stream)."""
        self._split_optimizer_state()
        for k, t in enumerate(self.trainers):
            with self._stream(k):
                t.save()

    def run(self) -> list[dict[str, Any]]:
        """Train (or resume) every network to the configured epochs; returns their metrics."""
        with contextlib.ExitStack() as stack:
            for t in self.trainers:
                stack.enter_context(run_lock(t.out, "l0bayes sweep"))
            for k, t in enumerate(self.trainers):
                with self._stream(k):
                    t.begin()  # restores a resumed run's checkpoint and random state
            self._stack()
            stack.enter_context(stop_on_sigint(self.request_stop))
            stack.enter_context(torch_threads(self.cfg.num_threads))
            stack.enter_context(pyro.validation_enabled(False))
            first = self.trainers[0]
            while first.state.epoch < self.cfg.total_epochs:
                self._run_epoch()
            out = []
            for k, t in enumerate(self.trainers):
                with self._stream(k):
                    metrics = t.finish()
                metrics["sweep"] = {
                    "networks": len(self.trainers),
                    "note": "trained stacked with the other networks of an l0bayes sweep; "
                    "train_seconds is the whole sweep's",
                }
                write_json(t.out / "metrics.json", metrics)
                out.append(metrics)
            return out

    def _run_epoch(self) -> None:
        cfg, first = self.cfg, self.trainers[0]
        epoch, start = first.state.epoch, first.state.step_in_epoch
        finetune = first.finetuning
        if finetune:
            for entry in self._plan:
                if entry[0] == "gated":
                    entry[-1].requires_grad_(False)
        steps = first.loop.steps
        bar = tqdm(total=steps, initial=start, leave=False, mininterval=1.0,
                   desc=f"sweep of {len(self.trainers)}: epoch {epoch + 1}/{cfg.total_epochs}",
                   disable=not cfg.progress)  # fmt: skip
        tic = time.perf_counter()
        batches = zip(*(t.loop.batches(epoch, start) for t in self.trainers), strict=True)
        for items in batches:
            s = items[0][0]
            losses = self.step([index for _, index in items], epoch + s / steps, finetune)
            for k, t in enumerate(self.trainers):
                t.loop.losses.add(losses[k])
                t.state.step_in_epoch = s + 1
                t.state.global_step += 1
            bar.update(1)
            if (s + 1) % 50 == 0 or s + 1 == steps:
                for t in self.trainers:
                    t.sync_loss()
            every = cfg.checkpoint_every and first.state.global_step % cfg.checkpoint_every == 0
            if self._stop or every:
                for t in self.trainers:
                    t.sync_loss()
                    t.state.train_seconds += time.perf_counter() - tic
                tic = time.perf_counter()
                self.save()
                if self._stop:
                    bar.close()
                    raise TrainingInterrupted(
                        f"interrupted at epoch {epoch + 1}, step {s + 1}; checkpoints saved. "
                        "Resume with the same l0bayes sweep command and --resume"
                    )
        bar.close()
        seconds = time.perf_counter() - tic
        self._split_optimizer_state()
        for k, t in enumerate(self.trainers):
            t.state.train_seconds += seconds
            with self._stream(k):
                t.end_epoch(label=t.out.name)  # one printed line per network, named


def sweep(
    cfgs: Sequence[TrainConfig], data: ImageDataset | None = None, resume: bool = False
) -> list[dict[str, Any]]:
    """Train the networks of ``cfgs`` as one stacked job (:class:`Sweep`); returns each
    network's metrics (also in its ``metrics.json``)."""
    return Sweep(cfgs, data=data, resume=resume).run()


__all__ = ["STACKABLE", "SWEPT", "Sweep", "check_sweep", "run_name", "sweep", "sweep_configs"]
