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

**Its limit.** NUTS moves slowly between a value's posterior component and its slab (the
draws where the gate is shut): a structure of small posterior probability is visited too
rarely, and the error can exceed the standard error that the draws' effective sample size
suggests (two correlated predictors: within 1.4 standard errors at 1,500 draws; three: a PIP
of 0.988 read as 0.996, 22 standard errors). The posterior over structures of
:mod:`l0bayes.gates.posterior` (Laplace evidences, enumerated) is the reference to trust for
GLMs; this one checks it on small problems where the chain mixes
(:func:`reference_pip_draws` returns the draws for that check).

**The corrected posterior** is not here: :func:`laplace_reweighted_pips`, which weighed only the
structures the guide drew, now returns the model-space posterior of
:mod:`l0bayes.gates.posterior` (every structure enumerated up to 16 gates, chains beyond), and
:func:`laplace_log_joint` lives in :mod:`l0bayes.gates.laplace`.

**References**

[1] L. Kuo, B. Mallick. Variable selection for regression models. Sankhyā B 60 (1998), 65-81.

[2] A. E. Raftery. Approximate Bayes factors and accounting for model uncertainty in
    generalised linear models. Biometrika 83 (1996), 251-266.
"""

from __future__ import annotations

import warnings

import torch
from pyro import poutine
from pyro.infer import MCMC, NUTS

from l0bayes.gates.laplace import laplace_log_joint
from l0bayes.gates.posterior import posterior_inclusion_probs
from l0bayes.gates.primitive import ROLE_KEY, enumerated_gates
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


def reference_pip_draws(
    model, *args, num_samples: int = 200, warmup_steps: int = 200, seed: int = 0, **kwargs
) -> dict[str, torch.Tensor]:
    r"""The terms of :func:`reference_pips`' average: :math:`P(z_j = 1 \mid \theta^{(s)},
    \phi^{(s)}, y)` at each NUTS draw :math:`s`, shaped ``(num_samples, gates)`` per name. Their
    mean is the reference; their effective sample size
    (:func:`pyro.ops.stats.effective_sample_size`) gives its Monte Carlo standard error.

    :param model: a Pyro model calling :func:`~l0bayes.gates.gated` outside plates; its
        ``prior_inclusion``/``lam`` give the Bernoulli prior :math:`\pi` and its slabs must be
        proper distributions.
    :param args: the model's positional arguments (the data).
    :param num_samples: NUTS draws kept.
    :param warmup_steps: NUTS warm-up steps.
    :param seed: torch seed of the chain.
    :param kwargs: the model's keyword arguments.
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
    rows: dict = {}
    for s in range(num_samples):
        draw = {k: v[s] for k, v in samples.items()}
        for key, prob in gate_marginals(model, draw, args, kwargs, nesting).items():
            rows.setdefault(key, []).append(prob)
    out: dict[str, list] = {}
    for (name, _index), probs in sorted(rows.items()):
        out.setdefault(name, []).append(probs)
    return {name: torch.tensor(columns).T for name, columns in out.items()}


def reference_pips(
    model, *args, num_samples: int = 200, warmup_steps: int = 200, seed: int = 0, **kwargs
) -> dict[str, torch.Tensor]:
    """Exact-gate posterior inclusion probabilities of a model with ``gated`` sites: the mean
    of :func:`reference_pip_draws` (same arguments).

    :return: ``{name: PIP tensor}`` shaped like the gates, comparable with
        :meth:`~l0bayes.gates.AutoL0Guide.inclusion_probs`.
    """
    draws = reference_pip_draws(
        model, *args, num_samples=num_samples, warmup_steps=warmup_steps, seed=seed, **kwargs
    )
    return {name: rows.mean(0) for name, rows in draws.items()}


def laplace_reweighted_pips(
    model, guide, *args, num_samples: int = 1000, **kwargs
) -> tuple[dict[str, torch.Tensor], dict]:
    """Deprecated: the posterior inclusion probabilities of
    :func:`~l0bayes.gates.posterior.posterior_inclusion_probs` (call
    ``guide.posterior_inclusion_probs(model, *args)``). This function once weighed only the
    structures that ``num_samples`` draws of the guide proposed, which misses every structure
    a stuck gate never visits, without a warning.

    :return: ``(inclusion_probs, pip_diagnostics)``, the diagnostics with ``num_models``.
    """
    warnings.warn(
        "laplace_reweighted_pips is deprecated: it now returns the model-space posterior; call "
        "guide.posterior_inclusion_probs(model, *args) (l0bayes.gates.posterior)",
        DeprecationWarning,
        stacklevel=2,
    )
    check_count("num_samples", num_samples)
    post = posterior_inclusion_probs(model, guide, *args, progress=False, **kwargs)
    return post.inclusion_probs, post.pip_diagnostics


__all__ = [
    "MAX_GATES",
    "gate_marginals",
    "laplace_log_joint",
    "laplace_reweighted_pips",
    "reference_pip_draws",
    "reference_pips",
]
