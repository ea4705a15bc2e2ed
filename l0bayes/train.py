r"""Training a gated network by stochastic variational inference, with nothing lost.

One step draws a minibatch of :math:`B` of the :math:`N` training examples and descends the
per-data-point negative ELBO

.. math::

    \frac{1}{N}\Big[\frac{N}{B}\sum_{i \in \text{batch}} -\log p(y_i \mid x_i, z, \theta)
    + \sum_\text{layers} \mathrm{KL}\Big],

the paper's objective :math:`R(\tilde\theta, \phi)` in ``kl_mode="l0"`` (the gates' expected
L0 norm times λ plus the :math:`P(z \ne 0)`-scaled weight decay). By default the loss is
:meth:`~l0bayes.nn.L0Network.differentiable_loss` (the same ELBO as Pyro's
``TraceMeanField_ELBO`` on ``net.model``/``net.guide``, computed without tracing);
``elbo="trace"`` runs Pyro's ``TraceMeanField_ELBO`` itself, with the data in
``pyro.plate("data", N, subsample=...)``.

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
import csv
import io
import json
import math
import platform
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyro
import torch
from pyro.infer import TraceMeanField_ELBO
from torch import nn
from tqdm.auto import tqdm

from l0bayes import __version__, distributed
from l0bayes.checkpoint import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    write_json,
    write_text,
)
from l0bayes.data import ImageDataset, load_cifar, load_fashion_mnist, load_mnist
from l0bayes.infer import resolve_device, torch_threads
from l0bayes.networks import (
    NETWORKS,
    get_network,
    network_architecture,
    network_expected_cost,
)
from l0bayes.nn import WEIGHT_INITS, L0Network, check_precision
from l0bayes.run_directory import MARKER, open_run, prepare_new_run, run_lock, write_marker

ELBOS = ("analytic", "trace")
TARGETS = (None, "params", "flops")
DATASETS = ("mnist", "fashion-mnist", "cifar10", "cifar100", "synthetic")
#: The official code's clamp of log α after every step: [log 0.01, log 100].
LOG_ALPHA_RANGE = (math.log(0.01), math.log(100.0))


class TrainingInterrupted(RuntimeError):
    """Raised after SIGINT once a checkpoint is written; the message says how to resume."""


# ----------------------------------------------------------------------------- config
@dataclass
class TrainConfig:
    """Everything that defines a run (saved as ``config.json``). ``None`` means the
    network's default from :data:`l0bayes.networks.NETWORKS` (the paper's setting)."""

    network: str = "mnist-mlp"
    out: str = "runs/mnist-mlp"
    epochs: int | None = None
    batch_size: int | None = None
    lam: list[float] | None = None
    lr: float | None = None
    optimizer: str | None = None
    weight_decay: float | None = None
    weight_precision: float | None = None
    init_drop_rate: list[float] | None = None
    kl_mode: str = "l0"
    local_rep: bool = False
    weight_init: str | None = None
    ema: float | None = None
    clamp_log_alpha: bool = True
    elbo: str = "analytic"
    target: str | None = None
    target_fraction: float | None = None
    target_scope: str = "global"
    lagrange_lr: float = 0.01
    dataset: str | None = None
    standardize: bool | None = None
    data_dir: str | None = None
    train_size: int | None = None
    test_size: int | None = None
    depth: int = 28
    width: int = 10
    device: str = "cpu"
    seed: int = 0
    checkpoint_every: int = 0
    nproc: int = 1
    num_threads: int | None = None
    progress: bool = True
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_run(cls, out: str | Path, **overrides: Any) -> TrainConfig:
        """The configuration saved in ``out/config.json``, with ``overrides`` of the settings
        a resumed run may change (:data:`RESUMABLE`: ``epochs``, ``checkpoint_every``,
        ``num_threads``, ``device``, ``progress``, ``data_dir``; ``None`` keeps the saved one).

        ``config.json`` is untrusted input (the run may come from someone else): a file that
        is not a JSON object of valid settings is a one-line error naming it.

        :raises FileNotFoundError: no ``config.json`` in ``out``.
        :raises ValueError: an unreadable or invalid ``config.json``, or an override of a
            setting that a resumed run keeps (see :meth:`for_resume`).
        """
        bad = sorted(set(overrides) - RESUMABLE)
        if bad:
            raise ValueError(f"a resumed run keeps its settings; cannot change {bad}")
        path = Path(out) / "config.json"
        saved = _read_config(path)
        saved.setdefault("standardize", True)  # runs from before the option standardised
        saved.setdefault("weight_init", "uniform")  # and before the option, torch's init
        saved.update({k: v for k, v in overrides.items() if v is not None})
        saved["out"] = str(out)
        names = {f.name for f in fields(cls)}
        try:
            cfg = cls(**{k: v for k, v in saved.items() if k in names})
            cfg.resolved()
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f"{path} holds an invalid configuration: {err}") from None
        return cfg

    @classmethod
    def for_resume(cls, out: str | Path, network: str | None = None, **given: Any) -> TrainConfig:
        """The saved configuration of the run in ``out`` for ``--resume``, checked against the
        settings ``given`` on the command line.

        A given setting in :data:`RESUMABLE` is applied; any other must equal the saved
        (resolved) value, else the resume is refused naming the flags, since it would
        silently train with the saved one. ``network`` must be the run's network.

        :raises ValueError: a given setting differs from the run's, or the network does.
        """
        saved = cls.from_run(out)
        if network is not None and network != saved.network:
            raise ValueError(
                f"--resume: {out} is a {saved.network} run, not {network}; resume it with "
                f"`l0bayes train {saved.network} --out {out} --resume`"
            )
        resumable = {k: v for k, v in given.items() if k in RESUMABLE}
        fixed = {k: v for k, v in given.items() if k not in RESUMABLE and v is not None}
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(fixed) - names)
        if unknown:
            raise ValueError(f"unknown settings {unknown}")
        base = saved.resolved()
        try:
            asked = asdict(replace(base, **fixed).resolved())
        except ValueError as err:
            raise ValueError(f"--resume: {err}") from None
        kept = asdict(base)
        changed = sorted(k for k in fixed if asked[k] != kept[k])
        if changed:
            flags = ", ".join(
                f"{_flag(k)} {_show(asked[k])} (the run has {_show(kept[k])})" for k in changed
            )
            raise ValueError(
                f"--resume keeps the run's settings, but {flags} differ; only "
                f"{', '.join(sorted(_flag(k) for k in RESUMABLE - {'out', 'progress'}))} and "
                "the progress options may change on resume"
            )
        return cls.from_run(out, **resumable)

    def resolved(self) -> TrainConfig:
        """A copy with the network's defaults filled in, validated (clear errors)."""
        spec = get_network(self.network)
        cfg = replace(
            self,
            epochs=spec.epochs if self.epochs is None else self.epochs,
            batch_size=spec.batch_size if self.batch_size is None else self.batch_size,
            lam=list(spec.lam) if self.lam is None else [float(v) for v in self.lam],
            lr=spec.lr if self.lr is None else self.lr,
            optimizer=spec.optimizer if self.optimizer is None else self.optimizer,
            init_drop_rate=list(spec.init_drop_rate)
            if self.init_drop_rate is None
            else [float(v) for v in self.init_drop_rate],
            ema=spec.ema if self.ema is None else (self.ema or None),
            dataset=spec.dataset if self.dataset is None else self.dataset,
            standardize=spec.standardize if self.standardize is None else self.standardize,
            weight_init=spec.weight_init if self.weight_init is None else self.weight_init,
            weight_decay=spec.weight_decay
            if self.weight_decay is None and self.weight_precision is None
            else self.weight_decay,
        )
        cfg._validate()
        return cfg

    def slab_precision(self, num_train: int | None) -> float:
        r"""The Gaussian slab's precision :math:`\lambda_2` in the per-data-set ELBO:
        ``weight_precision`` when given, else :math:`N \times` ``weight_decay``.

        ``weight_decay`` is per data point, as an optimizer's weight decay and the paper's
        "5e-4": the mean objective pays :math:`\tfrac12 \cdot 5\cdot10^{-4}\,
        P(z \ne 0)\,\theta^2` per weight, which is :math:`\lambda_2 = 30` nats of prior
        precision on MNIST's :math:`N = 60000` (the official MLP and WRN code; its LeNet-5
        script omits the factor :math:`N`, which ``weight_precision=5e-4`` reproduces).
        """
        if self.weight_precision is not None:
            return float(self.weight_precision)
        if self.weight_decay is None:
            raise ValueError("resolve the configuration first (TrainConfig.resolved())")
        if num_train is None:
            raise ValueError("weight_decay is per data point: give num_train (N) to scale it")
        return float(self.weight_decay) * num_train

    def _validate(self) -> None:
        _positive_int(epochs=self.epochs, batch_size=self.batch_size)
        if self.lr <= 0 or not math.isfinite(self.lr):
            raise ValueError(f"--lr must be a finite positive number, got {self.lr}")
        if any(not (math.isfinite(v) and v >= 0) for v in self.lam):
            raise ValueError(f"--lam must be finite and >= 0 (nats per parameter), got {self.lam}")
        if self.weight_decay is not None and self.weight_precision is not None:
            raise ValueError(
                "give --weight-decay (per data point) or --weight-precision (per data set), "
                "not both: the precision is N times the decay"
            )
        for name in ("weight_decay", "weight_precision"):
            value = getattr(self, name)
            if value is not None:
                check_precision(value, f"--{name.replace('_', '-')}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"--optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        if self.weight_init not in WEIGHT_INITS:
            raise ValueError(
                f"--weight-init must be one of {WEIGHT_INITS}, got {self.weight_init!r}"
            )
        if self.elbo not in ELBOS:
            raise ValueError(f"--elbo must be one of {ELBOS}, got {self.elbo!r}")
        if self.dataset not in DATASETS:
            raise ValueError(f"--dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.ema is not None and not 0.0 < self.ema < 1.0:
            raise ValueError(f"--ema must lie in (0, 1) (0 turns it off), got {self.ema}")
        if self.target not in TARGETS:
            raise ValueError(f"--target must be 'params' or 'flops', got {self.target!r}")
        if (self.target is None) != (self.target_fraction is None):
            raise ValueError("--target and --target-fraction go together: give both or neither")
        if self.target_fraction is not None and not 0.0 < self.target_fraction <= 1.0:
            raise ValueError(f"--target-fraction must lie in (0, 1], got {self.target_fraction}")
        if self.target_scope not in ("global", "layer"):
            raise ValueError(f"--target-scope must be 'global' or 'layer', got {self.target_scope}")
        _positive_int(nproc=self.nproc)
        if self.num_threads is not None:
            _positive_int(threads=self.num_threads)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"--seed must be an integer >= 0, got {self.seed!r}")
        if self.checkpoint_every < 0:
            raise ValueError(f"--checkpoint-every must be >= 0, got {self.checkpoint_every}")
        for name in ("train_size", "test_size"):
            if getattr(self, name) is not None:
                _positive_int(**{name: getattr(self, name)})


def _read_config(path: Path) -> dict[str, Any]:
    """The JSON object in a run's ``config.json``, with one-line errors naming the file."""
    if not path.is_file():
        raise FileNotFoundError(
            f"--resume: no config.json in {path.parent}; is it a run directory?"
        )
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text file (not UTF-8): not an l0bayes config") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror}") from None
    if not isinstance(saved, dict):
        raise ValueError(f"{path} does not hold a JSON object of settings")
    return saved


def _flag(name: str) -> str:
    return "--threads" if name == "num_threads" else f"--{name.replace('_', '-')}"


def _show(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(map(str, value))
    return str(value)


def _positive_int(**values: Any) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(
                f"--{name.replace('_', '-')} must be a positive integer, got {value!r}"
            )


# ----------------------------------------------------------------------------- data
SYNTHETIC_SIZES = (2000, 500)  # the synthetic set's train and test sizes unless asked for more


def load_dataset(cfg: TrainConfig) -> ImageDataset:
    """The configured data set, cut to ``train_size``/``test_size`` examples when given (the
    synthetic set is drawn that large when it asks for more than its default sizes)."""
    name = cfg.dataset
    if name == "mnist":
        ds = load_mnist(cfg.data_dir)
    elif name == "fashion-mnist":
        ds = load_fashion_mnist(cfg.data_dir)
    elif name in ("cifar10", "cifar100"):
        ds = load_cifar(cfg.data_dir, num_classes=10 if name == "cifar10" else 100)
    else:
        spec = get_network(cfg.network)
        n_train = max(SYNTHETIC_SIZES[0], cfg.train_size or 0)
        n_test = max(SYNTHETIC_SIZES[1], cfg.test_size or 0)
        ds = synthetic_images(spec.input_shape, spec.num_classes, n_train, n_test, cfg.seed)
    return _subset(ds, cfg.train_size, cfg.test_size)


def synthetic_images(
    shape: tuple[int, ...], num_classes: int = 10, n_train: int = 2000, n_test: int = 500, seed=0
) -> ImageDataset:
    """A small learnable image set for smoke tests and CI (no files): each class is a random
    smooth prototype, each image its class's prototype plus pixel noise, as ``uint8``."""
    rng = np.random.default_rng(seed)
    c, h, w = shape if len(shape) == 3 else (1, 28, 28)
    coarse = rng.uniform(0, 255, size=(num_classes, c, 7, 7))
    protos = coarse.repeat(h // 7 + 1, axis=2)[:, :, :h].repeat(w // 7 + 1, axis=3)[..., :w]

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, num_classes, size=n)
        x = protos[y] + rng.normal(0, 60, size=(n, c, h, w))
        x = np.clip(x, 0, 255).astype(np.uint8)
        return (x[:, 0] if c == 1 else x), y.astype(np.int64)

    x_tr, y_tr = draw(n_train)
    x_te, y_te = draw(n_test)
    return ImageDataset(x_tr, y_tr, x_te, y_te, "synthetic", num_classes)


def _subset(ds: ImageDataset, n_train: int | None, n_test: int | None) -> ImageDataset:
    if n_train is None and n_test is None:
        return ds
    for flag, asked, have in (
        ("--train-size", n_train, len(ds.y_train)),
        ("--test-size", n_test, len(ds.y_test)),
    ):
        if asked is not None and asked > have:
            raise ValueError(f"{flag} {asked} is more than the {have} examples {ds.name} has")
    tr, te = slice(0, n_train), slice(0, n_test)
    return ImageDataset(
        ds.x_train[tr], ds.y_train[tr], ds.x_test[te], ds.y_test[te], ds.name, ds.num_classes
    )


class Images:
    r"""A split kept as ``uint8`` on the device (4× less memory than float32), converted per
    batch to :math:`x/255 \in [0, 1]` (the official MNIST code) or, given ``stats``,
    standardised, :math:`(x/255 - m_c)/s_c` with the training set's channel mean and standard
    deviation (the official CIFAR code); optional CIFAR augmentation (random 4-pixel-padded
    crop and flip).

    The choice matters for input gates: in [0, 1] an always-black pixel is exactly 0, so its
    gate gets no gradient from the likelihood and the penalty closes it; standardised, the same
    pixel is a constant that the first layer can use as a bias, and its gate stays open."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        shape: tuple[int, ...],
        device: torch.device,
        stats: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        x = torch.from_numpy(np.ascontiguousarray(x)).reshape(len(x), -1)
        self.x = x.to(device)
        self.y = torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device)
        self.shape = shape
        self.stats = None if stats is None else tuple(s.to(device) for s in stats)

    def __len__(self) -> int:
        return len(self.y)

    @staticmethod
    def channel_stats(x: np.ndarray, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and standard deviation of ``uint8`` images scaled to [0, 1]."""
        flat = x.reshape(len(x), channels, -1)
        total = np.zeros(channels)
        squares = np.zeros(channels)
        for start in range(0, len(flat), 4096):  # float64 in chunks: no 8x copy of the set
            chunk = flat[start : start + 4096].astype(np.float64) / 255.0
            total += chunk.sum(axis=(0, 2))
            squares += np.square(chunk).sum(axis=(0, 2))
        count = flat.shape[0] * flat.shape[2]
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
        if np.any(std == 0):
            raise ValueError("the training images are constant in some channel: cannot standardise")
        return torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)

    def batch(self, index: torch.Tensor, augment: bool = False) -> tuple[torch.Tensor, ...]:
        x = self.x[index].float().div_(255.0).reshape(len(index), *self.shape)
        if self.stats is not None:
            mean, std = self.stats
            if len(self.shape) == 3:
                mean, std = mean[:, None, None], std[:, None, None]
            x = (x - mean) / std
        if augment and len(self.shape) == 3:
            x = _crop_flip(x)
        return x, self.y[index]


def image_splits(
    data: ImageDataset,
    input_shape: tuple[int, ...],
    standardize: bool = False,
    device: str | torch.device = "cpu",
) -> tuple[Images, Images]:
    """The train and test splits as :class:`Images`, as
    :class:`Trainer` makes them: pixels in [0, 1] (the networks' default, the
    official MNIST code) or, with ``standardize``, standardised by the training set's channel
    statistics."""
    channels = input_shape[0] if len(input_shape) == 3 else 1
    stats = Images.channel_stats(data.x_train, channels) if standardize else None
    device = torch.device(device)
    return (
        Images(data.x_train, data.y_train, input_shape, device, stats),
        Images(data.x_test, data.y_test, input_shape, device, stats),
    )


def _crop_flip(x: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Random crop of the zero-padded image back to its size, and a random horizontal flip."""
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    out = padded[batch, chans, rows, cols]
    flip = torch.rand(b, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The data order of one epoch: a permutation that depends only on (seed, epoch), so a
    resumed run needs no saved order."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen)


# ----------------------------------------------------------------------------- helpers
class ParameterEMA:
    r"""Bias-corrected exponential moving average of a network's parameters (the official
    code's temporal averaging): :math:`m_t = \beta m_{t-1} + (1-\beta)\theta_t`, evaluated with
    :math:`m_t / (1 - \beta^t)`."""

    def __init__(self, module: nn.Module, beta: float) -> None:
        self.beta = beta
        self.steps = 0
        self.shadow = {n: torch.zeros_like(p) for n, p in module.named_parameters()}
        self._pairs = None

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        r""":math:`m \leftarrow m + (1-\beta)(\theta - m)`, one fused call for all tensors."""
        if self._pairs is None:
            named = dict(module.named_parameters())
            self._pairs = ([self.shadow[n] for n in named], [p.detach() for p in named.values()])
        self.steps += 1
        torch._foreach_lerp_(*self._pairs, 1.0 - self.beta)

    @contextlib.contextmanager
    def applied(self, module: nn.Module) -> Iterator[None]:
        """Swap the averaged parameters in for the duration of the block."""
        if self.steps == 0:
            yield
            return
        params = dict(module.named_parameters())
        saved = {n: p.detach().clone() for n, p in params.items()}
        self.copy_to(module)
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in params.items():
                    p.copy_(saved[name])

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        """Overwrite the module's parameters with the bias-corrected averages."""
        correction = 1.0 - self.beta**self.steps
        for name, p in module.named_parameters():
            p.copy_(self.shadow[name] / correction)

    def state_dict(self) -> dict:
        return {"beta": self.beta, "steps": self.steps, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.beta, self.steps = state["beta"], state["steps"]
        for name, value in state["shadow"].items():
            self.shadow[name].copy_(value)


class Lagrangian:
    r"""Constraints :math:`c_k(\phi) \le t` held by multipliers :math:`\mu_k \ge 0` learned by
    gradient ascent (see the module docstring)."""

    def __init__(self, cfg: TrainConfig, net: L0Network, input_shape, device) -> None:
        self.kind, self.target, self.lr = cfg.target, cfg.target_fraction, cfg.lagrange_lr
        self.scope = cfg.target_scope
        self.net, self.input_shape = net, input_shape
        with torch.no_grad():
            dense = network_architecture(net, input_shape, "dense")
        self.dense = dense.flops if self.kind == "flops" else dense.params
        count = len(net.gated_layers()) if self.scope == "layer" else 1
        self.mu = torch.zeros(count, device=device)

    def fractions(self) -> torch.Tensor:
        """The constrained expected fractions :math:`c(\\phi)` (differentiable)."""
        if self.scope == "layer":
            return torch.stack(
                [layer.inclusion_probs().mean() for layer in self.net.gated_layers()]
            )
        flops, params = network_expected_cost(self.net, self.input_shape)
        cost = flops if self.kind == "flops" else params
        return (cost / self.dense).reshape(1)

    def penalty(self) -> tuple[torch.Tensor, torch.Tensor]:
        """:math:`\\sum_k \\mu_k (c_k - t)` and the fractions."""
        c = self.fractions()
        return (self.mu * (c - self.target)).sum(), c.detach()

    def ascend(self, fractions: torch.Tensor) -> None:
        self.mu = (self.mu + self.lr * (fractions - self.target)).clamp(min=0.0)


# ----------------------------------------------------------------------------- trainer
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
        self.input_shape = self.spec.input_shape
        self.train, self.test = self._images()
        self.optimizer = self._optimizer()
        self.scheduler = self._scheduler()
        self.ema = None if self.cfg.ema is None else ParameterEMA(self.net, self.cfg.ema)
        self.lagrangian = None
        if self.cfg.target is not None:
            self.lagrangian = Lagrangian(self.cfg, self.net, self.input_shape, self.device)
        self.state = RunState(num_train=self.num_train)
        self._elbo = TraceMeanField_ELBO() if self.cfg.elbo == "trace" else None
        self._stop = False
        self._loss_acc = torch.zeros((), device=self.device)
        self._params = list(self.net.parameters())

    # ---------------------------------------------------------------- set-up
    def _check_run_dir(self) -> None:
        """A resumed run must be one of ours with a checkpoint; a new run needs a new or empty
        folder, or one of ours without a checkpoint (see :mod:`l0bayes.run_directory`)."""
        if self.resume:
            open_run(self.out)
            if not (self.out / "checkpoint.pt").is_file():
                raise FileNotFoundError(
                    f"--resume: no checkpoint in {self.out}; start the run without --resume"
                )
        elif self.rank == 0:
            prepare_new_run(self.out)

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
        return {
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
        saved = {k: v for k, v in ckpt["config"].items() if k not in RESUMABLE}
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
        if self._elbo is None:
            return self.net.differentiable_loss(x, y, n)
        return self._elbo.differentiable_loss(self.net.model, self.net.guide, x, y, n)

    def step(self, index: torch.Tensor) -> torch.Tensor:
        """One SVI step on the examples ``index`` (this rank's part of them when training on
        several processes, see :mod:`l0bayes.distributed`); returns the per-data-point loss."""
        local = index.tensor_split(self.world)[self.rank] if self.world > 1 else index
        x, y = self.train.batch(local, augment=self.spec.dataset.startswith("cifar"))
        loss = self._loss(x, y) / len(self.train)
        total = loss
        fractions = None
        if self.lagrangian is not None:
            penalty, fractions = self.lagrangian.penalty()
            total = loss + penalty
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.world > 1:
            weight = len(local) / len(index)
            extras = torch.stack([torch.tensor(float(self._stop)), loss.detach().cpu() * weight])
            summed = distributed.allreduce_gradients(self._params, extras.to(loss.device), weight)
            self._stop = bool(summed[0] > 0)
            loss = summed[1]
        self.optimizer.step()
        if self.cfg.clamp_log_alpha:
            with torch.no_grad():
                for layer in self.net.gated_layers():
                    layer.log_alpha.clamp_(*LOG_ALPHA_RANGE)
        if self.ema is not None:
            self.ema.update(self.net)
        if fractions is not None:
            self.lagrangian.ascend(fractions)
        return loss.detach()

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
                det = network_architecture(self.net, self.input_shape, "deterministic")
                exp = network_architecture(self.net, self.input_shape, "expected")
                l0 = [float(layer.inclusion_probs().sum()) for layer in self.net.gated_layers()]
        finally:
            self.net.train()
        return {
            "test_error": wrong / len(self.test),
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

    def _run(self) -> dict[str, Any]:
        if self.resume:
            self.restore()
        if self.rank == 0:  # a resume records the settings it changed (RESUMABLE)
            write_json(self.out / "config.json", asdict(self.cfg))
            if not (self.out / MARKER).is_file():  # a run of a version before the marker
                write_marker(self.out)
        cfg = self.cfg
        n = len(self.train)
        steps = math.ceil(n / cfg.batch_size)
        with _sigint_flag(self), torch_threads(cfg.num_threads), pyro.validation_enabled(False):
            while self.state.epoch < cfg.epochs:
                self._run_epoch(steps, n)
        return self._finish()

    def _run_epoch(self, steps: int, n: int) -> None:
        cfg, st = self.cfg, self.state
        order = epoch_order(cfg.seed, st.epoch, n).to(self.device)
        last = st.history[-1] if st.history else None
        bar = tqdm(
            total=steps,
            initial=st.step_in_epoch,
            desc=f"epoch {st.epoch + 1}/{cfg.epochs}",
            disable=not cfg.progress or self.rank != 0,
            leave=False,
            mininterval=1.0,
        )
        tic = time.perf_counter()
        while st.step_in_epoch < steps:
            index = order[
                st.step_in_epoch * cfg.batch_size : (st.step_in_epoch + 1) * cfg.batch_size
            ]
            loss = self.step(index)
            st.step_in_epoch += 1
            st.global_step += 1
            self._loss_acc += loss
            if st.step_in_epoch % 50 == 0 or st.step_in_epoch == steps:
                self._sync_loss(since_sync=st.step_in_epoch - st.loss_count)
                bar.set_postfix(_postfix(float(loss), last), refresh=False)
            bar.update(1)
            if self._stop or (cfg.checkpoint_every and st.global_step % cfg.checkpoint_every == 0):
                self._sync_loss(since_sync=st.step_in_epoch - st.loss_count)
                st.train_seconds += time.perf_counter() - tic
                tic = time.perf_counter()
                self.save()
                if self._stop:
                    bar.close()
                    raise TrainingInterrupted(
                        f"interrupted at epoch {st.epoch + 1}, step {st.step_in_epoch}; "
                        f"checkpoint saved in {self.out}. Resume with: l0bayes train "
                        f"{cfg.network} --out {self.out} --resume"
                    )
        bar.close()
        st.train_seconds += time.perf_counter() - tic
        self._end_epoch()

    def _sync_loss(self, since_sync: int) -> None:
        """Move the loss summed on the device since the last sync into the run state (a device
        synchronisation: done every 50 steps, not every step) and check it is finite."""
        if since_sync <= 0:
            return
        st = self.state
        value = float(self._loss_acc)
        self._loss_acc.zero_()
        if not math.isfinite(value):
            raise FloatingPointError(
                f"the loss became {value} at epoch {st.epoch + 1}, step {st.step_in_epoch}; "
                f"try a smaller --lr (now {self.cfg.lr})"
            )
        st.loss_sum += value
        st.loss_count += since_sync

    def _end_epoch(self) -> None:
        st = self.state
        if self.scheduler is not None:
            self.scheduler.step()
        row = {"epoch": st.epoch + 1, "step": st.global_step}
        row["train_loss"] = st.loss_sum / max(st.loss_count, 1)
        if self.rank == 0:
            row.update(self.evaluate())
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
                tqdm.write(_epoch_line(row))
            write_text(self.out / "history.csv", history_csv(st.history))
        self.save()

    # ---------------------------------------------------------------- the end
    def _finish(self) -> dict[str, Any]:
        if self.rank != 0:
            return {}
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
            "architecture_string": _arch_string(dense.units, last["units"]),
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
            "device_name": _device_name(self.device),
            "peak_rss_mib": _peak_rss_mib(),
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
        write_json(self.out / "metrics.json", metrics)
        return metrics


#: The settings a resumed run may change (applied, and recorded in ``config.json``); every
#: other one must equal the saved configuration.
RESUMABLE = frozenset(
    {"epochs", "progress", "num_threads", "out", "data_dir", "checkpoint_every", "device"}
)


def _postfix(loss: float, last: dict | None) -> dict[str, str]:
    post = {"-elbo/N": f"{loss:.4f}"}
    if last is not None and "test_error" in last:  # rank 0 evaluates
        post["err"] = f"{100 * last['test_error']:.2f}%"
        post["units"] = "-".join(f"{u:.0f}" for u in last["units"])
    return post


def _epoch_line(row: dict) -> str:
    units = "-".join(f"{u:.0f}" for u in row["units"])
    l0 = "-".join(f"{v:.0f}" for v in row["expected_l0"])
    return (
        f"epoch {row['epoch']}: -ELBO/N {row['train_loss']:.4f}  test error "
        f"{100 * row['test_error']:.2f}%  units {units}  E[L0] {l0}  "
        f"E[FLOPs] {row['expected_flops']:.3g}"
    )


def _arch_string(dense: tuple[float, ...], units: list[float]) -> str:
    fmt = lambda us: "-".join(f"{u:.0f}" for u in us)  # noqa: E731
    return f"{fmt(dense)} -> {fmt(units)}"


def history_csv(history: list[dict]) -> str:
    """The per-epoch history as CSV; list-valued columns are expanded per gated layer
    (``units_1``, ``expected_l0_1``, ...)."""
    rows = [_flat(row) for row in history]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _flat(row: dict) -> dict:
    out = {}
    for key, value in row.items():
        if isinstance(value, list):
            out.update({f"{key}_{i + 1}": v for i, v in enumerate(value)})
        else:
            out[key] = value
    return out


def environment() -> dict[str, Any]:
    """Versions and the git commit (when the package runs from a checkout)."""
    env = {
        "torch_version": torch.__version__,
        "pyro_version": pyro.__version__,
        "l0bayes_version": __version__,
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
    }
    try:
        root = Path(__file__).resolve().parents[1]
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        env["git_commit"] = commit or None
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
        env["git_dirty"] = bool(status.strip())  # uncommitted changes: the commit is not all
    except (OSError, subprocess.SubprocessError):
        env["git_commit"] = None
    return env


def _peak_rss_mib() -> float | None:
    """The process's peak resident memory (MiB), where the platform reports it."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024**2 if platform.system() == "Darwin" else peak / 1024


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


@contextlib.contextmanager
def _sigint_flag(trainer: Trainer) -> Iterator[None]:
    """On SIGINT, ask the trainer to checkpoint and stop at the next step boundary (a second
    SIGINT interrupts at once)."""

    def handler(signum, frame):
        if trainer._stop:
            raise KeyboardInterrupt
        trainer._stop = True

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: leave SIGINT alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def train(cfg: TrainConfig, data: ImageDataset | None = None, resume: bool = False) -> dict:
    """Run a training job and return its metrics (see :class:`Trainer`).

    With ``cfg.nproc > 1`` it spawns that many local processes that train data-parallel
    (:mod:`l0bayes.distributed`); under torchrun (``WORLD_SIZE > 1`` in the environment) this
    process joins the launcher's group. Either way rank 0 writes the run directory and the
    metrics are returned (read back from ``metrics.json``)."""
    if distributed.launched_by_torchrun():
        return _train_rank(cfg, data, resume)
    if cfg.nproc > 1:
        distributed.spawn(_train_rank, (cfg, data, resume), cfg.nproc)
        return json.loads((Path(cfg.out) / "metrics.json").read_text())
    return Trainer(cfg, data=data, resume=resume).run()


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
    "NETWORKS",
    "RESUMABLE",
    "ParameterEMA",
    "TrainConfig",
    "Trainer",
    "TrainingInterrupted",
    "build_network",
    "epoch_order",
    "load_network",
    "synthetic_images",
    "train",
]
