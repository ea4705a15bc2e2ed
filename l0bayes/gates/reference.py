r"""An exact reference for small problems: enumerated Bernoulli gates, NUTS for the rest.

Run under :func:`~l0bayes.gates.enumerated_gates`, a model's gates are exact Bernoulli
variables :math:`z_j \sim \text{Bernoulli}(\pi_j)` (one enumerated site each) and its values
:math:`\theta \sim \text{slab}` are unmasked (Kuo & Mallick), so that

.. math::

    p(\phi, \theta \mid y) \propto \sum_{z \in \{0,1\}^p} p(z)\, p(\theta)\, p(\phi)\,
        p(y \mid z \odot \theta, \phi)

is a proper density of the continuous latents, which NUTS samples while Pyro sums the
:math:`2^p` gate configurations out exactly. At each draw :math:`(\theta, \phi)^{(s)}` the
enumerated log joint gives :math:`P(z_j = 1 \mid \theta^{(s)}, \phi^{(s)}, y)` exactly; their
average is the Rao-Blackwellised posterior inclusion probability

.. math::

    \widehat{\mathrm{PIP}}_j = \frac1S \sum_s P(z_j = 1 \mid \theta^{(s)}, \phi^{(s)}, y).

Feasible for :math:`p \le 10` or so (:math:`2^p` terms per log-density evaluation).

**A correction of the guide's PIPs** (:func:`laplace_reweighted_pips`): the models the guide
proposes, weighed by Laplace evidence. The mean-field guide's gate probabilities are biased
when predictors are correlated (it cannot represent "one of these two"). Its *draws* of
structures :math:`\gamma` are still good
proposals. For each distinct structure among the draws, the log joint of the data and
:math:`\gamma` is approximated by Laplace's method in the unconstrained space of the
continuous latents (the model run under :func:`~l0bayes.gates.enumerated_gates` with its gates
conditioned on :math:`\gamma`, so excluded values keep their proper slab prior):

.. math::

    \log p(y, \gamma) \approx \log p(y, \hat u, \gamma) + \tfrac d2 \log 2\pi
        - \tfrac12 \log\lvert H \rvert,

with :math:`\hat u` the mode of the :math:`d` unconstrained latents (log Jacobians included)
and :math:`H` the negative Hessian of the log joint there (Raftery 1996; BAS uses this family
for GLMs). The posterior restricted to the visited structures,
:math:`p(\gamma \mid y) \propto \exp \log p(y, \gamma)`, gives the corrected PIPs.

Feasible for small models (one optimisation per distinct structure); the gates must sit
outside plates, as for :func:`reference_pips`.

**References**

[1] L. Kuo, B. Mallick. Variable selection for regression models. Sankhyā B 60 (1998), 65-81.

[2] A. E. Raftery. Approximate Bayes factors and accounting for model uncertainty in
    generalised linear models. Biometrika 83 (1996), 251-266.
"""

from __future__ import annotations

import math

import torch
from pyro import poutine
from pyro.infer import MCMC, NUTS
from pyro.infer.autoguide.initialization import init_to_mean
from pyro.infer.mcmc.util import initialize_model

from l0bayes.gates.primitive import GATE_SUFFIX, ROLE_KEY, enumerated_gates
from l0bayes.validation import check_count

MAX_GATES = 12


def _max_plate_nesting(model, args, kwargs) -> int:
    with enumerated_gates(), poutine.block():
        trace = poutine.trace(model).get_trace(*args, **kwargs)
    dims = [
        -f.dim
        for site in trace.nodes.values()
        if site["type"] == "sample"
        for f in site["cond_indep_stack"]
        if f.dim is not None
    ]
    gates = [
        s
        for s in trace.nodes.values()
        if ROLE_KEY in (s.get("infer") or {}) and s["infer"][ROLE_KEY]["role"] == "enumerated"
    ]
    if not gates:
        raise ValueError("the model declares no gates: call l0bayes.gated(...) in it")
    if len(gates) > MAX_GATES:
        raise ValueError(f"{len(gates)} gates: exact enumeration needs at most {MAX_GATES}")
    return max(dims, default=0)


def gate_marginals(model, draw: dict, args, kwargs, max_plate_nesting: int) -> dict:
    """:math:`P(z_j = 1 \\mid \\text{draw}, y)` for every enumerated gate, from the log joint.

    :param model: the model (run under :func:`enumerated_gates`).
    :param draw: values of the continuous latent sites.
    :param args: the model's positional arguments.
    :param kwargs: the model's keyword arguments.
    :param max_plate_nesting: the model's plate nesting.
    :return: ``{(name, index): probability}``.
    """
    conditioned = poutine.condition(model, data=draw)
    enum = poutine.enum(conditioned, first_available_dim=-1 - max_plate_nesting)
    with enumerated_gates(), poutine.block():
        trace = poutine.trace(enum).get_trace(*args, **kwargs)
    trace.compute_log_prob()
    total = torch.zeros(())
    gates = []
    for site in trace.nodes.values():
        if site["type"] != "sample":
            continue
        lp = site["log_prob"]
        if max_plate_nesting:
            lp = lp.reshape((1,) * max(0, max_plate_nesting - lp.dim()) + lp.shape)
            lp = lp.sum(tuple(range(-max_plate_nesting, 0)))
        total = total + lp
        info = (site.get("infer") or {}).get(ROLE_KEY)
        if info is not None and info["role"] == "enumerated":
            gates.append((info["name"], info["index"], site["value"]))
    log_norm = total.logsumexp(tuple(range(total.dim())))
    out = {}
    for name, index, value in gates:
        dim = next(d for d in range(-value.dim(), 0) if value.shape[d] == 2)
        # total's dims are right-aligned with the value's (the plate dims summed away)
        dim_total = dim + max_plate_nesting
        others = tuple(d for d in range(-total.dim(), 0) if d != dim_total)
        marg = total.logsumexp(others) if others else total
        ones = value.reshape(-1)[1] == 1 if value.numel() == 2 else True
        out[(name, index)] = float((marg[1 if ones else 0] - log_norm).exp())
    return out


def reference_pips(
    model, *args, num_samples: int = 200, warmup_steps: int = 200, seed: int = 0, **kwargs
) -> dict[str, torch.Tensor]:
    """Exact-gate posterior inclusion probabilities of a model with ``gated`` sites.

    :param model: a Pyro model calling :func:`~l0bayes.gates.gated` outside plates; its
        ``prior_inclusion``/``lam`` give the Bernoulli prior :math:`\\pi` and its slabs must be
        proper distributions.
    :param args: the model's positional arguments (the data).
    :param num_samples: NUTS draws kept.
    :param warmup_steps: NUTS warm-up steps.
    :param seed: torch seed of the chain.
    :param kwargs: the model's keyword arguments.
    :return: ``{name: PIP tensor}`` shaped like the gates, comparable with
        :meth:`~l0bayes.gates.AutoL0Guide.inclusion_probs`.
    """
    check_count("num_samples", num_samples)
    check_count("warmup_steps", warmup_steps, minimum=0)
    nesting = _max_plate_nesting(model, args, kwargs)

    def enumerated_model(*a, **k):
        with enumerated_gates():
            return model(*a, **k)

    torch.manual_seed(seed)
    kernel = NUTS(enumerated_model, max_plate_nesting=nesting, jit_compile=False)
    mcmc = MCMC(kernel, num_samples=num_samples, warmup_steps=warmup_steps, disable_progbar=True)
    mcmc.run(*args, **kwargs)
    samples = mcmc.get_samples()
    sums: dict = {}
    for s in range(num_samples):
        draw = {k: v[s] for k, v in samples.items()}
        for key, prob in gate_marginals(model, draw, args, kwargs, nesting).items():
            sums[key] = sums.get(key, 0.0) + prob / num_samples
    out: dict[str, list] = {}
    for (name, _index), prob in sorted(sums.items()):
        out.setdefault(name, []).append(prob)
    return {name: torch.tensor(probs) for name, probs in out.items()}


def laplace_log_joint(model, structure: dict[str, torch.Tensor], *args, **kwargs) -> float:
    r"""Laplace's approximation of :math:`\log p(y, \gamma)` for one structure.

    :param model: a Pyro model calling :func:`~l0bayes.gates.gated` outside plates.
    :param structure: ``{name: 0/1 per gate}`` (flattened in the order of the gates).
    :param args: the model's positional arguments (the data).
    :param kwargs: the model's keyword arguments.
    :return: the approximate log joint density of the data and :math:`\gamma`.
    """
    data = {
        f"{name}{GATE_SUFFIX}_{j}": torch.tensor(float(v))
        for name, gates in structure.items()
        for j, v in enumerate(torch.as_tensor(gates).reshape(-1).tolist())
    }

    def conditioned(*a, **k):
        with enumerated_gates():
            return poutine.condition(model, data=data)(*a, **k)

    init, potential_fn, _, _ = initialize_model(
        conditioned, model_args=args, model_kwargs=kwargs, init_strategy=init_to_mean
    )
    keys = sorted(init)
    shapes = [init[k].shape for k in keys]
    sizes = [init[k].numel() for k in keys]

    def unflatten(u: torch.Tensor) -> dict:
        parts = torch.split(u, sizes)
        return {k: p.reshape(s) for k, p, s in zip(keys, parts, shapes, strict=True)}

    def potential(u: torch.Tensor) -> torch.Tensor:
        return potential_fn(unflatten(u))

    u = torch.cat([init[k].detach().reshape(-1) for k in keys]).requires_grad_(True)
    opt = torch.optim.LBFGS([u], max_iter=200, tolerance_grad=1e-9, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = potential(u)
        loss.backward()
        return loss

    opt.step(closure)
    u_hat = u.detach()
    hess = torch.autograd.functional.hessian(potential, u_hat)
    _, logdet = torch.linalg.slogdet(hess)
    d = u_hat.numel()
    return float(-potential(u_hat) + 0.5 * d * math.log(2 * math.pi) - 0.5 * logdet)


def laplace_reweighted_pips(
    model, guide, *args, num_samples: int = 1000, **kwargs
) -> tuple[dict[str, torch.Tensor], dict]:
    """PIPs from the guide's distinct structures weighed by their Laplace log joints.

    :param model: the model the guide was fitted to (gates outside plates).
    :param guide: a fitted :class:`~l0bayes.gates.AutoL0Guide`.
    :param args: the model's positional arguments (the data).
    :param num_samples: structures drawn from the guide.
    :param kwargs: the model's keyword arguments.
    :return: ``({name: PIP tensor}, diagnostics)`` with ``num_models`` (distinct structures
        weighed) and ``top_weight`` (the largest posterior weight among them).
    """
    check_count("num_samples", num_samples)
    draws = guide.sample_structures(num_samples)
    names = list(draws)
    widths = [draws[n].shape[1] for n in names]
    rows = torch.cat([draws[n] for n in names], dim=1)  # (num_samples, all gates)
    unique = torch.unique(rows, dim=0)  # (models, all gates)
    log_joint = []
    for row in unique:
        parts = torch.split(row, widths)
        structure = dict(zip(names, parts, strict=True))
        log_joint.append(laplace_log_joint(model, structure, *args, **kwargs))
    weights = torch.softmax(torch.tensor(log_joint, dtype=torch.float64), 0)  # (models,)
    pips = (weights[:, None] * unique.to(torch.float64)).sum(0)  # (all gates,)
    out = dict(zip(names, torch.split(pips, widths), strict=True))
    info = {"num_models": int(unique.shape[0]), "top_weight": float(weights.max())}
    return out, info


__all__ = [
    "MAX_GATES",
    "gate_marginals",
    "laplace_log_joint",
    "laplace_reweighted_pips",
    "reference_pips",
]
