r"""Training a gated network by stochastic variational inference, with nothing lost.

One step draws a minibatch of :math:`B` of the :math:`N` training examples and descends the
per-data-point negative ELBO

.. math::

    \frac{1}{N}\Big[\frac{N}{B}\sum_{i \in \text{batch}} -\log p(y_i \mid x_i, z, \theta)
    + \sum_\text{layers} \mathrm{KL}\Big],

the paper's objective :math:`R(\tilde\theta, \phi)` in ``kl_mode="l0"`` (the gates' expected
L0 norm times λ plus the :math:`P(z \ne 0)`-scaled weight decay). By default the loss is
:meth:`~l0bayes.nn.layers.L0Network.differentiable_loss` (the same ELBO as Pyro's
``TraceMeanField_ELBO`` on ``net.model``/``net.guide``, computed without tracing);
``elbo="trace"`` runs Pyro's ``TraceMeanField_ELBO`` itself, with the data in
``pyro.plate("data", N, subsample=...)``. The chain networks (``mnist-mlp``, ``lenet5``) with
the closed form in one process train through the stacked engine with one network
(:mod:`l0bayes.training.engine`: each step one captured CUDA graph on a GPU), as ``l0bayes
sweep`` trains many. Every path draws its gates from the counter uniforms of ``(seed, step)``
(:mod:`l0bayes.distributions.counter_noise`), so all of them take the same draws.

**λ's units.** ``lam`` is the code cost per parameter in nats of total log-likelihood, which is
the paper's λ written per data point: the paper's ":math:`\lambda = 0.1/N`" is ``lam=0.1``. A
gate that controls :math:`S` weights pays :math:`\lambda S`. ``lam=1`` is AIC and
:math:`\tfrac12\log N` BIC.

**Test time.** Test error and architecture use the paper's deterministic gates (Eq. 13) and,
when an exponential moving average of the parameters is kept, the averaged parameters
(bias-corrected; the paper's temporal averaging: β = 0.999 for the MNIST networks, 0.99 for
the WRN as in the official code, whose LeNet-5 script leaves it out).

**Targets.** With ``target="params"`` or ``"flops"`` and ``target_fraction`` :math:`t`, the
expected fraction :math:`c(\phi)` of non-zero parameters (or of the dense network's FLOPs) is
held below :math:`t` by a Lagrange multiplier: the loss gains :math:`\mu\,(c(\phi) - t)` and
after every step :math:`\mu \leftarrow \max(0, \mu + \eta_\mu (c - t))` (gradient ascent on the
dual). ``target_scope="layer"`` puts one constraint on every gated layer's expected fraction of
open gates instead.

**Run directory** (``out``): ``config.json`` (written first), ``checkpoint.pt`` (every epoch
and every ``checkpoint_every`` steps, atomic), ``history.csv`` (one row per epoch), and
``metrics.json``, written once, atomically, when the run completes. ``resume=True`` continues
from ``checkpoint.pt``: the result is bitwise the same as an uninterrupted run on the same
device (tested with ``SIGKILL`` in the middle of an epoch). ``SIGINT`` (Ctrl-C) stops at the
next step boundary after writing a checkpoint.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pyro
import torch
import torch.nn.functional as F
from pyro.infer import TraceMeanField_ELBO
from tqdm.auto import tqdm

import l0bayes.training.distributed as distributed
from l0bayes.data.files import ImageDataset
from l0bayes.data.images import Images, image_splits
from l0bayes.device import resolve_device, torch_threads
from l0bayes.distributions.counter_noise import counter_noise
from l0bayes.nn.layers import L0Network
from l0bayes.nn.networks import (
    get_network,
    network_architecture,
)
from l0bayes.nn.posterior import compare_bma
from l0bayes.training.averaging import Lagrangian, ParameterEMA
from l0bayes.training.checkpoint import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    write_json,
    write_text,
)
from l0bayes.training.config import LOG_ALPHA_RANGE, RESUMABLE, TrainConfig, saved_settings
from l0bayes.training.datasets import load_dataset
from l0bayes.training.engine import StackedTraining, stackable
from l0bayes.training.loop import MinibatchLoop, TrainingInterrupted, descend, stop_on_sigint
from l0bayes.training.records import (
    architecture_string,
    device_name,
    environment,
    epoch_line,
    history_csv,
    peak_rss_mib,
    progress_postfix,
)
from l0bayes.training.run_directory import (
    check_new_run,
    claim_run,
    open_run,
    prepare_new_run,
    refuse_new_run,
    run_lock,
)

#: What every row of a run's history holds (``end_epoch`` writes them).
HISTORY_KEYS = frozenset(
    {"epoch", "step", "train_loss", "test_error", "units", "expected_l0", "train_seconds"}
)


@dataclass
class RunState:
    """Counters and records that a checkpoint restores."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    train_seconds: float = 0.0
    history: list[dict] = field(default_factory=list)
    loss_sum: float = 0.0
    loss_count: int = 0
    num_train: int | None = None


class Trainer:
    """Runs one configured training job (see the module docstring); :meth:`run` returns the
    metrics that it writes to ``metrics.json``."""

    def request_stop(self) -> bool:
        """Ask the loop to checkpoint and stop at the next step boundary (SIGINT's handler);
        returns whether a stop had already been asked for."""
        asked, self._stop = self._stop, True
        return asked

    def __init__(self, cfg: TrainConfig, data: ImageDataset | None = None, resume=False) -> None:
        self.cfg = cfg.resolved()
        self.rank, self.world = distributed.world()
        self.out = Path(self.cfg.out)
        self.spec = get_network(self.cfg.network)
        self.device = resolve_device(self.cfg.device)
        self.resume = resume
        self._check_run_dir()
        self.data = load_dataset(self.cfg) if data is None else data
        self._check_data()
        torch.manual_seed(self.cfg.seed)
        self.num_train = len(self.data.y_train)
        self.net = self._build().to(self.device)
        if not self.resume and self.rank == 0:  # settings and data passed: make the folder
            prepare_new_run(self.out)
        self.input_shape = self.spec.input_shape
        self.train, self.test = self._images()
        self.optimizer = self._optimizer()
        self.scheduler = self._scheduler()
        self.ema = ParameterEMA(self.net, self.cfg.ema) if self.cfg.ema else None
        self.lagrangian = None
        if self.cfg.target is not None:
            self.lagrangian = Lagrangian(self.cfg, self.net, self.input_shape, self.device)
        self.state = RunState(num_train=self.num_train)
        self._elbo = TraceMeanField_ELBO() if self.cfg.elbo == "trace" else None
        self._stop = False  # asked for (SIGINT), on this rank
        self._stopping = False  # agreed by every rank in the last step's all-reduce
        self.loop = MinibatchLoop(len(self.train), self.cfg.batch_size, self.cfg.seed, self.device)
        self._params = list(self.net.parameters())
        #: each gated layer's λ as configured (a warm-up scales a copy of it on the layer)
        self.base_lam = [layer.lam for layer in self.net.gated_layers()]

    # ---------------------------------------------------------------- set-up
    def _check_run_dir(self) -> None:
        """A resumed run must be one of ours with a checkpoint; a new run needs a new or empty
        folder, or one of ours without a checkpoint (see :mod:`l0bayes.training.run_directory`);
        checked here, made only when the data and the network are built."""
        if self.resume:
            open_run(self.out)
            if not (self.out / "checkpoint.pt").is_file():
                raise FileNotFoundError(
                    f"--resume: no checkpoint in {self.out}; start the run without --resume"
                )
        elif self.rank == 0:
            refuse_new_run(self.out)  # created once the settings and the data pass

    def _check_data(self) -> None:
        shape = tuple(self.data.image_shape)
        flat = math.prod(self.spec.input_shape)
        if math.prod(shape) != flat:
            raise ValueError(
                f"{self.cfg.network} expects images of {self.spec.input_shape}, but the "
                f"{self.data.name} images are {shape}"
            )
        for split, y in (("train", self.data.y_train), ("test", self.data.y_test)):
            if len(y) == 0:
                raise ValueError(f"the {split} split of {self.data.name} is empty")
            if y.min() < 0 or y.max() >= self.spec.num_classes:
                raise ValueError(
                    f"{self.data.name} {split} labels must lie in 0..{self.spec.num_classes - 1}"
                )

    def _build(self) -> L0Network:
        return build_network(self.cfg, self.num_train)

    def _images(self) -> tuple[Images, Images]:
        return image_splits(self.data, self.spec.input_shape, self.cfg.standardize, self.device)

    def _optimizer(self) -> torch.optim.Optimizer:
        params = list(self.net.parameters())
        if self.cfg.optimizer == "sgd":
            return torch.optim.SGD(
                params, lr=self.cfg.lr, momentum=0.9, nesterov=True, foreach=True
            )
        return torch.optim.Adam(params, lr=self.cfg.lr, foreach=True)

    def _scheduler(self):
        if not self.spec.milestones:
            return None
        return torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, list(self.spec.milestones), gamma=0.2
        )

    # ---------------------------------------------------------------- checkpoints
    def checkpoint_state(self) -> dict[str, Any]:
        """Everything a resumed run needs (module :mod:`~l0bayes.training.checkpoint`); a
        tensor that views a larger storage (a sweep's stacked parameters) is saved compact."""
        return _compact(
            {
                "version": 1,
                "config": asdict(self.cfg),
                "net": self.net.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                "ema": None if self.ema is None else self.ema.state_dict(),
                "mu": None if self.lagrangian is None else self.lagrangian.mu,
                "run": asdict(self.state),
                "rng": rng_state(),
            }
        )

    def save(self) -> None:
        """Write the checkpoint (rank 0; every rank holds the same state)."""
        if self.rank == 0:
            save_checkpoint(self.out / "checkpoint.pt", self.checkpoint_state())

    def restore(self) -> None:
        """Load ``checkpoint.pt`` (safely: tensors and plain data only) into the trainer.

        :raises ValueError: the checkpoint is unreadable, belongs to another configuration,
            or does not fit the network (the message names the file).
        """
        path = self.out / "checkpoint.pt"
        ckpt = load_checkpoint(path, self.device)
        if not isinstance(ckpt["config"], dict):
            raise ValueError(f"{path} is not an l0bayes checkpoint (no configuration)")
        saved = {k: v for k, v in saved_settings(ckpt["config"]).items() if k not in RESUMABLE}
        now = {k: v for k, v in asdict(self.cfg).items() if k not in RESUMABLE}
        changed = sorted(k for k in now if saved.get(k) != now[k])
        if changed:
            raise ValueError(
                f"--resume: {path} was written with another configuration than "
                f"{self.out / 'config.json'} ({', '.join(changed)})"
            )
        try:
            self._load_state(ckpt)
        except (KeyError, TypeError, RuntimeError, ValueError, AttributeError) as err:
            reason = " ".join(str(err).split())[:300]
            raise ValueError(f"{path} does not fit the run's network: {reason}") from None
        self._check_state(path)
        self._check_finetune_boundary(ckpt["config"].get("epochs"))

    def _check_state(self, path: Path) -> None:
        """A restored run state must be one this run can continue: a history row with the
        records every epoch writes for each epoch done, a step inside the epoch, and no more
        epochs done than the run has (``--epochs`` cannot shorten a run).

        :raises ValueError: the checkpoint's run state is not that (its file named)."""
        st, steps = self.state, self.loop.steps
        if not (
            isinstance(st.epoch, int)
            and isinstance(st.step_in_epoch, int)
            and isinstance(st.history, list)
            and len(st.history) == st.epoch
            and 0 <= st.step_in_epoch <= steps
            and all(isinstance(r, dict) and HISTORY_KEYS <= set(r) for r in st.history)
        ):
            raise ValueError(
                f"{path} holds a run state that no l0bayes run writes (epoch {st.epoch!r}, step "
                f"{st.step_in_epoch!r} of {steps}, {len(st.history)} history rows, each with "
                f"{', '.join(sorted(HISTORY_KEYS))}): it cannot be resumed"
            )
        if st.epoch > self.cfg.total_epochs or (
            st.epoch == self.cfg.total_epochs and st.step_in_epoch > 0
        ):
            flag = f"--epochs {self.cfg.epochs}"
            if self.cfg.finetune_epochs:
                flag += f" (+ {self.cfg.finetune_epochs} fine-tuning)"
            raise ValueError(
                f"--resume: {self.out} has trained {st.epoch} epochs (and {st.step_in_epoch} "
                f"steps); {flag} would end it before that, and a run cannot be shortened: "
                "keep --epochs, or give more"
            )

    def _check_finetune_boundary(self, saved_epochs) -> None:
        """A resume may not move the start of fine-tuning once it has begun: the gates were
        frozen at the end of epoch ``saved_epochs`` and the weights trained alone since, so
        more gate-training epochs after them would be another method, not a longer run."""
        if not self.cfg.finetune_epochs or saved_epochs in (None, self.cfg.epochs):
            return
        if self.state.epoch > saved_epochs or (
            self.state.epoch == saved_epochs and self.state.step_in_epoch > 0
        ):
            raise ValueError(
                f"--resume: {self.out} began fine-tuning (gates frozen) after epoch "
                f"{saved_epochs}; --epochs {self.cfg.epochs} would train the gates again "
                "after it. Keep --epochs, or start a new run"
            )

    def _load_state(self, ckpt: dict[str, Any]) -> None:
        self.net.load_state_dict(ckpt["net"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.ema is not None:
            self.ema.load_state_dict(ckpt["ema"])
        if self.lagrangian is not None:
            self.lagrangian.mu = ckpt["mu"].to(self.device)
        self.state = RunState(**ckpt["run"])
        set_rng_state(ckpt["rng"])

    # ---------------------------------------------------------------- one step
    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = len(self.train)
        if self.finetuning:
            return finetune_loss(self.net, x, y, n)
        if self._elbo is None:
            return self.net.differentiable_loss(x, y, n)
        return self._elbo.differentiable_loss(self.net.model, self.net.guide, x, y, n)

    @property
    def finetuning(self) -> bool:
        """Whether the run is in its fine-tuning epochs (after ``epochs``; gates frozen)."""
        return self.state.epoch >= self.cfg.epochs

    def set_warmup(self, progress: float) -> float:
        r"""Apply the warm-up's weight :math:`w` (:meth:`TrainConfig.warmup_factor`) after
        ``progress`` epochs: each gated layer's λ is :math:`w\lambda`, or, with a sparsity
        target :math:`t`, the Lagrangian's target is :math:`1 - w(1 - t)` (λ kept). Returns
        :math:`w`."""
        w = self.cfg.warmup_factor(progress)
        if self.lagrangian is not None:
            self.lagrangian.target = 1.0 - w * (1.0 - self.cfg.target_fraction)
        else:
            for layer, lam in zip(self.net.gated_layers(), self.base_lam, strict=True):
                layer.lam = lam * w
        return w

    def freeze_gates(self) -> None:
        """For the fine-tuning epochs: the gates' parameters stop taking gradients (Adam then
        skips them), so only the weights train."""
        for layer in self.net.gated_layers():
            layer.log_alpha.requires_grad_(False)

    def step(self, index: torch.Tensor, progress: float | None = None) -> torch.Tensor:
        """One SVI step on the examples ``index`` (this rank's part of them when training on
        several processes, see :mod:`l0bayes.training.distributed`) after ``progress`` epochs
        (for a warm-up); returns the per-data-point loss. In the fine-tuning epochs the gates
        are frozen at their Eq. 13 values and only the weights descend (:func:`finetune_loss`).
        """
        local = index.tensor_split(self.world)[self.rank] if self.world > 1 else index
        x, y = self.train.batch(local, augment=self.spec.dataset.startswith("cifar"))
        if self.cfg.lam_warmup and progress is not None and not self.finetuning:
            self.set_warmup(progress)
        with counter_noise(self.cfg.seed, self.state.global_step):  # the engine's gate uniforms
            loss = self._loss(x, y) / len(self.train)
        total = loss
        fractions = None
        if self.lagrangian is not None and not self.finetuning:
            penalty, fractions = self.lagrangian.penalty()
            total = loss + penalty
        reduced = [loss]

        def reduce() -> None:  # sum the gradients, the loss and the stop flag over the ranks
            weight = len(local) / len(index)
            extras = torch.stack([torch.tensor(float(self._stop)), loss.detach().cpu() * weight])
            summed = distributed.allreduce_gradients(self._params, extras.to(loss.device), weight)
            self._stopping = bool(summed[0] > 0)  # a later SIGINT counts at the next step
            reduced[0] = summed[1]

        descend(
            self.optimizer,
            total,
            reduce=reduce if self.world > 1 else None,
            after_step=functools.partial(self._after_step, fractions),
        )
        if self.world == 1:
            self._stopping = self._stop
        return reduced[0].detach()

    def _after_step(self, fractions: torch.Tensor | None) -> None:
        """Clamp :math:`\\log\\alpha` to ``LOG_ALPHA_RANGE``, update the parameter average and
        ascend the Lagrange multiplier (given the step's constraint ``fractions``)."""
        if self.cfg.clamp_log_alpha:
            with torch.no_grad():
                for layer in self.net.gated_layers():
                    layer.log_alpha.clamp_(*LOG_ALPHA_RANGE)
        if self.ema is not None:
            self.ema.update(self.net)
        if fractions is not None:
            self.lagrangian.ascend(fractions)

    # ---------------------------------------------------------------- evaluation
    @torch.no_grad()
    def evaluate(self) -> dict[str, Any]:
        """Test error (deterministic gates, EMA parameters when kept), architectures and the
        gates' expected L0 per layer."""
        averaged = self.ema.applied(self.net) if self.ema else contextlib.nullcontext()
        self.net.eval()
        try:
            with averaged:
                wrong = 0
                for start in range(0, len(self.test), 1000):
                    index = torch.arange(start, min(start + 1000, len(self.test)))
                    x, y = self.test.batch(index.to(self.device))
                    wrong += int((self.net(x).argmax(-1) != y).sum())
                return {"test_error": wrong / len(self.test), **self.describe()}
        finally:
            self.net.train()

    @torch.no_grad()
    def describe(self) -> dict[str, Any]:
        """The network's architecture under its current parameters: units and FLOPs with
        Eq. 13's gates, expected FLOPs and each gated layer's expected L0."""
        det = network_architecture(self.net, self.input_shape, "deterministic")
        exp = network_architecture(self.net, self.input_shape, "expected")
        l0 = [float(layer.inclusion_probs().sum()) for layer in self.net.gated_layers()]
        return {
            "units": list(det.units),
            "expected_l0": l0,
            "expected_flops": exp.flops,
            "compact_flops": det.flops,
            "nonzero_params": det.params,
        }

    # ---------------------------------------------------------------- the loop
    def run(self) -> dict[str, Any]:
        """Train (or resume) to the configured number of epochs; write and return metrics."""
        distributed.barrier()  # every rank has checked the run directory
        lock = run_lock(self.out) if self.rank == 0 else contextlib.nullcontext()
        with lock:
            return self._run()

    def begin(self) -> None:
        """Under the run's lock: check the run directory again (another process may have
        finished a run there since the first check, or changed its files), restore the
        checkpoint of a resumed run and write ``config.json`` (a resume records the settings
        it changed, :data:`~l0bayes.training.config.RESUMABLE`)."""
        if self.rank == 0:
            if not self.resume:
                check_new_run(self.out)
            claim_run(self.out, "--resume" if self.resume else "--out")
        if self.resume:
            self.restore()
        if self.rank == 0:
            write_json(self.out / "config.json", asdict(self.cfg))

    def _run(self) -> dict[str, Any]:
        self.begin()
        cfg = self.cfg
        with (
            stop_on_sigint(self.request_stop),
            torch_threads(cfg.num_threads),
            pyro.validation_enabled(False),
        ):
            if stackable(cfg, self.world):  # the chain networks: the stacked engine, K = 1
                StackedTraining([self], self.save, lambda: self._stop, self._interrupted).run()
            while self.state.epoch < cfg.total_epochs:
                if self.finetuning:
                    self.freeze_gates()
                self._run_epoch()
            return self.finish()

    def _interrupted(self, epoch: int, step: int) -> str:
        """:func:`interrupted_message` at 1-based ``epoch`` and ``step`` (the engine's)."""
        state = replace(self.state, epoch=epoch - 1, step_in_epoch=step)
        return interrupted_message(self.cfg, state)

    def _run_epoch(self) -> None:
        """The rest of the current epoch on :attr:`loop` (from the checkpoint's step after a
        resume): progress bar, loss reads every 50 steps, checkpoints, SIGINT, the epoch's
        record."""
        cfg, st = self.cfg, self.state
        steps = self.loop.steps
        last = st.history[-1] if st.history else None
        bar = tqdm(
            total=steps,
            initial=st.step_in_epoch,
            desc=f"epoch {st.epoch + 1}/{cfg.total_epochs}",
            disable=not cfg.progress or self.rank != 0,
            leave=False,
            mininterval=1.0,
        )
        tic = time.perf_counter()

        def after_step(done: int, loss: torch.Tensor) -> None:
            nonlocal tic
            st.step_in_epoch = done
            st.global_step += 1
            if done % 50 == 0 or done == steps:
                self.sync_loss()
                bar.set_postfix(progress_postfix(float(loss), last), refresh=False)
            bar.update(1)
            if self._stopping or (
                cfg.checkpoint_every and st.global_step % cfg.checkpoint_every == 0
            ):
                self.sync_loss()
                st.train_seconds += time.perf_counter() - tic
                tic = time.perf_counter()
                self.save()
                if self._stopping:
                    bar.close()
                    distributed.barrier()  # no rank leaves before rank 0's checkpoint is written
                    raise TrainingInterrupted(interrupted_message(cfg, st))

        self.loop.run_epoch(
            st.epoch,
            self.step,
            start=st.step_in_epoch,
            after_step=after_step,
        )
        bar.close()
        st.train_seconds += time.perf_counter() - tic
        self.end_epoch()

    def sync_loss(self) -> None:
        """Move the loss summed on the device since the last read into the run state (a device
        synchronisation: done every 50 steps, not every step) and check it is finite."""
        st = self.state
        value, count = self.loop.losses.read(
            f"at epoch {st.epoch + 1}, step {st.step_in_epoch}; "
            f"try a smaller --lr (now {self.cfg.lr})"
        )
        st.loss_sum += value
        st.loss_count += count

    def end_epoch(
        self,
        evaluation: dict[str, Any] | None = None,
        save: bool = True,
        label: str | None = None,
    ) -> None:
        """Close the current epoch: scheduler step, evaluation (``evaluation`` when the
        caller evaluated already), the history row (and ``history.csv``), the checkpoint
        (unless ``save`` is false: a sweep commits all its runs' together). ``label`` starts
        the printed line (a sweep's network)."""
        st = self.state
        if self.scheduler is not None:
            self.scheduler.step()
        row = {"epoch": st.epoch + 1, "step": st.global_step}
        if self.cfg.finetune_epochs:
            row["phase"] = "finetune" if self.finetuning else "train"
        row["train_loss"] = st.loss_sum / max(st.loss_count, 1)
        if self.rank == 0:
            row.update(self.evaluate() if evaluation is None else evaluation)
        if self.lagrangian is not None:
            with torch.no_grad():
                row["constraint"] = self.lagrangian.fractions().tolist()
            row["multiplier"] = self.lagrangian.mu.tolist()
        row["train_seconds"] = st.train_seconds
        st.history.append(row)
        st.epoch += 1
        st.step_in_epoch = 0
        st.loss_sum, st.loss_count = 0.0, 0
        if self.rank == 0:
            if self.cfg.progress:
                tqdm.write(epoch_line(row, label))
            write_text(self.out / "history.csv", history_csv(st.history))
        if save:
            self.save()

    # ---------------------------------------------------------------- the end
    def finish(self) -> dict[str, Any]:
        """The run's metrics (the last epoch's, the best over epochs, the architecture, the
        settings), written to ``metrics.json`` (rank 0; other ranks return ``{}``)."""
        if self.rank != 0:
            return {}
        for layer, lam in zip(self.net.gated_layers(), self.base_lam, strict=True):
            layer.lam = lam  # a warm-up's scaled λ is not the run's
        hist = self.state.history
        last = hist[-1]
        best = min(hist, key=lambda r: r["test_error"])
        dense = network_architecture(self.net, self.input_shape, "dense")
        n = len(self.train)
        precision = self.cfg.slab_precision(self.num_train)
        metrics = {
            "network": self.cfg.network,
            "dataset": self.data.name,
            "test_error": last["test_error"],
            "test_error_note": "last epoch, deterministic (Eq. 13) gates"
            + (", EMA parameters" if self.ema else ""),
            "best_test_error": best["test_error"],
            "best_epoch": best["epoch"],
            "best_test_error_note": "minimum over epochs (as the official LeNet-5 script "
            "prints); its architecture may be denser than the final one",
            "architecture": last["units"],
            "dense_architecture": list(dense.units),
            "architecture_string": architecture_string(dense.units, last["units"]),
            "expected_l0": last["expected_l0"],
            "expected_flops": last["expected_flops"],
            "compact_flops": last["compact_flops"],
            "dense_flops": dense.flops,
            "nonzero_params": last["nonzero_params"],
            "dense_params": dense.params,
            "lam_per_parameter_nats": self.cfg.lam,
            "lam_per_data_point": [v / n for v in self.cfg.lam],
            "lam_note": "the paper's lambda = lam / N per data point; lam nats per parameter "
            "in the total log-likelihood (1 = AIC, log(N)/2 = BIC)",
            "weight_precision_per_data_set": precision,
            "weight_decay_per_data_point": precision / n,
            "num_train": n,
            "num_test": len(self.test),
            "train_seconds": self.state.train_seconds,
            "epochs": self.cfg.epochs,
            "steps": self.state.global_step,
            "seed": self.cfg.seed,
            "device": str(self.device),
            "device_name": device_name(self.device),
            "peak_rss_mib": peak_rss_mib(),
            **environment(),
        }
        if self.lagrangian is not None:
            metrics["target"] = {
                "kind": self.cfg.target,
                "scope": self.cfg.target_scope,
                "target_fraction": self.cfg.target_fraction,
                "achieved_expected_fraction": last["constraint"],
                "multiplier": last["multiplier"],
            }
        if self.cfg.finetune_epochs:
            before = hist[self.cfg.epochs - 1]
            metrics["finetune"] = {
                "epochs": self.cfg.finetune_epochs,
                "test_error_before": before["test_error"],
                "architecture_before": before["units"],
                "note": "the weights retrained with the gates frozen at their Eq. 13 values",
            }
        if self.cfg.lam_warmup:
            metrics["lam_warmup_epochs"] = self.cfg.lam_warmup
        if self.cfg.bma_samples:
            metrics["bma"] = self.bayesian_model_average(self.cfg.bma_samples)
        write_json(self.out / "metrics.json", metrics)
        return metrics

    @torch.no_grad()
    def bayesian_model_average(self, samples: int) -> dict[str, Any]:
        r"""Test metrics of the model average :math:`p(y \mid x) \approx \frac1S\sum_s
        p(y \mid x, z^{(s)})` over ``samples`` draws of the gates from :math:`q(z)` (seeded
        by the run's seed; the random state of the run is left alone) beside those of Eq. 13's
        deterministic gates, with the evaluated (EMA) parameters
        (:func:`~l0bayes.nn.posterior.compare_bma`)."""
        averaged = self.ema.applied(self.net) if self.ema else contextlib.nullcontext()
        index = torch.arange(len(self.test), device=self.device)
        x, y = self.test.batch(index)
        with averaged:
            result = compare_bma(self.net, x, y, samples, seed=self.cfg.seed)
        keys = ("error", "nll", "ece")
        return {
            "samples": samples,
            **{f"bma_{k}": result["bma"][k] for k in keys},
            **{f"deterministic_{k}": result["deterministic"][k] for k in keys},
            "note": "bma: the average of p(y|x, z) over gate draws from q(z); deterministic: "
            "Eq. 13's gates (the test_error above); nll in nats per test example",
        }


def _compact(obj: Any) -> Any:
    """``obj`` with every tensor that is a view of a larger storage cloned (``torch.save``
    writes a view's whole storage)."""
    if isinstance(obj, torch.Tensor):
        whole = obj.untyped_storage().nbytes()
        return obj.clone() if whole > obj.numel() * obj.element_size() else obj
    if isinstance(obj, dict):
        return {k: _compact(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_compact(v) for v in obj)
    return obj


def finetune_loss(net: L0Network, x: torch.Tensor, y: torch.Tensor, num_data: int) -> torch.Tensor:
    r"""The fine-tuning objective: the negative ELBO with the gates fixed at their Eq. 13
    values :math:`\hat z` instead of drawn,

    .. math::

        \frac{N}{B}\sum_{i \in \text{batch}} -\log p(y_i \mid x_i, \hat z, \theta)
        + \sum_\ell \mathrm{KL}_\ell - \log p(\theta_\text{point}),

    whose KL keeps each weight's :math:`P(z \ne 0)`-scaled decay (the gates' own term is a
    constant once they are frozen). Divide by :math:`N` for the per-data-point objective."""
    nll = F.cross_entropy(net(x), y, reduction="sum") * (num_data / x.shape[0])
    loss = nll + net.kl_divergence()
    return loss - net.ungated_log_prior() if net.ungated_precision else loss


def interrupted_message(cfg: TrainConfig, state: RunState) -> str:
    """What ``l0bayes train`` says after SIGINT, from the run state in the checkpoint."""
    return (
        f"interrupted at epoch {state.epoch + 1}, step {state.step_in_epoch}; checkpoint "
        f"saved in {cfg.out}. Resume with: l0bayes train {cfg.network} --out {cfg.out} --resume"
    )


def train(cfg: TrainConfig, data: ImageDataset | None = None, resume: bool = False) -> dict:
    """Run a training job and return its metrics (see :class:`Trainer`).

    With ``cfg.nproc > 1`` it spawns that many local processes that train data-parallel
    (:mod:`l0bayes.training.distributed`); under torchrun (``WORLD_SIZE > 1`` in the environment)
    this process joins the launcher's group. Either way rank 0 writes the run directory and the
    metrics are returned (read back from ``metrics.json``).

    :raises TrainingInterrupted: SIGINT stopped the run after writing its checkpoint (with
        ``nproc > 1`` the message is read from the checkpoint the workers wrote)."""
    if distributed.launched_by_torchrun():
        return _train_rank(cfg, data, resume)
    if cfg.nproc > 1:
        try:
            distributed.spawn(_spawned_rank, (cfg, data, resume), cfg.nproc)
        except distributed.WorkersInterrupted:
            state = load_checkpoint(Path(cfg.out) / "checkpoint.pt")["run"]
            raise TrainingInterrupted(interrupted_message(cfg, RunState(**state))) from None
        return json.loads((Path(cfg.out) / "metrics.json").read_text())
    return Trainer(cfg, data=data, resume=resume).run()


def _spawned_rank(cfg: TrainConfig, data: ImageDataset | None, resume: bool) -> None:
    """A rank spawned by :func:`train`: exits with :data:`~l0bayes.training.distributed.
    INTERRUPTED` when SIGINT stopped it after the checkpoint. Its progress bars share a
    thread lock, not tqdm's default multiprocessing one: a worker leaves with ``os._exit``,
    and the resource tracker would report that lock's semaphore as leaked."""
    tqdm.set_lock(threading.RLock())
    try:
        _train_rank(cfg, data, resume)
    except TrainingInterrupted:
        raise SystemExit(distributed.INTERRUPTED) from None


def _train_rank(cfg: TrainConfig, data: ImageDataset | None, resume: bool) -> dict:
    device = distributed.init_from_env(cfg.device)
    try:
        metrics = Trainer(replace(cfg, device=device), data=data, resume=resume).run()
        distributed.barrier()  # no rank tears the group down while another still works
        return metrics
    finally:
        distributed.shutdown()


def build_network(cfg: TrainConfig, num_train: int | None = None) -> L0Network:
    """A freshly initialised network as a (resolved) configuration describes it; ``num_train``
    (N) turns a per-data-point ``weight_decay`` into the slab's precision."""
    kwargs = dict(
        lam=cfg.lam,
        init_drop_rate=cfg.init_drop_rate,
        weight_precision=cfg.slab_precision(num_train),
        kl_mode=cfg.kl_mode,
        local_rep=cfg.local_rep,
        weight_init=cfg.weight_init,
    )
    if cfg.network == "wrn":
        kwargs.update(depth=cfg.depth, width=cfg.width)
    return get_network(cfg.network).make(**kwargs)


def load_network(out: str | Path, device: str = "cpu") -> tuple[TrainConfig, L0Network]:
    """The trained network of a run directory, with the parameters that its metrics were
    computed with (the EMA average when the run kept one), in evaluation mode."""
    cfg = TrainConfig.from_run(out).resolved()
    path = Path(out) / "checkpoint.pt"
    ckpt = load_checkpoint(path, device)
    try:
        net = build_network(cfg, ckpt["run"].get("num_train")).to(device)
        net.load_state_dict(ckpt["net"])
        if ckpt.get("ema") is not None:
            ema = ParameterEMA(net, ckpt["ema"]["beta"])
            ema.load_state_dict(ckpt["ema"])
            ema.copy_to(net)
    except (KeyError, TypeError, RuntimeError, ValueError, AttributeError) as err:
        reason = " ".join(str(err).split())[:300]
        raise ValueError(
            f"{path} does not fit the network of {out}/config.json: {reason}"
        ) from None
    return cfg, net.eval()


__all__ = [
    "HISTORY_KEYS",
    "RunState",
    "Trainer",
    "TrainingInterrupted",
    "build_network",
    "finetune_loss",
    "interrupted_message",
    "load_network",
    "train",
]
