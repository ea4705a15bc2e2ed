r"""What the guide says about a trained gated network: inclusion probabilities, the posterior
over architectures, and Bayesian model averaging against the deterministic pruned network.

The guide of every gate is :math:`q(z_g) = \text{HardConcrete}(\log\alpha_g)`, independently
across gates and layers. This module reads three things off it.

**Posterior inclusion probabilities** (PIPs), in closed form:

.. math::

    \pi_g = P_q(z_g \ne 0) = \sigma\big(\log\alpha_g - \beta\log(-\gamma/\zeta)\big).

**The posterior over architectures.** :math:`S` gate vectors
:math:`z^{(s)} \sim q` are drawn; each defines an architecture (a unit is open when
:math:`z^{(s)}_g \ne 0`) whose units per layer, FLOPs and non-zero parameters are counted by
:func:`~l0bayes.architecture.architecture` (Wide-ResNet: its own ``summary``) exactly as for the
test-time gates. Summaries are the Monte-Carlo mean and the equal-tailed 90% interval. The
co-inclusion matrix :math:`C_{ij} = P(z_i \ne 0, z_j \ne 0)` is estimated from the same draws;
under the factorised guide its expectation is :math:`\pi_i\pi_j` off the diagonal and
:math:`\pi_i` on it, so it is a check of the draws here, and informative for any posterior whose
gates are dependent. The test-time architecture (the paper's Eq. 13,
:math:`\hat z = \min(1, \max(0, \sigma(\log\alpha)(\zeta-\gamma)+\gamma))`) is compared with
the draws unit by unit, through the agreement rate

.. math::

    a_g = \frac1S\sum_s \mathbb 1\big[\mathbb 1[z^{(s)}_g \ne 0] = \mathbb 1[\hat z_g \ne 0]\big]
    \ \xrightarrow{S\to\infty}\ \pi_g \text{ if } \hat z_g \ne 0 \text{, else } 1 - \pi_g,

and layer by layer, through the mid-rank :math:`P(U < \hat u) + \tfrac12 P(U = \hat u)` of
its unit count :math:`\hat u` in the posterior of the count :math:`U` (0.5: the centre; near 0
or 1: the test-time architecture is atypical of the posterior).

**Bayesian model averaging** (BMA) over :math:`S` draws of gates and weights (one draw is a
whole network, shared by every test example):

.. math::

    p(y \mid x) \approx \frac1S \sum_{s=1}^S p(y \mid x, z^{(s)}, \theta^{(s)}),

against the deterministic network (Eq. 13 gates, the weights' locations), by accuracy, the
negative log-likelihood :math:`-\frac1N\sum_i \log p(y_i \mid x_i)` (nats) and the expected
calibration error (:func:`expected_calibration_error`).

Every function runs without gradients, on the network's device, with the test set in chunks;
random draws come from a forked RNG seeded with ``seed``, so results are reproducible and the
caller's random state is left untouched.

**References**

[1] C. Louizos, M. Welling, D. P. Kingma. Learning Sparse Neural Networks through :math:`L_0`
    Regularization. ICLR 2018, arXiv:1712.01312.

[2] C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger. On Calibration of Modern Neural Networks.
    ICML 2017 (the binned ECE).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from l0bayes.nn.architecture import Architecture
from l0bayes.nn.layers import L0Layer, L0Linear, L0Network, LayerDraw, l0_layers
from l0bayes.nn.networks import network_architecture
from l0bayes.validation import check_count

#: Draws of the guide used by default for architecture posteriors and model averaging.
DEFAULT_SAMPLES = 100
#: Equal-width confidence bins of the expected calibration error (Guo et al., 2017).
ECE_BINS = 15


# ----------------------------------------------------------------------------- helpers
def gated_layer_names(net: nn.Module) -> list[str]:
    """The module names (as in ``net.named_modules()``, e.g. ``"layers.0"``) of the gated
    layers, in definition order."""
    names = {module: name for name, module in net.named_modules() if isinstance(module, L0Layer)}
    return [names[layer] for layer in l0_layers(net)]


def _named_layers(net: nn.Module) -> dict[str, L0Layer]:
    return dict(zip(gated_layer_names(net), l0_layers(net), strict=True))


def _device(net: nn.Module) -> torch.device:
    return next(net.parameters()).device


@contextlib.contextmanager
def _seeded(device: torch.device, seed: int) -> Iterator[None]:
    """A forked RNG (CPU and the network's CUDA device) seeded with ``seed``."""
    cuda = []
    if device.type == "cuda":
        cuda = [torch.cuda.current_device() if device.index is None else device.index]
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def _evaluating(net: nn.Module) -> Iterator[None]:
    """Evaluation mode (batch norm with running statistics) and no gradients, restored after."""
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        net.train(was_training)


# ----------------------------------------------------------------------------- PIPs
def inclusion_probabilities(net: nn.Module) -> dict[str, np.ndarray]:
    r"""Posterior inclusion probability :math:`\pi_g = P_q(z_g \ne 0)` of every gate, per
    gated layer (module name -> array of shape ``(G,)``), in closed form."""
    with torch.no_grad():
        return {
            name: layer.inclusion_probs().detach().cpu().double().numpy()
            for name, layer in _named_layers(net).items()
        }


def deterministic_open(net: nn.Module) -> dict[str, np.ndarray]:
    r""":math:`\mathbb 1[\hat z_g \ne 0]` for the test-time gates (Eq. 13), per gated layer."""
    with torch.no_grad():
        return {
            name: (layer.deterministic_gates() != 0).cpu().numpy()
            for name, layer in _named_layers(net).items()
        }


def input_gate_image(net: nn.Module, image_shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    """The PIPs of the first gated layer's input gates as an image (the MNIST MLP's 784 input
    pixels as 28×28, row-major as the images are flattened).

    :raises ValueError: the first gated layer is not a fully connected layer with one group
        gate per input pixel.
    """
    first = l0_layers(net)[0] if l0_layers(net) else None
    pixels = math.prod(image_shape)
    if not (
        isinstance(first, L0Linear) and first.gate_kind == "group" and first.in_features == pixels
    ):
        raise ValueError(
            f"input_gate_image needs a first gated layer that is an L0Linear with {pixels} "
            f"input-neuron gates (the MNIST MLP); got {type(first).__name__}"
        )
    return next(iter(inclusion_probabilities(net).values())).reshape(image_shape)


# ----------------------------------------------------------------------------- architectures
@dataclass(frozen=True)
class ArchitecturePosterior:
    """``S`` draws of the architecture from the guide.

    ``names``: the gated layers' module names; ``included``: per layer, ``(S, G)`` booleans
    :math:`z^{(s)}_g \\ne 0`; ``units``: ``(S, L)`` units per gated layer of each drawn
    architecture; ``flops``, ``params``: ``(S,)`` multiply–accumulates per example and non-zero
    parameters (as :class:`~l0bayes.nn.architecture.Architecture` counts them); ``dense``,
    ``deterministic``, ``expected``: the architecture with every gate open, with the test-time
    gates (Eq. 13) and its closed-form expectation under the guide; ``deterministic_open``: per
    layer, :math:`\\hat z_g \\ne 0`; ``seed``: the seed of the draws."""

    names: tuple[str, ...]
    included: dict[str, np.ndarray]
    units: np.ndarray
    flops: np.ndarray
    params: np.ndarray
    dense: Architecture
    deterministic: Architecture
    expected: Architecture
    deterministic_open: dict[str, np.ndarray]
    seed: int

    @property
    def num_samples(self) -> int:
        return len(self.flops)


def sample_gates(
    net: nn.Module, num_samples: int = DEFAULT_SAMPLES, seed: int = 0
) -> dict[str, torch.Tensor]:
    """``num_samples`` gate vectors from the guide per gated layer (name -> ``(S, G)``)."""
    check_count("num_samples", num_samples)
    with torch.no_grad(), _seeded(_device(net), seed):
        return {
            name: layer.gate_posterior().sample((num_samples,))
            for name, layer in _named_layers(net).items()
        }


def sample_architectures(
    net: nn.Module,
    input_shape: tuple[int, ...],
    num_samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
) -> ArchitecturePosterior:
    """Draw ``num_samples`` gate vectors from the guide and count each drawn architecture with
    :func:`~l0bayes.nn.networks.network_architecture` (its gates put in place of the test-time
    gates for the count; the network is unchanged afterwards).

    :param input_shape: one example's shape, e.g. ``(784,)`` or ``(1, 28, 28)``.
    """
    layers = _named_layers(net)
    gates = sample_gates(net, num_samples, seed)
    units, flops, params = [], [], []
    for s in range(num_samples):
        draw = {layer: gates[name][s] for name, layer in layers.items()}
        arch = network_architecture(net, input_shape, "deterministic", gates=draw)
        units.append(arch.units)
        flops.append(arch.flops)
        params.append(arch.params)
    with torch.no_grad():
        summary = {s: network_architecture(net, input_shape, s) for s in ("dense", "expected")}
        deterministic = network_architecture(net, input_shape, "deterministic")
    return ArchitecturePosterior(
        names=tuple(layers),
        included={name: (z != 0).cpu().numpy() for name, z in gates.items()},
        units=np.asarray(units, dtype=float).reshape(num_samples, len(layers)),
        flops=np.asarray(flops, dtype=float),
        params=np.asarray(params, dtype=float),
        dense=summary["dense"],
        deterministic=deterministic,
        expected=summary["expected"],
        deterministic_open=deterministic_open(net),
        seed=seed,
    )


@dataclass(frozen=True)
class Interval:
    """Monte-Carlo mean and equal-tailed credible interval ``[lower, upper]`` at ``level``."""

    mean: float
    lower: float
    upper: float
    level: float


def credible_interval(values: np.ndarray, level: float = 0.9) -> Interval:
    r"""Mean and the equal-tailed interval between the :math:`(1-\ell)/2` and
    :math:`(1+\ell)/2` empirical quantiles of ``values``."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    values = np.asarray(values, dtype=float)
    tail = (1.0 - level) / 2.0
    lower, upper = np.quantile(values, [tail, 1.0 - tail])
    return Interval(float(values.mean()), float(lower), float(upper), level)


def posterior_rank(values: np.ndarray, x: float) -> float:
    r"""Mid-rank of ``x`` among the draws: :math:`P(V < x) + \tfrac12 P(V = x)` (0.5 when
    ``x`` sits at the posterior's median, 0 or 1 when no draw is on its side)."""
    values = np.asarray(values, dtype=float)
    return float(np.mean(values < x) + 0.5 * np.mean(values == x))


def coinclusion(included: np.ndarray) -> np.ndarray:
    r"""Co-inclusion matrix :math:`\hat C_{ij} = \frac1S\sum_s \mathbb 1[z^{(s)}_i \ne 0]\,
    \mathbb 1[z^{(s)}_j \ne 0]` of one layer from ``(S, G)`` inclusion indicators; its
    diagonal is the Monte-Carlo PIP."""
    inc = np.asarray(included, dtype=float)
    return inc.T @ inc / inc.shape[0]


def unit_agreement(posterior: ArchitecturePosterior) -> dict[str, np.ndarray]:
    r"""Per gate, the fraction :math:`a_g` of draws whose inclusion
    :math:`\mathbb 1[z^{(s)}_g \ne 0]` equals the test-time one :math:`\mathbb 1[\hat z_g \ne
    0]` (its limit is :math:`\pi_g` for an open test-time gate, :math:`1 - \pi_g` for a closed
    one)."""
    return {
        name: (inc == posterior.deterministic_open[name][None, :]).mean(axis=0)
        for name, inc in posterior.included.items()
    }


def architecture_summary(posterior: ArchitecturePosterior, level: float = 0.9) -> list[dict]:
    """One row per gated layer, then FLOPs and non-zero parameters: the dense and test-time
    (Eq. 13) values, the closed-form expectation under the guide, the posterior mean and
    ``level`` interval, and the mid-rank of the test-time value among the draws."""
    post = posterior
    quantities = [
        (name, post.units[:, i], [a.units[i] for a in (post.dense, post.deterministic)])
        for i, name in enumerate(post.names)
    ]
    quantities += [
        ("FLOPs", post.flops, [post.dense.flops, post.deterministic.flops]),
        ("non-zero parameters", post.params, [post.dense.params, post.deterministic.params]),
    ]
    expected = [*post.expected.units, post.expected.flops, post.expected.params]
    rows = []
    for (label, draws, (dense, det)), mean in zip(quantities, expected, strict=True):
        interval = credible_interval(draws, level)
        rows.append(
            dict(
                quantity=label,
                dense=dense,
                deterministic=det,
                expected=mean,
                posterior_mean=interval.mean,
                lower=interval.lower,
                upper=interval.upper,
                deterministic_rank=posterior_rank(draws, det),
            )
        )
    return rows


# ----------------------------------------------------------------------------- predictions
def _chunks(x: torch.Tensor, batch_size: int, device: torch.device) -> Iterator[torch.Tensor]:
    for start in range(0, len(x), batch_size):
        yield x[start : start + batch_size].to(device)


def deterministic_log_probs(
    net: L0Network, x: torch.Tensor, batch_size: int = 1000
) -> torch.Tensor:
    r""":math:`\log p(y \mid x)` of the deterministic pruned network (Eq. 13 gates, the
    weights' locations), shape ``(N, C)`` on the CPU; ``x`` is the network's (standardised)
    input, processed in chunks of ``batch_size``."""
    check_count("batch_size", batch_size)
    device = _device(net)
    with _evaluating(net):
        return torch.cat(
            [F.log_softmax(net(xb), -1).cpu() for xb in _chunks(x, batch_size, device)]
        )


def sampled_log_probs(
    net: L0Network,
    x: torch.Tensor,
    num_samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    batch_size: int = 1000,
) -> Iterator[tuple[dict[str, LayerDraw], torch.Tensor]]:
    r"""For each of ``num_samples`` draws of every gated layer's gates and weights from the
    guide (:meth:`L0Layer.sample`): the draw by layer name and
    :math:`\log p(\cdot \mid x, z^{(s)}, \theta^{(s)})`, shape ``(N, C)`` on the CPU.

    A draw is one network: it is shared by every example (the gates are global latent
    variables, even for a network trained with per-example gate draws)."""
    check_count("num_samples", num_samples)
    check_count("batch_size", batch_size)
    device, named = _device(net), _named_layers(net)
    with _evaluating(net), _seeded(device, seed):
        for _ in range(num_samples):
            draws = {layer: layer.sample() for layer in named.values()}  # one global draw
            logp = torch.cat(
                [
                    F.log_softmax(net.forward_with(xb, draws), -1).cpu()
                    for xb in _chunks(x, batch_size, device)
                ]
            )
            yield {name: draws[layer] for name, layer in named.items()}, logp


def bma_log_probs(
    net: L0Network,
    x: torch.Tensor,
    num_samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    batch_size: int = 1000,
) -> torch.Tensor:
    r"""The model average :math:`\log \frac1S\sum_s p(y \mid x, z^{(s)}, \theta^{(s)})` over
    the draws of :func:`sampled_log_probs`, shape ``(N, C)`` on the CPU. The average is
    accumulated in log space (``logaddexp``), so no probability underflows.
    """
    total = None
    for _, logp in sampled_log_probs(net, x, num_samples, seed, batch_size):
        total = logp if total is None else torch.logaddexp(total, logp)
    return total - math.log(num_samples)


def reliability_bins(
    probs: np.ndarray, y: np.ndarray, n_bins: int = ECE_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Counts, mean accuracy and mean confidence in ``n_bins`` equal-width bins of the
    confidence :math:`c_i = \max_k p(k \mid x_i)`; bin :math:`b` holds
    :math:`c \in (\frac{b}{M}, \frac{b+1}{M}]` (empty bins: NaN accuracy and confidence)."""
    check_count("n_bins", n_bins)
    probs, y = np.asarray(probs, dtype=float), np.asarray(y)
    if probs.ndim != 2 or len(probs) != len(y):
        raise ValueError(f"probs must be (N, C) with N = len(y); got {probs.shape}, {y.shape}")
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(float)
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(bins, correct, minlength=n_bins) / counts
        confidence = np.bincount(bins, conf, minlength=n_bins) / counts
    return counts, accuracy, confidence


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, n_bins: int = ECE_BINS) -> float:
    r"""Expected calibration error with ``n_bins`` (default 15) equal-width confidence bins
    (Guo et al., 2017):

    .. math::

        \mathrm{ECE} = \sum_{b=1}^{M} \frac{n_b}{N}\,
            \big|\mathrm{acc}(b) - \mathrm{conf}(b)\big|,

    where bin :math:`b` holds the examples whose confidence :math:`\max_k p(k \mid x)` lies in
    :math:`((b-1)/M, b/M]`, :math:`\mathrm{acc}(b)` is their accuracy (the prediction is the
    arg-max class) and :math:`\mathrm{conf}(b)` their mean confidence. 0 is perfectly
    calibrated; a predictor that is always sure and right half the time has ECE 0.5.

    :param probs: predicted class probabilities, ``(N, C)``.
    :param y: true classes, ``(N,)``.
    """
    counts, accuracy, confidence = reliability_bins(probs, y, n_bins)
    full = counts > 0
    return float(np.sum(counts[full] * np.abs(accuracy[full] - confidence[full])) / counts.sum())


def classification_metrics(
    log_probs: torch.Tensor, y: torch.Tensor, n_bins: int = ECE_BINS
) -> dict[str, float]:
    """Accuracy, error, NLL (nats per example) and ECE of predictive log-probabilities."""
    log_probs, y = torch.as_tensor(log_probs).cpu().double(), torch.as_tensor(y).cpu()
    if log_probs.dim() != 2 or len(log_probs) != len(y):
        raise ValueError(
            f"log_probs must be (N, C) with N = len(y); got {tuple(log_probs.shape)}, {len(y)}"
        )
    accuracy = float((log_probs.argmax(-1) == y).double().mean())
    nll = float(-log_probs.gather(1, y[:, None].long()).mean())
    ece = expected_calibration_error(log_probs.exp().numpy(), y.numpy(), n_bins)
    return dict(accuracy=accuracy, error=1.0 - accuracy, nll=nll, ece=ece)


def compare_bma(
    net: L0Network,
    x: torch.Tensor,
    y: torch.Tensor,
    num_samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    batch_size: int = 1000,
) -> dict[str, dict]:
    """Test-set metrics (:func:`classification_metrics`) of the model average over
    ``num_samples`` draws (``"bma"``) and of the deterministic pruned network
    (``"deterministic"``); each entry also holds its ``log_probs``."""
    if len(x) != len(y):
        raise ValueError(f"x and y have different lengths: {len(x)} and {len(y)}")
    out = {}
    for key, logp in (
        ("bma", bma_log_probs(net, x, num_samples, seed, batch_size)),
        ("deterministic", deterministic_log_probs(net, x, batch_size)),
    ):
        out[key] = {**classification_metrics(logp, y), "log_probs": logp}
    return out


__all__ = [
    "DEFAULT_SAMPLES",
    "ECE_BINS",
    "ArchitecturePosterior",
    "Interval",
    "architecture_summary",
    "bma_log_probs",
    "classification_metrics",
    "coinclusion",
    "compare_bma",
    "credible_interval",
    "deterministic_log_probs",
    "deterministic_open",
    "expected_calibration_error",
    "gated_layer_names",
    "inclusion_probabilities",
    "input_gate_image",
    "posterior_rank",
    "reliability_bins",
    "sample_architectures",
    "sample_gates",
    "unit_agreement",
]
