r"""The corrections of the guide's inclusion probabilities (``penalty="bayes"``) of
:class:`~l0bayes.linear_model.estimator.L0Regression`: each replaces the hard concrete guide's
PIPs by those of the declared posterior

.. math::

    P(z_j \ne 0 \mid y) = \sum_{\gamma:\, \gamma_j = 1} p(\gamma \mid y), \qquad
    p(\gamma \mid y) \propto p(y \mid \gamma)\, p(\gamma),

computed exactly by enumerating the :math:`2^G` models, or estimated by MC3 chains over the
model space (conjugate or Laplace marginal likelihoods, :mod:`l0bayes.linear_model.
model_space`, :mod:`l0bayes.linear_model.laplace`), or, for the raw-unit slab, by Pareto-smoothed
importance sampling from the guide (:mod:`l0bayes.linear_model.importance`).

Each function takes already-checked data and returns a :class:`CorrectedPosterior`, which the
estimator stores as its fitted attributes (:func:`correct` picks the correction of a fit,
:func:`enumerated_posterior` is ``method="exact"``); the guide enters only through its draws
(the chains' starting models, and ``guide_gap``: the nats by which the best model the guide
drew falls short of the best model found).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from l0bayes.distributions import HardConcrete
from l0bayes.linear_model.exact import exact_posterior
from l0bayes.linear_model.importance import (
    MISSED_MODE_NATS,
    hill_climb,
    psis_inclusion_probs,
)
from l0bayes.linear_model.laplace import ENUMERATION_LIMIT as LAPLACE_ENUMERATION_LIMIT
from l0bayes.linear_model.laplace import LaplaceScorer, laplace_enumerate, laplace_mc3
from l0bayes.linear_model.marginal_likelihood import (
    Enumeration,
    SufficientStats,
    max_model_size,
)
from l0bayes.linear_model.model_size import PriorInclusion, check_prior_inclusion, log_prior_by_size
from l0bayes.linear_model.model_space import (
    MAX_KHAT,
    MIN_ESS,
    ConjugateScorer,
    GroupedScorer,
    MC3Result,
    ModelScorer,
    default_starts,
    diagnose,
    enumerate_models,
    run_chains,
)
from l0bayes.linear_model.params import (
    RAW_ENUMERATION_LIMIT,
    conjugate_prior,
    n_gates,
    prior_inclusion,
)
from l0bayes.linear_model.params import correction as chosen_correction
from l0bayes.linear_model.relaxation import Relaxation
from l0bayes.linear_model.search.subsets import check_groups
from l0bayes.linear_model.stats import GaussianStats

#: Guide draws used as starting models of the MC3 chains and for the missed-mass check.
GUIDE_DRAWS = 256
#: The PSIS correction warns (``pip_se``) when a PIP's Monte Carlo standard error exceeds
#: this: half the 0.05 of an acceptable error, so that two standard errors stay within it.
MAX_PIP_SE = 0.025


@dataclass(frozen=True)
class CorrectedPosterior:
    """A posterior over the models that replaces the guide's: ``probs`` (per gate when
    ``per_gate``, else per column), ``model_size_probs`` (over 0..p), ``diagnostics`` (the
    estimator's ``pip_diagnostics_``), ``coef`` (``(coef, intercept)``, or None for the
    maximum-likelihood refit of the 0.5-PIP model), ``top_models`` (column masks and their
    probabilities, or None), ``attributes`` (further fitted attributes, e.g. ``pareto_k_``)
    and ``alerts`` (the one-line ``RuntimeWarning`` messages to raise)."""

    probs: np.ndarray
    model_size_probs: np.ndarray
    diagnostics: dict
    per_gate: bool = False
    coef: tuple[np.ndarray, float] | None = None
    top_models: list | None = None
    attributes: dict = field(default_factory=dict)
    alerts: list[str] = field(default_factory=list)


def _may_be_wrong(diagnostics: dict) -> list[str]:
    return [f"the inclusion probabilities may be wrong: {m}" for m in diagnostics["warnings"]]


def guide_models(gates: HardConcrete, draws: int, seed: int) -> np.ndarray:
    """``draws`` models (bool, one column per gate) drawn from the guide under ``seed``,
    outside the global torch stream."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return (gates.sample((draws,)) > 0).cpu().numpy()


def chain_diagnostics(method: str, res: MC3Result) -> dict:
    """``pip_diagnostics_`` of model-space chains: their agreement, R-hat, ESS, the models
    visited and the warnings of :func:`~l0bayes.linear_model.model_space.diagnose`."""
    return {
        "method": method,
        "pip_spread": res.pip_spread,
        "rhat": res.rhat,
        "ess": res.ess_log_posterior,
        "n_models": res.n_models,
        "warnings": diagnose(res),
    }


def widen_top_models(top: list, groups: np.ndarray | None) -> list:
    """An enumeration's top models with a group's gate widened to its columns."""
    return [(m if groups is None else m[groups], q) for m, q in top]


def run_model_chains(
    settings, scorer: ModelScorer, n: int, guide: np.ndarray, gate_probs: np.ndarray
) -> MC3Result:
    r"""Four chains from the empty model, a full one and two of the guide's draws (a draw too
    large for the model space keeps its most probable columns by ``gate_probs``). With
    ``chain_iterations=None`` they run :math:`\max(10000, 200p)` iterations each (``"mh"``:
    :math:`\max(20000, 500p)`) and continue, doubling their length up to 8 times the first,
    while a diagnostic still fires."""
    p = scorer.p
    starts = default_starts(p, n, 4, settings.seed)
    starts[2:] = guide[:2]
    largest = max_model_size(n)
    if settings.groups is None and starts[2:].sum(axis=1).max() > largest:
        order = np.argsort(-gate_probs, kind="stable")
        for row in starts[2:]:
            row[order[row[order].cumsum() > largest]] = False
    sampler, fixed = settings.chain_sampler, settings.chain_iterations
    first = fixed or (max(10_000, 200 * p) if sampler == "tempered" else max(20_000, 500 * p))
    with tqdm(
        total=4 * first,
        desc=f"model-space chains ({sampler})",
        disable=not settings.progress,
        mininterval=1.0,
        leave=False,
    ) as bar:

        def enough(result: MC3Result) -> bool:
            if not diagnose(result):
                return True
            bar.total = 4 * 2 * result.n_iter
            bar.refresh()
            return False

        return run_chains(
            scorer, starts, n_iter=first, max_iter=first if fixed else 8 * first, enough=enough,
            sampler=sampler, seed=settings.seed, progress=bar.update,
        )  # fmt: skip


def laplace_correction(
    settings, scorer: LaplaceScorer, correction: str, gates: HardConcrete, groups
) -> CorrectedPosterior:
    """The posterior under the standardised slab with Laplace marginal likelihoods
    (non-Gaussian families): enumerated over at most :data:`~l0bayes.linear_model.laplace.
    ENUMERATION_LIMIT` gates (``correction="laplace"``) or always (``"enumerate"``), else MC3
    chains started from the empty model and two of the guide's draws."""
    G = scorer.p
    if correction == "laplace":
        correction = "enumerate" if G <= LAPLACE_ENUMERATION_LIMIT else "mc3"
    if correction == "enumerate":
        post = laplace_enumerate(scorer, max_models=2**20)
        return CorrectedPosterior(
            post.inclusion_probs, post.model_size_probs,
            {"method": "laplace-enumerate", "warnings": []}, per_gate=True,
            top_models=widen_top_models(post.top_models, groups),
        )  # fmt: skip
    res = laplace_mc3(
        scorer,
        starts=np.vstack([np.zeros((1, G), bool), guide_models(gates, 2, settings.seed)]),
        n_iter=settings.chain_iterations or max(5_000, 200 * G),
        seed=settings.seed,
    )
    diagnostics = chain_diagnostics("laplace-mc3", res)
    return CorrectedPosterior(
        res.inclusion_probs, res.model_size_probs, diagnostics, per_gate=True,
        alerts=_may_be_wrong(diagnostics),
    )  # fmt: skip


def enumeration_correction(
    post: Enumeration, scorer: ModelScorer, gates: HardConcrete, seed: int, groups
) -> CorrectedPosterior:
    """The enumerated posterior ``post`` of ``scorer``, with the guide's gap to its best
    model."""
    guide = guide_models(gates, GUIDE_DRAWS, seed)
    best = float(np.max(post.log_posterior) + post.log_evidence)
    gap = best - float(scorer.score(np.unique(guide, axis=0)).max())
    return CorrectedPosterior(
        post.inclusion_probs, post.model_size_probs,
        {"method": "enumerate", "guide_gap": gap, "warnings": []}, per_gate=groups is not None,
        top_models=widen_top_models(post.top_models, groups),
    )  # fmt: skip


def chain_correction(
    settings, X: np.ndarray, y: np.ndarray, groups, pi: PriorInclusion, gates: HardConcrete,
    gate_probs: np.ndarray,
) -> CorrectedPosterior:  # fmt: skip
    """The posterior under the declared conjugate prior estimated by model-space chains
    started from the guide's draws (with ``groups`` the models are sets of groups)."""
    guide = guide_models(gates, GUIDE_DRAWS, settings.seed)
    stats = SufficientStats.of(GaussianStats.from_checked(X, y))
    scorer = conjugate_scorer(settings, stats, pi, groups)
    res = run_model_chains(settings, scorer, stats.n, guide, gate_probs)
    # the chains do not rest on the guide: its gap is reported, not warned about
    gap = res.best_log_posterior - float(scorer.score(np.unique(guide, axis=0)).max())
    diagnostics = {**chain_diagnostics("mc3", res), "guide_gap": gap}
    return CorrectedPosterior(
        res.inclusion_probs, res.model_size_probs, diagnostics, per_gate=groups is not None,
        alerts=_may_be_wrong(diagnostics),
    )  # fmt: skip


def raw_enumeration_correction(
    settings, X: np.ndarray, y: np.ndarray, noise_scale: float, pi, gates: HardConcrete | None
) -> tuple[CorrectedPosterior, object]:
    r"""``prior="raw"``: the exact posterior of the raw-unit slab with :math:`\sigma` fixed at
    ``noise_scale`` over all :math:`2^p` models, and the
    :class:`~l0bayes.linear_model.exact.ExactPosterior` itself (``gates`` None: no guide, no
    ``guide_gap``)."""
    post = exact_posterior.checked(
        X, y, noise_scale=noise_scale, slab_scale=settings.slab_scale, prior_inclusion=pi
    )
    diagnostics: dict = {"method": "enumerate"}
    if gates is not None:
        guide = guide_models(gates, GUIDE_DRAWS, settings.seed)
        bits = (guide * (1 << np.arange(X.shape[1]))).sum(axis=1)
        best_guide = float(post.log_model_probs[bits].max())
        diagnostics["guide_gap"] = float(post.log_model_probs.max() - best_guide)
    diagnostics["warnings"] = []
    corrected = CorrectedPosterior(
        post.inclusion_probs, post.model_size_probs, diagnostics,
        coef=(post.coef_mean, post.intercept), top_models=post.top_models,
    )  # fmt: skip
    return corrected, post


def _psis_reasons(res, gap: float, p: int) -> list[str]:
    """Why a PSIS estimate is unreliable (module :mod:`~l0bayes.linear_model.importance`)."""
    reasons = []
    if gap > MISSED_MODE_NATS:
        reasons.append(
            f"guide_missed_mass: a local search from the best draw found a model "
            f"{math.exp(min(gap, 700)):.3g} times as probable as every draw of the guide"
        )
    if res.ess < MIN_ESS:
        reasons.append(f"ess: an effective sample size of {res.ess:.0f} < {MIN_ESS:.0f}")
    if res.pip_se.max() > MAX_PIP_SE:
        reasons.append(
            f"pip_se: a PIP's Monte Carlo standard error is {res.pip_se.max():.3f} > "
            f"{MAX_PIP_SE} (feature {int(res.pip_se.argmax())})"
        )
    if p <= RAW_ENUMERATION_LIMIT:
        reasons.append(
            f"psis_forced: with p = {p} <= {RAW_ENUMERATION_LIMIT} the models are "
            "enumerated exactly by correction='auto'; PSIS on so few distinct models smooths "
            "tied weights and can be biased beyond its standard errors"
        )
    if res.pareto_k > MAX_KHAT:  # NaN (tied top weights: no tail to fit) is not a failure
        reasons.append(f"khat: Pareto k = {res.pareto_k:.2f} > {MAX_KHAT}")
    return reasons


def importance_correction(
    settings, X: np.ndarray, y: np.ndarray, proposal: np.ndarray, noise_scale: float, pi
) -> CorrectedPosterior:
    """The guide's PIPs ``proposal`` corrected by Pareto-smoothed importance sampling under
    the raw-unit slab with σ at ``noise_scale``, checked by a local search from the best
    draw."""
    res = psis_inclusion_probs.checked(
        X, y, proposal, noise_scale=noise_scale, slab_scale=settings.slab_scale,
        prior_inclusion=pi, num_samples=int(settings.importance_samples), seed=settings.seed,
    )  # fmt: skip
    _, climbed = hill_climb.checked(
        X, y, res.best_draw, noise_scale=noise_scale, slab_scale=settings.slab_scale,
        prior_inclusion=pi,
    )  # fmt: skip
    gap = climbed - res.best_log_joint
    reasons = _psis_reasons(res, gap, X.shape[1])
    diagnostics = {
        "method": "psis",
        "khat": float(res.pareto_k),
        "ess": float(res.ess),
        "pip_se": float(res.pip_se.max()),
        "guide_gap": float(gap),
        "warnings": reasons,
    }
    alerts = [
        f"the importance-sampling correction is unreliable ({reason}); raise "
        "importance_samples or n_steps, use a sigma-integrated prior ('slab', 'g') whose "
        "chains need no proposal, or read variational_inclusion_probs_"
        for reason in reasons
    ]
    intercept = float(y.mean() - X.mean(axis=0) @ res.coef_mean)
    return CorrectedPosterior(
        res.inclusion_probs, res.model_size_probs, diagnostics, coef=(res.coef_mean, intercept),
        attributes={"pareto_k_": res.pareto_k, "importance_ess_": res.ess}, alerts=alerts,
    )  # fmt: skip


def enumerate_structures(est, X, y, offset=None) -> tuple[Enumeration, ModelScorer]:
    """The exact posterior over all gate structures of ``est`` (an :class:`~l0bayes.
    L0Regression`; X, y checked), with its scorer: conjugate marginal likelihoods (Gaussian;
    per group with ``groups``) or Laplace ones (other families)."""
    groups = None if est.groups is None else check_groups(est.groups, X.shape[1])
    G = n_gates(est.groups, X.shape[1])
    pi = prior_inclusion(est, G, getattr(est, "n_samples_", math.inf))
    if est.family != "gaussian":
        scorer = LaplaceScorer(X, y, est.family, float(est.slab_scale), pi, offset, groups)
        return laplace_enumerate(scorer, max_models=2**20), scorer
    scorer = conjugate_scorer(est, SufficientStats.of(GaussianStats.from_checked(X, y)), pi, groups)
    return enumerate_models(scorer), scorer


def conjugate_scorer(
    settings, stats: GaussianStats, pi: PriorInclusion, groups: np.ndarray | None = None
) -> ConjugateScorer:
    r"""The log marginal likelihood plus log model prior of Gaussian supports under the declared
    conjugate prior of ``settings``,
    :math:`\log p(y \mid \gamma) + \log p(|\gamma|)`, with the model-size prior of
    :math:`\pi` over the G gates (one per column, or one per group of checked ``groups``)."""
    G = stats.p if groups is None else int(groups.max()) + 1
    log_size = log_prior_by_size(check_prior_inclusion(pi), G)
    prior = conjugate_prior(settings)
    if groups is None:
        return ConjugateScorer(stats, prior, log_size)
    return GroupedScorer(stats, prior, log_size, groups)


def correct(
    settings, X: np.ndarray, y: np.ndarray, offset, relaxed: Relaxation, groups,
    guide_probs: np.ndarray, noise_scale: float | None,
) -> CorrectedPosterior | None:  # fmt: skip
    """The declared posterior that replaces the guide's PIPs in a ``penalty="bayes"`` fit of
    ``settings`` (an ``L0Regression``) on checked ``X``, ``y``, ``offset`` and ``groups``,
    by the correction of :func:`~l0bayes.linear_model.params.correction`; ``relaxed`` is the
    relaxation, ``guide_probs`` and ``noise_scale`` the guide's PIPs per column and σ. None
    for ``correction="none"`` (the guide's PIPs stay)."""
    n, p = X.shape
    G = n_gates(groups, p)
    correction, gates = chosen_correction(settings, p), relaxed.gates
    if correction == "psis":
        pi = prior_inclusion(settings, p, n)
        return importance_correction(settings, X, y, guide_probs, noise_scale, pi)
    if correction == "enumerate" and settings.prior == "raw":
        pi = prior_inclusion(settings, p, n)
        return raw_enumeration_correction(settings, X, y, noise_scale, pi, gates)[0]
    if correction == "enumerate" and settings.family == "gaussian":
        post, scorer = enumerate_structures(settings, X, y)
        return enumeration_correction(post, scorer, gates, settings.seed, groups)
    pi = prior_inclusion(settings, G, n)
    if correction == "mc3" and settings.family == "gaussian":
        return chain_correction(settings, X, y, groups, pi, gates, relaxed.gate_probs)
    if correction == "none":
        return None
    scorer = LaplaceScorer(X, y, settings.family, float(settings.slab_scale), pi, offset, groups)
    return laplace_correction(settings, scorer, correction, gates, groups)


def enumerated_posterior(
    settings, X: np.ndarray, y: np.ndarray, offset, groups
) -> tuple[CorrectedPosterior, object | None]:
    """``method="exact"``: the posterior of ``settings`` (an ``L0Regression``) over all gate
    structures of checked ``X``, ``y``, ``offset`` and ``groups``, enumerated without SVI
    (raw slab: :func:`raw_enumeration_correction`, which also returns its
    :class:`~l0bayes.linear_model.exact.ExactPosterior`; else :func:`enumerate_structures`
    and None)."""
    pi = prior_inclusion(settings, n_gates(groups, X.shape[1]), X.shape[0])
    if settings.prior == "raw":
        return raw_enumeration_correction(settings, X, y, settings.noise_scale, pi, None)
    enumeration, _ = enumerate_structures(settings, X, y, offset)
    method = "enumerate" if settings.family == "gaussian" else "laplace-enumerate"
    post = CorrectedPosterior(
        enumeration.inclusion_probs, enumeration.model_size_probs,
        {"method": method, "warnings": []}, per_gate=groups is not None,
        top_models=widen_top_models(enumeration.top_models, groups),
    )  # fmt: skip
    return post, None


__all__ = [
    "GUIDE_DRAWS",
    "MAX_PIP_SE",
    "CorrectedPosterior",
    "chain_correction",
    "chain_diagnostics",
    "conjugate_scorer",
    "correct",
    "enumerate_structures",
    "enumerated_posterior",
    "enumeration_correction",
    "guide_models",
    "importance_correction",
    "laplace_correction",
    "raw_enumeration_correction",
    "run_model_chains",
    "widen_top_models",
]
