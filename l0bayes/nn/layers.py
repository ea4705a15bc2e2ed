r"""L0-gated layers for Pyro networks: the paper's group gates as latent variables.

A gated layer has :math:`G` gates, each controlling a group of :math:`S` weights: the input
neurons of a fully connected layer (a column of :math:`S = \text{out}` weights), the output
feature maps of a convolution (:math:`S = \text{in}\cdot k_h k_w` weights and the map's bias), or,
with ``gate="weight"``, every single weight (:math:`S = 1`). The model and guide of one layer are

.. math::

    z_g &\sim \text{SpikeSlabGate}(\lambda_g), \qquad
    \theta_{g,s} \mid z_g \ne 0 \sim \text{GaussianSlab}(\lambda_2), \\
    q(z_g) &= \text{HardConcrete}(\log\alpha_g), \qquad
    q(\theta_{g,s}) = \delta(\tilde\theta_{g,s})\ \text{(MAP, the paper)}
    \ \text{or}\ \mathcal N(\mu_{g,s}, s_{g,s}^2),

and with :class:`pyro.infer.TraceMeanField_ELBO` the layer's part of the negative ELBO is
analytic:

.. math::

    \sum_g \mathrm{KL}(q(z_g) \,\|\, p(z_g))
    + \sum_g P_q(z_g \ne 0) \sum_s \mathrm{KL}(q(\theta_{g,s}) \,\|\, \text{slab}),

which in ``kl_mode="l0"`` with MAP weights is the paper's regularizer
:math:`\sum_g P(z_g \ne 0)\,(\lambda_g + \tfrac{\lambda_2}{2}\sum_s \tilde\theta_{g,s}^2)` (times
:math:`N`: the ELBO is per data set, the paper's objective per data point).

**λ's units.** ``lam`` is a code cost *per parameter* in nats of log-likelihood, so a group gate
pays :math:`\lambda_g = \lambda S` (once for every weight it controls, as the paper's code does);
:math:`\lambda = 1` is AIC and :math:`\tfrac12 \log N` BIC. The paper's tables write
:math:`\lambda` per data point: their ":math:`\lambda = 0.1/N`" is ``lam=0.1`` here.
``prior_inclusion`` :math:`\pi` is instead a probability *per gate*
(:math:`\lambda_g = \log\frac{1-\pi}{\pi}`).

**Train-time gates.** By default one gate vector is drawn per minibatch (the official code's
default). ``local_rep=True`` draws a separate gate vector for every example (lower variance, the
paper's choice). The gates are global latent variables either way: the per-example draws sit in
a plate of the batch size with scale :math:`1/B`, so their KL is counted once per data set.

**Test-time gates.** ``forward(x)`` without a draw uses the paper's deterministic estimator
(Eq. 13) :math:`\hat z = \min(1, \max(0, \sigma(\log\alpha)(\zeta - \gamma) + \gamma))` and the
weights' locations; :meth:`L0Layer.sample` draws gates (and Gaussian weights) from the guide for
Bayesian model averaging.

**References**

[1] C. Louizos, M. Welling, D. P. Kingma. Learning Sparse Neural Networks through :math:`L_0`
    Regularization. ICLR 2018, arXiv:1712.01312.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro import poutine
from pyro.distributions import constraints
from pyro.nn import PyroModule
from pyro.nn.module import pyro_method
from torch import nn
from torch.distributions import kl_divergence

from l0bayes.distributions import (
    DEFAULT_STRETCH,
    DEFAULT_TEMPERATURE,
    GATE_ROLE,
    VALUE_ROLE,
    GaussianSlab,
    HardConcrete,
    SpikeSlabGate,
    check_gate_hyperparameters,
    code_cost,
    gate_kl,
    initial_log_alpha,
)
from l0bayes.distributions.spike_slab import check_kl_mode, point_mass_kl
from l0bayes.nn.base import BayesianClassifier, SequentialClassifier
from l0bayes.validation import check_count

GATE_KINDS = ("group", "weight")
#: The paper's MNIST code cost per parameter (its "λ = 0.1/N").
DEFAULT_LAM = 0.1
WEIGHT_GUIDES = ("delta", "normal")
#: ``"uniform"``: :math:`U(\pm 1/\sqrt{\text{fan-in}})` and a zero bias (torch's layers);
#: ``"he"``: :math:`\mathcal N(0, 2/\text{fan-in})` and a :math:`\mathcal N(0, 0.01^2)` bias
#: (He et al. 2015; the paper's official code: its gated layers' weights, its ungated layers'
#: biases; its gated layers start their biases at zero).
WEIGHT_INITS = ("uniform", "he")


@dataclass(frozen=True)
class LayerDraw:
    """One draw of a layer's latent variables: gates of shape ``(G,)`` (one per minibatch) or
    ``(B, G)`` (one per example) and the weight tensor in the layer's natural shape."""

    gates: torch.Tensor
    weight: torch.Tensor


def drop_rate_to_log_alpha(drop_rate: float) -> float:
    r"""The paper's gate initialisation: :math:`\log\alpha = \log\frac{1-r}{r}` for a drop rate
    :math:`r \in (0, 1)` (0.2 for the MLP's input layer, 0.5 elsewhere)."""
    if not 0.0 < drop_rate < 1.0:
        raise ValueError(f"init_drop_rate must lie strictly in (0, 1), got {drop_rate}")
    return math.log1p(-drop_rate) - math.log(drop_rate)


class L0Layer(PyroModule):
    """Base class of the gated layers: gate and weight sites, priors, guide and draws.

    Subclasses set ``self.weight`` (an ``nn.Parameter`` whose first dimension indexes the gate
    groups when ``gate="group"``) and implement :meth:`_gated`, the layer's map given gates and
    weights. Sample sites are named after the layer: ``"<name>.gate"`` (the gates) and
    ``"<name>.theta"`` (the weights :math:`\theta`, whose guide location is the parameter
    ``"<name>.weight"``); parameters ``"<name>.log_alpha"`` and ``"<name>.bias"``.

    :param lam: code cost per parameter (nats); a group gate pays ``lam * group_size``
        (default :data:`DEFAULT_LAM` = 0.1, the paper's MNIST value, when neither ``lam`` nor
        ``prior_inclusion`` is given).
    :param prior_inclusion: prior inclusion probability per gate (instead of ``lam``).
    :param kl_mode: ``"l0"`` (the paper's expected-L0 penalty) or ``"bayes"`` (full gate KL).
    :param weight_precision: :math:`\\lambda_2` of the Gaussian slab (weight decay); 0 = flat.
    :param weight_guide: ``"delta"`` (MAP weights, the paper) or ``"normal"`` (mean field).
    :param init_drop_rate: initial :math:`P(z = 0)`-like drop rate of the gates (the paper's
        initialisation, :func:`drop_rate_to_log_alpha`, plus :math:`\\mathcal N(0, 0.01^2)`).
    :param local_rep: one gate draw per example (``True``) or per minibatch (``False``).
    :param weight_init: the weights' initialisation, one of :data:`WEIGHT_INITS`.
    """

    def __init__(
        self,
        gate: str,
        lam: float | None,
        prior_inclusion: float | None,
        kl_mode: str,
        weight_precision: float,
        weight_guide: str,
        init_drop_rate: float,
        local_rep: bool,
        temperature: float,
        stretch: tuple[float, float],
        weight_init: str,
    ) -> None:
        super().__init__()
        if gate not in GATE_KINDS:
            raise ValueError(f"gate must be one of {GATE_KINDS}, got {gate!r}")
        if weight_guide not in WEIGHT_GUIDES:
            raise ValueError(f"weight_guide must be one of {WEIGHT_GUIDES}, got {weight_guide!r}")
        if weight_init not in WEIGHT_INITS:
            raise ValueError(f"weight_init must be one of {WEIGHT_INITS}, got {weight_init!r}")
        if lam is not None and prior_inclusion is not None:
            raise ValueError("give lam or prior_inclusion, not both")
        if lam is not None and not (math.isfinite(lam) and lam >= 0):
            raise ValueError(f"lam must be finite and >= 0, got {lam}")
        check_precision(weight_precision, "weight_precision")
        if weight_guide == "normal" and weight_precision <= 0:
            raise ValueError("weight_guide='normal' needs a proper slab: give weight_precision > 0")
        if gate == "weight" and local_rep:
            raise ValueError(
                "local_rep=True needs group gates: per-example draws of per-weight gates would "
                "give every example its own weight matrix; use gate='group' or local_rep=False"
            )
        check_gate_hyperparameters(temperature, stretch)
        self.gate_kind = gate
        self.lam = DEFAULT_LAM if lam is None and prior_inclusion is None else lam
        self.prior_inclusion = prior_inclusion
        if prior_inclusion is not None:
            code_cost(prior_inclusion)  # validates (0, 1)
        self.kl_mode = check_kl_mode(kl_mode)
        self.weight_precision = float(weight_precision)
        self.weight_guide = weight_guide
        self.init_log_alpha = drop_rate_to_log_alpha(init_drop_rate)
        self.local_rep = bool(local_rep)
        self.temperature = float(temperature)
        self.stretch = (float(stretch[0]), float(stretch[1]))
        self.weight_init = weight_init

    # ------------------------------------------------------------------ shapes
    @property
    def num_gates(self) -> int:
        """:math:`G`: one gate per group (``gate="group"``) or per weight."""
        return self._num_gates

    @property
    def group_size(self) -> int:
        """:math:`S`: the number of weights one gate controls."""
        return self._group_size

    def _init_gates(self) -> None:
        """Create ``log_alpha`` (and the weight scale of a Gaussian guide) once ``weight``
        exists; the shapes are cached as integers (a parameter lookup on a ``PyroModule`` is
        not free, and these are read on every step)."""
        numel = self.weight.numel()
        self._num_gates = self.weight.shape[0] if self.gate_kind == "group" else numel
        self._group_size = numel // self._num_gates
        noise = 0.01 * torch.randn(self.num_gates)
        self.log_alpha = nn.Parameter(
            initial_log_alpha(self.init_log_alpha, noise.shape, noise) + noise
        )
        if self.weight_guide == "normal":
            self.weight_scale = pyro.nn.PyroParam(
                torch.full_like(self.weight.detach(), 1e-3), constraint=constraints.positive
            )

    def _site(self, name: str) -> str:
        return self._pyro_get_fullname(name)

    # ------------------------------------------------------------------ distributions
    def gate_cost(self) -> float:
        r""":math:`\lambda_g`, the code cost of one gate: ``lam * group_size`` or
        :math:`\log\frac{1-\pi}{\pi}`."""
        if self.prior_inclusion is not None:
            return code_cost(self.prior_inclusion)
        return self.lam * self.group_size

    def gate_prior(self) -> SpikeSlabGate:
        like = self.log_alpha
        lam = torch.as_tensor(self.gate_cost(), dtype=like.dtype, device=like.device)
        return SpikeSlabGate(lam=lam, kl_mode=self.kl_mode).expand([self.num_gates])

    def weight_prior(self) -> GaussianSlab:
        """The slab on the weights, batch shape ``(G, S)``: unnormalized (the paper's weight
        decay) for MAP weights, a proper Gaussian for a Gaussian weight guide. Built once per
        dtype and device (it has no learnable parameters)."""
        like = self.log_alpha
        key = (like.dtype, like.device)
        cache = self.__dict__.setdefault("_slab_cache", {})
        if key not in cache:
            precision = torch.as_tensor(self.weight_precision, dtype=like.dtype, device=like.device)
            slab = GaussianSlab(precision, normalized=self.weight_guide == "normal")
            cache[key] = slab.expand([self.num_gates, self.group_size])
        return cache[key]

    def gate_posterior(self) -> HardConcrete:
        """The guide's gates :math:`q(z) = \\text{HardConcrete}(\\log\\alpha)`, shape ``(G,)``."""
        return HardConcrete(self.log_alpha, self.temperature, self.stretch)

    def _grouped(self, weight: torch.Tensor) -> torch.Tensor:
        """The weight tensor as ``(G, S)``: gate ``g`` controls row ``g``."""
        return weight.reshape(self.num_gates, self.group_size)

    def _weight_guide_dist(self) -> dist.Distribution:
        loc = self._grouped(self.weight)
        if self.weight_guide == "delta":
            return dist.Delta(loc).to_event(1)
        return dist.Normal(loc, self._grouped(self.weight_scale)).to_event(1)

    def _sample_gates(self, gate_dist: dist.Distribution, num_examples: int | None):
        """Sample the gate site in the gates' plate: one draw, or ``num_examples`` draws in an
        examples plate with scale :math:`1/B` (so the global gates' KL is counted once)."""
        site = self._site(GATE_ROLE)
        if num_examples is None:
            return pyro.sample(site, gate_dist)
        examples = pyro.plate(self._site("example_plate"), num_examples, dim=-2)
        with examples, poutine.scale(scale=1.0 / num_examples):
            return pyro.sample(site, gate_dist.expand([num_examples, self.num_gates]))

    def _gates_plate(self) -> pyro.plate:
        return pyro.plate(self._site("gate_plate"), self.num_gates, dim=-1)

    def _num_examples(self, batch_size: int | None) -> int | None:
        return batch_size if self.local_rep else None

    # ------------------------------------------------------------------ model and guide
    @pyro_method
    def model(self, batch_size: int | None = None) -> LayerDraw:
        """Sample the layer's gates and weights from the prior (replayed from the guide in SVI).

        :param batch_size: the minibatch size, used for per-example gates (``local_rep``).
        """
        n_ex = self._num_examples(batch_size)
        prior = self.gate_prior()
        slab = self.weight_prior()
        with self._gates_plate():
            z = self._sample_gates(prior, n_ex)
            included = (z != 0).reshape(-1, self.num_gates).any(0)
            with poutine.mask(mask=included):  # the spike: an excluded group costs nothing
                w = pyro.sample(self._site(VALUE_ROLE), slab.to_event(1))
        return LayerDraw(z, w.reshape(self.weight.shape))

    @pyro_method
    def guide(self, batch_size: int | None = None) -> LayerDraw:
        """Sample gates from the hard concrete guide and weights from their guide, the weight
        site scaled by :math:`P(z_g \\ne 0)` so its KL is the paper's gated weight penalty."""
        n_ex = self._num_examples(batch_size)
        q = self.gate_posterior()
        with self._gates_plate():
            z = self._sample_gates(q, n_ex)
            with poutine.scale(scale=q.prob_nonzero):
                w = pyro.sample(self._site(VALUE_ROLE), self._weight_guide_dist())
        return LayerDraw(z, w.reshape(self.weight.shape))

    # ------------------------------------------------------------------ test time
    def deterministic_gates(self) -> torch.Tensor:
        """The paper's test-time gates (Eq. 13), shape ``(G,)``."""
        return self.gate_posterior().deterministic_gate()

    def inclusion_probs(self) -> torch.Tensor:
        """:math:`P_q(z_g \\ne 0)` per gate, shape ``(G,)``."""
        return self.gate_posterior().prob_nonzero

    @pyro_method
    def sample(self, batch_size: int | None = None) -> LayerDraw:
        """A draw from the guide without Pyro's bookkeeping (for Bayesian model averaging)."""
        return self._draw(batch_size)

    def _draw(self, batch_size: int | None, q: HardConcrete | None = None) -> LayerDraw:
        # the guide's random numbers in the guide's order: gates, then (Gaussian) weights
        q = self.gate_posterior() if q is None else q
        shape = () if self._num_examples(batch_size) is None else (batch_size,)
        z = q.rsample(shape)
        if self.weight_guide == "delta":  # the point mass's draw is its location
            return LayerDraw(z, self.weight)
        return LayerDraw(z, self._weight_guide_dist().rsample().reshape(self.weight.shape))

    def kl_divergence(self, q: HardConcrete | None = None) -> torch.Tensor:
        r"""The layer's part of the negative ELBO's KL term, in closed form:

        .. math::

            \sum_g \mathrm{KL}(q(z_g)\,\|\,p(z_g))
            + \sum_g P_q(z_g \ne 0)\,\mathrm{KL}(q(\theta_g)\,\|\,\text{slab}),

        by the same functions as the KLs registered for the ``model``/``guide`` sites that
        :class:`pyro.infer.TraceMeanField_ELBO` uses (tested equal). In ``kl_mode="l0"`` with
        MAP weights this is the paper's :math:`\sum_g P(z_g \ne 0)(\lambda_g +
        \tfrac{\lambda_2}{2}\lVert\tilde\theta_g\rVert^2)`.

        :param q: the gate posterior, when the caller has built it already.
        """
        q = self.gate_posterior() if q is None else q
        gate = gate_kl(q, self.gate_cost(), self.kl_mode)
        slab = self.weight_prior()
        if self.weight_guide == "delta":
            weight = point_mass_kl(self._grouped(self.weight), slab, event_dim=1)
        else:
            weight = kl_divergence(self._weight_guide_dist(), slab.to_event(1))
        return gate.sum() + (q.prob_nonzero * weight).sum()

    def forward(self, x: torch.Tensor, draw: LayerDraw | None = None) -> torch.Tensor:
        """Apply the layer with ``draw`` (from :meth:`model`, :meth:`guide` or :meth:`sample`),
        or with the deterministic test-time gates and the weights' locations."""
        if draw is None:
            draw = LayerDraw(self.deterministic_gates(), self.weight)
        return self._gated(x, draw.gates, draw.weight)

    def forward_with(self, x: torch.Tensor, draw: LayerDraw) -> torch.Tensor:
        """The layer's map under ``draw`` (as ``self(x, draw)``, without the module call)."""
        return self._gated(x, draw.gates, draw.weight)

    def _gated(self, x: torch.Tensor, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def gated_weight(self, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``w`` (in the stored layout) with every group multiplied by its gate, for gates
        shared by the minibatch, shape ``(G,)``."""
        return (self._grouped(w) * z.unsqueeze(-1)).reshape(w.shape)


def _layer_kwargs(kwargs: dict) -> dict:
    defaults = dict(
        gate="group",
        lam=None,
        prior_inclusion=None,
        kl_mode="l0",
        weight_precision=0.0,
        weight_guide="delta",
        init_drop_rate=0.5,
        local_rep=False,
        temperature=DEFAULT_TEMPERATURE,
        stretch=DEFAULT_STRETCH,
        weight_init="uniform",
    )
    unknown = set(kwargs) - set(defaults)
    if unknown:
        raise TypeError(f"unexpected keyword arguments {sorted(unknown)}")
    return {**defaults, **kwargs}


class L0Linear(L0Layer):
    r"""Fully connected layer :math:`y = (x \odot z)\,W + b` with one gate per **input
    neuron** (the paper's choice), or per weight with ``gate="weight"``.

    The weight is stored as ``(in_features, out_features)`` so that gate ``j`` controls row
    ``j`` (note: the transpose of :class:`torch.nn.Linear`'s layout). The bias is not gated and
    carries no prior (a point estimate). Keyword arguments: see :class:`L0Layer`.

    Example::

        layer = L0Linear(784, 300, lam=0.1, init_drop_rate=0.2)
        draw = layer.guide()          # inside an SVI guide
        h = layer(x, draw)            # (B, 300)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, **kwargs) -> None:
        super().__init__(**_layer_kwargs(kwargs))
        check_count("in_features", in_features)
        check_count("out_features", out_features)
        self.in_features, self.out_features = in_features, out_features
        shape = (in_features, out_features)
        init_weights(self, shape, in_features, bias, self.weight_init, out_dim=1)
        self._init_gates()

    def _gated(self, x: torch.Tensor, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"expected {self.in_features} input features, got {x.shape[-1]}")
        if self.gate_kind == "group":
            x = x * z  # (B, in) * (in,) or (B, in)
        else:
            w = self.gated_weight(z, w)
        out = x @ w
        return out if self.bias is None else out + self.bias


class L0Conv2d(L0Layer):
    r"""2-d convolution with one gate per **output feature map** (the paper's choice), or per
    weight with ``gate="weight"``: :math:`y_c = z_c\,(W_c * x + b_c)`.

    A group gate controls its map's ``in_channels * kh * kw`` weights and its bias (the bias is
    gated but carries no prior). Keyword arguments: see :class:`L0Layer`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**_layer_kwargs(kwargs))
        init_conv(
            self, in_channels, out_channels, kernel_size, stride, padding, bias, self.weight_init
        )
        self._init_gates()

    def _gated(self, x: torch.Tensor, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        check_conv_input(self, x)
        if self.gate_kind == "weight":
            return F.conv2d(x, self.gated_weight(z, w), self.bias, self.stride, self.padding)
        out = F.conv2d(x, w, self.bias, self.stride, self.padding)  # (B, C, H', W')
        return out * z[..., None, None]  # (C,) or (B, C) gates on the output maps


def init_conv(
    module: nn.Module,
    in_channels: int,
    out_channels: int,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int],
    padding: int | tuple[int, int],
    bias: bool,
    scheme: str = "uniform",
) -> None:
    """Give a convolution module its geometry and a weight ``(out, in, kh, kw)`` and bias
    initialised by :func:`init_weights` (fan-in ``in * kh * kw``)."""
    check_count("in_channels", in_channels)
    check_count("out_channels", out_channels)
    module.in_channels, module.out_channels = in_channels, out_channels
    module.kernel_size = nn.modules.utils._pair(kernel_size)
    module.stride, module.padding = nn.modules.utils._pair(stride), nn.modules.utils._pair(padding)
    fan_in = in_channels * module.kernel_size[0] * module.kernel_size[1]
    init_weights(module, (out_channels, in_channels, *module.kernel_size), fan_in, bias, scheme)


def init_weights(
    module: nn.Module,
    shape: tuple[int, ...],
    fan_in: int,
    bias: bool,
    scheme: str = "uniform",
    out_dim: int = 0,
) -> None:
    """Set ``module.weight`` of ``shape`` and ``module.bias`` (of size ``shape[out_dim]``) by
    ``scheme``, one of :data:`WEIGHT_INITS`."""
    if scheme == "he":
        weight = torch.randn(shape) * math.sqrt(2.0 / fan_in)
        b = 0.01 * torch.randn(shape[out_dim])
    else:
        bound = 1.0 / math.sqrt(fan_in)
        weight = torch.empty(shape).uniform_(-bound, bound)
        b = torch.zeros(shape[out_dim])
    module.weight = nn.Parameter(weight)
    module.bias = nn.Parameter(b) if bias else None


def check_conv_input(module: nn.Module, x: torch.Tensor) -> None:
    """A clear error unless ``x`` is ``(B, in_channels, H, W)``."""
    if x.dim() != 4 or x.shape[1] != module.in_channels:
        raise ValueError(
            f"expected input of shape (B, {module.in_channels}, H, W), got {tuple(x.shape)}"
        )


def l0_layers(module: nn.Module) -> list[L0Layer]:
    """The gated layers of ``module`` in definition order."""
    return [m for m in module.modules() if isinstance(m, L0Layer)]


def check_precision(value: float, name: str) -> float:
    """``value`` as a float when it is a finite precision >= 0; a clear error otherwise."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return number


class L0Network(BayesianClassifier):
    r"""Base class of a gated classifier (a :class:`~l0bayes.nn.base.BayesianClassifier` whose
    latent layers are the :class:`L0Layer` s among its submodules): ``model``, ``guide``, the
    closed-form :meth:`differentiable_loss`, draws for model averaging and a deterministic
    ``forward`` with the paper's test-time gates (Eq. 13).

    Subclasses define :meth:`_run`, the network's map given one :class:`LayerDraw` per gated
    layer (or ``None`` for the deterministic test-time gates).

    ``model(x, y, num_data)`` samples every gated layer's sites (outside the data plate: they
    are global), then the categorical likelihood of the minibatch ``x`` (``B`` rows) in
    ``pyro.plate("data", num_data, subsample=...)``, which scales it by ``num_data / B``.

    The parameters outside the gated layers (a residual network's ungated convolutions, batch
    norms and head) are point estimates under the Gaussian prior
    :math:`\mathcal N(0, 1/\lambda_2)` with :math:`\lambda_2` = ``ungated_precision``, a
    ``pyro.factor`` of :meth:`ungated_log_prior` in the model: the weight decay the official
    WRN code gives them. 0 (the default) leaves them flat.

    :meth:`differentiable_loss` draws the same random numbers in the same order as the guide
    (one :class:`~l0bayes.distributions.HardConcrete` per layer, shared with the KL), so under
    the same RNG state it equals ``TraceMeanField_ELBO().differentiable_loss(net.model,
    net.guide, x, y, num_data)``, value and gradients (tested). It is the training engine's
    default objective: Pyro's per-step tracing (a trace of the guide, a replayed trace of the
    model, a message stack per sample site and plate) costs more than the network's arithmetic
    at the paper's batch size of 100.
    """

    layer_type = L0Layer

    def gated_layers(self) -> list[L0Layer]:
        """The gated layers in definition order (:meth:`latent_layers`)."""
        return self.latent_layers()

    def _loss_posteriors(self) -> dict[L0Layer, HardConcrete]:
        return {layer: layer.gate_posterior() for layer in self.gated_layers()}

    def _loss_draws(
        self, batch_size: int, posteriors: dict[L0Layer, HardConcrete]
    ) -> dict[L0Layer, LayerDraw]:
        return {layer: layer._draw(batch_size, q) for layer, q in posteriors.items()}


class L0Sequential(SequentialClassifier, L0Network):
    """A chain of layers (gated or not) as a Pyro classifier (see :class:`L0Network`).

    Ungated modules with parameters become :class:`PyroModule` s (point estimates).

    :param layers: the chain, applied in order.
    :param ungated_precision: :math:`\\lambda_2` of the ungated parameters' Gaussian prior.

    Example::

        net = L0Sequential(L0Linear(784, 300, lam=0.1), nn.ReLU(), L0Linear(300, 10, lam=0.1))
        svi = SVI(net.model, net.guide, pyro.optim.Adam({"lr": 1e-3}), TraceMeanField_ELBO())
        svi.step(x_batch, y_batch, num_data=60000)
        logits = net(x_test)       # deterministic (Eq. 13) gates
    """

    def __init__(self, *layers: nn.Module, ungated_precision: float = 0.0) -> None:
        precision = check_precision(ungated_precision, "ungated_precision")
        super().__init__(*layers)
        self.ungated_precision = precision


__all__ = [
    "DEFAULT_LAM",
    "GATE_KINDS",
    "L0Conv2d",
    "L0Layer",
    "L0Linear",
    "L0Network",
    "L0Sequential",
    "LayerDraw",
    "WEIGHT_GUIDES",
    "WEIGHT_INITS",
    "check_conv_input",
    "check_precision",
    "drop_rate_to_log_alpha",
    "init_conv",
    "init_weights",
    "l0_layers",
]
