r"""``L0Regression``: Bayesian variable selection with L0 gates, as a scikit-learn estimator.

Penalties, in log-likelihood units per included coefficient (the intercept is always in):

===========  ===========================================  ====================================
penalty      objective minimised over the gates           model chosen
===========  ===========================================  ====================================
``"aic"``    :math:`-\log L + 1\cdot E\|z\|_0`            AIC (:math:`\lambda = 1`)
``"bic"``    :math:`-\log L + \tfrac12\log n\, E\|z\|_0`  BIC (:math:`\lambda=\tfrac12\log n`)
``"aicc"``   as ``"aic"``; the search minimises AICc      AICc (Hurvich & Tsai)
float λ ≥ 0  :math:`-\log L + \lambda\, E\|z\|_0`         L0-penalised likelihood
``"bayes"``  negative ELBO of the spike-and-slab model    median-probability model
===========  ===========================================  ====================================

With an information-criterion penalty (``"aic"``, ``"bic"``, ``"aicc"``, float) the
coefficients have a flat prior (maximum likelihood), the noise scale is estimated, and the
relaxed (hard concrete) solution is polished by an exact local search on the criterion itself
(add / drop / swap one feature, each move scored by an exact refit;
:func:`l0bayes.linear_model.selection.local_search`), then, for the Gaussian family, handed as
the incumbent to a branch and bound that proves which subset minimises the criterion
(``optimal_``, ``criterion_gap_``). A model needs at least
:data:`~l0bayes.linear_model.subset_search.MIN_RESIDUAL_DF` residual degrees of freedom to be
judged at all (:math:`\hat\sigma \to 0` near an exact fit), and when p ≥ n the search uses
the extended BIC of Chen & Chen (2008) within a size budget
(:func:`~l0bayes.linear_model.subset_search.admissible_max_size`), with a warning: selected
from p ≥ n candidates, pure noise otherwise fits exactly under AIC or BIC.
Relaxed
gates alone get stuck: a gate that opens early keeps its coefficient, and the coefficient keeps
the gate open. The polish removes that failure mode; ``relaxed_support_`` keeps the relaxed
answer for comparison.

For the Gaussian family with an information-criterion penalty (and ``batch_size=None``) every
step of the fit sees the data only through the sufficient statistics
(:class:`~l0bayes.linear_model.subset_search.GaussianStats`: n, the means, the centred
:math:`X^\top X`, :math:`X^\top y`, :math:`y^\top y`), accumulated once in :math:`O(np^2)`:
the SVI relaxation uses :func:`~l0bayes.linear_model.model.regression_model_stats`
(:math:`O(p^2)` per step, the same ELBO as the per-observation model), the certified search,
the OLS refit and the criteria are computed from the same statistics.  So
:meth:`L0Regression.fit_chunks` fits data that do not fit in memory, chunk by chunk, with the
same answer as :meth:`L0Regression.fit` on the concatenated rows, and
:meth:`L0Regression.partial_fit` adds a chunk and refits.  On this path the relaxation stops
early once its support has been stable for ``max(RELAXATION_PATIENCE, n_steps // 10)`` steps
(``losses_`` shows how many ran) when ``polish=True``, since the certified search, which also
runs its own add/drop/swap local search from the relaxed support, decides the answer;
``relaxed_support_`` is the relaxation's support at that point.

With ``penalty="bayes"`` the model is the spike-and-slab regression with
:math:`P(z_j \ne 0) = \pi` (or a model-size prior) and one of these slabs (``prior``), each
with the flat intercept and, except ``"raw"``, Jeffreys' :math:`p(\sigma) \propto 1/\sigma`
integrated out, so that no ``noise_scale`` is needed and **no answer depends on the units of a
column** (a column in millimetres gives the PIPs of the same column in metres):

* ``"slab"`` (default): :math:`\beta_j s_{x_j} \mid z_j \ne 0, \sigma \sim
  \mathcal N(0, \sigma^2\,\text{slab\_scale}^2)`, i.e. ``slab_scale`` is the prior sd of a
  coefficient on *standardised* columns, in units of the noise sd;
* ``"g"``: Zellner's g-prior with :math:`g = n` (the unit-information prior). Its Bayes
  factors track BIC's for moderate :math:`R^2` but stay bounded as :math:`R^2 \to 1` (the
  information paradox of Liang et al. 2008): on Ecdat's ``Forward`` (n = 276, 8 columns,
  :math:`R^2 = 0.99999`) BIC prefers the full model by 152 units to every model with one
  column fewer, while :math:`g = n` gives the full model posterior probability
  :math:`6 \times 10^{-8}`; hyper-g gives it 1.0;
* ``"hyper-g"`` and ``"hyper-g/n"``: :math:`g` integrated against the hyper-g prior (a = 3)
  of Liang et al. (2008), the second consistent for model selection;
* ``"raw"``: :math:`\beta_j \mid z_j \ne 0 \sim \mathcal N(0, \text{slab\_scale}^2)` on
  the coefficients of ``X`` *as given* with a known or estimated :math:`\sigma` (the answer
  depends on the units; the prior of l0bayes 0.1).

*Standardised* means centred and scaled by the population standard deviation,
:math:`x^\ast_{ij} = (x_{ij} - \bar x_j) / s_{x_j}` with :math:`s_{x_j}^2 = \frac1n \sum_i
(x_{ij} - \bar x_j)^2`, so that :math:`x_j^{\ast\top} x^\ast_j = n`. In full, the default
model is

.. math::

    y_i = b + \sum_j x^\ast_{ij} \beta^\ast_j + \varepsilon_i, \quad
    \varepsilon_i \sim \mathcal N(0, \sigma^2), \quad p(b) \propto 1, \quad
    p(\sigma) \propto 1/\sigma, \quad
    \beta^\ast_j \mid z_j \ne 0, \sigma \sim \mathcal N(0, \text{slab\_scale}^2 \sigma^2),
    \quad \beta^\ast_j = 0 \text{ if } z_j = 0,

with :math:`\beta_j = \beta^\ast_j / s_{x_j}` reported on X's scale.  The models compared are
those with at most n - 2 columns
(:func:`~l0bayes.linear_model.marginal_likelihood.max_model_size`), under every prior: with
p > n - 2 features the chains explore that space (as BAS does), and the default prior on
inclusion becomes the beta-binomial(1, 1) (``prior_inclusion``).

The SVI fit gives a hard concrete guide over the models; for the Gaussian family its PIPs are
then replaced by the posterior's under the declared prior (:mod:`l0bayes.linear_model.
marginal_likelihood`): exactly, by enumerating all :math:`2^p` models, when
:math:`p \le` :data:`ENUMERATION_LIMIT`; else by several MC3 chains over the model space
(:mod:`l0bayes.linear_model.model_space`) started from the guide's draws and from the empty
and full models, whose diagnostics (chain agreement, :math:`\hat R`, ESS, a guide that never
visited the chains' best model) are stored in ``pip_diagnostics_`` and raise a warning naming
the diagnostic whenever a PIP may be wrong. With ``prior="raw"`` (:math:`\sigma` fixed at its
estimate) the correction enumerates the :math:`2^p` models of that prior for
:math:`p \le` :data:`RAW_ENUMERATION_LIMIT` (:func:`l0bayes.linear_model.exact.exact_posterior`);
beyond, it is the Pareto-smoothed importance sampling of :mod:`l0bayes.linear_model.importance`,
which warns when its :math:`\hat k > 0.7`, its ESS is low, or a local search from its best
draw finds a model the guide never came near (``guide_missed_mass``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, replace
from numbers import Real

import numpy as np
import pyro
import torch
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data
from tqdm.auto import tqdm

from l0bayes.device import resolve_device
from l0bayes.distributions import DEFAULT_TEMPERATURE, HardConcrete, check_gate_hyperparameters
from l0bayes.linear_model.ic_weights import inclusion_weights
from l0bayes.linear_model.laplace import (
    ENUMERATION_LIMIT as LAPLACE_ENUMERATION_LIMIT,
)
from l0bayes.linear_model.laplace import (
    LaplaceScorer,
    laplace_enumerate,
    laplace_mc3,
)
from l0bayes.linear_model.marginal_likelihood import (
    Enumeration,
    GPrior,
    HyperGPrior,
    Prior,
    StandardizedSlab,
    SufficientStats,
    max_model_size,
)
from l0bayes.linear_model.model import (
    RegressionPrior,
    RegressionStats,
    regression_guide,
    regression_guide_stats,
    regression_model,
    regression_model_stats,
)
from l0bayes.linear_model.model_size import (
    PriorInclusion,
    beta_from_model_size,
    check_prior_inclusion,
    log_prior_by_size,
    pi_posterior,
    pmf_interval,
    poisson_binomial,
)
from l0bayes.linear_model.model_space import (
    MAX_KHAT,
    MIN_ESS,
    SAMPLERS,
    ConjugateScorer,
    GroupedScorer,
    MC3Result,
    ModelScorer,
    default_starts,
    diagnose,
    enumerate_models,
    run_chains,
)
from l0bayes.linear_model.search import (
    RSS_FLOOR,
    admissible_max_size,
    certified_best_subset,
    gaussian_criteria,
)
from l0bayes.linear_model.selection import (
    InformationCriteria,
    best_subset,
    check_groups,
    group_subset,
    information_criteria,
    local_search,
)
from l0bayes.linear_model.stats import GaussianStats
from l0bayes.linear_model.svi import fit_svi
from l0bayes.validation import (
    COUNT_FAMILIES,
    FAMILIES,
    as_float_array,
    check_choice,
    check_count,
    check_finite,
    check_not_constant,
    check_offset,
    check_positive,
    check_Xy,
    feature_names,
)

PENALTIES = ("aic", "bic", "aicc", "bayes")
#: Largest p for which the Bernoulli family's best subset is found by exhaustive search.
BERNOULLI_EXHAUSTIVE_LIMIT = 12
METHODS = ("auto", "svi", "exact")
#: The slab priors of ``penalty="bayes"`` (module docstring).
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
#: Guide draws used as starting models of the MC3 chains and for the missed-mass check.
GUIDE_DRAWS = 256
#: The PSIS correction warns (``pip_se``) when a PIP's Monte Carlo standard error exceeds
#: this: half the 0.05 of an acceptable error, so that two standard errors stay within it.
MAX_PIP_SE = 0.025
#: The relaxation of the sufficient-statistics path (Gaussian, IC penalty, ``polish=True``)
#: stops once its support has been stable for ``max(RELAXATION_PATIENCE, n_steps // 10)``
#: steps: the certified search decides the answer from any incumbent.
RELAXATION_PATIENCE = 150
#: The largest ``penalty`` λ accepted (nats per coefficient): above it every fit on fewer than
#: 6e13 rows selects the empty model, and λ·k overflows in the relaxation's code cost.
MAX_PENALTY = 1e15
#: The most SVI steps accepted: the losses of 1e8 steps take 0.8 GB and days of CPU time.
MAX_STEPS = 100_000_000
#: The range of ``slab_scale`` (prior sd of a standardised coefficient in units of σ) with
#: ``penalty="bayes"``: outside it the slab is numerically a point mass at 0 or flat (g = n·s²
#: under- or overflows in the Bayes factors).
SLAB_SCALE_RANGE = (1e-8, 1e8)
#: Columns of X are standardised from their second moments: a column whose spread is below the
#: first bound, or whose values exceed the second, has squares that under- or overflow float64.
COLUMN_SCALE_RANGE = (1e-140, 1e140)


@dataclass(frozen=True)
class _Standardizer:
    """Column centring/scaling of X (and of y for the Gaussian family)."""

    x_mean: np.ndarray
    x_scale: np.ndarray
    y_mean: float
    y_scale: float

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, family: str) -> _Standardizer:
        x_scale = X.std(axis=0)
        if family == "gaussian":
            return cls(X.mean(axis=0), x_scale, float(y.mean()), float(y.std()) or 1.0)
        return cls(X.mean(axis=0), x_scale, 0.0, 1.0)

    def coef_to_original(self, coef_std: np.ndarray, intercept_std: float):
        coef = coef_std * self.y_scale / self.x_scale
        intercept = self.y_mean + self.y_scale * intercept_std - float(coef @ self.x_mean)
        return coef, intercept


class L0Regression(RegressorMixin, BaseEstimator):
    r"""Bayesian variable selection for linear and logistic regression with L0 gates.

    Each coefficient :math:`\beta_j = z_j\theta_j` has a gate :math:`z_j` with a hard concrete
    variational posterior and a spike-and-slab prior; fitting maximises the ELBO with Pyro's
    SVI (:mod:`l0bayes.linear_model.model` holds the model and guide as plain Pyro functions).

    The optimiser sees standardised columns (X centred and scaled to unit sd, and y too for the
    Gaussian family), so features on scales from 1e-3 to 1e3 fit as well as unit-scale ones;
    every coefficient is reported on X's own scale. A constant column carries nothing the
    intercept does not: it is left out with a warning (coefficient 0, inclusion probability 0;
    ``exact_`` describes the fit without it). Invalid data or settings raise ``ValueError``
    naming the argument before anything is fitted.

    :param family: ``"gaussian"`` (linear regression) or ``"bernoulli"`` (logistic, y in {0,1}).
    :param penalty: ``"bic"``, ``"aic"``, a float :math:`\lambda \ge 0` (nats per included
        coefficient), or ``"bayes"`` (full spike-and-slab posterior).
    :param prior_inclusion: :math:`\pi` for ``"bayes"`` (default 0.5, i.e. uniform over
        models), or a Beta hyperprior ``("beta", a, b)`` / ``pyro.distributions.Beta(a, b)``
        (the beta-binomial prior on model size; :math:`\pi` is then a latent variable). With
        more features than n - 2 the default is the beta-binomial(1, 1), uniform over model
        sizes (Scott & Berger 2010; BAS's default): the uniform prior over models would put
        nearly all its mass on sizes beyond the n - 2 columns the data can judge.
    :param expected_model_size: "about M of my p features matter": :math:`\pi = M / p`, or with
        ``concentration`` :math:`c` the hyperprior :math:`\mathrm{Beta}(cM/p, c(1-M/p))`
        (:func:`l0bayes.linear_model.model_size.beta_from_model_size`).
    :param prior: the slab of ``"bayes"``: ``"slab"`` (default), ``"g"``, ``"hyper-g"``,
        ``"hyper-g/n"`` or ``"raw"`` (module docstring).
    :param slab_scale: prior sd of an included coefficient (``"bayes"``): on standardised
        columns in units of :math:`\sigma` for ``prior="slab"``, on X's own scale for
        ``"raw"``; unused by the g-priors.
    :param noise_scale: known noise sd (Gaussian, ``prior="raw"`` only); ``None`` estimates
        it. The other priors integrate :math:`\sigma` out.
    :param correction: how the guide's PIPs are corrected (Gaussian, ``"bayes"``):
        ``"auto"``, ``"enumerate"`` (exact; p ≤ 20), ``"mc3"``, ``"psis"`` (``prior="raw"``
        only) or ``"none"``.
    :param chain_iterations: iterations of each of the 4 model-space chains (``None``:
        :math:`\max(10000, 200p)` for ``"tempered"``, :math:`\max(20000, 500p)` for ``"mh"``,
        continued to twice their length, up to 8 times the first, while a diagnostic fires).
    :param chain_sampler: the model-space chains of ``correction="mc3"`` (Gaussian):
        ``"tempered"`` (default; weighted tempered Gibbs, Zanella & Roberts 2019, which moves
        every iteration) or ``"mh"`` (add/delete/swap Metropolis–Hastings, Madigan & York
        1995); see :mod:`l0bayes.linear_model.model_space`.
    :param method: ``"auto"`` (default), ``"svi"`` or ``"exact"``. ``"exact"`` enumerates the
        posterior over all :math:`2^G` gate structures without SVI (``"bayes"``, G ≤ 20 gates
        or groups; conjugate scores for the Gaussian family, Laplace scores for the others;
        ``prior="raw"`` also needs ``noise_scale``, see
        :func:`l0bayes.linear_model.exact.exact_posterior`). ``"auto"`` is ``"exact"`` where
        the answer would be that enumeration anyway (``"bayes"`` with ``correction="auto"``
        and at most :data:`ENUMERATION_LIMIT` gates, or :data:`RAW_ENUMERATION_LIMIT` with
        ``prior="raw"`` and a known ``noise_scale``), so no SVI runs whose result would be
        thrown away; likewise a Gaussian information-criterion fit (from the statistics, with
        ``polish=True``) of at most :data:`ENUMERATION_LIMIT` features runs no relaxation,
        since the certified search enumerates every support anyway (no ``losses_``,
        ``params_`` or ``relaxed_*``; ``inclusion_probs_`` are then ``ic_weights_.inclusion``);
        elsewhere ``"svi"``. ``"svi"`` always fits the hard concrete guide and
        keeps its own PIPs in ``variational_inclusion_probs_`` (the guide's PIPs on request).
    :param n_steps: SVI steps.
    :param lr: Adam learning rate.
    :param num_particles: Monte Carlo gate draws per step (vectorised).
    :param batch_size: minibatch size for the data plate (``None``: full batch).
    :param temperature: hard concrete temperature :math:`\beta`.
    :param polish: after the relaxation (IC penalties), an exact local search on the
        criterion and then the best subset: for the Gaussian family the certified
        branch and bound of :func:`l0bayes.linear_model.subset_search.certified_best_subset`
        (from the sufficient statistics), for the Bernoulli family an exhaustive search on the
        exact refit criterion when p ≤ :data:`BERNOULLI_EXHAUSTIVE_LIMIT` (beyond, the answer
        is the local search's local optimum, ``optimal_ = False``).
    :param time_limit: seconds the certified search may take (``None``: until certified);
        a search stopped early warns and reports its proven ``criterion_gap_``.
    :param importance_samples: for ``family="gaussian"``, ``penalty="bayes"``: correct the
        variational inclusion probabilities by Pareto-smoothed importance sampling with this
        many model draws from the guide, weighted by the exact conjugate marginal likelihood
        (:mod:`l0bayes.linear_model.importance`); 0 keeps the raw variational probabilities.
    :param device: ``"cpu"`` or ``"cuda"``.
    :param seed: RNG seed.
    :param progress: show a progress bar.

    Data that do not fit in memory (Gaussian family, IC penalty): :meth:`fit_chunks` reads an
    iterable of ``(X, y)`` blocks once into sufficient statistics and fits from them (the
    answer of :meth:`fit` on all the rows); :meth:`partial_fit` adds one block and refits
    (``n_chunks_`` counts the blocks).

    Fitted attributes with an IC penalty: ``optimal_`` (the selected support is the proven
    minimiser of the criterion), ``criterion_gap_`` (a proven bound, in nats of
    :math:`-\ell + \lambda k`, on how far the answer can be from the optimum: 0 when
    certified; NaN when no bound is known), ``search_`` (the search's
    :class:`~l0bayes.linear_model.subset_search.SubsetSearchResult`, Gaussian family),
    ``ic_weights_`` (Gaussian family: the criterion's weights of the supports the search
    ranks and each feature's inclusion weight, ``ic_weights_.inclusion``: Akaike weights for
    AIC, Raftery's approximation to the PIPs for BIC;
    :class:`~l0bayes.linear_model.ic_weights.InclusionWeights`). These belong to the answer;
    the relaxation's gate probabilities do not (``relaxed_inclusion_probs_``, and
    ``inclusion_probs_`` too with an IC penalty, only describe where the search started).

    Fitted attributes: ``inclusion_probs_`` (:math:`P(z_j \ne 0)`), ``selected_``,
    ``coef_``, ``intercept_``, ``noise_scale_`` (Gaussian), ``criteria_``
    (:class:`~l0bayes.linear_model.selection.InformationCriteria` of the selected model's refit),
    ``relaxed_inclusion_probs_`` (the SVI relaxation's :math:`P(z_j \ne 0)`) and
    ``relaxed_support_`` (those above 0.5), ``losses_`` (negative ELBO per step), ``lam_``
    (λ per coefficient).
    With ``"bayes"``: ``model_size_probs_`` (posterior of :math:`\sum_j 1[z_j \ne 0]`, an array
    over 0..p), ``model_size_mean_``, ``model_size_interval_`` (90%), ``prior_inclusion_mean_``
    and ``prior_inclusion_interval_`` (posterior of :math:`\pi`; a point for a fixed
    :math:`\pi`). With a correction also ``variational_inclusion_probs_`` (the guide's own)
    and ``pip_diagnostics_`` (a dict: ``method``, and for MC3 ``pip_spread``, ``rhat``,
    ``ess``, ``n_models``; ``guide_gap``, the nats by which the best model the guide drew falls
    short of the best model found; ``warnings``); for enumeration ``top_models_``; for PSIS
    ``pareto_k_`` (NaN where the guide is so concentrated that the top weights tie and no
    Pareto tail can be fitted) and ``importance_ess_``.
    """

    def __init__(
        self,
        family: str = "gaussian",
        penalty: str | float = "bic",
        prior_inclusion: float | None = None,
        expected_model_size: float | None = None,
        concentration: float | None = None,
        prior: str = "slab",
        slab_scale: float = 1.0,
        noise_scale: float | None = None,
        correction: str = "auto",
        chain_iterations: int | None = None,
        chain_sampler: str = "tempered",
        method: str = "auto",
        n_steps: int = 1500,
        lr: float = 0.05,
        num_particles: int = 8,
        batch_size: int | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
        polish: bool = True,
        time_limit: float | None = 60.0,
        importance_samples: int = 16384,
        device: str = "cpu",
        seed: int = 0,
        progress: bool = True,
        groups=None,
    ) -> None:
        self.family = family
        self.penalty = penalty
        self.prior_inclusion = prior_inclusion
        self.expected_model_size = expected_model_size
        self.concentration = concentration
        self.prior = prior
        self.slab_scale = slab_scale
        self.noise_scale = noise_scale
        self.correction = correction
        self.chain_iterations = chain_iterations
        self.chain_sampler = chain_sampler
        self.method = method
        self.n_steps = n_steps
        self.lr = lr
        self.num_particles = num_particles
        self.batch_size = batch_size
        self.temperature = temperature
        self.polish = polish
        self.time_limit = time_limit
        self.importance_samples = importance_samples
        self.device = device
        self.seed = seed
        self.progress = progress
        self.groups = groups

    # ------------------------------------------------------------------ checks
    def _check_params(self, n: int, p: int) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        _check_penalty(self.penalty)
        if self.prior_inclusion is not None and self.expected_model_size is not None:
            raise ValueError(
                "give prior_inclusion or expected_model_size, not both (expected_model_size=M "
                "sets prior_inclusion = M / p)"
            )
        if self.prior_inclusion is not None:
            prior = check_prior_inclusion(_beta_tuple(self.prior_inclusion))
            if isinstance(prior, tuple) and self.penalty != "bayes":
                raise ValueError("a Beta hyperprior on prior_inclusion needs penalty='bayes'")
        if self.concentration is not None:
            check_positive("concentration", self.concentration)
            if self.expected_model_size is None:
                raise ValueError("concentration needs expected_model_size (the prior mean of k)")
        if self.expected_model_size is not None and not (
            isinstance(self.expected_model_size, Real) and 0 < self.expected_model_size < p
        ):
            raise ValueError(
                f"expected_model_size must lie strictly between 0 and p = {p}, got "
                f"{self.expected_model_size!r}"
            )
        check_positive("slab_scale", self.slab_scale)
        low, high = SLAB_SCALE_RANGE
        if self.penalty == "bayes" and not low <= self.slab_scale <= high:
            raise ValueError(
                f"slab_scale must lie in [{low:g}, {high:g}] (the prior sd of a standardised "
                f"coefficient, in units of σ), got {self.slab_scale:g}: beyond it the slab is "
                "numerically a point mass at 0 or flat"
            )
        if self.prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {self.prior!r}")
        if self.correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {CORRECTIONS}, got {self.correction!r}")
        if self.family != "gaussian" and self.penalty == "bayes" and self.prior != "slab":
            raise ValueError(
                f"family={self.family!r} with penalty='bayes' has the standardised slab only "
                f"(prior='slab', the Laplace-corrected PIPs), got prior={self.prior!r}"
            )
        if self.correction == "psis" and self.prior != "raw":
            raise ValueError(
                "correction='psis' weighs with the raw-unit slab's marginal likelihood: it needs "
                "prior='raw'; the other priors are corrected by 'enumerate' or 'mc3'"
            )
        if self.correction == "mc3" and self.prior == "raw" and self.family == "gaussian":
            raise ValueError(
                "correction='mc3' runs over a σ-integrated conjugate prior; prior='raw' is "
                "corrected by 'enumerate' (p <= 20) or 'psis'"
            )
        if self.correction == "enumerate" and p > 20:
            raise ValueError(f"correction='enumerate' enumerates 2^p models: p = {p} > 20")
        if self.chain_iterations is not None:
            check_count("chain_iterations", self.chain_iterations, minimum=10)
        check_choice("chain_sampler", self.chain_sampler, SAMPLERS)
        if self.noise_scale is not None:
            check_positive("noise_scale", self.noise_scale)
            if self.penalty != "bayes":
                raise ValueError(
                    "noise_scale is used by penalty='bayes'; AIC/BIC-type penalties estimate the "
                    "noise scale (as the criteria do): drop noise_scale or use penalty='bayes'"
                )
            if self.family != "gaussian":
                raise ValueError("noise_scale applies to family='gaussian' only")
            if self.prior != "raw":
                raise ValueError(
                    f"prior={self.prior!r} integrates the noise scale out (Jeffreys prior): "
                    "drop noise_scale, or use prior='raw' for a known noise sd"
                )
        check_count("importance_samples", self.importance_samples, minimum=0)
        check_count("n_steps", self.n_steps, maximum=MAX_STEPS)
        check_count("num_particles", self.num_particles)
        check_count("seed", self.seed, minimum=0, maximum=2**32 - 1)  # numpy and torch seeds
        check_positive("lr", self.lr)
        if self.time_limit is not None:
            check_positive("time_limit", self.time_limit)
        if self.batch_size is not None:
            check_count("batch_size", self.batch_size)
        check_gate_hyperparameters(self.temperature, (-0.1, 1.1))
        resolve_device(self.device)

    def _validate(self, X, y) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Checked float64 ``X``, ``y`` and the mask of the non-constant columns of X."""
        _check_layout(X, y)
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True, ensure_all_finite=False)
        X, y = check_Xy(X, y, family=self.family, min_samples=3)
        if self.family == "gaussian":
            check_not_constant(y)
        keep = np.ptp(X, axis=0) > 0
        if self.groups is not None:
            check_groups(self.groups, X.shape[1])
            if not keep.all():
                raise ValueError(
                    f"X has constant columns {np.flatnonzero(~keep).tolist()}: with groups, drop "
                    "them (and their entries of groups) first"
                )
        self._check_columns(keep, X.shape[0], X.min(axis=0), X.max(axis=0))
        return X, y, keep

    def _check_columns(self, keep: np.ndarray, n: int, low: np.ndarray, high: np.ndarray) -> None:
        """Refuse an X of constant columns only, or with columns too small or large to
        standardise (:data:`COLUMN_SCALE_RANGE`; ``low``/``high`` the column extremes), check
        the settings for the columns kept, and warn about the constant columns that are left
        out (``keep`` is False for them)."""
        if not keep.any():
            raise ValueError(
                "every column of X is constant (zero variance): there is nothing to select; the "
                "model is the intercept alone (the mean of y)"
            )
        small, large = COLUMN_SCALE_RANGE
        spread, size = high - low, np.maximum(np.abs(low), np.abs(high))
        bad = keep & ((spread < small) | (size > large))
        if bad.any():
            names = getattr(self, "feature_names_in_", None)
            shown = [str(names[j]) if names is not None else int(j) for j in np.flatnonzero(bad)]
            j = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"X's columns {shown} cannot be standardised in float64: column {shown[0]} "
                f"spans {spread[j]:.3g} with values up to {size[j]:.3g} (outside "
                f"[{small:g}, {large:g}], where its squares under- or overflow); rescale them "
                "(multiply by a power of 10) before fitting"
            )
        self._check_params(n, int(keep.sum()))
        if not keep.all():
            names = getattr(self, "feature_names_in_", None)
            constant = [
                str(names[j]) if names is not None else int(j) for j in np.flatnonzero(~keep)
            ]
            warnings.warn(
                f"X has constant columns {constant} (zero variance): they "
                "duplicate the intercept and carry no information, so they are left out of the "
                "model (coefficient 0, inclusion probability 0); drop them to silence this",
                UserWarning,
                stacklevel=4,
            )

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, offset=None) -> L0Regression:
        r"""Fit the model to ``X`` (n × p) and ``y`` (n,).

        Columns of X are standardised for the optimiser and every coefficient is reported on
        X's own scale. Constant columns are left out with a warning (coefficient 0, inclusion
        probability 0).

        :param offset: ``None`` or (n,) a known term of the linear predictor,
            :math:`\eta_i = o_i + b + x_i^\top\beta` (a fit parameter, as scikit-learn's
            ``sample_weight``; it passes through ``Pipeline.fit(..., l0regression__offset=o)``).
            For counts with exposure :math:`t_i` (time at risk, population) pass
            ``offset=np.log(t)``, statsmodels' ``exposure``. Gaussian: y − o is fitted.
            :meth:`predict` takes the offset of the new rows."""
        self._reset()
        X, y, keep = self._validate(X, y)
        offset = check_offset(offset, X.shape[0])
        if offset is not None and self.family == "gaussian":
            y, offset = y - offset, None
        self.n_samples_ = X.shape[0]
        if self._fits_from_stats():
            self._fit_stats(_DataStats.from_arrays(X, y), keep)
        else:
            self._fit_columns(X[:, keep], y, offset)
        if not keep.all():
            self._restore_constant_columns(X[0], keep)
        return self

    def fit_chunks(self, chunks: Iterable[tuple[object, object]]) -> L0Regression:
        """Fit from an iterable of ``(X_chunk, y_chunk)`` blocks of rows, never holding X whole
        (Gaussian family, information-criterion penalty, ``batch_size=None``).

        The chunks are read once into the sufficient statistics (memory :math:`O(p^2)`); the
        fit is then the one :meth:`fit` makes on the concatenated rows (module docstring): the
        same ``selected_``, ``coef_`` up to round-off and the same ``criteria_``. Each chunk
        must have the same columns and at least one row, all finite; otherwise a
        ``ValueError`` names the chunk and the problem.

        :param chunks: e.g. a generator reading a file block by block.
        :returns: ``self``.
        """
        self._reset()
        self._check_stats_path("fit_chunks")
        data = None
        for index, chunk in enumerate(chunks):
            X, y = _check_chunk(chunk, index, None if data is None else data.p)
            data = _DataStats.empty(X.shape[1]) if data is None else data
            data.update(X, y)
        if data is None:
            raise ValueError("fit_chunks got no chunks; pass at least one (X, y) block of rows")
        return self._fit_accumulated(data)

    def partial_fit(self, X, y) -> L0Regression:
        """Add the rows ``(X, y)`` to the data seen so far and refit from the sufficient
        statistics of all of them (scikit-learn's ``partial_fit``: one more chunk, an updated
        model). Each call costs one pass over the new chunk and a fit in :math:`O(p^2)` per
        step, independent of the rows seen; :meth:`fit` starts afresh. Same restrictions and
        errors as :meth:`fit_chunks`."""
        self._check_stats_path("partial_fit")
        data = getattr(self, "_data_stats_", None)
        X, y = _check_chunk((X, y), getattr(self, "n_chunks_", 0), data and data.p)
        data = _DataStats.empty(X.shape[1]) if data is None else data
        data.update(X, y)
        chunks = getattr(self, "n_chunks_", 0) + 1
        self._reset()
        self._data_stats_, self.n_chunks_ = data, chunks
        return self._fit_accumulated(data)

    def _reset(self) -> None:
        """Forget the results of an earlier fit (attributes ending in ``_``)."""
        for name in [k for k in vars(self) if k.endswith("_")]:
            delattr(self, name)

    def _fits_from_stats(self) -> bool:
        """Whether this configuration fits from the sufficient statistics (module docstring)."""
        return (
            self.family == "gaussian"
            and self.penalty != "bayes"
            and self.method in ("auto", "svi")
            and self.batch_size is None
            and self.groups is None
        )

    def _check_stats_path(self, method: str) -> None:
        _check_penalty(self.penalty)
        if not self._fits_from_stats():
            raise ValueError(
                f"{method} fits from sufficient statistics: it needs family='gaussian', an "
                "information-criterion penalty ('aic', 'bic', 'aicc' or a float), "
                f"method='auto' or 'svi' and batch_size=None (got family={self.family!r}, "
                f"penalty={self.penalty!r}, method={self.method!r}, "
                f"batch_size={self.batch_size!r}); use fit(X, y) otherwise"
            )

    def _fit_accumulated(self, data: GaussianStats) -> L0Regression:
        """The checks of :meth:`_validate`, from the statistics, then the fit."""
        if data.n < 3:
            raise ValueError(f"need at least 3 rows in all, the chunks hold n = {data.n}")
        if data.y_min == data.y_max:
            check_not_constant(np.array([data.y_min, data.y_max]))
        keep = data.x_max > data.x_min
        self._check_columns(keep, data.n, data.x_min, data.x_max)
        self.n_features_in_ = data.p
        self.n_samples_ = data.n
        self._fit_stats(data, keep)
        if not keep.all():
            self._restore_constant_columns(data.x_min, keep)
        return self

    def _fit_stats(self, data: GaussianStats, keep: np.ndarray) -> None:
        r"""The Gaussian IC fit from sufficient statistics (module docstring): SVI on the
        standardised statistics :math:`D^{-1}GD^{-1}`, :math:`D^{-1}g/s_y`, :math:`n` (D the
        column sds, :meth:`GaussianStats.standardized`), then the certified search, the OLS
        refit and the criteria."""
        stats = data.columns(keep)
        n, p = stats.n, stats.p
        x_scale, y_scale = stats.scales()
        std = _Standardizer(stats.x_mean.copy(), x_scale, data.y_mean, y_scale)
        standard = stats.standardized()
        gram, xty = standard.gram, standard.xty
        tstats = RegressionStats.of(standard, resolve_device(self.device))
        ridge = np.linalg.solve(gram + np.eye(p), xty)
        ridge = torch.as_tensor(ridge, dtype=torch.float64, device=tstats.gram.device)
        prior = self._prior(std, (n, p), tstats.gram, ridge)
        if self.method == "auto" and self.polish and p <= ENUMERATION_LIMIT:
            # the certified search enumerates every support: a relaxation would be thrown away
            selected = self._certified_subset(stats, np.zeros(p, dtype=bool))
            self._set_fitted_stats(stats, std, prior, None, selected)
            return
        stop = {}
        if self.polish:

            def gates() -> torch.Tensor:  # the relaxed support, read in fit_svi's store
                return _gates_of(pyro.param("gate_log_alpha"), prior).prob_nonzero > 0.5

            stop = {"monitor": gates, "patience": max(RELAXATION_PATIENCE, self.n_steps // 10)}
        result = fit_svi(
            regression_model_stats,
            regression_guide_stats,
            (tstats, prior),
            n_steps=self.n_steps,
            lr=self.lr,
            num_particles=self.num_particles,
            seed=self.seed,
            progress=self.progress,
            desc="L0Regression",
            **stop,
        )
        self.relaxed_inclusion_probs_ = _gates(result, prior).prob_nonzero.cpu().numpy()
        self.relaxed_support_ = self.relaxed_inclusion_probs_ > 0.5
        selected = self.relaxed_support_
        if self.polish:
            selected = self._certified_subset(stats, selected)
        else:
            self.optimal_, self.criterion_gap_ = False, math.nan
        self._set_fitted_stats(stats, std, prior, result, selected)

    def _fit_columns(self, X: np.ndarray, y: np.ndarray, offset=None) -> None:
        if self._method(X.shape[1]) == "exact":
            self._fit_exact(X, y, offset)
            return
        std = _Standardizer.fit(X, y, self.family)
        device = resolve_device(self.device)
        Xt = torch.as_tensor((X - std.x_mean) / std.x_scale, device=device)
        yt = torch.as_tensor((y - std.y_mean) / std.y_scale, device=device)
        ot = None if offset is None else torch.as_tensor(offset, device=device)
        groups = None if self.groups is None else check_groups(self.groups, X.shape[1])
        prior = self._prior(std, X.shape, Xt, _ridge(Xt, yt, self.family))
        if groups is not None or self.family in COUNT_FAMILIES:
            start = 0.0
            if self.family in COUNT_FAMILIES:
                start = math.log(y.mean()) - (0.0 if offset is None else float(offset.mean()))
            prior = replace(
                prior,
                groups=None if groups is None else torch.as_tensor(groups, device=device),
                init_intercept=start,
            )
        result = self._run_svi(Xt, yt, prior, desc="L0Regression", offset=ot)
        self.relaxed_inclusion_probs_ = self._column_probs(_gates(result, prior))
        self.relaxed_support_ = self.relaxed_inclusion_probs_ > 0.5
        selected = self.relaxed_support_
        if self.penalty != "bayes" and self.polish:
            if groups is None:
                selected = local_search(
                    X, y, selected, criterion=self.lam_, family=self.family, offset=offset
                ).support
            selected = self._best_subset(X, y, selected, offset)
        elif self.penalty != "bayes":
            self.optimal_, self.criterion_gap_ = False, math.nan
        self._set_fitted(X, y, std, prior, result, selected, offset)
        if self.penalty == "bayes":
            correction = self._correction(X.shape[1])
            if correction == "psis":
                self._importance_correct(X, y)
            elif correction == "enumerate" and self.prior == "raw":
                self._raw_enumerate_correct(X, y, _gates(result, prior))
            elif correction in ("enumerate", "mc3") and self.family == "gaussian":
                self._model_space_correct(X, y, correction, _gates(result, prior))
            elif correction != "none":
                self._laplace_correct(X, y, offset, correction, _gates(result, prior))
            else:
                self._set_size_posterior(poisson_binomial(self._gate_probs()), result.params)

    def _column_probs(self, gates: HardConcrete) -> np.ndarray:
        """:math:`P(z \\ne 0)` per column (a group's gate repeated over its columns)."""
        probs = gates.prob_nonzero.detach().cpu().numpy()
        if self.groups is None:
            return probs
        return probs[check_groups(self.groups, len(self.groups))]

    def _gate_probs(self) -> np.ndarray:
        """Inclusion probability per gate: per column, or per group with ``groups``."""
        return getattr(self, "group_inclusion_probs_", self.inclusion_probs_)

    def _laplace_correct(self, X, y, offset, correction: str, gates: HardConcrete) -> None:
        """Replace the guide's PIPs by the posterior's under the standardised slab with
        Laplace marginal likelihoods (:mod:`l0bayes.linear_model.laplace`): enumerated over all
        models of at most :data:`~l0bayes.linear_model.laplace.ENUMERATION_LIMIT` gates, else
        MC3 chains started from the guide's draws, the empty and the full model."""
        groups = None if self.groups is None else check_groups(self.groups, X.shape[1])
        G = X.shape[1] if groups is None else int(groups.max()) + 1
        scorer = LaplaceScorer(
            X, y, self.family, float(self.slab_scale), self._prior_pi(G), offset, groups
        )
        if correction == "laplace":
            correction = "enumerate" if G <= LAPLACE_ENUMERATION_LIMIT else "mc3"
        if correction == "enumerate":
            post = laplace_enumerate(scorer, max_models=2**20)
            pips, sizes = post.inclusion_probs, post.model_size_probs
            self._set_top_models(post, X.shape[1])
            diagnostics = {"method": "laplace-enumerate", "warnings": []}
        else:
            guide = self._guide_models(gates, 2)
            n_iter = self.chain_iterations or max(5_000, 200 * G)
            res = laplace_mc3(
                scorer,
                starts=np.vstack([np.zeros((1, G), bool), guide]),
                n_iter=n_iter,
                seed=self.seed,
            )
            pips, sizes = res.inclusion_probs, res.model_size_probs
            diagnostics = _chain_diagnostics("laplace-mc3", res)
        self._adopt_posterior(X, y, pips, sizes, diagnostics, offset=offset, per_gate=True)

    def _guide_models(self, gates: HardConcrete, draws: int) -> np.ndarray:
        """``draws`` models (bool, one column per gate) drawn from the guide under the fit's
        seed, outside the global torch stream."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return (gates.sample((draws,)) > 0).cpu().numpy()

    def _adopt_posterior(
        self, X, y, pips, sizes, diagnostics: dict, *, offset=None, coef=None, per_gate=False
    ) -> None:
        """Replace the guide's PIPs by a corrected posterior's (the guide's are kept in
        ``variational_inclusion_probs_``): ``pip_diagnostics_``, the PIPs (per gate and widened
        to the columns with ``per_gate``), the 0.5-PIP model refitted (or ``coef``, a pair
        ``(coef, intercept)``), the model-size posterior and the criteria; one
        ``RuntimeWarning`` per diagnostic that fired."""
        self.pip_diagnostics_ = diagnostics
        if hasattr(self, "inclusion_probs_"):  # the guide's, after SVI
            self.variational_inclusion_probs_ = self.inclusion_probs_
        if per_gate:
            self._set_probs(pips)
        else:
            self.inclusion_probs_ = np.asarray(pips)
        self.selected_ = self.inclusion_probs_ > 0.5
        if coef is None:
            coef = _refit(X, y, self.selected_, self.family, offset)
        self.coef_, self.intercept_ = coef
        self._set_size_posterior(sizes)
        self._set_criteria(X, y, offset)
        for message in diagnostics["warnings"]:
            warnings.warn(
                f"the inclusion probabilities may be wrong: {message}", RuntimeWarning, stacklevel=5
            )

    def _set_probs(self, gate_probs: np.ndarray) -> None:
        """``inclusion_probs_`` per column, and ``group_inclusion_probs_`` with groups."""
        if self.groups is None:
            self.inclusion_probs_ = np.asarray(gate_probs)
            return
        self.group_inclusion_probs_ = np.asarray(gate_probs)
        self.inclusion_probs_ = self.group_inclusion_probs_[
            check_groups(self.groups, len(self.groups))
        ]

    def _search_criterion(self, n: int, p: int) -> str | float:
        """The criterion the certified search minimises: the penalty's, except EBIC for
        ``"aic"``/``"bic"`` when p ≥ n (module docstring)."""
        if self.penalty in ("aic", "bic") and p >= n:
            return "ebic"
        return self.penalty if isinstance(self.penalty, str) else float(self.penalty)

    def _best_subset(self, X: np.ndarray, y: np.ndarray, start: np.ndarray, offset=None):
        """The exact minimiser of the criterion where it can be found (sets ``optimal_`` and
        ``criterion_gap_``); ``start`` (the polished relaxation) is the incumbent. With
        ``groups``: :func:`~l0bayes.linear_model.selection.group_subset` (exhaustive over
        at most :data:`BERNOULLI_EXHAUSTIVE_LIMIT` groups, else a local optimum)."""
        n, p = X.shape
        if self.groups is not None:
            found, optimal = group_subset(
                X,
                y,
                self.groups,
                self.lam_,
                self.family,
                offset,
                start,
                exhaustive_limit=BERNOULLI_EXHAUSTIVE_LIMIT,
            )
            self.optimal_, self.criterion_gap_ = optimal, 0.0 if optimal else math.nan
            return found.support
        if self.family != "gaussian":
            if p > BERNOULLI_EXHAUSTIVE_LIMIT:
                self.optimal_, self.criterion_gap_ = False, math.nan
                return start
            found = best_subset(
                X, y, criterion=self.lam_, family=self.family, offset=offset
            ).support
            self.optimal_, self.criterion_gap_ = True, 0.0
            return found
        return self._certified_subset(GaussianStats.from_arrays(X, y), start)

    def _certified_subset(self, stats: GaussianStats, start: np.ndarray) -> np.ndarray:
        """The certified best subset from the statistics; ``start`` is the incumbent (sets
        ``search_``, ``optimal_`` and ``criterion_gap_``)."""
        n, p = stats.n, stats.p
        criterion = self._search_criterion(n, p)
        if p >= n:
            warnings.warn(
                f"p = {p} features and only n = {n} observations: AIC and BIC cannot judge "
                "subsets chosen from so many candidates (noise fits exactly); the search uses "
                f"{criterion!r} and at most {admissible_max_size(n, p)} features "
                "(subset_search.admissible_max_size)",
                UserWarning,
                stacklevel=4,
            )
        res = certified_best_subset(stats, criterion, incumbent=start, time_limit=self.time_limit)
        self.search_ = res
        self.ic_weights_ = inclusion_weights(stats, criterion, res.support, max_size=res.max_size)
        self.optimal_, self.criterion_gap_ = bool(res.optimal), float(res.gap)
        if res.ties:
            names = [np.flatnonzero(res.support).tolist()] + [t.tolist() for t in res.ties]
            warnings.warn(
                f"the best subset is not certified: the supports {names} (columns of X) have "
                f"criteria within {res.gap:.3g} nats of each other, which float64 rounding "
                "cannot resolve (ill-conditioned columns, a near-exact fit); the answer is the "
                "first of them (search_.ties)",
                UserWarning,
                stacklevel=4,
            )
        elif not res.optimal:
            warnings.warn(
                f"the best subset was not certified within time_limit={self.time_limit} s: the "
                f"answer is within {res.gap:.3g} nats of the optimum (criterion_gap_)",
                UserWarning,
                stacklevel=4,
            )
        _warn_exact_fit(stats, res.support)
        return res.support

    def _correction(self, p: int) -> str:
        """The PIP correction this fit uses (see ``correction``): for the other families
        ``"laplace"`` (``"auto"``), ``"enumerate"`` or ``"mc3"``, all with Laplace scores."""
        if self.correction == "none":
            return "none"
        if self.family != "gaussian":
            return "laplace" if self.correction in ("auto", "laplace") else self.correction
        if self.correction == "laplace":
            return "enumerate" if p <= ENUMERATION_LIMIT else "mc3"
        if self.correction != "auto":
            return self.correction
        if self.prior == "raw":
            if p <= RAW_ENUMERATION_LIMIT:
                return "enumerate"
            return "psis" if self.importance_samples else "none"
        return "enumerate" if p <= ENUMERATION_LIMIT else "mc3"

    def _n_gates(self, p: int) -> int:
        """Gates of the model: one per column, or one per group with ``groups``."""
        return p if self.groups is None else int(check_groups(self.groups, p).max()) + 1

    def _method(self, p: int) -> str:
        """The method of this fit (``method``): ``"auto"`` enumerates without SVI where the
        answer would be the enumeration of the correction anyway."""
        if self.method != "auto":
            return self.method
        if self.penalty != "bayes" or self.correction not in ("auto", "enumerate", "laplace"):
            return "svi"
        if self.prior == "raw" and self.noise_scale is None:
            return "svi"  # the raw slab's enumeration needs the guide's noise estimate
        G = self._n_gates(p)
        if self.family != "gaussian":
            return "exact" if G <= LAPLACE_ENUMERATION_LIMIT else "svi"
        return "exact" if self._correction(G) == "enumerate" else "svi"

    def _enumerate(self, X, y, offset=None) -> tuple[Enumeration, ModelScorer]:
        """The exact posterior over all gate structures, with its scorer: conjugate marginal
        likelihoods (Gaussian; per group with ``groups``) or Laplace ones (other families)."""
        groups = None if self.groups is None else check_groups(self.groups, X.shape[1])
        G = self._n_gates(X.shape[1])
        if self.family != "gaussian":
            scorer = LaplaceScorer(
                X, y, self.family, float(self.slab_scale), self._prior_pi(G), offset, groups
            )
            return laplace_enumerate(scorer, max_models=2**20), scorer
        stats = SufficientStats.from_data(X, y)
        log_size = log_prior_by_size(check_prior_inclusion(self._prior_pi(G)), G)
        prior = self._conjugate_prior()
        if groups is None:
            scorer = ConjugateScorer(stats, prior, log_size)
        else:
            scorer = GroupedScorer(stats, prior, log_size, groups)
        return enumerate_models(scorer), scorer

    def _set_top_models(self, post: Enumeration, p: int) -> None:
        """``top_models_`` of an enumeration, a group's gate widened to its columns."""
        groups = None if self.groups is None else check_groups(self.groups, p)
        self.top_models_ = [(m if groups is None else m[groups], q) for m, q in post.top_models]

    def _conjugate_prior(self) -> Prior:
        r"""The slab of ``prior`` as a conjugate prior with :math:`\sigma` integrated out."""
        if self.prior == "slab":
            return StandardizedSlab(scale=float(self.slab_scale))
        if self.prior == "g":
            return GPrior()
        return HyperGPrior(per_n=self.prior == "hyper-g/n")

    def _model_space_correct(self, X, y, correction: str, gates: HardConcrete) -> None:
        """Replace the guide's PIPs by the posterior's under the declared prior: enumerated,
        or estimated by model-space chains started from the guide's draws (module docstring).
        With ``groups`` the models are sets of groups (:class:`GroupedScorer`)."""
        guide = self._guide_models(gates, GUIDE_DRAWS)
        if correction == "enumerate":
            post, scorer = self._enumerate(X, y)
            pips, sizes = post.inclusion_probs, post.model_size_probs
            self._set_top_models(post, X.shape[1])
            best = float(np.max(post.log_posterior) + post.log_evidence)
            gap = best - float(scorer.score(np.unique(guide, axis=0)).max())
            diagnostics = {"method": "enumerate", "guide_gap": gap, "warnings": []}
        else:
            stats = SufficientStats.from_data(X, y)
            G = self._n_gates(X.shape[1])
            log_size = log_prior_by_size(check_prior_inclusion(self._prior_pi(G)), G)
            if self.groups is None:
                scorer = ConjugateScorer(stats, self._conjugate_prior(), log_size)
            else:
                groups = check_groups(self.groups, X.shape[1])
                scorer = GroupedScorer(stats, self._conjugate_prior(), log_size, groups)
            res = self._chains(scorer, stats.n, guide)
            pips, sizes = res.inclusion_probs, res.model_size_probs
            # the chains do not rest on the guide: its gap is reported, not warned about
            gap = res.best_log_posterior - float(scorer.score(np.unique(guide, axis=0)).max())
            diagnostics = {**_chain_diagnostics("mc3", res), "guide_gap": gap}
        self._adopt_posterior(X, y, pips, sizes, diagnostics, per_gate=self.groups is not None)

    def _raw_enumerate_correct(self, X, y, gates: HardConcrete) -> None:
        r"""``prior="raw"``: the exact posterior of the raw-unit slab with :math:`\sigma` fixed at
        the fitted ``noise_scale_``, over all :math:`2^p` models."""
        from l0bayes.linear_model.exact import exact_posterior

        pi = self._prior_pi(X.shape[1])
        post = exact_posterior(
            X, y, noise_scale=self.noise_scale_, slab_scale=self.slab_scale, prior_inclusion=pi
        )
        guide = self._guide_models(gates, GUIDE_DRAWS)
        bits = (guide * (1 << np.arange(X.shape[1]))).sum(axis=1)
        best_guide = float(post.log_model_probs[bits].max())
        diagnostics = {
            "method": "enumerate",
            "guide_gap": float(post.log_model_probs.max() - best_guide),
            "warnings": [],
        }
        self.top_models_ = post.top_models
        self._adopt_posterior(
            X, y, post.inclusion_probs, post.model_size_probs, diagnostics,
            coef=(post.coef_mean, post.intercept),
        )  # fmt: skip

    def _restore_constant_columns(self, constants: np.ndarray, keep: np.ndarray) -> None:
        """Widen the per-feature results of a fit on ``X[:, keep]`` to all columns of X: a
        constant column is a closed gate (log α = -inf) with coefficient 0; ``constants`` holds
        each column's value in one row (its mean where the column is constant)."""
        p = keep.size

        def widen(values, fill):
            out = np.full(p, fill, dtype=np.asarray(values).dtype)
            out[keep] = values
            return out

        if hasattr(self, "ic_weights_"):
            self.ic_weights_ = self.ic_weights_.widen(keep)
        for name, fill in (
            ("inclusion_probs_", 0.0),
            ("relaxed_inclusion_probs_", 0.0),
            ("variational_inclusion_probs_", 0.0),
            ("coef_", 0.0),
            ("selected_", False),
            ("relaxed_support_", False),
        ):
            if hasattr(self, name):
                setattr(self, name, widen(getattr(self, name), fill))
        if hasattr(self, "model_size_probs_"):
            sizes = np.zeros(p + 1)
            sizes[: self.model_size_probs_.size] = self.model_size_probs_
            self.model_size_probs_ = sizes
        if hasattr(self, "top_models_"):
            self.top_models_ = [(widen(s, False), prob) for s, prob in self.top_models_]
        if hasattr(self, "params_"):
            std = self._standardizer_
            fills = {"gate_log_alpha": -math.inf, "weight_scale": self.slab_scale / std.y_scale}
            index = torch.as_tensor(keep)
            for name, value in self.params_.items():
                if value.shape == (int(keep.sum()),):
                    full = value.new_full((p,), fills.get(name, 0.0))
                    full[index] = value
                    self.params_[name] = full
            self._standardizer_ = replace(
                std,
                x_mean=widen(std.x_mean, 0.0) + np.where(keep, 0.0, constants),
                x_scale=widen(std.x_scale, 1.0),
            )

    def _set_size_posterior(self, size_probs: np.ndarray, params=None) -> None:
        r"""Posterior of the model size and of π. From the guide: the Poisson-binomial of the
        gates and the Beta guide of π; from a model-size posterior (exact or importance
        weighted): :math:`p(\pi \mid y) = \sum_k P(k \mid y)\,\mathrm{Beta}(a+k, b+p-k)`."""
        self.model_size_probs_ = size_probs
        self.model_size_mean_ = float(np.arange(size_probs.size) @ size_probs)
        self.model_size_interval_ = pmf_interval(size_probs)
        if params is not None and "inclusion_concentration1" in params:
            a, b = (
                float(params[k]) for k in ("inclusion_concentration1", "inclusion_concentration0")
            )
            from scipy.stats import beta as beta_dist

            self.prior_inclusion_mean_ = a / (a + b)
            self.prior_inclusion_interval_ = tuple(beta_dist(a, b).ppf([0.05, 0.95]).tolist())
        else:
            prior = self._prior_pi(size_probs.size - 1)
            self.prior_inclusion_mean_, self.prior_inclusion_interval_ = pi_posterior(
                prior, size_probs
            )

    def _importance_correct(self, X, y) -> None:
        """Replace the guide's PIPs by their PSIS-corrected values
        (:mod:`l0bayes.linear_model.importance`).
        With an estimated noise scale the marginal likelihood uses the fitted value."""
        from l0bayes.linear_model.importance import (
            MISSED_MODE_NATS,
            hill_climb,
            psis_inclusion_probs,
        )

        res = psis_inclusion_probs(
            X,
            y,
            self.inclusion_probs_,
            noise_scale=self.noise_scale_,
            slab_scale=self.slab_scale,
            prior_inclusion=self._prior_pi(X.shape[1]),
            num_samples=int(self.importance_samples),
            seed=self.seed,
        )
        self.variational_inclusion_probs_ = self.inclusion_probs_
        self.inclusion_probs_ = res.inclusion_probs
        self.selected_ = res.inclusion_probs > 0.5
        self.coef_ = res.coef_mean
        self.intercept_ = float(y.mean() - X.mean(axis=0) @ res.coef_mean)
        self._set_size_posterior(res.model_size_probs)
        self.pareto_k_, self.importance_ess_ = res.pareto_k, res.ess
        self._set_criteria(X, y)
        _, climbed = hill_climb(
            X, y, res.best_draw, noise_scale=self.noise_scale_, slab_scale=self.slab_scale,
            prior_inclusion=self._prior_pi(X.shape[1]),
        )  # fmt: skip
        gap = climbed - res.best_log_joint
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
        if X.shape[1] <= RAW_ENUMERATION_LIMIT:
            reasons.append(
                f"psis_forced: with p = {X.shape[1]} <= {RAW_ENUMERATION_LIMIT} the models are "
                "enumerated exactly by correction='auto'; PSIS on so few distinct models smooths "
                "tied weights and can be biased beyond its standard errors"
            )
        if res.pareto_k > MAX_KHAT:  # NaN (tied top weights: no tail to fit) is not a failure
            reasons.append(f"khat: Pareto k = {res.pareto_k:.2f} > {MAX_KHAT}")
        self.pip_diagnostics_ = {
            "method": "psis",
            "khat": float(res.pareto_k),
            "ess": float(res.ess),
            "pip_se": float(res.pip_se.max()),
            "guide_gap": float(gap),
            "warnings": reasons,
        }
        for reason in reasons:
            warnings.warn(
                f"the importance-sampling correction is unreliable ({reason}); raise "
                "importance_samples or n_steps, use a sigma-integrated prior ('slab', 'g') whose "
                "chains need no proposal, or read variational_inclusion_probs_",
                RuntimeWarning,
                stacklevel=3,
            )

    def _prior(self, std, shape, like: torch.Tensor, init_weight: torch.Tensor) -> RegressionPrior:
        n, p = shape
        pi = self._prior_pi(p)
        lam, kl_mode = _code_cost(self.penalty, n, pi)
        self.lam_ = lam
        bayes = self.penalty == "bayes"
        precision = self._slab_precision(std) if bayes else 0.0
        noise = None if self.noise_scale is None else self.noise_scale / std.y_scale
        subsample = None if self.batch_size is None or self.batch_size >= n else self.batch_size
        return RegressionPrior(
            family=self.family,
            lam=lam,
            kl_mode=kl_mode,
            slab_precision=torch.as_tensor(precision, dtype=like.dtype, device=like.device),
            slab_normalized=bayes,
            noise_scale=noise,
            temperature=self.temperature,
            subsample_size=subsample,
            weight_guide="normal" if bayes else "delta",
            init_log_alpha=0.0,
            init_weight=init_weight,
            inclusion_beta=pi[1:] if isinstance(pi, tuple) else None,
        )

    def _slab_precision(self, std: _Standardizer) -> np.ndarray | float:
        r"""The guide's slab precision on the standardised coefficients
        :math:`\beta_j s_{x_j} / s_y`: ``"raw"`` transforms the slab on X's own scale;
        the others put :math:`\text{slab\_scale} \cdot \sigma` (``slab``) or the
        unit-information scale :math:`\sigma` (g-priors) on standardised columns, with
        :math:`\sigma \approx s_y` (the guide is only the proposal of the correction)."""
        if self.prior == "raw":
            return (std.y_scale / (self.slab_scale * std.x_scale)) ** 2
        return 1.0 / self.slab_scale**2 if self.prior == "slab" else 1.0

    def _prior_pi(self, p: int) -> PriorInclusion:
        """The prior on inclusion: a float π or ``("beta", a, b)``; by default π = 1/2, or,
        with ``penalty="bayes"`` and more than n - 2 features, the beta-binomial(1, 1)
        (``prior_inclusion``'s documentation)."""
        if self.expected_model_size is not None:
            if self.concentration is not None:
                return beta_from_model_size(self.expected_model_size, self.concentration, p)
            return float(self.expected_model_size) / p
        if self.prior_inclusion is not None:
            return _beta_tuple(self.prior_inclusion)
        n = getattr(self, "n_samples_", math.inf)
        return ("beta", 1.0, 1.0) if self.penalty == "bayes" and p > n - 2 else 0.5

    def _run_svi(self, Xt, yt, prior, desc, n_steps=None, offset=None):
        return fit_svi(
            regression_model,
            regression_guide,
            (Xt, yt, prior) if offset is None else (Xt, yt, prior, offset),
            n_steps=n_steps or self.n_steps,
            lr=self.lr,
            num_particles=self.num_particles,
            seed=self.seed,
            progress=self.progress,
            desc=desc,
        )

    def _refine(self, Xt, yt, prior, selected, result):
        """Restart SVI at the polished support so the gates describe the selected model."""
        sel = torch.as_tensor(selected, device=Xt.device)
        init_w = result.params["weight_loc"].clone()
        init_w[sel] = _ridge(Xt[:, sel], yt, self.family) if sel.any() else init_w[sel]
        la = torch.where(sel, 3.0, -3.0).to(Xt.dtype)
        refined = replace(prior, init_log_alpha=la, init_weight=init_w * sel)
        return self._run_svi(Xt, yt, refined, "L0Regression (refine)", max(self.n_steps // 3, 1))

    def _set_fitted(self, X, y, std, prior, result, selected, offset=None) -> None:
        gates = _gates(result, prior)
        self._standardizer_ = std
        self.params_ = {k: v.cpu() for k, v in result.params.items()}
        self.losses_ = result.losses
        self._set_probs(gates.prob_nonzero.cpu().numpy())
        self.selected_ = np.asarray(selected, dtype=bool)
        self._set_criteria(X, y, offset)
        if "dispersion" in result.params:
            self.dispersion_ = float(result.params["dispersion"])
        if self.penalty == "bayes":
            gate_mean = gates.mean
            if prior.groups is not None:
                gate_mean = gate_mean[prior.groups]
            coef_std = (gate_mean * result.params["weight_loc"]).cpu().numpy()
            self.coef_, self.intercept_ = std.coef_to_original(
                coef_std, float(result.params["intercept"])
            )
            if self.family == "gaussian":
                sigma = self.noise_scale or float(result.params["noise_scale"]) * std.y_scale
                self.noise_scale_ = float(sigma)
        else:
            self.coef_, self.intercept_ = _refit(X, y, self.selected_, self.family, offset)
            if self.family == "gaussian":
                resid = y - self.intercept_ - X @ self.coef_
                self.noise_scale_ = float(np.sqrt(np.mean(resid**2)))

    def _set_criteria(self, X, y, offset=None) -> None:
        """``criteria_`` of the selected model's maximum-likelihood refit. A Bayesian answer
        may be a model without one (as many parameters as observations, or separated classes):
        then ``criteria_`` is None, and ``criteria_error_`` says why; an information-criterion
        search never selects such a model."""
        try:
            self.criteria_ = information_criteria(X, y, self.selected_, self.family, offset)
        except ValueError as err:
            if self.penalty != "bayes":
                raise
            self.criteria_, self.criteria_error_ = None, str(err)

    def _set_fitted_stats(self, stats, std, prior, result, selected) -> None:
        """:meth:`_set_fitted` for the IC fit from statistics: the OLS refit on ``selected``,
        its noise sd :math:`\\sqrt{\\mathrm{RSS}/n}` and criteria, all from ``stats``
        (``result`` None: no relaxation ran)."""
        self._standardizer_ = std
        if result is None:  # no relaxation: the criterion's own inclusion weights
            self.inclusion_probs_ = self.ic_weights_.inclusion.copy()
        else:
            self.params_ = {k: v.cpu() for k, v in result.params.items()}
            self.losses_ = result.losses
            self.inclusion_probs_ = _gates(result, prior).prob_nonzero.cpu().numpy()
        self.selected_ = np.asarray(selected, dtype=bool)
        coef, rss = _ols_from_stats(stats, self.selected_)
        self.coef_, self.intercept_ = coef, std.y_mean - float(coef @ stats.x_mean)
        self.noise_scale_ = math.sqrt(rss / stats.n)
        self.criteria_ = _criteria_from_stats(stats, self.selected_)

    def _fit_exact(self, X, y, offset=None) -> None:
        """``method="exact"``: the posterior over all gate structures, enumerated without SVI
        (raw slab: :func:`~l0bayes.linear_model.exact.exact_posterior`; else
        :meth:`_enumerate`); the median-probability model refitted by maximum likelihood."""
        if self.penalty != "bayes":
            raise ValueError(
                "method='exact' enumerates the posterior of penalty='bayes'; an information-"
                "criterion penalty is found by the certified search (method='auto' or 'svi')"
            )
        G = self._n_gates(X.shape[1])
        if G > 20:
            raise ValueError(f"method='exact' enumerates 2^G models: G = {G} gates > 20")
        pi = self._prior_pi(G)
        self.lam_ = _code_cost("bayes", X.shape[0], pi)[0]
        if self.prior == "raw":
            self._fit_raw_exact(X, y, pi)
            return
        post, _ = self._enumerate(X, y, offset)
        self._set_top_models(post, X.shape[1])
        method = "enumerate" if self.family == "gaussian" else "laplace-enumerate"
        diagnostics = {"method": method, "warnings": []}
        per_gate = self.groups is not None
        self._adopt_posterior(
            X, y, post.inclusion_probs, post.model_size_probs, diagnostics, offset=offset,
            per_gate=per_gate,
        )  # fmt: skip
        if self.family == "gaussian":
            resid = y - self.intercept_ - X @ self.coef_
            self.noise_scale_ = float(np.sqrt(np.mean(resid**2)))

    def _fit_raw_exact(self, X, y, pi: PriorInclusion) -> None:
        """``method="exact"`` with the raw-unit slab and a known ``noise_scale``."""
        from l0bayes.linear_model.exact import exact_posterior

        if self.family != "gaussian" or self.groups is not None:
            raise ValueError("prior='raw' is the Gaussian slab on single columns")
        if self.noise_scale is None:
            raise ValueError(
                "method='exact' with prior='raw' needs a known noise_scale; the other priors "
                "integrate it out"
            )
        post = exact_posterior(
            X, y, noise_scale=self.noise_scale, slab_scale=self.slab_scale, prior_inclusion=pi
        )
        self.exact_ = post
        self.inclusion_probs_ = post.inclusion_probs
        self.selected_ = post.inclusion_probs > 0.5
        self.coef_, self.intercept_ = post.coef_mean, post.intercept
        self.noise_scale_ = float(self.noise_scale)
        self.top_models_ = post.top_models
        self.pip_diagnostics_ = {"method": "enumerate", "warnings": []}
        self._set_size_posterior(post.model_size_probs)
        self._set_criteria(X, y)

    def _chains(self, scorer: ModelScorer, n: int, guide: np.ndarray) -> MC3Result:
        r"""Four chains from the empty model, a full one and two of the guide's draws. With
        ``chain_iterations=None`` they run :math:`\max(10000, 200p)` iterations each
        (``"mh"``: :math:`\max(20000, 500p)`) and continue, doubling their length up to 8
        times the first, while a diagnostic still fires."""
        p = scorer.p
        starts = default_starts(p, n, 4, self.seed)
        starts[2:] = guide[:2]
        largest = max_model_size(n)
        if self.groups is None and starts[2:].sum(axis=1).max() > largest:
            # a draw too large for the model space keeps its most probable columns
            order = np.argsort(-self._gate_probs(), kind="stable")
            for row in starts[2:]:
                row[order[row[order].cumsum() > largest]] = False
        tempered = self.chain_sampler == "tempered"
        first = self.chain_iterations or (
            max(10_000, 200 * p) if tempered else max(20_000, 500 * p)
        )
        with tqdm(
            total=4 * first,
            desc=f"model-space chains ({self.chain_sampler})",
            disable=not self.progress,
            mininterval=1.0,
            leave=False,
        ) as bar:

            def enough(result: MC3Result) -> bool:
                if not diagnose(result):
                    return True
                bar.total = 4 * 2 * result.n_iter
                bar.refresh()
                return False

            longest = first if self.chain_iterations else 8 * first
            return run_chains(
                scorer, starts, n_iter=first, max_iter=longest, enough=enough,
                sampler=self.chain_sampler, seed=self.seed, progress=bar.update,
            )  # fmt: skip

    # --------------------------------------------------------------- prediction
    def _decision(self, X) -> np.ndarray:
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, dtype=np.float64, reset=False, ensure_all_finite=False)
        check_finite(X, "X")
        return self.intercept_ + X @ self.coef_

    def predict(self, X, offset=None) -> np.ndarray:
        """Mean response (Gaussian), the more probable class, 0 or 1 (Bernoulli), or the mean
        count :math:`e^{o + b + x^\\top\\beta}` (Poisson, negative binomial); ``offset`` as in
        :meth:`fit`, for the rows of ``X``."""
        eta = self._decision(X)
        offset = check_offset(offset, len(eta))
        if offset is not None:
            eta = eta + offset
        if self.family == "bernoulli":
            return (eta > 0).astype(np.int64)
        if self.family in COUNT_FAMILIES:
            return np.exp(np.minimum(eta, 700.0))
        return eta

    def score(self, X, y, sample_weight=None) -> float:
        """:math:`R^2` of :meth:`predict` on ``(X, y)`` (scikit-learn's regressor score)."""
        y = as_float_array(y, "y")
        check_finite(y, "y")
        if np.ndim(X) == 2 and len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)} entries")
        return super().score(X, y, sample_weight=sample_weight)

    @available_if(lambda self: self.family == "bernoulli")
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``[P(y=0), P(y=1)]`` (Bernoulli family)."""
        p1 = 1.0 / (1.0 + np.exp(-self._decision(X)))
        return np.column_stack([1.0 - p1, p1])

    # ----------------------------------------------------------------- reports
    def information_criteria(self) -> InformationCriteria:
        """k, log-likelihood, AIC and BIC of the selected model refitted by maximum likelihood
        with an intercept (and the offset) — the numbers statsmodels' ``OLS``, ``Logit``,
        ``Poisson`` and ``NegativeBinomial`` (NB2, the discrete model with α estimated and
        counted in k) report for that model.

        :raises ValueError: the selected model (of ``penalty="bayes"``) has no maximum-likelihood
            fit (``criteria_error_`` says why)."""
        check_is_fitted(self, "criteria_")
        if self.criteria_ is None:
            reason = self.criteria_error_
            raise ValueError(f"AIC and BIC are undefined for the selected model: {reason}")
        return self.criteria_

    def summary(self, names=None):
        """One row per feature of what the fit answers: a pandas ``DataFrame`` when pandas is
        installed, else plain text.

        With ``penalty="bayes"``: ``pip`` (the posterior inclusion probability,
        ``inclusion_probs_``), ``coef`` and ``selected`` (PIP > 0.5). With an information
        criterion: ``ic_weight`` (``ic_weights_.inclusion``: the Akaike, BIC, ... weight of the
        supports holding the feature; Gaussian family), ``coef`` and ``selected`` (the
        certified best subset); the relaxation's gate probabilities are not shown, as they do
        not decide the answer. The frame's ``attrs["ic_weight"]`` (and the text's last line)
        says what the weights are."""
        check_is_fitted(self, "coef_")
        names = feature_names(self, names)
        weights = getattr(self, "ic_weights_", None)
        if self.penalty == "bayes":
            rows = {"pip": self.inclusion_probs_}
        elif weights is not None:
            rows = {"ic_weight": weights.inclusion}
        else:
            rows = {}
        rows |= {"coef": self.coef_, "selected": self.selected_}
        note = None if weights is None or self.penalty == "bayes" else weights.describe()
        try:
            import pandas as pd
        except ImportError:
            lines = [f"{'feature':>12} " + " ".join(f"{key:>11}" for key in rows)]
            for i, name in enumerate(names):
                cells = [
                    f"{bool(v[i])!s:>11}" if v.dtype == bool else f"{v[i]:11.4g}"
                    for v in map(np.asarray, rows.values())
                ]
                lines.append(f"{name:>12} " + " ".join(cells))
            return "\n".join(lines + ([f"ic_weight: {note}"] if note else []))
        table = pd.DataFrame(rows, index=pd.Index(names, name="feature"))
        if note:
            table.attrs["ic_weight"] = note
        return table

    def model_prior(self, n_gates: int) -> tuple[Prior | None, PriorInclusion]:
        """The declared prior of ``penalty="bayes"`` as the PIP corrections use it: the
        conjugate slab with σ integrated out (None for ``prior="raw"`` and for the families
        other than Gaussian, whose marginal likelihoods are not conjugate) and the prior on
        the inclusion of ``n_gates`` gates (π, or ``("beta", a, b)``)."""
        gaussian = self.family == "gaussian" and self.prior != "raw"
        return (self._conjugate_prior() if gaussian else None), self._prior_pi(n_gates)

    def to_inference_data(
        self,
        X,
        y,
        num_samples: int = 1000,
        seed: int = 0,
        X_holdout=None,
        y_holdout=None,
        source: str = "posterior",
    ):
        """An ArviZ ``InferenceData`` of the posterior this fit reports (``source="guide"``:
        of the raw variational guide): gate and coefficient draws (``posterior``), the
        pointwise log-likelihood of ``(X, y)`` per draw (``log_likelihood``, so
        ``az.loo``/``az.waic`` run) and ``observed_data``; with held-out data also
        ``holdout_log_likelihood``/``holdout_observed_data`` (score them with
        :func:`l0bayes.reporting.inference_data.holdout_elpd`). See
        :func:`l0bayes.linear_model.inference_data.to_inference_data`."""
        from l0bayes.linear_model.inference_data import to_inference_data

        check_is_fitted(self, "coef_")
        return to_inference_data(
            self,
            X,
            y,
            X_holdout=X_holdout,
            y_holdout=y_holdout,
            num_samples=num_samples,
            seed=seed,
            source=source,
        )


# ---------------------------------------------------------------------- helpers
def _check_penalty(penalty) -> None:
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


def _code_cost(penalty, n: int, pi: PriorInclusion) -> tuple[float, str]:
    """λ per coefficient and the KL mode for a penalty (for a Beta hyperprior: at its mean)."""
    if isinstance(pi, tuple):
        pi = pi[1] / (pi[1] + pi[2])
    if penalty == "aic":
        return 1.0, "l0"
    if penalty == "bic":
        return 0.5 * math.log(n), "l0"
    if penalty == "aicc":  # the relaxation uses AIC's λ; the certified search AICc itself
        return 1.0, "l0"
    if penalty == "bayes":
        return math.log1p(-pi) - math.log(pi), "bayes"
    return float(penalty), "l0"


def _beta_tuple(prior_inclusion):
    """Accept ``pyro.distributions.Beta(a, b)`` as ``("beta", a, b)``; pass others through."""
    import torch.distributions as tdist

    if isinstance(prior_inclusion, tdist.Beta):
        if prior_inclusion.batch_shape != ():
            raise ValueError("a Beta hyperprior on prior_inclusion must be scalar")
        a, b = prior_inclusion.concentration1, prior_inclusion.concentration0
        return ("beta", float(a), float(b))
    return prior_inclusion


def _parses_as_float(a: np.ndarray) -> bool:
    try:
        a.astype(np.float64)
    except ValueError:
        return False
    return True


def _check_layout(X, y) -> None:
    """Errors that name X or y for the layouts scikit-learn's ``validate_data`` reports in
    generic words (text, wrong rank, row counts that differ); ``y=None``, sparse and object
    arrays are left to it (and to its messages, which scikit-learn's checks expect), except
    that sparse X and a data frame with names that are not all strings get a remedy."""
    if issparse(X):
        raise TypeError(
            f"X is a scipy sparse matrix of shape {X.shape}: sparse data is not supported, "
            "dense data is required; pass X.toarray() (the Gram matrix is dense anyway)"
        )
    columns = getattr(X, "columns", None)
    if columns is not None and not all(isinstance(c, str) for c in columns):
        if any(isinstance(c, str) for c in columns):
            kinds = sorted({type(c).__name__ for c in columns})
            raise TypeError(
                f"X's column names mix types {kinds}; name every column with a string "
                "(X.columns = X.columns.astype(str)) so the fit can keep and check them"
            )
    if y is None:
        return
    try:
        X, y = np.asarray(X), np.asarray(y)
    except ValueError:  # ragged nested lists: validate_data says so
        return
    for name, a in (("X", X), ("y", y)):
        if a.dtype.kind in "US" and not _parses_as_float(a):
            raise ValueError(
                f"{name} holds text (e.g. {a.flat[0]!r}) where numbers are needed; encode it as "
                "numbers first (categorical features as indicator columns, a binary response "
                "as 0/1)"
            )
    if X.ndim != 2:
        raise ValueError(
            f"X must be a 2-D array (n_samples, n_features), got shape {X.shape}; reshape a "
            "single feature with X.reshape(-1, 1)"
        )
    if not (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)):
        raise ValueError(
            f"y must be 1-D (n_samples,): L0Regression fits one response, got shape {y.shape}"
        )
    if X.shape[0] != y.shape[0]:
        raise ValueError(
            f"X has {X.shape[0]} rows but y has {y.shape[0]} entries; pass one response per "
            "row of X"
        )
    if y.dtype.kind in "biuf":  # validate_data's own check of y has a generic message
        check_finite(y.astype(np.float64), "y")


def _chain_diagnostics(method: str, res: MC3Result) -> dict:
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


def _gates(result, prior: RegressionPrior) -> HardConcrete:
    return HardConcrete(result.params["gate_log_alpha"], prior.temperature, prior.stretch)


def _ridge(Xt: torch.Tensor, yt: torch.Tensor, family: str, alpha: float = 1.0) -> torch.Tensor:
    """Ridge start for the weights on standardised data (logistic: a scaled linear fit;
    counts: a linear fit of :math:`\\log(1 + y)`)."""
    p = Xt.shape[1]
    if family in COUNT_FAMILIES:
        target = torch.log1p(yt)
    else:
        target = yt if family == "gaussian" else 4.0 * (yt - yt.mean())
    gram = Xt.T @ Xt + alpha * torch.eye(p, dtype=Xt.dtype, device=Xt.device)
    return torch.linalg.solve(gram, Xt.T @ (target - target.mean()))


def _refit(X: np.ndarray, y: np.ndarray, support: np.ndarray, family: str, offset=None):
    """Maximum-likelihood coefficients (original scale) of the model on ``support``."""
    from l0bayes.linear_model.selection import refit_coefficients

    coef = np.zeros(X.shape[1])
    intercept, coef[support] = refit_coefficients(X[:, support], y, family, offset)
    return coef, intercept


def _gates_of(log_alpha: torch.Tensor, prior: RegressionPrior) -> HardConcrete:
    return HardConcrete(log_alpha, prior.temperature, prior.stretch)


_DataStats = GaussianStats  # the one accumulator (stats.py): moments, means and ranges


def _check_chunk(chunk, index: int, p: int | None) -> tuple[np.ndarray, np.ndarray]:
    """One ``(X, y)`` block as float64 arrays, or a one-line ``ValueError`` naming chunk
    ``index`` and its problem (layout, text, no rows, a different number of columns, NaN)."""
    where = f"chunk {index}"
    try:
        X, y = chunk
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be a pair (X, y), got {type(chunk).__name__}") from None
    if issparse(X):
        raise ValueError(f"{where}: sparse X is not supported; pass dense blocks of rows")
    try:
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: X and y must be numeric arrays ({err})") from None
    if X.ndim != 2:
        raise ValueError(f"{where}: X must be 2-D (n_rows, n_features), got shape {X.shape}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (X.shape[0],):
        raise ValueError(
            f"{where}: y must be 1-D with one entry per row of X ({X.shape[0]}), got {y.shape}"
        )
    if X.shape[0] == 0:
        raise ValueError(f"{where} is empty (0 rows); drop empty chunks")
    if p is not None and X.shape[1] != p:
        raise ValueError(
            f"{where}: X has {X.shape[1]} features, but L0Regression is expecting {p} features "
            "as input (the columns of the earlier chunks)"
        )
    for name, a in (("X", X), ("y", y)):
        if not np.isfinite(a).all():
            raise ValueError(
                f"{where}: {name} contains NaN or infinite values; drop or impute them"
            )
    return X, y


def _ols_from_stats(stats: GaussianStats, support: np.ndarray) -> tuple[np.ndarray, float]:
    r"""OLS slopes (with intercept) on ``support`` and their RSS from the square root of the
    statistics (:meth:`GaussianStats.exact_rss`, a QR: as accurate as a fit on the rows); for
    dependent columns the minimum-norm solution of the least-squares problem on the square
    root (as ``lstsq`` on X)."""
    coef = np.zeros(stats.p)
    cols = np.flatnonzero(support)
    fit = stats.exact_rss(cols)
    if not fit.dependent:
        coef[cols] = fit.coef
        return coef, fit.rss
    A = stats.root[:, cols]
    scale = np.sqrt(np.einsum("ij,ij->j", A, A))
    scale = np.where(scale > 0, scale, 1.0)
    coef[cols] = np.linalg.lstsq(A / scale, stats.root[:, -1], rcond=1e-12)[0] / scale
    resid = stats.root[:, -1] - A @ coef[cols]
    return coef, float(resid @ resid)


def _warn_exact_fit(stats: GaussianStats, support: np.ndarray) -> None:
    """Warn when ``support`` fits the response exactly: its RSS is below
    :data:`~l0bayes.linear_model.subset_search.RSS_FLOOR` of the centred sum of squares, where
    the likelihood is unbounded and every criterion (ours, and statsmodels' from the rounding
    residue) ranks exact fits by round-off."""
    cols = np.flatnonzero(support)
    rss = stats.exact_rss(cols).rss if cols.size else stats.yty
    if rss <= RSS_FLOOR * stats.yty:
        warnings.warn(
            f"the response is an exact linear function of the columns {cols.tolist()} of X "
            f"(RSS = {rss:.3g} against sum((y - mean)^2) = {stats.yty:.3g}): the "
            f"likelihood is unbounded there, so the criteria floor the RSS at {RSS_FLOOR:g} of "
            "that sum (subset_search.RSS_FLOOR) and the exact fit with fewest columns wins; "
            "statsmodels' log-likelihood of such a fit is rounding noise",
            UserWarning,
            stacklevel=5,
        )


def _criteria_from_stats(stats: GaussianStats, support: np.ndarray) -> InformationCriteria:
    """:func:`~l0bayes.linear_model.selection.information_criteria` of the Gaussian refit on
    ``support``, from the statistics (:func:`~l0bayes.linear_model.subset_search.
    gaussian_criteria`; the same numbers as statsmodels). Dependent columns (reachable only
    with ``polish=False``) count by the numerical rank of their square root."""
    try:
        c = gaussian_criteria(stats, support)
        k, llf = c.k, c.log_likelihood
    except ValueError as err:
        if "linearly dependent" not in str(err):
            raise
        A = stats.root[:, np.flatnonzero(support)]
        scale = np.sqrt(np.einsum("ij,ij->j", A, A))
        singular = np.linalg.svd(A / np.where(scale > 0, scale, 1.0), compute_uv=False)
        k = 1 + int((singular > 1e-5 * singular[0]).sum())
        rss = _ols_from_stats(stats, support)[1]
        n = stats.n
        llf = -0.5 * n * (math.log(2 * math.pi * max(rss, 1e-300) / n) + 1.0)
    n = stats.n
    return InformationCriteria(
        k=k,
        log_likelihood=llf,
        aic=-2 * llf + 2 * k,
        bic=-2 * llf + k * math.log(n),
        n=n,
        family="gaussian",
    )


__all__ = [
    "L0Regression",
    "METHODS",
    "PENALTIES",
]
