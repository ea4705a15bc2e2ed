r"""A study as one job: every (λ, seed) network of a sweep trained in one process, stacked.

:math:`K` networks that differ only in λ, the seed and the target fraction (one kind of
``target`` for all; each network has its own Lagrange multiplier) are :math:`K` independent
optimisation problems. :class:`Sweep` keeps one :class:`~l0bayes.training.trainer.Trainer`
per network (its run directory, configuration, data order, average, Lagrangian, history,
checkpoints and metrics, exactly as ``l0bayes train`` writes them) and trains them together
through the stacked engine (:class:`~l0bayes.training.engine.StackedTraining`): one forward and
backward pass, one optimiser step, one captured CUDA graph per step for all networks. Each
network computes what its own ``train`` run computes (the same engine with :math:`K = 1`: the
same initialisation, data order and counter-based gate uniforms of its seed); on the CPU a
sweep of MLPs equals its runs bitwise (tested).

**Committed together.** The networks' checkpoints are one commit. Each network's new
checkpoint is first written, atomically, to :data:`PENDING` in its folder; only when every
network's is complete are they renamed onto ``checkpoint.pt``, one by one. After a kill
anywhere, :func:`recover` (run under the locks before a sweep starts) finishes an interrupted
commit (every network has the new state, as ``checkpoint.pt`` or pending) or undoes it (some
network lacks it), so every network resumes from the same step and the resumed sweep ends
bitwise where an uninterrupted one does (tested with ``SIGKILL`` at random points). A sweep
killed before its first commit has nothing to resume: ``--resume`` starts it anew.

Only chains of gated layers (``mnist-mlp``, ``lenet5``) are stacked; the Wide-ResNet is refused.

Example::

    cfgs = sweep_configs(TrainConfig("mnist-mlp", epochs=10), [0.1, 1.0], [0, 1], "runs/sweep")
    metrics = Sweep(cfgs).run()      # runs/sweep/lam-0.1_seed-0/, ... as ``l0bayes train``
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pyro

from l0bayes.data.files import ImageDataset
from l0bayes.device import torch_threads
from l0bayes.training.checkpoint import load_checkpoint, save_checkpoint, write_json
from l0bayes.training.config import TrainConfig
from l0bayes.training.datasets import load_dataset
from l0bayes.training.engine import STACKABLE, StackedTraining
from l0bayes.training.loop import stop_on_sigint
from l0bayes.training.manifest import recording
from l0bayes.training.run_directory import (
    PENDING_CHECKPOINT,
    open_run,
    prepare_new_run,
    run_lock,
)
from l0bayes.training.safe_files import file_record
from l0bayes.training.trainer import Trainer

#: Where a network's checkpoint waits until every network of the sweep has written its own.
PENDING = PENDING_CHECKPOINT
#: The settings in which the networks of a sweep differ (every other one is shared).
SWEPT = frozenset({"lam", "seed", "out", "target_fraction"})
#: Settings that may differ without changing what is computed.
_FREE = frozenset({"progress", "quick"})


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


def _commit_key(path: Path) -> tuple[int, int] | None:
    """``(global step, epoch)`` of the checkpoint at ``path`` (which commit it belongs to), or
    ``None`` when there is none."""
    if not path.is_file():
        return None
    run = load_checkpoint(path)["run"]
    try:
        return int(run["global_step"]), int(run["epoch"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path} is not an l0bayes checkpoint (no step counters)") from None


def _empty_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and next(path.iterdir(), None) is None


def recover(outs: Sequence[str | Path]) -> tuple[int, int] | None:
    """Make the checkpoints of a sweep's networks (folders ``outs``, locked by the caller) one
    commit again after a kill (module docstring); returns the commit every network is at, or
    ``None`` when nothing was committed (nor pending).

    :raises ValueError: the networks' checkpoints belong to different commits that no pending
        file reconciles (e.g. folders of different sweeps): the message names them.
    """
    outs = [Path(o) for o in outs]
    done = {o: _commit_key(o / "checkpoint.pt") for o in outs}
    pending = {o: _commit_key(o / PENDING) for o in outs}
    keys = [k for k in (*done.values(), *pending.values()) if k is not None]
    newest = max(keys, default=None)
    if newest is not None and all(newest in (done[o], pending[o]) for o in outs):
        for o in outs:  # the commit was complete: finish renaming
            if pending[o] == newest:
                _promote(o)
                done[o] = newest
    for o in outs:  # an incomplete commit (or a stale one): undo it
        (o / PENDING).unlink(missing_ok=True)
    found = set(done.values())
    if found == {None}:
        return None
    if len(found) != 1:
        shown = ", ".join(f"{o.name} at step {k[0] if k else 'none'}" for o, k in done.items())
        raise ValueError(
            f"the sweep's networks hold checkpoints of different steps ({shown}); resume them "
            "one by one with l0bayes train --resume, or start the sweep in a new folder"
        )
    return found.pop()


def commit(trainers: Sequence[Trainer]) -> None:
    """Write every network's checkpoint as one commit: each to :data:`PENDING` (atomically),
    then, all written, each renamed onto ``checkpoint.pt``."""
    for t in trainers:
        save_checkpoint(t.out / PENDING, t.checkpoint_state())
    for t in trainers:
        _promote(t.out)


def _promote(folder: Path) -> None:
    """Rename :data:`PENDING` onto ``checkpoint.pt`` in ``folder``, the run directory's
    manifest recording the new content around the rename (as every atomic write does)."""
    with recording(folder / "checkpoint.pt", file_record(folder / PENDING)):
        os.replace(folder / PENDING, folder / "checkpoint.pt")


class Sweep:
    """Train the networks of ``cfgs`` stacked (module docstring); :meth:`run` returns each
    network's metrics, as :func:`~l0bayes.training.trainer.train` would.

    :param cfgs: one configuration per network (:func:`sweep_configs`).
    :param data: the data set of every network (default: each loads its own, once per seed for
        the synthetic set, whose images depend on it).
    :param resume: continue every network from the sweep's last commit (a sweep that committed
        nothing starts anew).
    """

    def __init__(
        self, cfgs: Sequence[TrainConfig], data: ImageDataset | None = None, resume=False
    ) -> None:
        self.cfgs = check_sweep(cfgs)
        self.data, self.resume = data, resume
        self.cfg = self.cfgs[0]
        self.trainers: list[Trainer] = []
        self._stop = False

    def request_stop(self) -> bool:
        """Ask the loop to checkpoint and stop at the next step boundary (SIGINT's handler);
        returns whether a stop had already been asked for."""
        asked, self._stop = self._stop, True
        return asked

    def _build(self, resume: bool) -> list[Trainer]:
        """One trainer per network (a resumed one restores its checkpoint in ``begin``); the
        networks on the same images share them."""
        loaded: dict[tuple, ImageDataset] = {}
        images: dict[tuple, tuple] = {}
        trainers = []
        for cfg in self.cfgs:
            key = (cfg.seed if cfg.dataset == "synthetic" else None,)
            if self.data is None and key not in loaded:
                loaded[key] = load_dataset(cfg)
            data = self.data if self.data is not None else loaded[key]
            trainer = Trainer(cfg, data=data, resume=resume)
            if key in images:  # share the tensors of the same images
                trainer.train, trainer.test = images[key]
            images.setdefault(key, (trainer.train, trainer.test))
            trainers.append(trainer)
        return trainers

    def run(self) -> list[dict[str, Any]]:
        """Train (or resume) every network to the configured epochs; returns their metrics."""
        outs = [Path(c.out) for c in self.cfgs]
        if self.resume:
            self._check_resumable(outs)
        with contextlib.ExitStack() as stack:
            for out in outs:  # an empty folder: made by a sweep killed before its marker
                if self.resume and out.exists() and not _empty_folder(out):
                    open_run(out)
                else:
                    prepare_new_run(out)
                stack.enter_context(run_lock(out, "l0bayes sweep"))
            committed = recover(outs)
            if self.resume and committed is None:
                print("l0bayes sweep: the sweep stopped before its first checkpoint of every "
                      "network; it starts anew", file=sys.stderr)  # fmt: skip
            self.trainers = trainers = self._build(self.resume and committed is not None)
            for t in trainers:
                t.begin()  # restores a resumed run's checkpoint
            stack.enter_context(stop_on_sigint(self.request_stop))
            stack.enter_context(torch_threads(self.cfg.num_threads))
            stack.enter_context(pyro.validation_enabled(False))
            engine = StackedTraining(
                trainers, lambda: commit(trainers), lambda: self._stop, self._interrupted
            )
            engine.run()
            out = []
            for t in trainers:
                metrics = t.finish()
                metrics["sweep"] = {
                    "networks": len(trainers),
                    "note": "trained stacked with the other networks of an l0bayes sweep; "
                    "train_seconds is the whole sweep's",
                }
                write_json(t.out / "metrics.json", metrics)
                out.append(metrics)
            return out

    @staticmethod
    def _check_resumable(outs: list[Path]) -> None:
        """A network folder may be missing on ``--resume`` only when the sweep stopped before
        writing it, i.e. before its first commit (then it starts anew)."""
        missing = [o for o in outs if not o.exists() and not o.is_symlink()]
        started = [
            o for o in outs if any((o / name).is_file() for name in ("checkpoint.pt", PENDING))
        ]
        if missing and started:
            raise FileNotFoundError(
                f"--resume: no run directory at {missing[0]}, but {started[0]} holds a "
                "checkpoint of the sweep; give the --lam, --seeds and --target-fraction values "
                "that the sweep was started with"
            )

    def _interrupted(self, epoch: int, step: int) -> str:
        return (
            f"interrupted at epoch {epoch}, step {step}; the checkpoints of all "
            f"{len(self.cfgs)} networks saved. Resume with the same l0bayes sweep command "
            "and --resume"
        )


def sweep(
    cfgs: Sequence[TrainConfig], data: ImageDataset | None = None, resume: bool = False
) -> list[dict[str, Any]]:
    """Train the networks of ``cfgs`` as one stacked job (:class:`Sweep`); returns each
    network's metrics (also in its ``metrics.json``)."""
    return Sweep(cfgs, data=data, resume=resume).run()


__all__ = [
    "PENDING",
    "STACKABLE",
    "SWEPT",
    "Sweep",
    "check_sweep",
    "commit",
    "recover",
    "run_name",
    "sweep",
    "sweep_configs",
]
