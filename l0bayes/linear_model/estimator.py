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

With ``penalty="bayes"`` and the default ``prior="slab"`` the model, on columns standardised
to :math:`x_j^{\ast\top} x^\ast_j = n` (:mod:`l0bayes.linear_model.preprocessing`), is

.. math::

    y_i = b + \sum_j x^\ast_{ij} \beta^\ast_j + \varepsilon_i, \quad
    \varepsilon_i \sim \mathcal N(0, \sigma^2), \quad p(b) \propto 1, \quad
    p(\sigma) \propto 1/\sigma, \quad
    \beta^\ast_j \mid z_j \ne 0, \sigma \sim \mathcal N(0, \text{slab\_scale}^2 \sigma^2),
    \quad \beta^\ast_j = 0 \text{ if } z_j = 0,

with :math:`\beta_j = \beta^\ast_j / s_{x_j}` reported on X's scale; ``"g"``, ``"hyper-g"``,
``"hyper-g/n"`` and ``"raw"`` replace the slab (:class:`L0Regression`, ``docs/guide.rst``).

A fit is: the data checked once, here (:meth:`L0Regression.fit`, :meth:`~L0Regression.
partial_fit`, :meth:`~L0Regression.fit_chunks`); the hyper-parameters turned into a plan
(:mod:`~l0bayes.linear_model.params`); then either the sufficient statistics (Gaussian,
information criterion: a relaxation on :math:`X^\top X` and the certified best subset of
:mod:`~l0bayes.linear_model.subset_search`), or the SVI relaxation on the rows
(:mod:`~l0bayes.linear_model.relaxation`) followed by the exact search (criteria) or a
correction of the guide's PIPs (``"bayes"``, :mod:`~l0bayes.linear_model.corrections`), or an
exact enumeration without SVI (``method="exact"``); the results become the fitted attributes
(:mod:`~l0bayes.linear_model.views` widens them over constant columns and tabulates them).
Every step after the boundary receives checked arrays.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable

import numpy as np
import pyro
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from l0bayes.device import resolve_device
from l0bayes.distributions import DEFAULT_TEMPERATURE
from l0bayes.linear_model import corrections, params, preprocessing, relaxation, stats_fit, views
from l0bayes.linear_model.laplace import LaplaceScorer
from l0bayes.linear_model.marginal_likelihood import Prior
from l0bayes.linear_model.model import (
    RegressionPrior,
    RegressionStats,
    regression_guide_stats,
    regression_model_stats,
)
from l0bayes.linear_model.model_size import (
    PriorInclusion,
    poisson_binomial,
)
from l0bayes.linear_model.params import (
    BERNOULLI_EXHAUSTIVE_LIMIT,
    ENUMERATION_LIMIT,
    METHODS,
    PENALTIES,
)
from l0bayes.linear_model.selection import (
    InformationCriteria,
    best_subset,
    check_groups,
    group_subset,
    local_search,
)
from l0bayes.linear_model.stats import GaussianStats
from l0bayes.validation import (
    COUNT_FAMILIES,
    as_float_array,
    check_finite,
    check_not_constant,
    check_offset,
    check_Xy,
)

#: The relaxation of the sufficient-statistics path (Gaussian, IC penalty, ``polish=True``)
#: stops once its support has been stable for ``max(RELAXATION_PATIENCE, n_steps // 10)``
#: steps: the certified search decides the answer from any incumbent.
RELAXATION_PATIENCE = 150

# the fit from sufficient statistics (below) calls these helpers by their names of old


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
        and at most 16 gates, or 20 with ``prior="raw"`` and a known ``noise_scale``:
        :data:`~l0bayes.linear_model.params.ENUMERATION_LIMIT`,
        :data:`~l0bayes.linear_model.params.RAW_ENUMERATION_LIMIT`), so no SVI runs whose
        result would be thrown away; likewise a Gaussian information-criterion fit (from the
        statistics, with ``polish=True``) of at most 16 features runs no relaxation, since
        the certified search enumerates every support anyway (no ``losses_``, ``params_`` or
        ``relaxed_*``; ``inclusion_probs_`` are then ``ic_weights_.inclusion``);
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
        exact refit criterion when p ≤ 12
        (:data:`~l0bayes.linear_model.params.BERNOULLI_EXHAUSTIVE_LIMIT`; beyond, the answer is the
        local search's local optimum, ``optimal_ = False``).
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
    def _validate(self, X, y) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Checked float64 ``X``, ``y``, the mask of the non-constant columns of X and the
        checked ``groups`` (or None): the only validation of the rows a fit makes."""
        preprocessing.check_layout(X, y)
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True, ensure_all_finite=False)
        X, y = check_Xy(X, y, family=self.family, min_samples=3)
        if self.family == "gaussian":
            check_not_constant(y)
        keep = np.ptp(X, axis=0) > 0
        groups = None if self.groups is None else check_groups(self.groups, X.shape[1])
        if groups is not None and not keep.all():
            raise ValueError(
                f"X has constant columns {np.flatnonzero(~keep).tolist()}: with groups, drop "
                "them (and their entries of groups) first"
            )
        self._check_columns(keep, X.shape[0], X.min(axis=0), X.max(axis=0))
        return X, y, keep, groups

    def _check_columns(self, keep: np.ndarray, n: int, low: np.ndarray, high: np.ndarray) -> None:
        """The columns (``low``/``high`` their extremes), then the settings for the columns
        kept; warns about the constant columns left out (``keep`` False)."""
        names = getattr(self, "feature_names_in_", None)
        preprocessing.check_column_scales(keep, low, high, names)
        params.check_params(self, n, int(keep.sum()))
        preprocessing.warn_constant_columns(keep, names, stacklevel=4)

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
        X, y, keep, groups = self._validate(X, y)
        offset = check_offset(offset, X.shape[0])
        if offset is not None and self.family == "gaussian":
            y, offset = y - offset, None
        self.n_samples_ = X.shape[0]
        if params.fits_from_stats(self):
            self._fit_stats(GaussianStats.from_arrays(X, y), keep)
        else:
            self._fit_columns(X[:, keep], y, offset, groups)
        if not keep.all():
            self._restore_constant_columns(X[0], keep)
        return self

    def fit_chunks(self, chunks: Iterable[tuple[object, object]]) -> L0Regression:
        """Fit from an iterable of ``(X_chunk, y_chunk)`` blocks of rows, never holding X whole
        (Gaussian family, information-criterion penalty, ``batch_size=None``).

        The chunks are read once into the sufficient statistics (memory :math:`O(p^2)`); the
        fit is then the one :meth:`fit` makes on the concatenated rows (class docstring): the
        same ``selected_``, ``coef_`` up to round-off and the same ``criteria_``. Each chunk
        must have the same columns and at least one row, all finite; otherwise a
        ``ValueError`` names the chunk and the problem.

        :param chunks: e.g. a generator reading a file block by block.
        :returns: ``self``.
        """
        self._reset()
        params.check_stats_path(self, "fit_chunks")
        data = None
        for index, chunk in enumerate(chunks):
            X, y = preprocessing.check_chunk(chunk, index, None if data is None else data.p)
            data = GaussianStats.empty(X.shape[1]) if data is None else data
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
        params.check_stats_path(self, "partial_fit")
        data = getattr(self, "_data_stats_", None)
        X, y = preprocessing.check_chunk((X, y), getattr(self, "n_chunks_", 0), data and data.p)
        data = GaussianStats.empty(X.shape[1]) if data is None else data
        data.update(X, y)
        chunks = getattr(self, "n_chunks_", 0) + 1
        self._reset()
        self._data_stats_, self.n_chunks_ = data, chunks
        return self._fit_accumulated(data)

    def _reset(self) -> None:
        """Forget the results of an earlier fit (attributes ending in ``_``)."""
        for name in [k for k in vars(self) if k.endswith("_")]:
            delattr(self, name)

    def _store(self, attributes: dict) -> None:
        """Set the fitted attributes ``attributes`` (name → value)."""
        for name, value in attributes.items():
            setattr(self, name, value)

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
        std = preprocessing.Standardizer(stats.x_mean.copy(), x_scale, data.y_mean, y_scale)
        standard = stats.standardized()
        gram, xty = standard.gram, standard.xty
        tstats = RegressionStats.of(standard, resolve_device(self.device))
        ridge = np.linalg.solve(gram + np.eye(p), xty)
        ridge = torch.as_tensor(ridge, dtype=torch.float64, device=tstats.gram.device)
        prior = self._prior(std, (n, p), tstats.gram, ridge)
        if self.method == "auto" and self.polish and p <= ENUMERATION_LIMIT:
            # the certified search enumerates every support: a relaxation would be thrown away
            selected = self._certify(stats, np.zeros(p, dtype=bool))
            weights = self.ic_weights_.inclusion
            self._store(stats_fit.stats_attributes(stats, std, selected, weights))
            return
        stop = {}
        if self.polish:

            def gates() -> torch.Tensor:  # the relaxed support, read in fit_svi's store
                return relaxation.gates_of(pyro.param("gate_log_alpha"), prior).prob_nonzero > 0.5

            stop = {"monitor": gates, "patience": max(RELAXATION_PATIENCE, self.n_steps // 10)}
        result = relaxation.run_svi(
            self, regression_model_stats, regression_guide_stats, (tstats, prior), **stop
        )
        self.relaxed_inclusion_probs_ = (
            relaxation.guide_gates(result, prior).prob_nonzero.cpu().numpy()
        )
        self.relaxed_support_ = self.relaxed_inclusion_probs_ > 0.5
        selected = self.relaxed_support_
        if self.polish:
            selected = self._certify(stats, selected)
        else:
            self.optimal_, self.criterion_gap_ = False, math.nan
        inclusion = self.relaxed_inclusion_probs_  # the guide's, reported as they are
        self._store(stats_fit.stats_attributes(stats, std, selected, inclusion, result))

    def _fit_columns(self, X: np.ndarray, y: np.ndarray, offset, groups) -> None:
        """The fit from the checked rows (constant columns dropped) and ``groups``: the exact
        enumeration, or the relaxation, then the search (criteria) or the PIP correction."""
        if params.method(self, X.shape[1]) == "exact":
            self._fit_exact(X, y, offset, groups)
            return
        relaxed = relaxation.relax(self, X, y, offset, groups)
        self.lam_ = relaxed.prior.lam
        self.relaxed_inclusion_probs_ = relaxed.column_probs
        self.relaxed_support_ = relaxed.column_probs > 0.5
        selected = self.relaxed_support_
        if self.penalty != "bayes" and self.polish:
            if groups is None:
                selected = local_search(
                    X, y, selected, criterion=self.lam_, family=self.family, offset=offset
                ).support
            selected = self._best_subset(X, y, selected, offset)
        elif self.penalty != "bayes":
            self.optimal_, self.criterion_gap_ = False, math.nan
        corrected = self.penalty == "bayes" and params.correction(self, X.shape[1]) != "none"
        attributes = views.relaxation_attributes(
            self, relaxed, X, y, selected, offset, groups, criteria=not corrected
        )
        self._store(attributes)
        if self.penalty == "bayes":
            self._correct(X, y, offset, relaxed, groups)

    def _correct(self, X, y, offset, relaxed: relaxation.Relaxation, groups) -> None:
        """Replace the guide's PIPs by the declared posterior's (``correction``;
        :mod:`~l0bayes.linear_model.corrections`), or keep them (``"none"``)."""
        p, G = X.shape[1], params.n_gates(groups, X.shape[1])
        correction, gates = params.correction(self, p), relaxed.gates
        if correction == "psis":
            post = corrections.importance_correction(
                self, X, y, self.inclusion_probs_, self.noise_scale_, self._prior_pi(p)
            )
        elif correction == "enumerate" and self.prior == "raw":
            post = corrections.raw_enumeration_correction(
                self, X, y, self.noise_scale_, self._prior_pi(p), gates
            )[0]
        elif correction == "enumerate" and self.family == "gaussian":
            post = corrections.enumeration_correction(
                *corrections.enumerate_structures(self, X, y), gates, self.seed, groups
            )
        elif correction == "mc3" and self.family == "gaussian":
            pi = self._prior_pi(G)
            post = corrections.chain_correction(self, X, y, groups, pi, gates, relaxed.gate_probs)
        elif correction != "none":
            scorer = LaplaceScorer(
                X, y, self.family, float(self.slab_scale), self._prior_pi(G), offset, groups
            )
            post = corrections.laplace_correction(self, scorer, correction, gates, groups)
        else:
            sizes = poisson_binomial(relaxed.gate_probs)
            self._store(views.size_posterior(sizes, self._prior_pi(G), relaxed.result.params))
            return
        self._adopt(post, X, y, offset, groups)

    def _adopt(self, post: corrections.CorrectedPosterior, X, y, offset=None, groups=None) -> None:
        """Store a corrected posterior (:func:`~l0bayes.linear_model.views.
        posterior_attributes`); one ``RuntimeWarning`` per alert."""
        guide = getattr(self, "inclusion_probs_", None)  # the guide's, after SVI
        pi = self._prior_pi(post.model_size_probs.size - 1)
        self._store(views.posterior_attributes(self, post, X, y, offset, groups, guide, pi))
        for message in post.alerts:
            warnings.warn(message, RuntimeWarning, stacklevel=5)

    def _fit_exact(self, X, y, offset, groups) -> None:
        """``method="exact"``: the posterior over all gate structures, enumerated without SVI
        (raw slab: :func:`~l0bayes.linear_model.exact.exact_posterior`; else
        :func:`~l0bayes.linear_model.corrections.enumerate_structures`); the median-probability
        model refitted by maximum likelihood."""
        G = params.n_gates(groups, X.shape[1])
        params.check_exact(self, G)
        pi = self._prior_pi(G)
        self.lam_ = params.code_cost("bayes", X.shape[0], pi)[0]
        if self.prior == "raw":
            post, self.exact_ = corrections.raw_enumeration_correction(
                self, X, y, self.noise_scale, pi, None
            )
            self.noise_scale_ = float(self.noise_scale)
            self._adopt(post, X, y)
            return
        enumeration, _ = corrections.enumerate_structures(self, X, y, offset)
        method = "enumerate" if self.family == "gaussian" else "laplace-enumerate"
        post = corrections.CorrectedPosterior(
            enumeration.inclusion_probs, enumeration.model_size_probs,
            {"method": method, "warnings": []}, per_gate=groups is not None,
            top_models=corrections.widen_top_models(enumeration.top_models, groups),
        )  # fmt: skip
        self._adopt(post, X, y, offset, groups)
        if self.family == "gaussian":
            self.noise_scale_ = views.rms(y - self.intercept_ - X @ self.coef_)

    # ------------------------------------------------- the plan, from the parameters
    def _prior(self, std, shape, like: torch.Tensor, init_weight: torch.Tensor) -> RegressionPrior:
        """The relaxation's prior (:func:`~l0bayes.linear_model.relaxation.regression_prior`);
        sets ``lam_``."""
        prior = relaxation.regression_prior(self, std, shape, like, init_weight)
        self.lam_ = prior.lam
        return prior

    def _prior_pi(self, p: int) -> PriorInclusion:
        """The prior on inclusion of p gates (:func:`~l0bayes.linear_model.params.
        prior_inclusion`, with the rows of this fit)."""
        return params.prior_inclusion(self, p, getattr(self, "n_samples_", math.inf))

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
        return self._certify(GaussianStats.from_arrays(X, y), start)

    def _certify(self, stats: GaussianStats, start: np.ndarray) -> np.ndarray:
        """The certified best subset from the statistics, ``start`` the incumbent
        (:func:`~l0bayes.linear_model.stats_fit.certified_subset`; sets ``search_``,
        ``ic_weights_``, ``optimal_`` and ``criterion_gap_``)."""
        criterion = params.search_criterion(self.penalty, stats.n, stats.p)
        answer = stats_fit.certified_subset(stats, criterion, start, self.time_limit)
        self.search_, self.ic_weights_ = answer.search, answer.ic_weights
        self.optimal_, self.criterion_gap_ = answer.optimal, answer.gap
        return answer.support

    # ------------------------------------------------------------ fitted attributes
    def _restore_constant_columns(self, constants: np.ndarray, keep: np.ndarray) -> None:
        """Widen the per-feature results of a fit on ``X[:, keep]`` to all columns of X
        (:func:`~l0bayes.linear_model.views.widened`)."""
        fitted = {k: v for k, v in vars(self).items() if k.endswith("_")}
        self._store(views.widened(fitted, keep, constants, self.slab_scale))

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
        return views.summary_table(self, names)

    def model_prior(self, n_gates: int) -> tuple[Prior | None, PriorInclusion]:
        """The declared prior of ``penalty="bayes"`` as the PIP corrections use it: the
        conjugate slab with σ integrated out (None for ``prior="raw"`` and for the families
        other than Gaussian, whose marginal likelihoods are not conjugate) and the prior on
        the inclusion of ``n_gates`` gates (π, or ``("beta", a, b)``)."""
        gaussian = self.family == "gaussian" and self.prior != "raw"
        return (params.conjugate_prior(self) if gaussian else None), self._prior_pi(n_gates)

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
__all__ = [
    "L0Regression",
    "METHODS",
    "PENALTIES",
]
