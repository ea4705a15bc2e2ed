r"""The analytic KLs of the gates under every trace-based ELBO.

``TraceMeanField_ELBO`` asks torch for :math:`\mathrm{KL}(q \,\|\, p)` site by site, and the gates'
KLs are registered. ``Trace_ELBO``, ``TraceGraph_ELBO``, their ``Jit*`` versions and vectorised
particles instead score each site's draw: :math:`\log p(v) - \log q(v)`. For a gate that
estimate is useless. The hard concrete draw :math:`z` is a mixture of atoms and a density,
and the prior's non-zero part is defined to *match the guide's*
(:class:`~l0bayes.distributions.SpikeSlabGate`), so without the guide the model has no finite
density at an interior :math:`z`. Even with one, the pathwise gradient of the draw's log ratio
misses the boundary term that moves mass between the atom at 0 and the rest. That boundary
term *is* the gradient of the inclusion probabilities' KL.

So the guide registers each draw it makes (:func:`register_draw`), and the model's gate and
value sites, scored at a value the guide drew, return

.. math::

    \log p(z) = \log q(z) - \mathrm{KL}\big(q(z) \,\|\, p(z)\big), \qquad
    \log p(\theta) = \log \tilde q(\theta)
        - P_q(z \ne 0)\, \mathrm{KL}\big(q(\theta \mid z \ne 0) \,\|\, \text{slab}\big),

with :math:`\log \tilde q` the guide's own (masked) log density. Each site's
:math:`\log p - \log q` is then exactly :math:`-\mathrm{KL}`, the same term, value and
gradient, that ``TraceMeanField_ELBO`` uses (a Rao–Blackwellised estimate). Where torch knows no
closed form for the value KL, the draw's :math:`\log \text{slab}(\theta) - \log q(\theta \mid
z \ne 0)` stands in for :math:`-\mathrm{KL}`, weighted by :math:`P_q(z \ne 0)` (unbiased,
with the right gradient). Scored at any other value (no guide, ``Predictive``, a conditioned
gate, the Laplace scorer), the sites are the plain spike and masked slab.
"""

from __future__ import annotations

import weakref
from contextvars import ContextVar

import torch
from pyro.distributions.torch_distribution import MaskedDistribution
from pyro.ops.provenance import detach_provenance
from torch.distributions import Distribution, kl_divergence

from l0bayes.distributions import HardConcrete, SpikeSlabGate, gate_kl

_DRAWS: ContextVar[dict | None] = ContextVar("l0bayes_guide_draws", default=None)


def begin_draws() -> None:
    """Forget the draws of the guide's previous run (called when the guide starts a run)."""
    _DRAWS.set({})


def register_draw(value: torch.Tensor, fn: Distribution) -> None:
    """Record that the guide drew ``value`` from ``fn`` (elementwise, batched like ``value``).

    :param value: the tensor the guide's sample site returned (the model is replayed on it).
    :param fn: the guide's distribution at that site, without ``Independent`` wrappers.
    """
    draws = _DRAWS.get()
    if draws is None:
        draws = {}
        _DRAWS.set(draws)
    draws[id(value)] = (weakref.ref(value), fn)


def guide_of(value: torch.Tensor) -> Distribution | None:
    """The guide distribution that drew exactly this tensor in the guide's latest run, or
    ``None`` (a value the guide did not draw, e.g. a conditioned one). ``TraceGraph_ELBO``'s
    provenance wrapper is seen through."""
    value = detach_provenance(value)
    entry = (_DRAWS.get() or {}).get(id(value))
    if entry is None or entry[0]() is not value:
        return None
    return entry[1]


class PairedGate(SpikeSlabGate):
    r"""The gate prior of :func:`~l0bayes.gates.gated`: the spike and slab, whose log density at
    a hard concrete draw of the guide is :math:`\log q(z) - \mathrm{KL}(q \,\|\, p)` (module
    docstring). Same parameters as :class:`~l0bayes.distributions.SpikeSlabGate`."""

    def expand(self, batch_shape, _instance=None) -> PairedGate:
        new = self._get_checked_instance(PairedGate, _instance)
        return super().expand(batch_shape, _instance=new)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        q = guide_of(value)
        if not isinstance(q, HardConcrete):
            return super().log_prob(value)
        return q.log_prob(value) - gate_kl(q, self.lam, self.kl_mode)


class PairedSlab(MaskedDistribution):
    r"""The slab of a gated value, masked where the gate is shut, whose log density at a draw
    of the guide's :class:`~l0bayes.gates.GatedValue` is the guide's minus the weighted KL
    (module docstring).

    :param base: the elementwise slab.
    :param mask: ``z != 0`` per element.
    """

    def expand(self, batch_shape, _instance=None) -> PairedSlab:
        new = self._get_checked_instance(PairedSlab, _instance)
        return super().expand(batch_shape, _instance=new)

    @property
    def gate_mask(self) -> torch.Tensor:
        """``z != 0`` per element: where the slab counts."""
        mask = self._mask
        return torch.as_tensor(mask).expand(self.batch_shape) if isinstance(mask, bool) else mask

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        guide = guide_of(value)
        weight = getattr(guide, "weight", None)
        if weight is None:
            return super().log_prob(value)
        base = guide.base
        try:
            kl = kl_divergence(base, self.base_dist)
        except NotImplementedError:
            kl = base.log_prob(value) - self.base_dist.log_prob(value)
        return guide.log_prob(value) - weight * kl


__all__ = ["PairedGate", "PairedSlab", "begin_draws", "guide_of", "register_draw"]
