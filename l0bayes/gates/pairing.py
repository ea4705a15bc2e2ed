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
gradient, that ``TraceMeanField_ELBO`` uses (a Rao–Blackwellised estimate). Where torch knows
no closed form for the value KL, the draw's :math:`\log \text{slab}(\theta) - \log q(\theta
\mid z \ne 0)` stands in for :math:`-\mathrm{KL}`, weighted by :math:`P_q(z \ne 0)`
(unbiased, with the right gradient). Scored at any other value (no guide, ``Predictive``, a
conditioned gate, the Laplace scorer), the sites are the plain spike and masked slab.

**Densities relative to the guide.** Only the difference :math:`\log p - \log q` enters an
ELBO or an importance weight, and :math:`\log \tilde q` cancels from it exactly. So at its
own draws the guide reports its log density *with respect to its own law*, :math:`0`
(:class:`GuideGate`, :class:`GatedValue`), and the model's sites report
:math:`\log \frac{dp}{dq} = -\mathrm{KL}` there. Every ratio is unchanged, in value and in
gradient, and no log density that would only cancel is computed (``bench/gated_speed.py``
measures the step). At any other value both report ordinary densities: :meth:`GuideGate.log_prob`
of a tensor the guide did not draw is the hard concrete density.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from contextvars import ContextVar

import torch
from pyro.distributions import TorchDistribution, constraints
from pyro.distributions.torch_distribution import MaskedDistribution
from pyro.distributions.util import broadcast_shape
from pyro.ops.provenance import detach_provenance
from torch.distributions import Distribution, kl_divergence, register_kl

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


def memoized(
    owner: object, slot: str, key: tuple, compute: Callable[[], torch.Tensor]
) -> torch.Tensor:
    """``compute()``, remembered on ``owner`` for the same ``key`` objects (by identity, tensors
    also by in-place version) and the same grad mode: the ELBOs ask for one site's log density
    and KL several times per step (the model's and the guide's traces, then the KL branch),
    and each answer is the same tensor (same value, same graph).

    :param owner: the distribution that holds the remembered answer.
    :param slot: which of ``owner``'s answers (one per slot, the latest).
    :param key: the objects the answer depends on besides ``owner``'s own parameters.
    :param compute: computes the answer.
    """
    stamp = tuple(k._version if torch.is_tensor(k) else None for k in key)
    stamp += (torch.is_grad_enabled(),)
    slot = "_l0bayes_memo_" + slot
    hit = owner.__dict__.get(slot)
    if (
        hit is not None
        and hit[1] == stamp
        and all(a is b for a, b in zip(hit[0], key, strict=True))
    ):
        return hit[2]
    out = compute()
    owner.__dict__[slot] = (key, stamp, out)
    return out


def relative_log_prob(
    value: torch.Tensor, batch_shape: torch.Size, event_dim: int = 0
) -> torch.Tensor:
    """Zeros shaped like the log density of ``value`` under a distribution of ``batch_shape``
    whose events have ``event_dim`` dimensions: a guide's log density at its own draw with
    respect to its own law (module docstring), or a point mass's at its value."""
    shape = value.shape[: value.dim() - event_dim]
    if shape != batch_shape:  # e.g. vectorised particles
        shape = broadcast_shape(batch_shape, shape)  # Pyro's: torch's is 30x slower
    return _zero(value.dtype, value.device).expand(shape)


def negated(kl: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``-kl`` broadcast to ``shape`` (a value's elementwise log density, e.g. with a leading
    dimension of vectorised particles)."""
    out = -kl
    return out if out.shape == shape else out.expand(broadcast_shape(out.shape, shape))


@functools.lru_cache(maxsize=16)
def _zero(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A 0-dim zero (cached: every gated site asks for one at every step; only ever expanded
    and read)."""
    return torch.zeros((), dtype=dtype, device=device)


class GuideGate(HardConcrete):
    r"""The hard concrete gate of :class:`~l0bayes.gates.AutoL0Guide`. At a tensor that the
    guide drew in its latest run (:func:`register_draw`) its log density is taken with
    respect to its own law, 0; the model's :class:`PairedGate` then reports
    :math:`-\mathrm{KL}` there (module docstring). At any other value it is the hard concrete
    density. Same parameters as :class:`~l0bayes.distributions.HardConcrete`."""

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if isinstance(guide_of(value), GuideGate):
            return relative_log_prob(value, self.batch_shape)
        return super().log_prob(value)


class PairedGate(SpikeSlabGate):
    r"""The gate prior of :func:`~l0bayes.gates.gated`: the spike and slab, whose log density at
    a hard concrete draw of the guide is :math:`\log q(z) - \mathrm{KL}(q \,\|\, p)` (module
    docstring). Same parameters as :class:`~l0bayes.distributions.SpikeSlabGate`."""

    def expand(self, batch_shape, _instance=None) -> PairedGate:
        new = self._get_checked_instance(PairedGate, _instance)
        return super().expand(batch_shape, _instance=new)

    def kl_from(self, q: HardConcrete) -> torch.Tensor:
        r""":math:`\mathrm{KL}(q \,\|\, p)` (:func:`~l0bayes.distributions.gate_kl`), once
        per guide distribution (:func:`memoized`)."""
        return memoized(self, "kl", (q, q.log_alpha), lambda: gate_kl(q, self.lam, self.kl_mode))

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        q = guide_of(value)
        if not isinstance(q, HardConcrete):
            return super().log_prob(value)
        if isinstance(q, GuideGate):  # its own log density there is 0: log p = -KL
            return negated(self.kl_from(q), value.shape)
        return q.log_prob(value) - self.kl_from(q)


@register_kl(HardConcrete, PairedGate)
def _kl_hard_concrete_paired_gate(q: HardConcrete, p: PairedGate) -> torch.Tensor:
    return p.kl_from(q)


class PairedSlab(MaskedDistribution):
    r"""The slab of a gated value, masked where the gate is shut, whose log density at a draw
    of the guide's :class:`GatedValue` is the guide's minus the weighted KL
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

    def value_kl(self, guide: Distribution) -> torch.Tensor:
        r""":math:`P_q(z \ne 0)\,\mathrm{KL}(q(\theta \mid z \ne 0) \,\|\, \text{slab})` for the
        guide's ``GatedValue`` (its ``weight`` and ``base``), once per guide distribution
        (:func:`memoized`); ``NotImplementedError`` where torch knows no closed form."""
        return memoized(
            self, "kl", (guide,), lambda: guide.weight * kl_divergence(guide.base, self.base_dist)
        )

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        guide = guide_of(value)
        weight = getattr(guide, "weight", None)
        if weight is None:
            return super().log_prob(value)
        try:
            kl = self.value_kl(guide)
        except NotImplementedError:
            base = guide.base
            kl = weight * (base.log_prob(value) - self.base_dist.log_prob(value))
        return negated(kl, value.shape)  # the guide's own log density there is 0


class GatedValue(TorchDistribution):
    r"""The guide of a gated value: ``base`` for :math:`\theta \mid z \ne 0`, whose KL from the
    slab is weighted by :math:`w = P_q(z \ne 0)` and whose log density is masked by the drawn
    :math:`z \ne 0` (the Monte Carlo estimate of the same weighted KL).

    :param base: the conditional guide :math:`q(\theta \mid z \ne 0)` (univariate, batched).
    :param weight: :math:`P_q(z \ne 0)` per element.
    :param mask: ``z != 0`` per element (the drawn gates).
    """

    arg_constraints = {}

    def __init__(self, base, weight, mask, validate_args=None) -> None:
        shape = torch.Size(broadcast_shape(base.batch_shape, weight.shape, mask.shape))
        self.base = base.expand(shape) if base.batch_shape != shape else base
        self.weight = weight.expand(shape) if weight.shape != shape else weight
        self.gate_mask = mask.expand(shape) if mask.shape != shape else mask
        super().__init__(shape, base.event_shape, validate_args=False)

    @property
    def support(self):
        return self.base.support

    @property
    def has_rsample(self) -> bool:
        return self.base.has_rsample

    def expand(self, batch_shape, _instance=None):
        shape = torch.Size(batch_shape)
        return GatedValue(
            self.base.expand(shape), self.weight.expand(shape), self.gate_mask.expand(shape)
        )

    def rsample(self, sample_shape=torch.Size()):
        return self.base.rsample(sample_shape)

    def sample(self, sample_shape=torch.Size()):
        return self.base.sample(sample_shape)

    def log_prob(self, value):
        """0 at the guide's own draw (its density with respect to its own law, see
        :mod:`l0bayes.gates.pairing`), else the base density where the gate is open."""
        if isinstance(guide_of(value), GatedValue):
            return relative_log_prob(value, self.batch_shape)
        log_q = self.base.log_prob(value)
        return torch.where(self.gate_mask, log_q, torch.zeros_like(log_q))


@register_kl(GatedValue, PairedSlab)
def _kl_gated_value_paired_slab(q: GatedValue, p: PairedSlab) -> torch.Tensor:
    """The model's own pairing (:meth:`PairedSlab.value_kl`, computed once per step)."""
    return p.value_kl(q)


@register_kl(GatedValue, Distribution)
def _kl_gated_value(q: GatedValue, p: Distribution) -> torch.Tensor:
    r""":math:`P_q(z \ne 0)\,\mathrm{KL}(q(\theta \mid z \ne 0)\,\|\,\text{slab})`; the model's
    mask is dropped (in the KL branch of ``TraceMeanField_ELBO`` the guide carries the weight)."""
    if isinstance(p, MaskedDistribution):
        p = p.base_dist
    return q.weight * kl_divergence(q.base, p)


class GatedProduct(TorchDistribution):
    r"""The law of :func:`~l0bayes.gates.gated`'s deterministic site :math:`z \odot \theta`: a
    point mass at the value the model observes there, of log density 0, as
    ``pyro.deterministic``'s masked ``Delta``, but built without tensor work (the site is
    declared at every step).

    :param value: the gated values.
    :param event_dim: how many rightmost dimensions of ``value`` are one event.
    """

    arg_constraints = {}
    support = constraints.real
    has_rsample = True

    def __init__(self, value: torch.Tensor, event_dim: int) -> None:
        self.value = value
        cut = value.dim() - event_dim
        super().__init__(value.shape[:cut], value.shape[cut:], validate_args=False)

    def expand(self, batch_shape, _instance=None) -> GatedProduct:
        shape = torch.Size(batch_shape) + self.event_shape
        return GatedProduct(self.value.expand(shape), len(self.event_shape))

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        return self.value.expand(self._extended_shape(sample_shape))

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return relative_log_prob(value, self.batch_shape, len(self.event_shape))


__all__ = [
    "GatedProduct",
    "GatedValue",
    "GuideGate",
    "PairedGate",
    "PairedSlab",
    "begin_draws",
    "guide_of",
    "memoized",
    "negated",
    "register_draw",
    "relative_log_prob",
]
