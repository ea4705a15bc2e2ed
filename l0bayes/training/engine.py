r"""The training engine of the chain networks: :math:`K` runs stacked, each step one
capturable program, evaluation on the device.

:class:`StackedTraining` trains the :class:`~l0bayes.training.trainer.Trainer` s of ``mnist-mlp``
or ``lenet5`` runs together: ``l0bayes train`` is :math:`K = 1`, ``l0bayes sweep`` one per
network of a study. Each trainer keeps its run (directory, configuration, data order, average,
Lagrangian, history, checkpoints, metrics); the engine keeps the :math:`K` networks' parameters
stacked (:class:`~l0bayes.training.stacked.StackedChain`) and takes the steps in lockstep.

**One step** of every network on its minibatch ``index[k]`` (:math:`B` of its :math:`N`
examples, in :func:`~l0bayes.data.images.epoch_order` of its seed) after :math:`t` steps is
one function of device tensors:

1. the warm-up weight :math:`w = \min(1, t / (K_w S))` (:math:`S` steps per epoch,
   :math:`K_w` = ``lam_warmup`` epochs): λ becomes :math:`w\lambda`, or a target fraction
   :math:`\tau` becomes :math:`1 - w(1 - \tau)`;
2. the gates from the counter uniforms of ``(seed_k, t)``
   (:mod:`l0bayes.distributions.counter_noise`), or Eq. 13's gates when fine-tuning;
3. the per-data-point loss :math:`L_k = \frac1N[\frac NB\sum_i -\log p(y_i\mid x_i, z,
   \theta) + \sum_\ell \mathrm{KL}_\ell]` and, with a target, :math:`\mu_k (c_k(\phi) -
   \tau_k)`; their sum is descended (the networks share no parameter, so each gets its own
   gradient);
4. Adam (or SGD), the clamp of :math:`\log\alpha` to :math:`[\log 0.01, \log 100]`, the
   parameters' moving average, the dual ascent :math:`\mu_k \leftarrow \max(0, \mu_k +
   \eta_\mu(c_k - \tau_k))`, the losses added to a float64 sum on the device, :math:`t
   \leftarrow t + 1`.

Nothing in it reads a value back to the host, so on CUDA the whole step is recorded once into
a CUDA graph and replayed (:class:`~l0bayes.training.capture.CapturedStep`; Adam with
``capturable=True``); ``graph=False`` (``--no-graph``) runs it eagerly, as on the CPU. The
losses are read once per epoch (and at a checkpoint).

**Equal to a separate run.** Network :math:`k` of a stack computes what its run computes alone
(:math:`K = 1`), with the same gate uniforms, data order and initialisation: the batched matrix
products and the grouped convolution are the only operations that see the other networks, and
on the CPU they give each network exactly its own product (a sweep of MLPs equals its ``train``
runs bitwise; LeNet-5's grouped convolution to float rounding, tested). A CUDA graph replays the
eager step's kernels (equal on the GPU, tested there).

**Evaluation** of every network at once on the device: the test error of the parameters'
averages with Eq. 13's gates, as one count per network read back once; then each network's
architecture through its trainer.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from l0bayes.data.images import Images, epoch_order
from l0bayes.distributions.counter_noise import counter_uniform, step_keys
from l0bayes.training.capture import CapturedStep
from l0bayes.training.config import LOG_ALPHA_RANGE, TrainConfig
from l0bayes.training.loop import TrainingInterrupted, descend
from l0bayes.training.stacked import GATES, StackedChain

#: The networks the engine trains (chains of gated layers).
STACKABLE = ("mnist-mlp", "lenet5")


def stackable(cfg: TrainConfig, world: int = 1) -> bool:
    """Whether a (resolved) configuration trains through the engine: a chain network, the
    analytic ELBO, one process."""
    return cfg.network in STACKABLE and cfg.elbo == "analytic" and cfg.nproc == 1 and world == 1


class StackedImages:
    """The training (or test) images of :math:`K` runs, gathered for all of them at once.

    Runs that share their :class:`~l0bayes.data.images.Images` share one copy; runs on other
    images (the synthetic set is drawn per seed) are stacked ``(D, N, ...)``.
    """

    def __init__(self, images: Sequence[Images]) -> None:
        unique: dict[int, Images] = {}
        for item in images:
            unique.setdefault(id(item), item)
        sets = list(unique.values())
        if len({len(s) for s in sets}) != 1:
            raise ValueError("the stacked runs need training sets of one size")
        self.shape, self.size = sets[0].shape, len(sets[0])
        device = sets[0].x.device
        self.ids = torch.tensor([list(unique).index(id(i)) for i in images], device=device)
        self.x = torch.stack([s.x for s in sets]) if len(sets) > 1 else sets[0].x[None]
        self.y = torch.stack([s.y for s in sets]) if len(sets) > 1 else sets[0].y[None]
        stats = [s.stats for s in sets]
        self.stats = None
        if stats[0] is not None:
            self.stats = tuple(torch.stack([s[i] for s in stats])[self.ids] for i in (0, 1))

    def __len__(self) -> int:
        return self.size

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs ``(K, B, ...)`` and labels ``(K, B)`` of the examples ``index`` ``(K, B)``
        of each run, scaled as :meth:`~l0bayes.data.images.Images.batch` scales them."""
        K, B = index.shape
        if self.x.shape[0] == 1:
            x, y = self.x[0][index], self.y[0][index]
        else:
            x, y = self.x[self.ids[:, None], index], self.y[self.ids[:, None], index]
        x = x.float().div_(255.0).reshape(K, B, *self.shape)
        if self.stats is not None:
            mean, std = self.stats  # (K, C)
            view = (K, 1, -1, 1, 1) if len(self.shape) == 3 else (K, 1, -1)
            x = (x - mean.reshape(view)) / std.reshape(view)
        return x, y


class StackedTraining:
    """Train ``trainers`` (chain networks, begun: a resumed run restored) to their last epoch
    in lockstep (module docstring).

    :param trainers: one :class:`~l0bayes.training.trainer.Trainer` per run, sharing every
        setting but λ, the seed and the target fraction.
    :param commit: writes the checkpoints of every run (after an epoch, every
        ``checkpoint_every`` steps and when asked to stop).
    :param stop_requested: whether SIGINT asked the loop to stop.
    :param interrupted: the message of the :class:`TrainingInterrupted` raised after a stop,
        given the epoch and step.
    """

    def __init__(
        self,
        trainers: Sequence[Any],
        commit: Callable[[], None],
        stop_requested: Callable[[], bool] = lambda: False,
        interrupted: Callable[[int, int], str] = lambda e, s: f"interrupted at epoch {e}",
    ) -> None:
        self.trainers = list(trainers)
        self.cfg: TrainConfig = self.trainers[0].cfg
        self.commit, self.stop_requested, self.interrupted = commit, stop_requested, interrupted
        first = self.trainers[0]
        self.device = first.device
        self.K = len(self.trainers)
        self.chain = StackedChain(
            [t.net for t in self.trainers], first.input_shape, [t.cfg.seed for t in self.trainers]
        )
        self.train = StackedImages([t.train for t in self.trainers])
        self.test = StackedImages([t.test for t in self.trainers])
        self.num_data, self.batch_size = len(self.train), self.cfg.batch_size
        self.steps = first.loop.steps
        self.graph = self.cfg.graph and self.device.type == "cuda"
        self._optimizer()
        self._average()
        self._lagrangian()
        like = self.chain.params[GATES]
        self.step_count = torch.tensor(first.state.global_step, device=self.device)
        self.loss_sum = torch.zeros(self.K, dtype=torch.float64, device=self.device)
        self._positions: dict[int | None, torch.Tensor] = {}
        self._programs: dict[bool, CapturedStep] = {}
        self.dtype = like.dtype

    # ------------------------------------------------------------------ state
    def _optimizer(self) -> None:
        params = [self.chain.params[key] for key in self.chain.keys()]
        if self.cfg.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(
                params, lr=self.cfg.lr, momentum=0.9, nesterov=True, foreach=True
            )
            self.graph = False  # its learning rate follows a schedule (host numbers)
        else:
            self.optimizer = torch.optim.Adam(
                params, lr=self.cfg.lr, foreach=True, capturable=self.device.type == "cuda"
            )
        self._join_optimizer_state()

    def _per_run_states(self) -> list[dict[str, dict]]:
        out = []
        for t in self.trainers:
            named = dict(t.net.named_parameters())
            out.append({name: t.optimizer.state.get(p) for name, p in named.items()})
        return out

    def _join_optimizer_state(self) -> None:
        """The runs' optimiser states (restored from their checkpoints) stacked into the
        engine's."""
        states = self._per_run_states()
        names = list(states[0])
        if not states[0][names[0]]:
            return
        fields = states[0][names[0]]
        stacked: dict[str, dict] = {key: {} for key in self.chain.keys()}
        for field, value in fields.items():
            if torch.is_tensor(value) and value.dim() > 0:
                joined = self.chain.stack([{n: s[n][field] for n in names} for s in states])
                for key, tensor in joined.items():
                    stacked[key][field] = tensor
            else:
                for key in stacked:
                    stacked[key][field] = self._scalar_state(value)
        for key, state in stacked.items():
            self.optimizer.state[self.chain.params[key]] = state

    def _scalar_state(self, value):
        """A copy of a scalar state (Adam's step count) for one stacked tensor: the optimiser
        advances each tensor's own in place."""
        if not torch.is_tensor(value):
            return value
        if self.device.type == "cuda":  # capturable Adam's step count lives there
            return value.to(self.device, torch.float32, copy=True)
        return value.clone()

    def split_optimizer_state(self) -> None:
        """Every run's optimiser state as views of the engine's (for its checkpoint)."""
        params = {key: self.chain.params[key] for key in self.chain.keys()}
        if not self.optimizer.state.get(params[self.chain.keys()[0]]):
            return
        fields = self.optimizer.state[params[self.chain.keys()[0]]]
        for k, t in enumerate(self.trainers):
            named = dict(t.net.named_parameters())
            per_name: dict[str, dict] = {name: {} for name in named}
            for field, value in fields.items():
                if torch.is_tensor(value) and value.dim() > 0:
                    stacked = {key: self.optimizer.state[p][field] for key, p in params.items()}
                    for name, view in self.chain.views(stacked, k).items():
                        per_name[name][field] = view
                else:
                    for name in per_name:
                        per_name[name][field] = value
            for name, p in named.items():
                t.optimizer.state[p] = per_name[name]

    def _average(self) -> None:
        """The runs' parameter averages stacked (each run's stays a view, for its checkpoint
        and its evaluation)."""
        emas = [t.ema for t in self.trainers]
        self.shadow = None
        if emas[0] is None:
            return
        if len({e.beta for e in emas}) != 1 or len({e.steps for e in emas}) != 1:
            raise ValueError("the stacked runs need one EMA beta and one step count")
        self.beta = emas[0].beta
        self.shadow = self.chain.stack([e.shadow for e in emas])
        for k, ema in enumerate(emas):
            ema.rebind(self.chain.views(self.shadow, k))
        self._pairs = (
            [self.shadow[key] for key in self.chain.keys()],
            [self.chain.params[key].detach() for key in self.chain.keys()],
        )

    def _lagrangian(self) -> None:
        lagrangians = [t.lagrangian for t in self.trainers]
        self.mu = None
        if lagrangians[0] is None:
            return
        self.mu = torch.stack([lg.mu for lg in lagrangians]).to(self.device)
        for k, lg in enumerate(lagrangians):
            lg.mu = self.mu[k]
        fractions = [t.cfg.target_fraction for t in self.trainers]
        self.target = torch.tensor(fractions, dtype=torch.float32, device=self.device)[:, None]

    # ------------------------------------------------------------------ one step
    def _noise_positions(self, batch: int) -> torch.Tensor:
        key = batch if self.cfg.local_rep else None
        if key not in self._positions:
            self._positions[key] = self.chain.noise_positions(key)
        return self._positions[key]

    def _warmup(self) -> torch.Tensor:
        """:math:`w = \\min(1, t / (K_w S))` as a device scalar."""
        progress = self.step_count.double() / (self.steps * self.cfg.lam_warmup)
        return progress.clamp(max=1.0).to(self.dtype)

    def train_loss(self, index: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The objective of one step (module docstring, 1-3): the sum to descend, the
        per-data-point losses ``(K,)``, and the constrained fractions and their targets (or
        ``None`` without a target)."""
        cfg, chain = self.cfg, self.chain
        x, y = self.train.batch(index)
        u = counter_uniform(
            step_keys(chain.streams, self.step_count), self._noise_positions(y.shape[1]), self.dtype
        )
        q = chain.posterior()
        z = (chain.posterior(q.log_alpha[:, None]) if cfg.local_rep else q).from_uniform(u)
        w = self._warmup() if cfg.lam_warmup else None
        costs = chain.base_costs if w is None or self.mu is not None else chain.base_costs * w
        losses = self._losses(chain.logits(x, z), y, chain.kl(q, costs))
        total = losses.sum()
        fractions = target = None
        if self.mu is not None:
            fractions = chain.expected_fractions(q.prob_nonzero, cfg.target, cfg.target_scope)
            target = self.target if w is None else 1.0 - w * (1.0 - self.target)
            total = total + (self.mu * (fractions - target)).sum()
        return total, losses, fractions, target

    def _train_step(self, index: torch.Tensor) -> None:
        """One step of every run (module docstring)."""
        total, losses, fractions, target = self.train_loss(index)
        descend(self.optimizer, total)
        self._after_step(losses, fractions, target)

    def finetune_loss(self, index: torch.Tensor) -> torch.Tensor:
        """The per-data-point losses ``(K,)`` of a fine-tuning step: the gates frozen at
        Eq. 13's values (:func:`~l0bayes.training.trainer.finetune_loss`)."""
        x, y = self.train.batch(index)
        kl = self.chain.kl(self.chain.posterior(), self.chain.base_costs)
        return self._losses(self.chain.logits(x, None), y, kl)

    def _finetune_step(self, index: torch.Tensor) -> None:
        """One step of the weights alone."""
        losses = self.finetune_loss(index)
        descend(self.optimizer, losses.sum())
        self._after_step(losses, None, None)

    def _losses(self, logits: torch.Tensor, y: torch.Tensor, kl: torch.Tensor) -> torch.Tensor:
        K, B = y.shape
        nll = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
        return (nll.view(K, B).sum(-1) * (self.num_data / B) + kl) / self.num_data

    @torch.no_grad()
    def _after_step(self, losses, fractions, target) -> None:
        if self.cfg.clamp_log_alpha:
            self.chain.params[GATES].clamp_(*LOG_ALPHA_RANGE)
        if self.shadow is not None:
            torch._foreach_lerp_(*self._pairs, 1.0 - self.beta)
        if fractions is not None:
            self.mu.add_((fractions.detach() - target) * self.cfg.lagrange_lr).clamp_(min=0.0)
        self.loss_sum.add_(losses.detach().double())
        self.step_count.add_(1)

    def program(self, finetune: bool) -> CapturedStep:
        """The step of the phase (training, or fine-tuning with frozen gates), captured on
        CUDA unless ``graph=False``."""
        if finetune not in self._programs:
            fn = self._finetune_step if finetune else self._train_step
            self._programs[finetune] = CapturedStep(fn, self.device, self.graph)
        return self._programs[finetune]

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        """Train every run to its last epoch (fine-tuning epochs included)."""
        first = self.trainers[0]
        while first.state.epoch < self.cfg.total_epochs:
            self._run_epoch()

    def _run_epoch(self) -> None:
        cfg, first = self.cfg, self.trainers[0]
        epoch, start = first.state.epoch, first.state.step_in_epoch
        finetune = first.finetuning
        if finetune:
            self.chain.params[GATES].requires_grad_(False)
            for t in self.trainers:
                t.freeze_gates()
        program = self.program(finetune)
        orders = torch.stack([epoch_order(t.cfg.seed, epoch, self.num_data) for t in self.trainers])
        orders = orders.to(self.device)
        self.step_count.fill_(first.state.global_step)
        sums = [t.state.loss_sum for t in self.trainers]  # float64: a resume keeps every bit
        self.loss_sum.copy_(torch.tensor(sums, dtype=torch.float64))
        label = f"epoch {epoch + 1}/{cfg.total_epochs}"
        bar = tqdm(total=self.steps, initial=start, leave=False, mininterval=1.0,
                   desc=label if self.K == 1 else f"{self.K} networks: {label}",
                   disable=not cfg.progress)  # fmt: skip
        tic = time.perf_counter()
        b = self.batch_size
        for s in range(start, self.steps):
            program(orders[:, s * b : (s + 1) * b])
            for t in self.trainers:
                t.state.step_in_epoch = s + 1
                t.state.global_step += 1
                if t.ema is not None:
                    t.ema.steps += 1
            bar.update(1)
            every = cfg.checkpoint_every and first.state.global_step % cfg.checkpoint_every == 0
            stop = self.stop_requested()
            if stop or (every and s + 1 < self.steps):  # the epoch's end commits anyway
                self._sync(tic)
                tic = time.perf_counter()
                self.split_optimizer_state()
                self.commit()
                if stop:
                    bar.close()
                    raise TrainingInterrupted(self.interrupted(epoch + 1, s + 1))
        bar.close()
        self._sync(tic)
        self.split_optimizer_state()
        rows = self.evaluate()
        for t, row in zip(self.trainers, rows, strict=True):
            t.end_epoch(row, save=False, label=t.out.name if self.K > 1 else None)
        self.commit()

    def _sync(self, tic: float) -> None:
        """Read the loss sums (one synchronisation) into the runs' states, check them and add
        the seconds since ``tic`` to every run's training time."""
        sums = self.loss_sum.tolist()
        seconds = time.perf_counter() - tic
        for t, value in zip(self.trainers, sums, strict=True):
            st = t.state
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"the loss of {t.out} became {value} in epoch {st.epoch + 1} (by step "
                    f"{st.step_in_epoch}); try a smaller --lr (now {self.cfg.lr})"
                )
            st.loss_sum, st.loss_count = value, st.step_in_epoch
            st.train_seconds += seconds

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def test_errors(self, chunk: int = 1000) -> list[float]:
        """Every run's test error with Eq. 13's gates and its averaged (bias-corrected)
        parameters, counted on the device and read back once."""
        params = self.chain.params
        if self.shadow is not None and self.trainers[0].ema.steps:
            correction = 1.0 - self.beta ** self.trainers[0].ema.steps
            params = {key: value / correction for key, value in self.shadow.items()}
        n = len(self.test)
        chunk = max(1, chunk // max(1, self.K // 4))
        wrong = torch.zeros(self.K, dtype=torch.int64, device=self.device)
        for start in range(0, n, chunk):
            index = torch.arange(start, min(start + chunk, n), device=self.device)
            x, y = self.test.batch(index.expand(self.K, -1))
            wrong += (self.chain.logits(x, None, params).argmax(-1) != y).sum(-1)
        return [w / n for w in wrong.tolist()]

    def evaluate(self) -> list[dict[str, Any]]:
        """Each run's record of the epoch: test error (:meth:`test_errors`) and architecture
        (its trainer's :meth:`~l0bayes.training.trainer.Trainer.describe`, with its average)."""
        errors = self.test_errors()
        rows = []
        for t, error in zip(self.trainers, errors, strict=True):
            averaged = t.ema.applied(t.net) if t.ema else contextlib.nullcontext()
            with averaged:
                rows.append({"test_error": error, **t.describe()})
        return rows


__all__ = ["STACKABLE", "StackedImages", "StackedTraining", "stackable"]
