r"""``gated``: L0 gates on any sample site of any Pyro model.

Inside a Pyro model, ``beta = gated("beta", slab)`` declares two sites and returns
:math:`z \odot \theta`:

.. math::

    z_g &\sim \text{SpikeSlabGate}(\lambda_g) \quad (\text{site } \texttt{"beta.gate"}), \\
    \theta_k \mid z_{g(k)} \ne 0 &\sim \text{slab} \quad (\text{site } \texttt{"beta.theta"}), \\
    \beta_k &= z_{g(k)}\,\theta_k \quad (\text{deterministic site } \texttt{"beta"}),

with one gate per element :math:`k` of the slab (:math:`g(k) = k`), or one gate per group when
``groups`` maps the elements of the slab's last dimension to group ids. The value site is masked
by ``z != 0`` (the spike: an excluded value costs nothing), so with
:class:`~l0bayes.gates.AutoL0Guide` and ``pyro.infer.TraceMeanField_ELBO`` the prior part of the
negative ELBO is analytic:

.. math::

    \sum_g \mathrm{KL}\big(q(z_g)\,\|\,p(z_g)\big)
    + \sum_k P_q(z_{g(k)} \ne 0)\,\mathrm{KL}\big(q(\theta_k)\,\|\,\text{slab}_k\big).

**λ's units.** ``lam`` is a code cost in nats *per element* (per parameter), as in the paper
and :mod:`l0bayes.nn`: a group of :math:`s_g` elements pays :math:`\lambda_g = \lambda s_g`
(:math:`\lambda = 1` is AIC, :math:`\tfrac12\log n` BIC, per parameter). ``prior_inclusion``
:math:`\pi` is a probability *per gate* (:math:`\lambda_g = \log\frac{1-\pi}{\pi}` whatever the
group's size), and ``expected_model_size`` :math:`k` sets :math:`\pi = k / G` for the
:math:`G` gates of the call. The default is :math:`\pi = 1/2` (:math:`\lambda_g = 0`).

**Plates.** The gates are *global* latent variables. Call ``gated`` outside the plate over the
observations (a gate per observation would multiply its KL by :math:`n`); it may sit inside
plates that index parameters (groups, firms, layers), whose elements then get one gate each.
A subsampled enclosing plate raises a ``ValueError`` at once; :class:`AutoL0Guide` raises one
when a gate site sits in every plate of an observed site (a gate per observation).

**Example** (a user's own model, fitted with SVI, reporting PIPs)::

    import pyro, pyro.distributions as dist, torch
    from l0bayes import AutoL0Guide, gated

    def model(X, y=None):
        sigma = pyro.sample("sigma", dist.HalfNormal(1.0))
        beta = gated("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]), prior_inclusion=0.2)
        with pyro.plate("data", X.shape[0]):
            pyro.sample("y", dist.Normal((X * beta).sum(-1), sigma), obs=y)

    X = torch.randn(200, 5); y = 2 * X[:, 0] + 0.5 * torch.randn(200)
    guide = AutoL0Guide(model)
    svi = pyro.infer.SVI(model, guide, pyro.optim.Adam({"lr": 0.05}),
                         pyro.infer.TraceMeanField_ELBO())
    for _ in range(500):
        svi.step(X, y)
    print(guide.inclusion_probs()["beta"])  # P(z != 0) per predictor

Write the predictor as ``(X * beta).sum(-1)`` rather than ``X @ beta`` if the model is also to
run under :func:`enumerated_gates` (Pyro's enumeration adds batch dimensions on the left).

**References**

[1] C. Louizos, M. Welling, D. P. Kingma. Learning Sparse Neural Networks through :math:`L_0`
    Regularization. ICLR 2018, arXiv:1712.01312.

[2] L. Kuo, B. Mallick. Variable selection for regression models. Sankhyā B 60 (1998), 65-81.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from numbers import Real

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions.util import broadcast_shape
from pyro.infer.util import is_validation_enabled
from pyro.poutine.runtime import get_plates
from torch.distributions import Distribution, Independent

from l0bayes.distributions import GATE_ROLE, KL_MODES, VALUE_ROLE, site_name
from l0bayes.gates.pairing import GatedProduct, PairedGate, PairedSlab
from l0bayes.validation import check_choice

#: Key of the sites' ``infer`` dict under which ``gated`` records its metadata.
ROLE_KEY = "l0bayes_gated"
GATE_SUFFIX = "." + GATE_ROLE  # site_name(name, GATE_ROLE) == name + GATE_SUFFIX
VALUE_SUFFIX = "." + VALUE_ROLE

#: Plates that inference adds around a whole model (vectorised ELBO particles, parallel
#: ``Predictive`` samples): they index draws, not parameters, so they never index gates.
PARTICLE_PLATES = frozenset({"num_particles_vectorized", "_num_predictive_samples"})

_ENUMERATED = ContextVar("l0bayes_enumerated_gates", default=False)


@contextmanager
def enumerated_gates() -> Iterator[None]:
    r"""Within this context, :func:`gated` declares exact Bernoulli gates for enumeration
    (Kuo & Mallick's formulation): one scalar site ``"<name>.gate_<j>"`` per gate,
    :math:`z_j \sim \text{Bernoulli}(\pi_j)` marked ``infer={"enumerate": "parallel"}``, and an
    *unmasked* value :math:`\theta \sim \text{slab}` (so the marginal over :math:`\theta` stays
    proper whatever :math:`z`). :func:`l0bayes.gates.reference_pips` runs models this way."""
    token = _ENUMERATED.set(True)
    try:
        yield
    finally:
        _ENUMERATED.reset(token)


def elementwise(slab: Distribution) -> Distribution:
    """The slab with every element in its batch shape: ``Independent`` wrappers removed.

    :param slab: a distribution whose elements are independent.
    """
    base = slab
    while isinstance(base, Independent):
        base = base.base_dist
    if base.event_shape != ():
        raise ValueError(
            f"gated needs a slab with independent elements (univariate, possibly expanded or "
            f".to_event(...)), got {type(base).__name__} with event_shape "
            f"{tuple(base.event_shape)}"
        )
    return base


def check_groups(groups: object, size: int, device: torch.device) -> torch.Tensor:
    """``groups`` as a long tensor of ``size`` group ids covering ``0..G-1``.

    :param groups: an integer tensor or list, one group id per element of the last dimension.
    :param size: the length of the slab's last dimension.
    :param device: where the returned tensor lives.
    """
    if isinstance(groups, torch.Tensor):
        if groups.dtype in (torch.bool,) or groups.is_floating_point() or groups.is_complex():
            raise ValueError(f"groups must hold integers, got a {groups.dtype} tensor")
        ids = groups.to(device=device, dtype=torch.long)
    else:
        if not isinstance(groups, Sequence) or not all(
            isinstance(g, int) and not isinstance(g, bool) for g in groups
        ):
            raise ValueError(f"groups must be an integer tensor or a list of ints, got {groups!r}")
        ids = torch.as_tensor(list(groups), dtype=torch.long, device=device)
    if ids.dim() != 1 or ids.numel() != size:
        raise ValueError(
            f"groups must be 1-D with one id per element of the slab's last dimension "
            f"({size}), got shape {tuple(ids.shape)}"
        )
    present = torch.unique(ids)
    if int(present.min()) != 0 or present.numel() != int(present.max()) + 1:
        raise ValueError(f"groups must use every id 0..G-1 (G groups), got ids {present.tolist()}")
    return ids


@functools.lru_cache(maxsize=512)
def _listed_groups(
    groups: tuple, size: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated ids (on ``device``) and group sizes (in ``dtype``) of ``groups`` given as a
    sequence (cached: a model passes the same list at every step)."""
    ids = check_groups(list(groups), size, device)
    return ids, torch.bincount(ids).to(dtype)


def group_layout(groups: object, size: int, like: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, sizes)``: the group id of each of ``size`` elements and each group's size, on
    ``like``'s device (sizes in its dtype). A tensor's ids are checked when validation is on.

    :param groups: an integer tensor or sequence (see :func:`check_groups`).
    :param size: the length of the slab's last dimension.
    :param like: ``{"dtype": ..., "device": ...}``.
    """
    if torch.is_tensor(groups):
        if is_validation_enabled():
            ids = check_groups(groups, size, like["device"])
        else:
            ids = groups.to(device=like["device"], dtype=torch.long)
        sizes = torch.bincount(ids)
    else:
        try:
            key = tuple(groups)
            hash(key)
        except TypeError:  # not a sequence of ints: the full check says why
            check_groups(groups, size, like["device"])
            raise
        return _listed_groups(key, size, like["dtype"], like["device"])
    return ids, sizes.to(**like)


@functools.lru_cache(maxsize=512)
def _constant(value: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A 0-dim tensor holding ``value`` (cached: the same prior is declared at every step)."""
    return torch.tensor(value, dtype=dtype, device=device)


def _like(base: Distribution) -> dict:
    for key in base.arg_constraints:
        value = getattr(base, key, None)
        if torch.is_tensor(value) and value.is_floating_point():
            return {"dtype": value.dtype, "device": value.device}
    return {"dtype": torch.get_default_dtype(), "device": torch.device("cpu")}


def _gate_cost(lam, prior_inclusion, expected_model_size, num_gates, sizes, like) -> torch.Tensor:
    """λ per gate: ``lam`` times the group sizes, or ``log((1-π)/π)`` from π or k/G."""
    given = [v is not None for v in (lam, prior_inclusion, expected_model_size)]
    if sum(given) > 1:
        raise ValueError("give at most one of lam, prior_inclusion and expected_model_size")
    if expected_model_size is not None:
        k = float(expected_model_size)
        if not 0.0 < k < num_gates:
            raise ValueError(
                f"expected_model_size must lie strictly between 0 and the {num_gates} gates, "
                f"got {expected_model_size!r}"
            )
        prior_inclusion = k / num_gates
    if lam is None and (prior_inclusion is None or isinstance(prior_inclusion, Real)):
        pi = 0.5 if prior_inclusion is None else float(prior_inclusion)
        if not 0.0 < pi < 1.0:
            raise ValueError(f"prior_inclusion must lie strictly in (0, 1), got {prior_inclusion}")
        return _constant(math.log1p(-pi) - math.log(pi), **like)
    if isinstance(lam, Real):
        if not math.isfinite(float(lam)):
            raise ValueError(f"lam must be finite, got {lam}")
        lam_t = _constant(float(lam), **like)
        return lam_t if sizes is None else lam_t * sizes
    if lam is None:  # a tensor or sequence of probabilities
        pi = torch.as_tensor(prior_inclusion, **like)
        if (not torch.is_tensor(prior_inclusion) or is_validation_enabled()) and not bool(
            ((pi > 0) & (pi < 1)).all()
        ):
            raise ValueError(f"prior_inclusion must lie strictly in (0, 1), got {prior_inclusion}")
        return torch.log1p(-pi) - torch.log(pi)
    lam_t = torch.as_tensor(lam, **like)
    if (not torch.is_tensor(lam) or is_validation_enabled()) and not bool(
        torch.isfinite(lam_t).all()
    ):
        raise ValueError(f"lam must be finite, got {lam}")
    return lam_t if sizes is None else lam_t * sizes


def gated(
    name: str,
    slab: Distribution,
    *,
    lam: float | torch.Tensor | None = None,
    prior_inclusion: float | torch.Tensor | None = None,
    expected_model_size: float | None = None,
    groups: torch.Tensor | Sequence[int] | None = None,
    kl_mode: str = "bayes",
) -> torch.Tensor:
    r"""Declare L0-gated values in a Pyro model and return :math:`z \odot \theta`.

    See the module docstring for the model, λ's units, plates, and a complete example.

    :param name: base name; the sites are ``name + ".gate"``, ``name + ".theta"`` and the
        deterministic ``name``.
    :param slab: any Pyro distribution with independent elements (univariate, ``.expand``-ed
        or ``.to_event``-ed); outside plates every element of its batch and event shape gets a
        gate, inside plates the plates and its event shape index the gates.
    :param lam: code cost :math:`\lambda` in nats per element (a group of :math:`s` elements
        pays :math:`\lambda s`); float or tensor broadcastable to the gates.
    :param prior_inclusion: prior :math:`P(z_g \ne 0) = \pi` per gate (default 1/2).
    :param expected_model_size: :math:`k`, giving :math:`\pi = k/G` for the call's :math:`G`
        gates.
    :param groups: integer ids (tensor or list), one per element of the slab's last dimension
        (outside plates: of its batch-and-event shape); elements sharing an id share a gate.
    :param kl_mode: ``"bayes"`` (the full Bernoulli KL) or ``"l0"`` (the paper's
        :math:`\lambda\,P(z \ne 0)`, dropping the gate entropy).
    :return: the gated values, shaped like a draw of ``slab`` (plus plate dimensions).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if not isinstance(slab, Distribution):
        raise ValueError(f"slab must be a torch/Pyro distribution, got {type(slab).__name__}")
    check_choice("kl_mode", kl_mode, KL_MODES)
    plates = tuple(f for f in get_plates() if f.name not in PARTICLE_PLATES)
    for frame in plates:
        if frame.full_size is not None and frame.full_size != frame.size:
            raise ValueError(
                f"gated({name!r}) was called inside the subsampled plate {frame.name!r}: gates "
                "are global latent variables; call gated() outside the data plate"
            )
    base = elementwise(slab)
    like = _like(base)
    batch = tuple(slab.batch_shape) if plates else ()
    free = tuple(slab.event_shape) if plates else tuple(slab.batch_shape + slab.event_shape)
    ids, sizes = None, None
    gate_free = free
    if groups is not None:
        if not free:
            raise ValueError(
                "groups index the slab's last element dimension, but inside plates this slab "
                "has no event dimension; use .expand([...]).to_event(1) or call it outside"
            )
        ids, sizes = group_layout(groups, free[-1], like)
        gate_free = free[:-1] + (len(sizes),)
    plate_shape = [1] * max([-f.dim for f in plates if f.dim is not None], default=0)
    for f in plates:
        if f.dim is not None:
            plate_shape[f.dim] = f.size
    full_batch = broadcast_shape(torch.Size(batch), torch.Size(plate_shape))
    num_gates = math.prod(full_batch) * math.prod(gate_free)
    cost = _gate_cost(lam, prior_inclusion, expected_model_size, num_gates, sizes, like)
    if _ENUMERATED.get():
        return _enumerated(name, base, cost, free, gate_free, ids, plates)
    if kl_mode == "l0" and (not torch.is_tensor(lam) or is_validation_enabled()):
        if bool((cost < 0).any()):
            raise ValueError("lam must be >= 0 with kl_mode='l0'; use kl_mode='bayes' for pi > 1/2")
    info = {"name": name, "groups": ids}
    gate_shape = torch.Size(batch + gate_free)
    lam_gates = cost if cost.shape == gate_shape else cost.expand(gate_shape)
    prior = PairedGate(lam=lam_gates, kl_mode=kl_mode, validate_args=False)
    prior = prior.to_event(len(gate_free))
    z = pyro.sample(site_name(name, GATE_ROLE), prior, infer={ROLE_KEY: {**info, "role": "gate"}})
    z_elem = z if ids is None else z.index_select(-1, ids)
    theta_fn = PairedSlab(base, z_elem != 0).to_event(len(free))
    theta = pyro.sample(
        site_name(name, VALUE_ROLE), theta_fn, infer={ROLE_KEY: {**info, "role": "value"}}
    )
    value = z_elem * theta
    # pyro.deterministic(name, value, len(free)), with a lighter point mass
    pyro.sample(name, GatedProduct(value, len(free)), obs=value, infer={"_deterministic": True})
    return value


def _enumerated(name, base, cost, free, gate_free, ids, plates) -> torch.Tensor:
    """Exact Bernoulli gates, one enumerated scalar site per gate (see
    :func:`enumerated_gates`)."""
    if any(f.dim is not None for f in plates):
        raise ValueError(
            f"enumerated_gates() needs gated({name!r}) outside every pyro.plate (each gate is "
            "then its own enumerated site)"
        )
    pi = torch.sigmoid(-cost).expand(torch.Size(gate_free)).reshape(-1)
    info = {"name": name, "groups": ids, "role": "enumerated"}
    zs = [
        pyro.sample(
            f"{name}{GATE_SUFFIX}_{j}",
            dist.Bernoulli(pi[j]),
            infer={"enumerate": "parallel", ROLE_KEY: {**info, "index": j}},
        )
        for j in range(pi.numel())
    ]
    z = torch.stack(torch.broadcast_tensors(*zs), -1)
    z = z.reshape(z.shape[:-1] + torch.Size(gate_free))
    z_elem = z if ids is None else z.index_select(-1, ids)
    theta = pyro.sample(name + VALUE_SUFFIX, base.to_event(len(free)))
    return z_elem * theta


def is_gated_site(msg: dict) -> bool:
    """Whether a Pyro message or trace site was declared by :func:`gated`.

    :param msg: a Pyro message (or trace node).
    """
    infer = msg.get("infer") or {}
    return ROLE_KEY in infer


def is_observed_data(site: dict) -> bool:
    """Whether a trace site is data the model observes: an observed sample site that is
    neither a gate conditioned by the user nor a deterministic site (``gated``'s product).

    :param site: a Pyro trace node.
    """
    return (
        site["type"] == "sample"
        and site["is_observed"]
        and not (site.get("infer") or {}).get("_deterministic")
        and not is_gated_site(site)
    )


__all__ = [
    "GATE_SUFFIX",
    "ROLE_KEY",
    "VALUE_SUFFIX",
    "check_groups",
    "elementwise",
    "enumerated_gates",
    "group_layout",
    "gated",
    "is_gated_site",
    "is_observed_data",
]
