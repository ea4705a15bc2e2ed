"""The configuration of a training run (``config.json``): settings, defaults, validation."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from l0bayes.device import check_threads
from l0bayes.nn.layers import WEIGHT_INITS, check_precision
from l0bayes.nn.networks import (
    get_network,
)
from l0bayes.training.run_directory import open_run
from l0bayes.training.safe_files import read_limited
from l0bayes.validation import check_count

ELBOS = ("analytic", "trace")

TARGETS = (None, "params", "flops")

DATASETS = ("mnist", "fashion-mnist", "cifar10", "cifar100", "synthetic")

#: The official code's clamp of log α after every step: [log 0.01, log 100].
LOG_ALPHA_RANGE = (math.log(0.01), math.log(100.0))
#: The most gate draws of ``--bma-samples`` (each is a pass over the test set).
MAX_BMA_SAMPLES = 100_000


@dataclass
class TrainConfig:
    """Everything that defines a run (saved as ``config.json``). ``None`` means the
    network's default from :data:`l0bayes.nn.networks.NETWORKS` (the paper's setting)."""

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
    #: ``--quick``: a smoke run (:data:`QUICK`'s epochs, sizes, rate and EMA unless given), not
    #: a result. A label only: the settings it fills in are the fields above.
    quick: bool = False
    #: ``--lam-warmup K``: λ (or, with a target, the kept fraction from 1 down to the target)
    #: rises linearly over the first ``K`` epochs (0: off, the paper).
    lam_warmup: float = 0.0
    #: ``--finetune-epochs K``: after ``epochs``, ``K`` epochs of the weights alone with the
    #: gates frozen at their Eq. 13 values (0: off, the paper).
    finetune_epochs: int = 0
    #: ``--bma-samples S``: also report the test error of the model average over ``S`` gate
    #: draws in ``metrics.json`` (0: off).
    bma_samples: int = 0
    #: On CUDA, replay each training step of the chain networks as one captured CUDA graph
    #: (``--no-graph``: launch its kernels one by one; the same arithmetic). No effect on CPU.
    graph: bool = True
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_run(cls, out: str | Path, **overrides: Any) -> TrainConfig:
        """The configuration saved in ``out/config.json``, with ``overrides`` of the settings
        a resumed run may change (:data:`RESUMABLE`: ``epochs``, ``checkpoint_every``,
        ``num_threads``, ``device``, ``progress``, ``data_dir``; ``None`` keeps the saved one).
        A ``config.json`` from before a setting existed loads with its default (``quick``:
        false).

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
        saved = saved_settings(_read_config(path))
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

        :raises ValueError: ``out`` is not a run directory of l0bayes's files
            (:func:`~l0bayes.training.run_directory.open_run`), a given setting differs from
            the run's, or the network does.
        """
        open_run(out)
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
        typed = set(fixed)
        for pair in (("weight_decay", "weight_precision"), ("weight_precision", "weight_decay")):
            if pair[0] in fixed and pair[1] not in fixed:  # the one given replaces the other
                fixed[pair[1]] = None
        try:
            asked = asdict(replace(base, **fixed).resolved())
        except ValueError as err:
            raise ValueError(f"--resume: {err}") from None
        kept = asdict(base)
        changed = sorted(k for k in typed if asked[k] != kept[k])
        if changed:
            flags = ", ".join(
                f"{_flag(k)} {_show(asked[k])} (the run has {_show(kept[k])})" for k in changed
            )
            raise ValueError(
                f"--resume keeps the run's settings, but {flags} differ; only "
                f"{', '.join(sorted(_flag(k) for k in RESUMABLE - _LABELS))} and "
                "the progress options may change on resume"
            )
        return cls.from_run(out, **resumable)

    def resolved(self) -> TrainConfig:
        """A copy with the network's defaults filled in and ``data_dir`` made absolute (so
        that ``config.json`` names the data wherever the run is read from), validated (clear
        errors)."""
        spec = get_network(self.network)
        data_dir = (
            None if self.data_dir is None else str(Path(self.data_dir).expanduser().resolve())
        )
        cfg = replace(
            self,
            data_dir=data_dir,
            epochs=spec.epochs if self.epochs is None else self.epochs,
            batch_size=spec.batch_size if self.batch_size is None else self.batch_size,
            lam=list(spec.lam) if self.lam is None else [float(v) for v in self.lam],
            lr=spec.lr if self.lr is None else self.lr,
            optimizer=spec.optimizer if self.optimizer is None else self.optimizer,
            init_drop_rate=list(spec.init_drop_rate)
            if self.init_drop_rate is None
            else [float(v) for v in self.init_drop_rate],
            ema=spec.ema if self.ema is None else float(self.ema),  # 0.0: off, saved as 0.0
            dataset=spec.dataset if self.dataset is None else self.dataset,
            standardize=spec.standardize if self.standardize is None else self.standardize,
            weight_init=spec.weight_init if self.weight_init is None else self.weight_init,
            weight_decay=spec.weight_decay
            if self.weight_decay is None and self.weight_precision is None
            else self.weight_decay,
        )
        cfg._validate()
        return cfg

    @property
    def total_epochs(self) -> int:
        """The main epochs plus the fine-tuning epochs (:attr:`finetune_epochs`)."""
        return self.epochs + self.finetune_epochs

    def warmup_factor(self, progress: float) -> float:
        r"""The warm-up's weight :math:`w = \min(1, e/K)` after :math:`e` epochs
        (``progress``, fractional) with :math:`K` = ``lam_warmup``; 1 without a warm-up.
        λ is scaled by :math:`w`; a target fraction :math:`t` becomes :math:`1 - w(1 - t)`."""
        if not self.lam_warmup:
            return 1.0
        return min(1.0, progress / self.lam_warmup)

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
        precision = float(self.weight_decay) * num_train
        if not math.isfinite(precision):
            raise ValueError(
                f"--weight-decay {self.weight_decay} times N = {num_train} data points is no "
                "finite slab precision; give a smaller --weight-decay"
            )
        return precision

    def _validate(self) -> None:
        for name in ("epochs", "batch_size", "nproc"):
            check_count(_flag(name), getattr(self, name))
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
        if self.ema is not None and not (self.ema == 0.0 or 0.0 < self.ema < 1.0):
            raise ValueError(f"--ema must lie in (0, 1) (0 turns it off), got {self.ema}")
        if not (math.isfinite(self.lagrange_lr) and self.lagrange_lr > 0):
            raise ValueError(
                f"--lagrange-lr must be a finite number > 0 (the multiplier's step size), got "
                f"{self.lagrange_lr}"
            )
        if self.target not in TARGETS:
            raise ValueError(f"--target must be 'params' or 'flops', got {self.target!r}")
        if (self.target is None) != (self.target_fraction is None):
            raise ValueError("--target and --target-fraction go together: give both or neither")
        if self.target_fraction is not None and not 0.0 < self.target_fraction <= 1.0:
            raise ValueError(f"--target-fraction must lie in (0, 1], got {self.target_fraction}")
        if self.target_scope not in ("global", "layer"):
            raise ValueError(f"--target-scope must be 'global' or 'layer', got {self.target_scope}")
        if not (
            isinstance(self.lam_warmup, (int, float))
            and math.isfinite(self.lam_warmup)
            and self.lam_warmup >= 0
        ):
            raise ValueError(f"--lam-warmup must be a number of epochs >= 0, got {self.lam_warmup}")
        for name in ("finetune_epochs", "bma_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{_flag(name)} must be an integer >= 0, got {value!r}")
        if self.bma_samples > MAX_BMA_SAMPLES:
            raise ValueError(
                f"--bma-samples must be at most {MAX_BMA_SAMPLES:,} (each draw is a pass over "
                f"the test set), got {self.bma_samples:,}"
            )
        if not isinstance(self.quick, bool):
            raise ValueError(f"quick must be true or false, got {self.quick!r}")
        if not isinstance(self.graph, bool):
            raise ValueError(f"graph must be true or false, got {self.graph!r}")
        if self.num_threads is not None:
            check_threads(self.num_threads)
        if (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, int)
            or not 0 <= self.seed <= MAX_SEED
        ):
            raise ValueError(f"--seed must be an integer in [0, {MAX_SEED}], got {self.seed!r}")
        if self.checkpoint_every < 0:
            raise ValueError(f"--checkpoint-every must be >= 0, got {self.checkpoint_every}")
        for name in ("train_size", "test_size"):
            if getattr(self, name) is not None:
                check_count(_flag(name), getattr(self, name))


def saved_settings(saved: dict[str, Any]) -> dict[str, Any]:
    """The settings of a saved (resolved) configuration, as this version reads them: runs from
    before ``standardize`` standardised and from before ``weight_init`` used torch's init; a
    resolved ``"ema": null`` (how versions before 0.0 was kept wrote ``--ema 0``) is off."""
    saved = dict(saved)
    saved.setdefault("standardize", True)
    saved.setdefault("weight_init", "uniform")
    if "ema" in saved and saved["ema"] is None:
        saved["ema"] = 0.0
    return saved


#: The largest seed (2**32 - 1): every epoch's data order seeds a generator with
#: ``seed * 1_000_003 + epoch``, which must fit torch's 64-bit seed.
MAX_SEED = 2**32 - 1

#: The largest ``config.json`` read (l0bayes writes about 1 KiB).
CONFIG_LIMIT = 1 << 24


def _read_config(path: Path) -> dict[str, Any]:
    """The JSON object in a run's ``config.json``, with one-line errors naming the file (a
    FIFO, a device or a huge file is refused unread)."""
    if not path.exists() and not path.is_symlink():
        raise FileNotFoundError(
            f"--resume: no config.json in {path.parent}; is it a run directory?"
        )
    try:
        saved = json.loads(read_limited(path, CONFIG_LIMIT, "config").decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text file (not UTF-8): not an l0bayes config") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror or err}") from None
    if not isinstance(saved, dict):
        raise ValueError(f"{path} does not hold a JSON object of settings")
    return saved


def _flag(name: str) -> str:
    special = {"num_threads": "--threads", "graph": "--no-graph"}
    return special.get(name, f"--{name.replace('_', '-')}")


def _show(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(map(str, value))
    return str(value)


#: The settings a resumed run may change (applied, and recorded in ``config.json``); every
#: other one must equal the saved configuration.
RESUMABLE = frozenset(
    {
        "epochs",
        "progress",
        "num_threads",
        "out",
        "data_dir",
        "checkpoint_every",
        "device",
        "quick",
        "graph",
    }
)

#: Settings in :data:`RESUMABLE` that are not flags a resume may change: the run directory, the
#: progress options, and ``quick`` (a label of how the run was started; a run saved before it
#: existed has none, and ``l0bayes train --resume`` refuses ``--quick``).
_LABELS = frozenset({"out", "progress", "quick"})

#: The settings ``--quick`` fills in when they are not given, per network: a smoke run, not a
#: result, that shows the method working in seconds on one CPU thread (measured on MNIST, one
#: busy core: the MLP trains in 10 s to about 10% test error with 784-300-100 pruned to
#: 359-237-82; LeNet-5 in 24 s to about 9%, its expected L0 down by a third). Adam's rate is
#: raised to 0.01 so that the gates move within a few hundred steps, and the parameters' EMA
#: is off (with β = 0.999 it would still hold most of the initial values after 500 steps).
QUICK = {
    "mnist-mlp": {"epochs": 5, "train_size": 10_000, "test_size": 2_000, "lr": 0.01, "ema": 0.0},
    "lenet5": {"epochs": 3, "train_size": 5_000, "test_size": 2_000, "lr": 0.01, "ema": 0.0},
    "wrn": {"epochs": 2, "train_size": 2_000, "test_size": 1_000},
}


def quick_settings(network: str) -> dict[str, Any]:
    """The settings of ``--quick`` for ``network`` (:data:`QUICK`)."""
    return dict(QUICK[network])


__all__ = [
    "DATASETS",
    "ELBOS",
    "LOG_ALPHA_RANGE",
    "MAX_SEED",
    "QUICK",
    "RESUMABLE",
    "TARGETS",
    "TrainConfig",
    "quick_settings",
    "saved_settings",
]
