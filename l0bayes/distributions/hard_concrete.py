"""The hard concrete distribution: a stretched, clamped binary concrete gate."""

from __future__ import annotations

import math
from functools import lru_cache
from numbers import Real

import numpy as np
import torch
from pyro.distributions import TorchDistribution, constraints
from torch.distributions.utils import broadcast_all, lazy_property

from l0bayes.distributions.counter_noise import uniform_noise

#: Temperature β of the paper (Louizos et al. 2018, Sec. 4).
DEFAULT_TEMPERATURE = 2.0 / 3.0
#: Stretch interval (γ, ζ) of the paper.
DEFAULT_STRETCH = (-0.1, 1.1)
#: Gauss-Legendre nodes for the moments (see :meth:`HardConcrete.mean`).
_QUADRATURE_NODES = 128


def check_gate_hyperparameters(temperature: float, stretch: tuple[float, float]) -> None:
    """Raise ``ValueError`` unless ``temperature > 0`` and ``stretch = (γ, ζ)`` has γ < 0 < 1 < ζ.

    The stretch must strictly contain [0, 1]; otherwise the clamp creates no atom at 0 or 1 and
    the closed forms below (which take ``log(-γ/ζ)`` and ``log((1-γ)/(ζ-1))``) are undefined.
    """
    if isinstance(temperature, bool) or not isinstance(temperature, Real):
        raise ValueError(
            f"temperature must be a number (a float, not a tensor or a string), got "
            f"{temperature!r}; the paper uses 2/3 (the default)"
        )
    if not math.isfinite(temperature):
        raise ValueError(f"temperature must be a finite positive number, got {temperature!r}")
    if temperature <= 0:
        raise ValueError(
            f"temperature must be > 0, got {temperature}; the paper uses 2/3 (the default)"
        )
    try:
        low, high = (float(v) for v in stretch)
    except (TypeError, ValueError):
        raise ValueError(f"stretch must be a pair (gamma, zeta), got {stretch!r}") from None
    if not (low < 0.0 and high > 1.0) or not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(
            f"stretch=(gamma, zeta) must strictly contain [0, 1] (gamma < 0 < 1 < zeta), got "
            f"{stretch!r}; the paper uses (-0.1, 1.1) (the default)"
        )


@lru_cache(maxsize=8)
def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of n-point Gauss-Legendre quadrature on [0, 1]."""
    x, w = np.polynomial.legendre.leggauss(n)
    return (x + 1.0) / 2.0, w / 2.0


class HardConcrete(TorchDistribution):
    r"""Hard concrete gate of Louizos, Welling & Kingma (2018).

    A binary concrete variable with location :math:`\alpha` and temperature :math:`\beta` is
    stretched to :math:`(\gamma, \zeta)` and clamped to :math:`[0, 1]`:

    .. math::

        u \sim \mathcal U(0, 1), \quad
        s = \sigma\!\left(\frac{\log u - \log(1-u) + \log\alpha}{\beta}\right), \quad
        z = \min\!\big(1, \max(0, s(\zeta-\gamma) + \gamma)\big).

    The CDF of :math:`s` is :math:`Q(s \le t) = \sigma(\beta\,\mathrm{logit}\,t - \log\alpha)`,
    which gives every quantity below in closed form:

    .. math::

        P(z = 0) &= \sigma\big(\beta \log(-\gamma/\zeta) - \log\alpha\big), \\
        P(z \ne 0) &= \sigma\big(\log\alpha - \beta \log(-\gamma/\zeta)\big), \\
        P(z = 1) &= \sigma\big(\log\alpha - \beta \log\tfrac{1-\gamma}{\zeta-1}\big).

    :meth:`log_prob` is the log density of this *mixed* distribution with respect to the base
    measure :math:`\delta_0 + \text{Lebesgue}(0, 1) + \delta_1`: it returns
    :math:`\log P(z=0)` at 0, :math:`\log P(z=1)` at 1, and inside :math:`(0, 1)` the log of
    the stretched binary-concrete density

    .. math::

        f(z) = \frac{1}{\zeta - \gamma}\,
               \frac{\beta\, \sigma(x)\, \sigma(-x)}{t (1 - t)}, \qquad
        t = \frac{z - \gamma}{\zeta - \gamma}, \quad x = \beta\,\mathrm{logit}\,t - \log\alpha.

    Because of the atoms, densities of this distribution are not comparable with Lebesgue
    densities of continuous distributions.

    :param log_alpha: location :math:`\log\alpha` (any real tensor; the batch shape).
    :param float temperature: :math:`\beta > 0` (paper: 2/3).
    :param tuple stretch: :math:`(\gamma, \zeta)` with :math:`\gamma < 0 < 1 < \zeta`
        (paper: (-0.1, 1.1)).

    **References**

    [1] C. Louizos, M. Welling, D. P. Kingma. Learning Sparse Neural Networks through
        :math:`L_0` Regularization. ICLR 2018, arXiv:1712.01312.
    """

    arg_constraints = {"log_alpha": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(
        self,
        log_alpha: torch.Tensor | float,
        temperature: float = DEFAULT_TEMPERATURE,
        stretch: tuple[float, float] = DEFAULT_STRETCH,
        validate_args: bool | None = None,
    ) -> None:
        check_gate_hyperparameters(temperature, stretch)
        try:  # a tensor is kept as it is (this runs on every training step)
            self.log_alpha = (
                log_alpha if torch.is_tensor(log_alpha) else broadcast_all(log_alpha)[0]
            )
        except ValueError as err:
            raise ValueError(f"log_alpha must be a number or a tensor, got {log_alpha!r}") from err
        if not self.log_alpha.is_floating_point():
            raise ValueError(
                f"log_alpha must be a floating-point tensor, got dtype {self.log_alpha.dtype}; "
                "convert it with log_alpha.float() or .double()"
            )
        self.temperature = float(temperature)
        self.stretch = (float(stretch[0]), float(stretch[1]))
        super().__init__(self.log_alpha.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None) -> HardConcrete:
        new = self._get_checked_instance(HardConcrete, _instance)
        batch_shape = torch.Size(batch_shape)
        new.log_alpha = self.log_alpha.expand(batch_shape)
        new.temperature = self.temperature
        new.stretch = self.stretch
        super(HardConcrete, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    # ----------------------------------------------------------------- closed forms
    @property
    def _log_ratio_zero(self) -> float:
        """β·log(−γ/ζ): the logit of s at which the stretched value crosses 0."""
        low, high = self.stretch
        return self.temperature * math.log(-low / high)

    @property
    def _log_ratio_one(self) -> float:
        """β·log((1−γ)/(ζ−1)): the logit of s at which the stretched value crosses 1."""
        low, high = self.stretch
        return self.temperature * math.log((1.0 - low) / (high - 1.0))

    @property
    def prob_zero(self) -> torch.Tensor:
        r""":math:`P(z = 0) = \sigma(\beta\log(-\gamma/\zeta) - \log\alpha)`."""
        return torch.sigmoid(self._log_ratio_zero - self.log_alpha)

    @lazy_property
    def logit_nonzero(self) -> torch.Tensor:
        r""":math:`\mathrm{logit}\,P(z \ne 0) = \log\alpha - \beta\log(-\gamma/\zeta)`."""
        return self.log_alpha - self._log_ratio_zero

    @lazy_property
    def prob_nonzero(self) -> torch.Tensor:
        r""":math:`P(z \ne 0) = \sigma(\log\alpha - \beta\log(-\gamma/\zeta))`, the gate's
        inclusion probability; summed over gates it is the expected :math:`L_0` norm."""
        return torch.sigmoid(self.logit_nonzero)

    @property
    def log_prob_nonzero(self) -> torch.Tensor:
        r""":math:`\log P(z \ne 0)`, computed stably."""
        return torch.nn.functional.logsigmoid(self.log_alpha - self._log_ratio_zero)

    @property
    def log_prob_zero(self) -> torch.Tensor:
        r""":math:`\log P(z = 0)`, computed stably."""
        return torch.nn.functional.logsigmoid(self._log_ratio_zero - self.log_alpha)

    @property
    def prob_one(self) -> torch.Tensor:
        r""":math:`P(z = 1) = \sigma(\log\alpha - \beta\log\frac{1-\gamma}{\zeta-1})`."""
        return torch.sigmoid(self.log_alpha - self._log_ratio_one)

    def deterministic_gate(self) -> torch.Tensor:
        r"""The paper's test-time estimator (Eq. 13):
        :math:`\hat z = \min(1, \max(0, \sigma(\log\alpha)(\zeta-\gamma) + \gamma))`.
        A unit is pruned when :math:`\hat z = 0`, i.e. when
        :math:`\log\alpha < \mathrm{logit}(-\gamma/(\zeta-\gamma))`."""
        low, high = self.stretch
        return (torch.sigmoid(self.log_alpha) * (high - low) + low).clamp(0.0, 1.0)

    # --------------------------------------------------------------------- sampling
    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        """A reparameterised draw (:meth:`from_uniform`) of uniforms from torch's generator,
        or, inside :func:`~l0bayes.distributions.counter_noise.counter_noise`, from the
        training step's counter stream."""
        shape = self._extended_shape(sample_shape)
        u = uniform_noise(shape, self.log_alpha.dtype, self.log_alpha.device)
        return self.from_uniform(u)

    def from_uniform(self, u: torch.Tensor) -> torch.Tensor:
        r"""The gate for uniforms ``u`` in :math:`(0, 1)` (broadcast with ``log_alpha``):
        :math:`\min(1, \max(0, \sigma((\log u - \log(1-u) + \log\alpha)/\beta)
        (\zeta-\gamma) + \gamma))`."""
        s = torch.sigmoid((torch.logit(u) + self.log_alpha) / self.temperature)
        low, high = self.stretch
        return (s * (high - low) + low).clamp(0.0, 1.0)

    # ----------------------------------------------------------------- densities
    def _interior_logs(self, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log t + log(1 − t) and x = β·logit(t) − log α, t = (z − γ)/(ζ − γ), for z in
        [0, 1]."""
        low, high = self.stretch
        t = (value - low) / (high - low)
        log_t, log_1mt = torch.log(t), torch.log1p(-t)
        return log_t + log_1mt, self.temperature * (log_t - log_1mt) - self.log_alpha

    def _interior_logit(self, value: torch.Tensor) -> torch.Tensor:
        """x = β·logit(t) − log α for z in [0, 1] (see :meth:`_interior_logs`)."""
        low, high = self.stretch
        t = (value - low) / (high - low)
        return self.temperature * (torch.log(t) - torch.log1p(-t)) - self.log_alpha

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        log_alpha, value = broadcast_all(self.log_alpha, value)
        low, high = self.stretch
        log_t_1mt, x = self._interior_logs(value.clamp(0.0, 1.0))
        logsig = torch.nn.functional.logsigmoid
        constant = math.log(self.temperature) - math.log(high - low)
        interior = logsig(x) + logsig(-x) - log_t_1mt + constant
        at_zero = logsig(self._log_ratio_zero - log_alpha)
        at_one = logsig(log_alpha - self._log_ratio_one)
        out = torch.where(value <= 0.0, at_zero, torch.where(value >= 1.0, at_one, interior))
        outside = (value < 0.0) | (value > 1.0)
        return out.masked_fill(outside, -math.inf)

    def cdf(self, value: torch.Tensor) -> torch.Tensor:
        r""":math:`P(z \le v)`: 0 below 0, :math:`\sigma(\beta\,\mathrm{logit}\,t - \log\alpha)`
        on [0, 1) (so :math:`P(z \le 0) = P(z = 0)`) and 1 from 1 on."""
        if self._validate_args:
            self._validate_sample(value.clamp(0.0, 1.0))
        log_alpha, value = broadcast_all(self.log_alpha, value)
        x = self._interior_logit(value.clamp(0.0, 1.0))
        inside = torch.sigmoid(x)
        out = torch.where(value >= 1.0, torch.ones_like(inside), inside)
        return torch.where(value < 0.0, torch.zeros_like(out), out)

    # ------------------------------------------------------------------- moments
    def _moment(self, power: int) -> torch.Tensor:
        r""":math:`E[z^k] = \int_0^1 k\, v^{k-1} P(z > v)\, dv` by Gauss-Legendre quadrature,
        with the closed-form survival
        :math:`P(z > v) = \sigma(\log\alpha - \beta\,\mathrm{logit}\,t)`."""
        nodes, weights = _gauss_legendre(_QUADRATURE_NODES)
        like = {"dtype": self.log_alpha.dtype, "device": self.log_alpha.device}
        v = torch.as_tensor(nodes, **like)
        w = torch.as_tensor(weights, **like)
        low, high = self.stretch
        t = (v - low) / (high - low)
        logit_t = torch.log(t) - torch.log1p(-t)
        survival = torch.sigmoid(self.log_alpha.unsqueeze(-1) - self.temperature * logit_t)
        return (survival * (power * v.pow(power - 1) * w)).sum(-1)

    @property
    def mean(self) -> torch.Tensor:
        r""":math:`E[z] = \int_0^1 P(z > v)\,dv`, computed by 128-point Gauss-Legendre
        quadrature of the closed-form survival function (not exact, but accurate to about
        1e-12 in float64 for temperatures in [0.1, 2]; the integrand is smooth because
        :math:`t = (v-\gamma)/(\zeta-\gamma)` stays away from 0 and 1)."""
        return self._moment(1)

    @property
    def variance(self) -> torch.Tensor:
        r""":math:`E[z^2] - E[z]^2`, with :math:`E[z^2] = \int_0^1 2v\,P(z > v)\,dv` by the same
        quadrature as :attr:`mean`."""
        return (self._moment(2) - self.mean.pow(2)).clamp(min=0.0)

    @property
    def second_moment(self) -> torch.Tensor:
        r""":math:`E[z^2]` (same quadrature as :attr:`mean`)."""
        return self._moment(2)


__all__ = [
    "DEFAULT_STRETCH",
    "DEFAULT_TEMPERATURE",
    "HardConcrete",
    "check_gate_hyperparameters",
]
