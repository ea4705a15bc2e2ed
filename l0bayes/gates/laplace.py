r"""Laplace's approximation of the evidence of each gate structure of any gated Pyro model: a
:class:`~l0bayes.model_space.ModelScorer`, so that enumeration and the chains of
:mod:`l0bayes.model_space` run over it.

A *structure* :math:`\gamma` fixes every gate site declared by :func:`~l0bayes.gates.gated`
to 0 or 1 (a gate conditioned by the user stays as given). The model's other latent sites are
continuous and are mapped to an unconstrained space :math:`u` (scales and variance components
to the log scale, so no scale reaches 0). Then, with the gates' prior :math:`\log p(\gamma)`
inside the log joint,

.. math::

    \log p(y, \gamma) = \log \int p(y, u, \gamma)\, \lvert J(u)\rvert\, du
        \approx \log p(y, \hat u, \gamma) + \log\lvert J(\hat u)\rvert
        + \tfrac d2 \log 2\pi - \tfrac12 \log\det H

at the mode :math:`\hat u` with :math:`H` the negative Hessian there (Raftery 1996; the GLM
scorer of :mod:`l0bayes.linear_model.laplace` is the same approximation for GLMs). Three
things make it hold for every structure of every gated model:

* **What integrates to one is left out.** The values behind a shut gate are masked (they cost
  nothing and do nothing), and a latent site that nothing else depends on (the scale
  :math:`\tau` of a random-effect block whose gate is shut) contributes only its own proper
  prior; both integrate to exactly 1 and are left out of :math:`u`. A site is free when the
  gradient of the rest of the log joint with respect to it is identically zero.
* **Hyperparameters are integrated outside** (nested Laplace; Rue, Martino & Chopin 2009). A
  latent on which an open gated value's slab depends (a random-effect scale :math:`\tau`,
  a global shrinkage scale) makes the joint density unbounded as :math:`\tau \to 0`
  (the funnel of hierarchical models): the joint mode does not exist. And a scale that many
  values share (the noise scale :math:`\sigma` of a mixed model) is badly placed by a joint
  mode: the values' posterior spread changes with it. So these *hyperparameters* :math:`h`
  (every latent with a bounded support that is not a gated value, and every latent that the
  prior of another latent depends on: a slab's scale, the scale of ungated random effects
  even when written as a real :math:`\log\tau`; bounded ones on the log scale) are
  integrated outside: the values and the other sites
  :math:`r` by Laplace's method given :math:`h`, :math:`L(h) \approx \log p(y, h, \gamma)`,
  then :math:`L` over :math:`h` by Laplace's method with finite-difference derivatives and a
  quadrature along each axis of its Hessian for the skew of a log scale
  (:func:`~l0bayes.gates.newton.fd_log_integral`). For a Gaussian model with Gaussian random
  effects the inner approximation is exact.
* **The modes** are found by damped Newton steps (:mod:`l0bayes.gates.newton`) in float64,
  from the mode of a neighbouring structure already scored, else from the ``init`` values,
  else from 0. A structure whose mode is not found scores :math:`-\infty` and is counted in
  :attr:`GatedLaplaceScorer.failures`.

**References**

[1] A. E. Raftery. Approximate Bayes factors and accounting for model uncertainty in
    generalised linear models. Biometrika 83 (1996), 251-266.

[2] H. Rue, S. Martino, N. Chopin. Approximate Bayesian inference for latent Gaussian models
    by using integrated nested Laplace approximations. JRSS B 71 (2009), 319-392.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import prune_subsample_sites
from torch.distributions import Distribution, Independent, Transform, biject_to, constraints

from l0bayes.gates.newton import fd_log_integral, laplace_log_integral, newton
from l0bayes.gates.pairing import PairedSlab
from l0bayes.gates.primitive import ROLE_KEY, is_observed_data
from l0bayes.model_space import model_key
from l0bayes.validation import check_count


@contextmanager
def float64() -> Iterator[None]:
    """Make float64 torch's default dtype inside the context."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def _double(value):
    """A floating-point tensor in float64; anything else unchanged."""
    if torch.is_tensor(value) and value.is_floating_point():
        return value.to(torch.float64)
    return value


def _slab(fn):
    """A gated value site's elementwise slab and its mask ``z != 0``."""
    while isinstance(fn, Independent):
        fn = fn.base_dist
    if not isinstance(fn, PairedSlab):
        raise ValueError(f"expected the masked slab of a gated value, got {type(fn).__name__}")
    base = fn.base_dist
    while isinstance(base, Independent):
        base = base.base_dist
    return base, fn.gate_mask


def _parameters(fn) -> list[torch.Tensor]:
    """The tensors a distribution is built from (its own and its wrappers', its transforms'),
    through ``Independent``, masks, expansions and transformed distributions."""
    out, layers = [], [fn]
    while layers:
        layer = layers.pop()
        for value in vars(layer).values():
            if torch.is_tensor(value):
                out.append(value)
            elif isinstance(value, Distribution):
                layers.append(value)
            elif isinstance(value, (list, tuple)):  # a transformed distribution's transforms
                layers += [t for t in value if isinstance(t, (Distribution, Transform))]
    return [t for t in out if t.is_floating_point()]


class _Latents(Messenger):
    """Set the gates to a structure and every other latent site to the constrained image of
    an unconstrained value; record each site's log Jacobian, each gated value's mask, and the
    parameters of the priors of the latents: of each gated value's slab where its gate is open,
    of every other latent's distribution."""

    def __init__(self, gates: dict, values: dict, kinds: dict) -> None:
        super().__init__()
        self.gates, self.values, self.kinds = gates, values, kinds
        self.log_jacobian: dict[str, torch.Tensor] = {}
        self.masks: dict[str, torch.Tensor] = {}
        self.prior_parameters: list[torch.Tensor] = []

    def _pyro_sample(self, msg) -> None:
        name = msg["name"]
        if name in self.gates:
            msg["value"] = self.gates[name]
            return
        u = self.values.get(name)
        if u is None or msg["is_observed"]:
            return
        if self.kinds[name] == "value":
            base, mask = _slab(msg["fn"])
            self.masks[name] = mask
            if bool(mask.any()):
                self.prior_parameters += _parameters(base)
            transform = biject_to(base.support)
            value = transform(u)
            log_j = transform.log_abs_det_jacobian(u, value)
            log_j = torch.where(mask, log_j, torch.zeros_like(log_j))
        else:
            self.prior_parameters += _parameters(msg["fn"])
            transform = biject_to(msg["fn"].support)
            value = transform(u)
            log_j = transform.log_abs_det_jacobian(u, value)
        msg["value"] = value
        self.log_jacobian[name] = log_j.sum()


class GatedLaplaceScorer:
    r"""Laplace log evidences :math:`\log p(y, \gamma)` of the gate structures of a gated Pyro
    model (module docstring), cached by structure: a
    :class:`~l0bayes.model_space.ModelScorer` over the model's :attr:`p` gates.

    :param model: a Pyro model that calls :func:`~l0bayes.gates.gated`; its other latent sites
        must be continuous, and its plates must not subsample.
    :param args: the model's positional arguments (floating-point tensors are used in float64).
    :param kwargs: the model's keyword arguments.
    :param init: constrained starting values of latent sites (e.g. a guide's medians), used
        when no neighbouring structure has been scored yet.
    :param max_steps: Newton steps per mode.
    :param progress: called with 1 after each structure's fit (e.g. a progress bar's update).
    """

    def __init__(
        self,
        model: Callable,
        args: tuple = (),
        kwargs: dict | None = None,
        *,
        init: dict[str, torch.Tensor] | None = None,
        max_steps: int = 100,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.model = model
        self.args = tuple(_double(a) for a in args)
        self.kwargs = {k: _double(v) for k, v in (kwargs or {}).items()}
        self.max_steps = check_count("max_steps", max_steps)
        self.progress = progress
        with float64(), poutine.block():
            trace = prune_subsample_sites(poutine.trace(model).get_trace(*self.args, **self.kwargs))
        self.gates: list[tuple[str, str, torch.Size]] = []  # (site, gated name, shape)
        self.kinds: dict[str, str] = {}  # latent site -> "value" or "latent"
        self.shapes: dict[str, torch.Size] = {}  # latent site -> unconstrained shape
        self.scales: set[str] = set()  # latent sites with a bounded support (not gated values)
        for name, site in trace.nodes.items():
            if site["type"] == "sample":
                self._add_site(name, site)
        if not self.gates:
            raise ValueError("the model declares no gates: call l0bayes.gated(...) in it")
        if not any(is_observed_data(site) for site in trace.nodes.values()):
            raise ValueError(
                "the model observes nothing with these arguments: pass the data (e.g. y); "
                "without them the evidence of every structure is the prior's"
            )
        self.widths = [math.prod(shape) for _, _, shape in self.gates]
        self.p = int(sum(self.widths))
        self.init = self._unconstrained(init or {}, trace)
        self.cache: dict[bytes, float] = {}
        self.modes: dict[bytes, dict[str, torch.Tensor]] = {}
        self.failures = 0

    def _add_site(self, name: str, site: dict) -> None:
        _check_plates(name, site)
        info = (site["infer"] or {}).get(ROLE_KEY)
        if info is not None and info["role"] == "enumerated":
            raise ValueError("the Laplace scorer cannot run a model inside enumerated_gates()")
        if site["is_observed"]:
            return
        if info is not None and info["role"] == "gate":
            self.gates.append((name, info["name"], site["value"].shape))
            return
        if site["fn"].support.is_discrete:
            raise ValueError(
                f"the latent site {name!r} is discrete: the Laplace scorer integrates "
                "continuous sites only (the gates are the only discrete choices it sums)"
            )
        value = site["value"].detach()
        self.kinds[name] = "value" if info is not None else "latent"
        support = _slab(site["fn"])[0].support if info is not None else site["fn"].support
        self.shapes[name] = biject_to(support).inv(value).shape
        if info is None and _bounded(support):
            self.scales.add(name)

    # ---------------------------------------------------------------------- structures
    def structure(self, inside: np.ndarray) -> dict[str, torch.Tensor]:
        """The gate values ``{site: 0/1 tensor}`` of a bool structure ``(p,)``."""
        parts = np.split(np.asarray(inside, dtype=float), np.cumsum(self.widths)[:-1])
        return {
            site: torch.tensor(part, dtype=torch.float64).reshape(shape)
            for (site, _, shape), part in zip(self.gates, parts, strict=True)
        }

    def split(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """Per ``gated`` name, the entries of a ``(..., p)`` array that belong to its gates."""
        parts = np.split(np.asarray(values), np.cumsum(self.widths)[:-1], axis=-1)
        return {name: part for (_, name, _), part in zip(self.gates, parts, strict=True)}

    # ---------------------------------------------------------------------- ModelScorer
    def log_posterior(self, inside: np.ndarray) -> float:
        r""":math:`\log p(y, \gamma)` (Laplace) of one structure, cached."""
        inside = np.asarray(inside, dtype=bool)
        key = model_key(inside)
        hit = self.cache.get(key)
        if hit is None:
            with float64(), pyro.validation_enabled(False):
                hit = self.cache[key] = self._fit(inside, key)
            if self.progress is not None:
                self.progress(1)
        return hit

    def score(self, models: np.ndarray) -> np.ndarray:
        """Log evidences ``(m,)`` of the rows of a bool matrix ``(m, p)``."""
        return np.array([self.log_posterior(row) for row in np.atleast_2d(models)])

    def neighbours(self, insides: np.ndarray, log_posts: np.ndarray | None = None) -> np.ndarray:
        """Log evidences ``(m, p)`` of the single-flip neighbours of each row (each fitted from
        its row's mode)."""
        flipped = np.atleast_2d(insides)[:, None, :] ^ np.eye(self.p, dtype=bool)
        return np.array([[self.log_posterior(row) for row in rows] for rows in flipped])

    # ---------------------------------------------------------------------- fitting
    def _unconstrained(self, init: dict, trace) -> dict[str, torch.Tensor]:
        out = {}
        for name, value in init.items():
            if self.kinds.get(name) != "latent":
                continue
            transform = biject_to(trace.nodes[name]["fn"].support)
            u = transform.inv(torch.as_tensor(value, dtype=torch.float64).detach())
            if u.shape == self.shapes[name] and bool(torch.isfinite(u).all()):
                out[name] = u
        return out

    def _start(self, inside: np.ndarray) -> dict[str, torch.Tensor]:
        """The mode of the best scored single-flip neighbour, else :attr:`init` and zeros."""
        best, start = -math.inf, None
        for j in range(self.p):
            other = inside.copy()
            other[j] = not other[j]
            key = model_key(other)
            if key in self.modes and self.cache[key] > best:
                best, start = self.cache[key], self.modes[key]
        if start is None:
            start = {**{n: torch.zeros(s) for n, s in self.shapes.items()}, **self.init}
        return start

    def run(self, gates: dict, values: dict) -> tuple[dict[str, torch.Tensor], _Latents]:
        """Run the model at the gate values and the full unconstrained ``values``: each site's
        log density plus log Jacobian, and the handler that set them."""
        latents = _Latents(gates, values, self.kinds)
        with poutine.block(), latents:
            trace = poutine.trace(self.model).get_trace(*self.args, **self.kwargs)
        trace = prune_subsample_sites(trace)
        trace.compute_log_prob()
        terms = {
            name: site["log_prob_sum"] + latents.log_jacobian.get(name, 0.0)
            for name, site in trace.nodes.items()
            if site["type"] == "sample"
        }
        return terms, latents

    def _fit(self, inside: np.ndarray, key: bytes) -> float:
        problem = _Structure(self, inside, self._start(inside))
        result = problem.evidence(self.max_steps)
        if result is None:
            self.failures += 1
            return -math.inf
        log_evidence, mode = result
        self.modes[key] = mode
        return log_evidence


class _Structure:
    """One structure's log joint as a function of the unconstrained values of its sites: the
    free sites found and left out, the hyperparameters found (module docstring)."""

    def __init__(self, scorer: GatedLaplaceScorer, inside: np.ndarray, start: dict) -> None:
        self.scorer = scorer
        self.gates = scorer.structure(inside)
        self.current = {n: v.detach().clone() for n, v in start.items()}
        # a generic point near the start: at a symmetric one (all zeros) a gradient can vanish
        # where a dependence exists (d/dm log N(theta; m, 1) = 0 at theta = m)
        generator = torch.Generator().manual_seed(0)
        probe = {
            n: (v + 0.1 * torch.randn(v.shape, generator=generator)).requires_grad_(True)
            for n, v in self.current.items()
        }
        terms, latents = scorer.run(self.gates, probe)
        self.index = {
            n: torch.nonzero(latents.masks[n].reshape(-1)).reshape(-1)
            if n in latents.masks
            else torch.arange(math.prod(shape))
            for n, shape in scorer.shapes.items()
        }
        self.free = _free_sites(terms, probe)
        hyper = _depends_on(latents.prior_parameters, probe) | scorer.scales
        active = [n for n in scorer.shapes if n not in self.free and len(self.index[n])]
        self.hyper = [n for n in active if n in hyper]
        self.inner = [n for n in active if n not in hyper]

    def log_joint(self, values: dict) -> torch.Tensor:
        """The log joint of the sites that are not free, at full unconstrained values."""
        terms, _ = self.scorer.run(self.gates, values)
        return sum((t for n, t in terms.items() if n not in self.free), torch.zeros(()))

    def pack(self, sites: list[str]) -> torch.Tensor:
        return torch.cat(
            [self.current[n].reshape(-1)[self.index[n]] for n in sites] + [torch.zeros(0)]
        )

    def unpack(self, u: torch.Tensor, sites: list[str]) -> dict:
        out, at = dict(self.current), 0
        for n in sites:
            k, shape = len(self.index[n]), self.scorer.shapes[n]
            flat = torch.zeros(math.prod(shape)).index_put((self.index[n],), u[at : at + k])
            out[n], at = flat.reshape(shape), at + k
        return out

    def _inner(self, max_steps: int):
        """Laplace over the inner sites at the current hyperparameters; moves ``current`` to
        the inner mode."""
        mode = newton(lambda u: -self.log_joint(self.unpack(u, self.inner)), self.pack(self.inner),
                      max_steps)  # fmt: skip
        if mode is not None:
            self.current = {n: v.detach() for n, v in self.unpack(mode[1], self.inner).items()}
        return mode

    def evidence(self, max_steps: int) -> tuple[float, dict] | None:
        """``(log evidence, mode)``, or ``None`` when a mode was not found."""
        if not self.hyper:
            mode = self._inner(max_steps)
            return None if mode is None else (laplace_log_integral(mode), self.current)

        def outer_energy(h: torch.Tensor) -> float:
            self.current = self.unpack(h, self.hyper)
            mode = self._inner(max_steps)
            return math.inf if mode is None else -laplace_log_integral(mode)

        outer = fd_log_integral(outer_energy, self.pack(self.hyper))
        if outer is None or not math.isfinite(outer[0]):
            return None
        outer_energy(outer[1])  # leave current at the joint mode
        return outer[0], self.current


def _free_sites(terms: dict[str, torch.Tensor], probe: dict) -> set[str]:
    """Latent sites on which no other site's term depends (their own proper prior integrates
    to 1), found by autograd at the probe values; repeated until no new one is found."""
    free: set[str] = set()
    while True:
        rest = sum((t for n, t in terms.items() if n not in free), torch.zeros(()))
        found = set()
        for name, u in probe.items():
            if name in free:
                continue
            others = rest - terms.get(name, 0.0)
            if not others.requires_grad:
                found.add(name)
                continue
            (grad,) = torch.autograd.grad(others, u, retain_graph=True, allow_unused=True)
            if grad is None or not bool(grad.any()):
                found.add(name)
        if not found:
            return free
        free |= found


def _depends_on(outputs: list[torch.Tensor], probe: dict) -> set[str]:
    """The sites whose values some of ``outputs`` depend on (autograd at the probe values)."""
    outputs = [t for t in outputs if t.requires_grad]
    if not outputs:
        return set()
    total = sum(t.sum() for t in outputs)
    names = list(probe)
    grads = torch.autograd.grad(total, [probe[n] for n in names], retain_graph=True,
                                allow_unused=True)  # fmt: skip
    return {n for n, g in zip(names, grads, strict=True) if g is not None and bool(g.any())}


def _bounded(support) -> bool:
    """Whether a support is not the real line (a scale, a rate, a probability)."""
    while hasattr(support, "base_constraint"):  # independent(...)
        support = support.base_constraint
    return support is not constraints.real


def _check_plates(name: str, site: dict) -> None:
    for frame in site["cond_indep_stack"]:
        if frame.full_size is not None and frame.full_size != frame.size:
            raise ValueError(
                f"the site {name!r} sits in the subsampled plate {frame.name!r}: Laplace's "
                "approximation needs the log joint of all the data; do not subsample"
            )


def laplace_log_joint(model, structure: dict[str, torch.Tensor], *args, **kwargs) -> float:
    r"""Laplace's :math:`\log p(y, \gamma)` of one structure (:class:`GatedLaplaceScorer`).

    :param model: a Pyro model calling :func:`~l0bayes.gates.gated`.
    :param structure: ``{name: 0/1 per gate}`` per ``gated`` name (flattened in the gates'
        order).
    :param args: the model's positional arguments (the data).
    :param kwargs: the model's keyword arguments.
    """
    scorer = GatedLaplaceScorer(model, args, kwargs)
    missing = {name for _, name, _ in scorer.gates} - set(structure)
    if missing:
        raise ValueError(f"structure lacks the gates of {sorted(missing)}")
    inside = np.concatenate(
        [
            np.asarray(torch.as_tensor(structure[name]).reshape(-1).cpu(), dtype=bool)
            for _, name, _ in scorer.gates
        ]
    )
    if inside.size != scorer.p:
        raise ValueError(f"structure has {inside.size} gates, the model {scorer.p}")
    return scorer.log_posterior(inside)


__all__ = ["GatedLaplaceScorer", "float64", "laplace_log_joint"]
