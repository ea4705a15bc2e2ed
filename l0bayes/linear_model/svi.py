"""Running Pyro SVI: a fresh parameter store, a seeded RNG, a progress bar, clear failures."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyro
import torch
from pyro.infer import SVI, TraceMeanField_ELBO
from pyro.infer.util import is_validation_enabled
from pyro.optim import ClippedAdam
from tqdm.auto import tqdm

from l0bayes.device import torch_threads
from l0bayes.validation import check_count, check_positive


@dataclass
class SVIResult:
    """Parameters (constrained values, detached) and the loss (negative ELBO) per step."""

    params: dict[str, torch.Tensor]
    losses: np.ndarray


def fit_svi(
    model: Callable,
    guide: Callable,
    args: tuple,
    *,
    n_steps: int,
    lr: float,
    num_particles: int = 1,
    seed: int = 0,
    progress: bool = False,
    desc: str = "SVI",
    max_plate_nesting: int = 1,
    num_threads: int | None = None,
    monitor: Callable[[], torch.Tensor] | None = None,
    patience: int | None = None,
) -> SVIResult:
    r"""Maximise the ELBO of ``model``/``guide`` with Adam, using analytic KLs where registered
    (``TraceMeanField_ELBO``, particles vectorised).

    Runs in its own parameter store and forked torch RNG (seeded with ``seed``), so a user's
    store and random state are left untouched (initial values come from the model and guide).
    The first step runs with Pyro's validation as the caller has it (on by default), so the
    model's and the distributions' argument checks see the data once; the remaining steps run
    without it. Raises ``ValueError`` for invalid settings and ``FloatingPointError`` if the
    ELBO stops being finite.

    ``num_threads`` sets torch's intra-op threads for the loop and restores them afterwards
    (default: the count set by ``torch.set_num_threads``, else the policy of
    :mod:`l0bayes.device`, one thread unless ``$L0BAYES_THREADS`` or ``$OMP_NUM_THREADS``
    says otherwise): SVI steps on small tensors are dominated by per-op overhead, and several
    threads spinning on shared cores make them many times slower (measured 16x on 2 busy
    cores).

    Early stopping: with ``monitor`` (a function of no arguments, called inside the run's
    parameter store, e.g. the relaxed support :math:`P(z_j \ne 0) > \tfrac12`) and
    ``patience`` :math:`K`, the loop stops once the monitored tensor has kept one value for
    :math:`K` consecutive steps (checked every :math:`\lceil K/10 \rceil` steps, so at least
    :math:`K` steps run); ``losses`` then holds only the steps that ran.
    """
    n_steps = check_count("n_steps", n_steps)
    check_positive("lr", lr)
    num_particles = check_count("num_particles", num_particles)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if (monitor is None) != (patience is None):
        raise ValueError("early stopping needs both monitor and patience (or neither)")
    every = 0 if patience is None else math.ceil(check_count("patience", patience) / 10)
    elbo = TraceMeanField_ELBO(
        num_particles=num_particles,
        vectorize_particles=num_particles > 1,
        max_plate_nesting=max_plate_nesting,
    )
    losses = np.empty(n_steps)
    store = pyro.get_param_store()
    with (
        store.scope(),
        torch.random.fork_rng(devices=_cuda_devices(args)),
        torch_threads(num_threads),
    ):
        torch.manual_seed(seed)
        svi = SVI(model, guide, ClippedAdam({"lr": lr, "clip_norm": 100.0}), elbo)
        bar = tqdm(range(n_steps), desc=desc, disable=not progress, leave=False, mininterval=0.5)
        validate = is_validation_enabled()
        last, since = None, 0  # the monitored value and the step it was first seen at
        for step in bar:
            with pyro.validation_enabled(validate and step == 0):
                losses[step] = loss = svi.step(*args)
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"the ELBO became {loss} at step {step} of {desc}; try a smaller lr "
                    f"(now {lr}) or check the data for extreme values"
                )
            if progress and step % 50 == 0:
                bar.set_postfix(elbo=f"{-loss:.4g}")
            if every and (step + 1) % every == 0:
                value = monitor().detach()
                if last is None or not torch.equal(value, last):
                    last, since = value, step
                elif step - since >= patience:
                    losses = losses[: step + 1]
                    break
        params = {name: store[name].detach().clone() for name in store.keys()}
    return SVIResult(params=params, losses=losses)


def _tensors(args: tuple) -> list[torch.Tensor]:
    """The tensors among ``args`` and the tensor fields of dataclass arguments (statistics)."""
    out = []
    for a in args:
        fields = [getattr(a, f.name) for f in dataclasses.fields(a)] if _is_data(a) else [a]
        out += [t for t in fields if torch.is_tensor(t)]
    return out


def _is_data(a) -> bool:
    return dataclasses.is_dataclass(a) and not isinstance(a, type)


def _cuda_devices(args: tuple) -> list[int]:
    return sorted({a.device.index or 0 for a in _tensors(args) if a.device.type == "cuda"})


__all__ = [
    "SVIResult",
    "fit_svi",
]
