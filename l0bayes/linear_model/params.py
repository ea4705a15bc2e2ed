r"""The hyper-parameters of :class:`~l0bayes.linear_model.estimator.L0Regression`: their
checks (one ``ValueError`` naming the argument, before anything is fitted) and what they
decide (the prior on inclusion, the slab, λ, the fitting method and the PIP correction).

Every function reads the estimator's parameters (``settings``, any object with the
attributes of :class:`~l0bayes.linear_model.estimator.L0Regression`'s ``__init__``) and
returns a value; none of them changes ``settings``.

λ per included coefficient (nats), :func:`code_cost`:

.. math::

    \lambda_{\rm AIC} = 1, \quad \lambda_{\rm BIC} = \tfrac12 \log n, \quad
    \lambda_{\rm bayes} = \log\frac{1 - \pi}{\pi}

(``"aicc"`` relaxes with AIC's λ; the certified search then minimises AICc itself).
"""

from __future__ import annotations

import math
from numbers import Real

import torch.distributions as tdist

from l0bayes.device import resolve_device
from l0bayes.distributions import check_gate_hyperparameters
from l0bayes.linear_model.laplace import ENUMERATION_LIMIT as LAPLACE_ENUMERATION_LIMIT
from l0bayes.linear_model.marginal_likelihood import GPrior, HyperGPrior, Prior, StandardizedSlab
from l0bayes.linear_model.model_size import (
    PriorInclusion,
    beta_from_model_size,
    check_prior_inclusion,
)
from l0bayes.linear_model.model_space import SAMPLERS
from l0bayes.linear_model.selection import check_groups
from l0bayes.validation import FAMILIES, check_choice, check_count, check_positive

PENALTIES = ("aic", "bic", "aicc", "bayes")
#: Largest p for which the Bernoulli family's best subset is found by exhaustive search.
BERNOULLI_EXHAUSTIVE_LIMIT = 12
METHODS = ("auto", "svi", "exact")
#: The slab priors of ``penalty="bayes"`` (``L0Regression``'s docstring).
PRIORS = ("slab", "g", "hyper-g", "hyper-g/n", "raw")
#: How the guide's PIPs are corrected (Gaussian family): ``"auto"`` enumerates up to
#: :data:`ENUMERATION_LIMIT` features and runs the model-space chains beyond (``prior="raw"``:
#: enumeration up to :data:`RAW_ENUMERATION_LIMIT`, PSIS beyond).
#: Non-Gaussian families (``penalty="bayes"``): ``"auto"`` and ``"laplace"`` enumerate all
#: models with Laplace scores up to :data:`~l0bayes.linear_model.laplace.ENUMERATION_LIMIT`
#: gates and run MC3 on the Laplace scores beyond; ``"enumerate"``/``"mc3"`` force either.
CORRECTIONS = ("auto", "enumerate", "mc3", "psis", "laplace", "none")
#: Largest p that ``correction="auto"`` enumerates with ``prior="raw"`` (2^20 models, about
#: 2.5 s on one CPU thread with :func:`l0bayes.linear_model.exact.exact_posterior`).
RAW_ENUMERATION_LIMIT = 20
#: Largest p that ``correction="auto"`` enumerates (2^16 = 65,536 models, under a second).
ENUMERATION_LIMIT = 16
#: The most gates (or groups) that ``method="exact"`` or ``correction="enumerate"`` enumerates.
EXACT_LIMIT = 20
#: The largest ``penalty`` λ accepted (nats per coefficient): above it every fit on fewer than
#: 6e13 rows selects the empty model, and λ·k overflows in the relaxation's code cost.
MAX_PENALTY = 1e15
#: The most SVI steps accepted: the losses of 1e8 steps take 0.8 GB and days of CPU time.
MAX_STEPS = 100_000_000
#: The range of ``slab_scale`` (prior sd of a standardised coefficient in units of σ) with
#: ``penalty="bayes"``: outside it the slab is numerically a point mass at 0 or flat (g = n·s²
#: under- or overflows in the Bayes factors).
SLAB_SCALE_RANGE = (1e-8, 1e8)


# ------------------------------------------------------------------------------ checks
def check_penalty(penalty: object) -> None:
    """A penalty name of :data:`PENALTIES` or a finite λ in [0, :data:`MAX_PENALTY`]."""
    if isinstance(penalty, str):
        if penalty not in PENALTIES:
            raise ValueError(f"penalty must be one of {PENALTIES} or a float >= 0, got {penalty!r}")
        return
    if isinstance(penalty, bool) or not isinstance(penalty, Real) or not math.isfinite(penalty):
        raise ValueError(f"penalty must be one of {PENALTIES} or a finite float, got {penalty!r}")
    if penalty < 0:
        raise ValueError(
            f"penalty (lambda, nats per coefficient) must be >= 0, got {penalty}; "
            "use 'aic' (1) or 'bic' (log(n)/2)"
        )
    if penalty > MAX_PENALTY:
        raise ValueError(
            f"penalty (lambda, nats per coefficient) must be <= {MAX_PENALTY:g}, got {penalty:g}: "
            "a coefficient gains at most 16 n nats of log-likelihood (RSS down to round-off), "
            "so any larger penalty selects the empty model on every data set"
        )


def beta_tuple(prior_inclusion: object) -> object:
    """Accept ``pyro.distributions.Beta(a, b)`` as ``("beta", a, b)``; pass others through."""
    if isinstance(prior_inclusion, tdist.Beta):
        if prior_inclusion.batch_shape != ():
            raise ValueError("a Beta hyperprior on prior_inclusion must be scalar")
        a, b = prior_inclusion.concentration1, prior_inclusion.concentration0
        return ("beta", float(a), float(b))
    return prior_inclusion


def _check_inclusion(s) -> None:
    """``prior_inclusion``, ``expected_model_size`` and ``concentration`` (p from the data)."""
    if s.prior_inclusion is not None and s.expected_model_size is not None:
        raise ValueError(
            "give prior_inclusion or expected_model_size, not both (expected_model_size=M "
            "sets prior_inclusion = M / p)"
        )
    if s.prior_inclusion is not None:
        prior = check_prior_inclusion(beta_tuple(s.prior_inclusion))
        if isinstance(prior, tuple) and s.penalty != "bayes":
            raise ValueError("a Beta hyperprior on prior_inclusion needs penalty='bayes'")
    if s.concentration is not None:
        check_positive("concentration", s.concentration)
        if s.expected_model_size is None:
            raise ValueError("concentration needs expected_model_size (the prior mean of k)")


def _check_slab(s) -> None:
    """``slab_scale``, ``prior``, ``correction`` and the combinations they allow."""
    check_positive("slab_scale", s.slab_scale)
    low, high = SLAB_SCALE_RANGE
    if s.penalty == "bayes" and not low <= s.slab_scale <= high:
        raise ValueError(
            f"slab_scale must lie in [{low:g}, {high:g}] (the prior sd of a standardised "
            f"coefficient, in units of σ), got {s.slab_scale:g}: beyond it the slab is "
            "numerically a point mass at 0 or flat"
        )
    if s.prior not in PRIORS:
        raise ValueError(f"prior must be one of {PRIORS}, got {s.prior!r}")
    if s.correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {s.correction!r}")
    if s.family != "gaussian" and s.penalty == "bayes" and s.prior != "slab":
        raise ValueError(
            f"family={s.family!r} with penalty='bayes' has the standardised slab only "
            f"(prior='slab', the Laplace-corrected PIPs), got prior={s.prior!r}"
        )
    if s.correction == "psis" and s.prior != "raw":
        raise ValueError(
            "correction='psis' weighs with the raw-unit slab's marginal likelihood: it needs "
            "prior='raw'; the other priors are corrected by 'enumerate' or 'mc3'"
        )
    if s.correction == "mc3" and s.prior == "raw" and s.family == "gaussian":
        raise ValueError(
            "correction='mc3' runs over a σ-integrated conjugate prior; prior='raw' is "
            "corrected by 'enumerate' (p <= 20) or 'psis'"
        )


def _check_noise(s) -> None:
    """``noise_scale``: a known σ of the Gaussian raw slab only."""
    if s.noise_scale is None:
        return
    check_positive("noise_scale", s.noise_scale)
    if s.penalty != "bayes":
        raise ValueError(
            "noise_scale is used by penalty='bayes'; AIC/BIC-type penalties estimate the "
            "noise scale (as the criteria do): drop noise_scale or use penalty='bayes'"
        )
    if s.family != "gaussian":
        raise ValueError("noise_scale applies to family='gaussian' only")
    if s.prior != "raw":
        raise ValueError(
            f"prior={s.prior!r} integrates the noise scale out (Jeffreys prior): "
            "drop noise_scale, or use prior='raw' for a known noise sd"
        )


def _check_optimiser(s) -> None:
    """The SVI and search settings, and the device."""
    check_count("importance_samples", s.importance_samples, minimum=0)
    check_count("n_steps", s.n_steps, maximum=MAX_STEPS)
    check_count("num_particles", s.num_particles)
    check_count("seed", s.seed, minimum=0, maximum=2**32 - 1)  # numpy and torch seeds
    check_positive("lr", s.lr)
    if s.time_limit is not None:
        check_positive("time_limit", s.time_limit)
    if s.batch_size is not None:
        check_count("batch_size", s.batch_size)
    check_gate_hyperparameters(s.temperature, (-0.1, 1.1))
    resolve_device(s.device)


def check_params(settings, n: int, p: int) -> None:
    """Every hyper-parameter of ``settings`` for data of n rows and p (non-constant)
    columns; raises a ``ValueError`` naming the first one that is invalid."""
    if settings.family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {settings.family!r}")
    if settings.method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {settings.method!r}")
    check_penalty(settings.penalty)
    _check_inclusion(settings)
    m = settings.expected_model_size
    if m is not None and not (isinstance(m, Real) and 0 < m < p):
        raise ValueError(f"expected_model_size must lie strictly between 0 and p = {p}, got {m!r}")
    _check_slab(settings)
    if settings.correction == "enumerate" and p > EXACT_LIMIT:
        raise ValueError(f"correction='enumerate' enumerates 2^p models: p = {p} > 20")
    if settings.chain_iterations is not None:
        check_count("chain_iterations", settings.chain_iterations, minimum=10)
    check_choice("chain_sampler", settings.chain_sampler, SAMPLERS)
    _check_noise(settings)
    _check_optimiser(settings)


def fits_from_stats(settings) -> bool:
    """Whether this configuration fits from the sufficient statistics (``L0Regression``'s
    docstring): Gaussian, an information-criterion penalty, SVI or auto, full batch, no
    groups."""
    return (
        settings.family == "gaussian"
        and settings.penalty != "bayes"
        and settings.method in ("auto", "svi")
        and settings.batch_size is None
        and settings.groups is None
    )


def check_stats_path(settings, method: str) -> None:
    """Refuse ``fit_chunks``/``partial_fit`` (``method``) where :func:`fits_from_stats` is
    False."""
    check_penalty(settings.penalty)
    if not fits_from_stats(settings):
        raise ValueError(
            f"{method} fits from sufficient statistics: it needs family='gaussian', an "
            "information-criterion penalty ('aic', 'bic', 'aicc' or a float), "
            f"method='auto' or 'svi' and batch_size=None (got family={settings.family!r}, "
            f"penalty={settings.penalty!r}, method={settings.method!r}, "
            f"batch_size={settings.batch_size!r}); use fit(X, y) otherwise"
        )


def check_exact(settings, n_gates: int) -> None:
    """Refuse ``method="exact"`` where it cannot enumerate: an information-criterion penalty,
    more than :data:`EXACT_LIMIT` gates, or the raw slab without a known σ, on groups or
    another family."""
    if settings.penalty != "bayes":
        raise ValueError(
            "method='exact' enumerates the posterior of penalty='bayes'; an information-"
            "criterion penalty is found by the certified search (method='auto' or 'svi')"
        )
    if n_gates > EXACT_LIMIT:
        raise ValueError(f"method='exact' enumerates 2^G models: G = {n_gates} gates > 20")
    if settings.prior != "raw":
        return
    if settings.family != "gaussian" or settings.groups is not None:
        raise ValueError("prior='raw' is the Gaussian slab on single columns")
    if settings.noise_scale is None:
        raise ValueError(
            "method='exact' with prior='raw' needs a known noise_scale; the other priors "
            "integrate it out"
        )


# --------------------------------------------------------------------------- decisions
def code_cost(penalty: str | float, n: int, pi: PriorInclusion) -> tuple[float, str]:
    """λ per coefficient (module docstring) and the KL mode of the relaxation (for a Beta
    hyperprior on π: at its mean)."""
    if isinstance(pi, tuple):
        pi = pi[1] / (pi[1] + pi[2])
    if penalty in ("aic", "aicc"):  # aicc: the relaxation uses AIC's λ, the search AICc
        return 1.0, "l0"
    if penalty == "bic":
        return 0.5 * math.log(n), "l0"
    if penalty == "bayes":
        return math.log1p(-pi) - math.log(pi), "bayes"
    return float(penalty), "l0"


def prior_inclusion(settings, p: int, n: float = math.inf) -> PriorInclusion:
    """The prior on inclusion of p gates: a float π or ``("beta", a, b)``; by default π = 1/2,
    or, with ``penalty="bayes"`` and p > n - 2 (n rows), the beta-binomial(1, 1)."""
    if settings.expected_model_size is not None:
        if settings.concentration is not None:
            return beta_from_model_size(settings.expected_model_size, settings.concentration, p)
        return float(settings.expected_model_size) / p
    if settings.prior_inclusion is not None:
        return beta_tuple(settings.prior_inclusion)
    return ("beta", 1.0, 1.0) if settings.penalty == "bayes" and p > n - 2 else 0.5


def conjugate_prior(settings) -> Prior:
    r"""The slab of ``prior`` as a conjugate prior with :math:`\sigma` integrated out."""
    if settings.prior == "slab":
        return StandardizedSlab(scale=float(settings.slab_scale))
    if settings.prior == "g":
        return GPrior()
    return HyperGPrior(per_n=settings.prior == "hyper-g/n")


def n_gates(groups: object, p: int) -> int:
    """Gates of the model: one per column, or one per group with ``groups``."""
    return p if groups is None else int(check_groups(groups, p).max()) + 1


def search_criterion(penalty: str | float, n: int, p: int) -> str | float:
    """The criterion the certified search minimises: the penalty's, except the extended BIC
    for ``"aic"``/``"bic"`` when p ≥ n (``L0Regression``'s docstring)."""
    if penalty in ("aic", "bic") and p >= n:
        return "ebic"
    return penalty if isinstance(penalty, str) else float(penalty)


def correction(settings, p: int) -> str:
    """The PIP correction of a ``penalty="bayes"`` fit over p gates (``correction``); for the
    non-Gaussian families ``"laplace"`` (``"auto"``), ``"enumerate"`` or ``"mc3"``, all with
    Laplace scores."""
    chosen = settings.correction
    if chosen == "none":
        return "none"
    if settings.family != "gaussian":
        return "laplace" if chosen in ("auto", "laplace") else chosen
    if chosen == "laplace":
        return "enumerate" if p <= ENUMERATION_LIMIT else "mc3"
    if chosen != "auto":
        return chosen
    if settings.prior == "raw":
        if p <= RAW_ENUMERATION_LIMIT:
            return "enumerate"
        return "psis" if settings.importance_samples else "none"
    return "enumerate" if p <= ENUMERATION_LIMIT else "mc3"


def method(settings, p: int) -> str:
    """The method of a fit on p columns (``method``): ``"auto"`` enumerates without SVI where
    the answer would be the enumeration of the correction anyway."""
    if settings.method != "auto":
        return settings.method
    if settings.penalty != "bayes" or settings.correction not in ("auto", "enumerate", "laplace"):
        return "svi"
    if settings.prior == "raw" and settings.noise_scale is None:
        return "svi"  # the raw slab's enumeration needs the guide's noise estimate
    G = n_gates(settings.groups, p)
    if settings.family != "gaussian":
        return "exact" if G <= LAPLACE_ENUMERATION_LIMIT else "svi"
    return "exact" if correction(settings, G) == "enumerate" else "svi"


__all__ = [
    "BERNOULLI_EXHAUSTIVE_LIMIT",
    "CORRECTIONS",
    "ENUMERATION_LIMIT",
    "EXACT_LIMIT",
    "MAX_PENALTY",
    "MAX_STEPS",
    "METHODS",
    "PENALTIES",
    "PRIORS",
    "RAW_ENUMERATION_LIMIT",
    "SLAB_SCALE_RANGE",
    "beta_tuple",
    "check_exact",
    "check_params",
    "check_penalty",
    "check_stats_path",
    "code_cost",
    "conjugate_prior",
    "correction",
    "fits_from_stats",
    "method",
    "n_gates",
    "prior_inclusion",
    "search_criterion",
]
