r"""The improper log-uniform prior of Sparse Variational Dropout and its approximate KL.

The log-uniform ("scale-uniform") prior on a weight,

.. math::

    p(\lvert w \rvert) \propto \frac{1}{\lvert w \rvert}, \qquad
    \log p(w) = -\log\lvert w \rvert + \text{const},

is improper, and so is any KL divergence from it: with the Gaussian guide
:math:`q(w) = \mathcal N(\theta, \alpha\theta^2)` the KL depends on :math:`\alpha` alone and is
defined up to an additive constant. Molchanov et al. [1] fit

.. math::

    -\mathrm{KL}(q \,\|\, p) \approx k_1\,\sigma(k_2 + k_3 \log\alpha)
        - \tfrac12 \log(1 + \alpha^{-1}) - k_1,
    \qquad k_1 = 0.63576,\ k_2 = 1.87320,\ k_3 = 1.48695,

with the constant chosen so that the KL tends to 0 as :math:`\alpha \to \infty` (a weight that
is pure noise costs nothing); as :math:`\alpha \to 0` it grows like
:math:`k_1 - \tfrac12\log\alpha`, the exact KL's asymptote. The fit is within 0.01 nats of the
exact value :math:`\tfrac12\log\alpha - E_{\xi \sim \mathcal N(0, 1)} \log\lvert 1 +
\sqrt\alpha\,\xi\rvert - \tfrac12(\gamma_E + \log 2)` (tested by quadrature).

The approximation is registered as ``kl_divergence(Normal, LogUniform)``, so
:class:`pyro.infer.TraceMeanField_ELBO` uses it for a Normal guide site against a
:class:`LogUniform` model site. :math:`\log\alpha = \log\sigma^2 - \log\theta^2` is clamped to
:data:`LOG_ALPHA_RANGE` inside the KL, as in the authors' code: beyond it the KL's gradient is
numerically zero anyway.

**References**

[1] D. Molchanov, A. Ashukha, D. Vetrov. Variational Dropout Sparsifies Deep Neural Networks.
    ICML 2017, arXiv:1701.05369.
"""

from __future__ import annotations

import torch
from pyro.distributions import TorchDistribution, constraints
from pyro.distributions.util import broadcast_shape
from torch.distributions import Normal, register_kl

#: The constants of the fitted KL approximation [1].
K1, K2, K3 = 0.63576, 1.87320, 1.48695
#: The range :math:`\log\alpha` is clamped to inside the KL.
LOG_ALPHA_RANGE = (-10.0, 10.0)
#: Added to :math:`\theta^2` before its logarithm (a weight exactly at 0 has :math:`\alpha`
#: large but finite).
EPS = 1e-16


def neg_kl_approx(log_alpha: torch.Tensor) -> torch.Tensor:
    r"""The approximation :math:`-\mathrm{KL} \approx k_1\sigma(k_2 + k_3\log\alpha)
    - \tfrac12\log(1 + e^{-\log\alpha}) - k_1`, elementwise, without clamping."""
    return (
        K1 * torch.sigmoid(K2 + K3 * log_alpha)
        - 0.5 * torch.nn.functional.softplus(-log_alpha)
        - K1
    )


def log_alpha_of(loc: torch.Tensor, log_scale_sq: torch.Tensor) -> torch.Tensor:
    r""":math:`\log\alpha = \log\sigma^2 - \log\theta^2`, clamped to :data:`LOG_ALPHA_RANGE`."""
    return (log_scale_sq - torch.log(loc.square() + EPS)).clamp(*LOG_ALPHA_RANGE)


def sparse_vd_kl(loc: torch.Tensor, log_scale_sq: torch.Tensor) -> torch.Tensor:
    r"""The KL of :math:`\mathcal N(\theta, \sigma^2)` from :class:`LogUniform` per weight,
    from :math:`\theta` and :math:`\log\sigma^2` (the layers' parameters)."""
    return -neg_kl_approx(log_alpha_of(loc, log_scale_sq))


class LogUniform(TorchDistribution):
    r"""The improper prior :math:`p(w) \propto 1/\lvert w\rvert` on the real line.

    It has no parameters and cannot be sampled; ``log_prob`` returns the unnormalised
    :math:`-\log\lvert w\rvert`. It is meant as a model site whose KL from a Normal guide is
    taken analytically (see the module docstring), e.g.::

        pyro.sample("w", LogUniform().expand(shape).to_event(2))  # in the model
        pyro.sample("w", dist.Normal(theta, sigma).to_event(2))    # in the guide
    """

    arg_constraints: dict = {}
    support = constraints.real
    has_rsample = False

    def __init__(self, batch_shape=torch.Size(), validate_args: bool | None = None) -> None:
        super().__init__(torch.Size(batch_shape), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None) -> LogUniform:
        new = self._get_checked_instance(LogUniform, _instance)
        super(LogUniform, new).__init__(torch.Size(batch_shape), validate_args=False)
        new._validate_args = self._validate_args
        return new

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        raise NotImplementedError(
            "the log-uniform prior is improper and cannot be sampled; use it as a model site "
            "replayed from a guide (SVI), whose KL is analytic"
        )

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._validate_args:
            self._validate_sample(value)
        out = -torch.log(value.abs())
        return out.expand(broadcast_shape(out.shape, self.batch_shape))


@register_kl(Normal, LogUniform)
def _kl_normal_log_uniform(q: Normal, p: LogUniform) -> torch.Tensor:
    kl = sparse_vd_kl(q.loc, 2 * torch.log(q.scale))
    return kl.expand(broadcast_shape(kl.shape, p.batch_shape))


__all__ = [
    "K1",
    "K2",
    "K3",
    "LOG_ALPHA_RANGE",
    "LogUniform",
    "log_alpha_of",
    "neg_kl_approx",
    "sparse_vd_kl",
]
