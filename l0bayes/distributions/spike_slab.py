r"""The spike-and-slab gate prior, the Gaussian weight slab, and their KL divergences.

Where λ enters the ELBO
-----------------------
The gate site's analytic KL, registered below for ``(HardConcrete, SpikeSlabGate)``, is

.. math::

    \mathrm{KL}_{\ell_0}(q \,\|\, p) = \lambda\, \pi_q, \qquad
    \mathrm{KL}_{\rm bayes}(q \,\|\, p) = \pi_q \log\frac{\pi_q}{\pi}
        + (1 - \pi_q) \log\frac{1-\pi_q}{1-\pi}
        = \lambda\, \pi_q - H(\pi_q) - \log(1 - \pi),

with :math:`\pi_q = P_q(z \ne 0)` and :math:`\lambda = \log\frac{1-\pi}{\pi}`. Summed over gates,
:math:`\lambda \sum_j \pi_{q,j} = \lambda\, E_q\|z\|_0`: the paper's expected-:math:`L_0`
penalty. The weights' slab enters through the *guide's* weight site, scaled by
:math:`P_q(z \ne 0)` (see :func:`l0bayes.linear_model.model.regression_guide`), so that the weight
KL is :math:`\sum_j \pi_{q,j}\, \mathrm{KL}(q(\theta_j) \,\|\, \text{slab})`, which for a
point-mass guide and the un-normalised slab is the paper's
:math:`\sum_j \pi_{q,j} \tfrac{\lambda_2}{2}\tilde\theta_j^2`.
"""

from __future__ import annotations

import math
from numbers import Real

import torch
from pyro.distributions import Delta, Normal, TorchDistribution, constraints
from pyro.distributions.util import broadcast_shape
from torch.distributions import Distribution, register_kl
from torch.distributions.utils import broadcast_all

from l0bayes.distributions.hard_concrete import HardConcrete

KL_MODES = ("l0", "bayes")


def code_cost(prior_inclusion: float) -> float:
    r"""The per-gate code cost :math:`\lambda = \log\frac{1-\pi}{\pi}` of a prior inclusion
    probability :math:`\pi \in (0, 1)`."""
    if not 0.0 < prior_inclusion < 1.0:
        raise ValueError(f"prior_inclusion must lie strictly in (0, 1), got {prior_inclusion}")
    return math.log1p(-prior_inclusion) - math.log(prior_inclusion)


def check_kl_mode(kl_mode: str) -> str:
    if kl_mode not in KL_MODES:
        raise ValueError(f"kl_mode must be one of {KL_MODES}, got {kl_mode!r}")
    return kl_mode


def _checking(argument: object, validate_args: bool | None) -> bool:
    """Whether to check a constructor argument's values: always for Python numbers; for tensors
    when validation is on (torch's and Pyro's default), so that training loops run with
    validation off (``pyro.validation_enabled(False)``) pay no device synchronisation."""
    if not torch.is_tensor(argument):
        return True
    return Distribution._validate_args if validate_args is None else bool(validate_args)


class SpikeSlabGate(TorchDistribution):
    r"""Spike-and-slab prior on a gate :math:`z \in [0, 1]`:

    .. math::

        p(z) = (1 - \pi)\,\delta_0(z) + \pi\, p_{\rm slab}(z), \qquad
        \pi = \sigma(-\lambda), \quad \lambda = \log\frac{1 - \pi}{\pi}.

    Give either ``prior_inclusion`` :math:`\pi` or ``lam`` :math:`\lambda`, the code cost (in
    nats) that including a gate pays. :math:`\lambda \ge 0` means :math:`\pi \le 1/2`.

    **The slab.** The gate's non-zero part carries no information about the data beyond
    "included", so the slab is taken to *match the guide's* non-zero part,
    :math:`p_{\rm slab}(z) = q(z \mid z \ne 0)`. Then the log ratio :math:`\log q(z)/p(z)`
    depends on :math:`z` only through :math:`1[z \ne 0]`, and the KL between a
    :class:`~l0bayes.HardConcrete` guide :math:`q` and this prior is exactly the KL between the
    inclusion indicators, :math:`\mathrm{Bernoulli}(\pi_q)` and :math:`\mathrm{Bernoulli}(\pi)`
    (``kl_mode="bayes"``):

    .. math::

        \mathrm{KL}(q\,\|\,p) &= \int_{\{0\}} q \log\frac{q}{p}
            + \int_{(0,1]} q(z)\log\frac{\pi_q\, q(z \mid z \ne 0)}{\pi\, q(z \mid z\ne 0)}\,dz
          = (1-\pi_q)\log\frac{1-\pi_q}{1-\pi} + \pi_q \log\frac{\pi_q}{\pi} \\
          &= \lambda\,\pi_q - H(\pi_q) - \log(1 - \pi).

    ``kl_mode="l0"`` keeps only :math:`\lambda\,\pi_q`, the expected :math:`L_0` norm times
    :math:`\lambda` — the paper's regularizer — dropping the gate entropy
    :math:`H(\pi_q)` (which pulls inclusion probabilities towards 1/2) and the constant.

    For sampling and :meth:`log_prob` the slab is the exact spike and slab, a point mass at 1
    (``z ∈ {0, 1}``), unless a :class:`HardConcrete` ``slab`` is given, whose conditional
    non-zero part is then used: :math:`\log p(z) = \log\pi + \log q_{\rm slab}(z) -
    \log P_{\rm slab}(z \ne 0)` for :math:`z \ne 0`. Densities are w.r.t. the same base measure
    as :class:`HardConcrete`'s. Use the analytic KL (``pyro.infer.TraceMeanField_ELBO``).

    :param prior_inclusion: :math:`\pi \in (0, 1)`, tensor or float.
    :param lam: :math:`\lambda` (real), alternative to ``prior_inclusion``.
    :param str kl_mode: ``"bayes"`` (full KL) or ``"l0"`` (the paper's penalty).
    :param HardConcrete slab: optional non-zero part for :meth:`log_prob` and :meth:`sample`.
    """

    arg_constraints = {"lam": constraints.real}
    support = constraints.unit_interval
    has_rsample = False

    def __init__(
        self,
        prior_inclusion: torch.Tensor | float | None = None,
        lam: torch.Tensor | float | None = None,
        kl_mode: str = "bayes",
        slab: HardConcrete | None = None,
        validate_args: bool | None = None,
    ) -> None:
        if (prior_inclusion is None) == (lam is None):
            raise ValueError("give exactly one of prior_inclusion (pi) or lam (lambda)")
        if prior_inclusion is not None:
            (pi,) = broadcast_all(prior_inclusion)
            if _checking(prior_inclusion, validate_args) and not bool(((pi > 0) & (pi < 1)).all()):
                raise ValueError(
                    "prior_inclusion must lie strictly in (0, 1) (pi = 0 or 1 means an "
                    f"infinite code cost); got {prior_inclusion}"
                )
            lam = torch.log1p(-pi) - torch.log(pi)
        # a floating tensor is kept as it is (gated builds this prior at every step)
        floating = torch.is_tensor(lam) and lam.is_floating_point()
        self.lam = lam if floating else broadcast_all(lam)[0]
        if _checking(lam, validate_args) and not bool(torch.isfinite(self.lam).all()):
            raise ValueError(f"lam must be finite, got {lam}")
        self.kl_mode = check_kl_mode(kl_mode)
        batch_shape = self.lam.shape
        if slab is not None:
            batch_shape = broadcast_shape(batch_shape, slab.batch_shape)
            self.lam = self.lam.expand(batch_shape)
            slab = slab.expand(batch_shape)
        self.slab = slab
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None) -> SpikeSlabGate:
        new = self._get_checked_instance(SpikeSlabGate, _instance)
        batch_shape = torch.Size(batch_shape)
        new.lam = self.lam.expand(batch_shape)
        new.kl_mode = self.kl_mode
        new.slab = None if self.slab is None else self.slab.expand(batch_shape)
        super(SpikeSlabGate, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def prior_inclusion(self) -> torch.Tensor:
        r""":math:`\pi = \sigma(-\lambda)`."""
        return torch.sigmoid(-self.lam)

    @property
    def mean(self) -> torch.Tensor:
        if self.slab is None:
            return self.prior_inclusion
        return self.prior_inclusion * self.slab.mean / self.slab.prob_nonzero

    @property
    def variance(self) -> torch.Tensor:
        if self.slab is None:
            return self.prior_inclusion * (1 - self.prior_inclusion)
        second = self.prior_inclusion * self.slab.second_moment / self.slab.prob_nonzero
        return second - self.mean.pow(2)

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)
        with torch.no_grad():
            included = torch.rand(shape, dtype=self.lam.dtype, device=self.lam.device)
            included = included < self.prior_inclusion.expand(shape)
            if self.slab is None:
                return included.to(self.lam.dtype)
            nonzero = self._sample_slab_nonzero(shape)
            return torch.where(included, nonzero, torch.zeros_like(nonzero))

    def _sample_slab_nonzero(self, shape: torch.Size) -> torch.Tensor:
        """Draw from q(z | z != 0) by inverting the CDF on (P(z=0), 1]."""
        slab = self.slab.expand(shape)
        # u = P(z=0) + P(z!=0) * U ~ Uniform(P(z=0), 1). Forming u itself rounds it to 1 (and
        # every draw to z = 0) once P(z != 0) is below the dtype's eps, so take logit(u) from
        # log(1 - u) = log P(z != 0) + log(1 - U) instead.
        uniform = torch.rand(shape, dtype=self.lam.dtype, device=self.lam.device)
        log_1mu = slab.log_prob_nonzero + torch.log1p(-uniform)
        logit_u = torch.log(-torch.expm1(log_1mu)) - log_1mu
        # Invert s-CDF: u = sigmoid(beta*logit(t) - log_alpha)  =>  logit(t) = (logit(u)+la)/beta
        logit_t = (logit_u + slab.log_alpha) / slab.temperature
        low, high = slab.stretch
        return (torch.sigmoid(logit_t) * (high - low) + low).clamp(0.0, 1.0)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        lam, value = broadcast_all(self.lam, value)
        log_pi = torch.nn.functional.logsigmoid(-lam)
        log_not_pi = torch.nn.functional.logsigmoid(lam)
        if self.slab is None:
            nonzero = torch.where(value >= 1.0, log_pi, torch.full_like(log_pi, -math.inf))
        else:
            slab = self.slab
            nonzero = log_pi + slab.log_prob(value.clamp(0.0, 1.0)) - slab.log_prob_nonzero
        out = torch.where(value == 0.0, log_not_pi, nonzero)
        outside = (value < 0.0) | (value > 1.0)  # -inf off the support, validated or not
        return torch.where(outside, torch.full_like(out, -math.inf), out)


class GaussianSlab(TorchDistribution):
    r"""The slab on a gated weight, :math:`\theta \sim \mathcal N(0, 1/\lambda_2)`.

    With ``normalized=True`` this is the proper Gaussian, used for a Bayesian posterior over
    weights. With ``normalized=False`` its log density is the paper's weight decay written
    without the normalizing constant, :math:`\log p(\theta) = -\tfrac{\lambda_2}{2}\theta^2`
    (the constant :math:`\tfrac12\log(2\pi/\lambda_2)` per included weight is absorbed into
    :math:`\lambda`, as in the paper); ``precision=0`` is then the flat prior of maximum
    likelihood, which makes the L0 objective an exact information criterion.

    KL divergences from a point mass (MAP) or a Gaussian guide are analytic:
    :math:`\mathrm{KL}(\delta_{\tilde\theta} \| p) = -\log p(\tilde\theta)` and
    :math:`\mathrm{KL}(\mathcal N(\mu, s^2) \| p) = \tfrac{\lambda_2}{2}(\mu^2 + s^2)
    - \tfrac12 \log(2\pi e s^2) - c` with :math:`c = \tfrac12\log(\lambda_2/2\pi)` when
    normalized, else 0.
    """

    arg_constraints = {"precision": constraints.nonnegative}
    support = constraints.real
    has_rsample = True

    def __init__(
        self,
        precision: torch.Tensor | float,
        normalized: bool = True,
        validate_args: bool | None = None,
    ) -> None:
        (self.precision,) = broadcast_all(precision)
        if _checking(precision, validate_args):
            if bool((self.precision < 0).any()) or not bool(torch.isfinite(self.precision).all()):
                raise ValueError(f"precision must be finite and >= 0, got {precision}")
            if normalized and bool((self.precision == 0).any()):
                raise ValueError("a normalized Gaussian slab needs precision > 0 (variance finite)")
        self.normalized = bool(normalized)
        # kept unexpanded: per-weight arithmetic on an expanded copy would materialise it
        self._base_precision = self.precision
        self._log_norm = (
            0.5 * (torch.log(self.precision) - math.log(2 * math.pi)) if normalized else None
        )
        super().__init__(self.precision.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None) -> GaussianSlab:
        new = self._get_checked_instance(GaussianSlab, _instance)
        batch_shape = torch.Size(batch_shape)
        new.precision = self.precision.expand(batch_shape)
        new.normalized = self.normalized
        new._base_precision = self._base_precision
        new._log_norm = None if self._log_norm is None else self._log_norm.expand(batch_shape)
        super(GaussianSlab, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def _log_normalizer(self) -> torch.Tensor | float:
        r""":math:`\tfrac12\log(\lambda_2/2\pi)` when normalized, else 0."""
        return 0.0 if self._log_norm is None else self._log_norm

    @property
    def mean(self) -> torch.Tensor:
        return torch.zeros_like(self.precision)

    @property
    def variance(self) -> torch.Tensor:
        return self.precision.reciprocal()

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        if bool((self.precision == 0).any()):
            raise ValueError("cannot sample from the flat (precision = 0) slab: it is improper")
        shape = self._extended_shape(sample_shape)
        eps = torch.randn(shape, dtype=self.precision.dtype, device=self.precision.device)
        return eps * self.precision.rsqrt()

    def _half_precision_square(self, value: torch.Tensor) -> torch.Tensor:
        r""":math:`\tfrac{\lambda_2}{2}\theta^2`, broadcast to the batch shape (the weight
        decay: two passes over the weights, whatever the batch shape)."""
        out = value.pow(2) * (0.5 * self._base_precision)
        if out.shape == self.batch_shape:
            return out
        return out.expand(broadcast_shape(out.shape, self.batch_shape))

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        out = -self._half_precision_square(value)
        return out if self._log_norm is None else out + self._log_norm


# --------------------------------------------------------------------------- KL divergences
@register_kl(HardConcrete, SpikeSlabGate)
def _kl_hard_concrete_spike_slab(q: HardConcrete, p: SpikeSlabGate) -> torch.Tensor:
    return gate_kl(q, p.lam, p.kl_mode)


def gate_kl(q: HardConcrete, lam: torch.Tensor | float, kl_mode: str = "bayes") -> torch.Tensor:
    r"""The KL of a hard concrete gate from the spike-and-slab gate prior with code cost
    :math:`\lambda` (see :class:`SpikeSlabGate`): :math:`\lambda\pi_q` in mode ``"l0"``,
    :math:`\lambda\pi_q - H(\pi_q) - \log(1-\pi)` in mode ``"bayes"``."""
    check_kl_mode(kl_mode)
    if isinstance(lam, Real) and not math.isfinite(lam):
        raise ValueError(f"lam must be finite, got {lam}")
    pi_q = q.prob_nonzero
    if kl_mode == "l0" and isinstance(lam, Real):
        return lam * pi_q
    lam = torch.as_tensor(lam, dtype=q.log_alpha.dtype, device=q.log_alpha.device)
    if kl_mode == "l0":
        return lam * pi_q
    # pi_q log(pi_q/pi) + (1-pi_q) log((1-pi_q)/(1-pi)) with a = logit(pi_q): log pi_q - log(1-pi_q)
    # = a and log pi - log(1-pi) = -lam, so the KL is pi_q (a + lam) + log(1-pi_q) - log(1-pi)
    logit = q.logit_nonzero
    log_not_pi = torch.nn.functional.logsigmoid(lam)
    return pi_q * (logit + lam) + torch.nn.functional.logsigmoid(-logit) - log_not_pi


def expected_gate_kl(
    q: HardConcrete, a: torch.Tensor | float, b: torch.Tensor | float
) -> torch.Tensor:
    r"""The ``"bayes"`` gate KL averaged over a Beta-distributed prior inclusion probability,
    :math:`E_{\pi \sim \mathrm{Beta}(a, b)}\,\mathrm{KL}(q \,\|\, \text{SpikeSlabGate}(\pi))`.

    The KL is linear in :math:`\log\pi` and :math:`\log(1-\pi)`:
    :math:`\mathrm{KL} = \pi_q\log\pi_q + (1-\pi_q)\log(1-\pi_q) - \pi_q\log\pi
    - (1-\pi_q)\log(1-\pi)`, and under :math:`\mathrm{Beta}(a, b)`,
    :math:`E\log\pi = \psi(a) - \psi(a+b)`, :math:`E\log(1-\pi) = \psi(b) - \psi(a+b)`
    (:math:`\psi` the digamma function). Hence, in closed form,

    .. math::

        E_\pi\,\mathrm{KL} = -H(\pi_q) - \pi_q\,[\psi(a) - \psi(a+b)]
            - (1-\pi_q)\,[\psi(b) - \psi(a+b)].

    With a hyperprior :math:`\pi \sim \mathrm{Beta}(a_0, b_0)` and a Beta guide
    :math:`q(\pi) = \mathrm{Beta}(a, b)`, the ELBO's prior terms are this expectation summed
    over gates plus :math:`\mathrm{KL}(\mathrm{Beta}(a, b)\,\|\,\mathrm{Beta}(a_0, b_0))`.
    """
    for name, value in (("a", a), ("b", b)):
        if isinstance(value, Real) and not 0 < value < math.inf:
            raise ValueError(f"the Beta hyperprior's {name} must be finite and > 0, got {value}")
    a = torch.as_tensor(a, dtype=q.log_alpha.dtype, device=q.log_alpha.device)
    b = torch.as_tensor(b, dtype=q.log_alpha.dtype, device=q.log_alpha.device)
    pi_q = q.prob_nonzero
    e_log_pi = torch.digamma(a) - torch.digamma(a + b)
    e_log_not_pi = torch.digamma(b) - torch.digamma(a + b)
    neg_entropy = pi_q * q.log_prob_nonzero + (1 - pi_q) * q.log_prob_zero
    return neg_entropy - pi_q * e_log_pi - (1 - pi_q) * e_log_not_pi


@register_kl(torch.distributions.Normal, GaussianSlab)  # torch's Normal and Pyro's subclass
def _kl_normal_gaussian_slab(q: Normal, p: GaussianSlab) -> torch.Tensor:
    cross_entropy = p._half_precision_square(q.loc) + 0.5 * p.precision * q.scale.pow(2)
    cross_entropy = cross_entropy - p._log_normalizer
    return cross_entropy - q.entropy()


@register_kl(Delta, GaussianSlab)
def _kl_delta_gaussian_slab(q: Delta, p: GaussianSlab) -> torch.Tensor:
    # The point mass's (infinite) self-information is dropped, as for any MAP estimate.
    if q.event_dim:
        raise NotImplementedError("GaussianSlab is univariate; use a univariate Delta")
    return point_mass_kl(q.v, p)


def point_mass_kl(value: torch.Tensor, p: GaussianSlab, event_dim: int = 0) -> torch.Tensor:
    r""":math:`\mathrm{KL}(\delta_{\tilde\theta} \,\|\, p) = -\log p(\tilde\theta)
    = \tfrac{\lambda_2}{2}\tilde\theta^2 - c` (the point mass's infinite self-information
    dropped, as for any MAP estimate): the registered ``KL(Delta, GaussianSlab)``, callable
    without building a ``Delta`` around a weight tensor.

    :param event_dim: 1 to sum over the last dimension (a group of weights). With one
        precision for all weights this sums :math:`\tilde\theta^2` first and scales the sums,
        one pass over the weights instead of two.
    """
    if event_dim == 1 and p._base_precision.numel() == 1:
        kl = value.pow(2).sum(-1) * (0.5 * p._base_precision.reshape(()))
        if p._log_norm is not None:
            kl = kl - value.shape[-1] * p._log_norm.reshape(-1)[0]
        if kl.shape == p.batch_shape[:-1]:
            return kl
        return kl.expand(broadcast_shape(kl.shape, p.batch_shape[:-1]))
    kl = p._half_precision_square(value)
    kl = kl if p._log_norm is None else kl - p._log_norm
    return kl.sum(-1) if event_dim == 1 else kl


__all__ = [
    "KL_MODES",
    "GaussianSlab",
    "SpikeSlabGate",
    "code_cost",
    "expected_gate_kl",
    "gate_kl",
    "point_mass_kl",
]
