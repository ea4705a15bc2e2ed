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

A fit is: the data checked once, here (:meth:`L0Regression.fit`, :meth:`~L0Regression.
partial_fit`, :meth:`~L0Regression.fit_chunks`); then either the fit from the sufficient
statistics (Gaussian, information criterion: :func:`~l0bayes.linear_model.stats_fit.
fit_stats`), or the SVI relaxation on the rows (:mod:`~l0bayes.linear_model.relaxation`)
followed by the exact search (criteria, :mod:`~l0bayes.linear_model.polish`) or a correction
of the guide's PIPs (``"bayes"``, :mod:`~l0bayes.linear_model.corrections`), or an exact
enumeration without SVI (``method="exact"``); the results become the fitted attributes
(:mod:`~l0bayes.linear_model.views`). Every step after the boundary receives checked arrays;
``docs/guide.rst`` maps the whole path.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from l0bayes.distributions import DEFAULT_TEMPERATURE
from l0bayes.linear_model import corrections, params, preprocessing, relaxation, stats_fit, views
from l0bayes.linear_model.marginal_likelihood import Prior
from l0bayes.linear_model.model_size import PriorInclusion, poisson_binomial
from l0bayes.linear_model.params import METHODS, PENALTIES
from l0bayes.linear_model.polish import polished_subset
from l0bayes.linear_model.selection import InformationCriteria, check_groups
from l0bayes.linear_model.stats import GaussianStats
from l0bayes.validation import (
    COUNT_FAMILIES,
    as_float_array,
    check_finite,
    check_not_constant,
    check_offset,
    check_Xy,
)


class L0Regression(RegressorMixin, BaseEstimator):
    r"""Bayesian variable selection for linear and logistic (and count) regression with L0
    gates.

    Each coefficient :math:`\beta_j = z_j\theta_j` has a gate :math:`z_j` with a hard concrete
    variational posterior and a spike-and-slab prior, fitted by Pyro's SVI on standardised
    columns (:mod:`l0bayes.linear_model.model`); with ``penalty="bayes"`` and ``prior="slab"``,

    .. math::

        y_i = b + x^{\ast\top}_i \beta^\ast + \varepsilon_i, \quad
        \varepsilon_i \sim \mathcal N(0, \sigma^2), \quad p(b) \propto 1, \quad
        p(\sigma) \propto 1/\sigma, \quad
        \beta^\ast_j \mid z_j \ne 0 \sim \mathcal N(0, \text{slab\_scale}^2 \sigma^2),

    on columns :math:`x^\ast_j` with :math:`x_j^{\ast\top} x^\ast_j = n`, and
    :math:`\beta_j = \beta^\ast_j / s_{x_j}` reported on X's scale. Constant columns are left
    out with a warning; invalid data or settings raise ``ValueError`` naming the argument.
    ``docs/guide.rst`` explains each choice below at length.

    :param family: ``"gaussian"``, ``"bernoulli"`` (y in {0, 1}), ``"poisson"`` or
        ``"negative_binomial"``.
    :param penalty: ``"bic"``, ``"aic"``, ``"aicc"``, a float :math:`\lambda \ge 0` (nats
        per included coefficient) or ``"bayes"`` (module docstring).
    :param prior_inclusion: :math:`\pi` for ``"bayes"``, or a Beta hyperprior
        ``("beta", a, b)`` / ``pyro.distributions.Beta(a, b)``; default 0.5, or the
        beta-binomial(1, 1) when p > n - 2.
    :param expected_model_size: M: :math:`\pi = M / p`.
    :param concentration: c: with ``expected_model_size``, :math:`\pi \sim
        \mathrm{Beta}(cM/p, c(1-M/p))`.
    :param prior: the slab of ``"bayes"``: ``"slab"``, ``"g"``, ``"hyper-g"``,
        ``"hyper-g/n"`` or ``"raw"`` (the slab on X as given).
    :param slab_scale: prior sd of an included coefficient (units of σ on standardised
        columns for ``"slab"``; X's scale for ``"raw"``; unused by the g-priors).
    :param noise_scale: known noise sd (Gaussian, ``prior="raw"``); ``None`` estimates it.
    :param correction: how the guide's PIPs are corrected (``"bayes"``): ``"auto"``,
        ``"enumerate"``, ``"mc3"``, ``"psis"`` (``prior="raw"``), ``"laplace"`` or ``"none"``.
    :param chain_iterations: iterations of each of the 4 model-space chains (``None``: from
        p, continued while a diagnostic fires).
    :param chain_sampler: ``"tempered"`` (weighted tempered Gibbs) or ``"mh"`` (MC3).
    :param method: ``"auto"``, ``"svi"`` or ``"exact"`` (all :math:`2^G` gate structures
        without SVI, G ≤ 20; ``"auto"`` chooses it where the answer is that enumeration).
    :param n_steps: SVI steps.
    :param lr: Adam learning rate.
    :param num_particles: Monte Carlo gate draws per step (vectorised).
    :param batch_size: minibatch size for the data plate (``None``: full batch).
    :param temperature: hard concrete temperature :math:`\beta`.
    :param polish: for the criteria, the exact search after the relaxation
        (:mod:`~l0bayes.linear_model.polish`).
    :param time_limit: seconds the certified search may take (``None``: until certified).
    :param importance_samples: model draws of the PSIS correction (``prior="raw"``).
    :param device: ``"cpu"`` or ``"cuda"``.
    :param seed: RNG seed.
    :param progress: show a progress bar.
    :param groups: ``None`` or an int (p,) array, one gate per group of columns.

    Fitted attributes: ``inclusion_probs_``, ``selected_``, ``coef_``, ``intercept_``,
    ``noise_scale_`` (Gaussian), ``criteria_`` (the selected model's refit), ``lam_``; with a
    criterion ``optimal_``, ``criterion_gap_``, ``search_`` and ``ic_weights_`` (Gaussian);
    after SVI ``losses_``, ``params_``, ``relaxed_inclusion_probs_``, ``relaxed_support_``;
    with ``"bayes"`` the posteriors of the model size and of :math:`\pi`
    (``model_size_probs_``, ``model_size_mean_``, ``model_size_interval_``,
    ``prior_inclusion_mean_``, ``prior_inclusion_interval_``) and, corrected,
    ``variational_inclusion_probs_``, ``pip_diagnostics_``, ``top_models_``, ``pareto_k_``,
    ``importance_ess_``; ``n_chunks_`` after :meth:`partial_fit`.
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
            self._store(stats_fit.fit_stats(self, GaussianStats.from_checked(X, y), keep))
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
            data.update_checked(X, y)
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
        data.update_checked(X, y)
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
        self.n_features_in_, self.n_samples_ = data.p, data.n
        self._store(stats_fit.fit_stats(self, data, keep))
        if not keep.all():
            self._restore_constant_columns(data.x_min, keep)
        return self

    def _fit_columns(self, X: np.ndarray, y: np.ndarray, offset, groups) -> None:
        """The fit from the checked rows (constant columns dropped) and ``groups``: the exact
        enumeration, or the relaxation, then the search (criteria) or the PIP correction."""
        if params.method(self, X.shape[1]) == "exact":
            self._fit_exact(X, y, offset, groups)
            return
        relaxed = relaxation.relax(self, X, y, offset, groups)
        probs = relaxed.column_probs
        self._store({"lam_": relaxed.prior.lam, "relaxed_inclusion_probs_": probs})
        self.relaxed_support_ = selected = probs > 0.5
        bayes = self.penalty == "bayes"
        if not bayes:
            selected, found = polished_subset(self, X, y, selected, self.lam_, offset, groups)
            self._store(found)
        corrected = bayes and params.correction(self, X.shape[1]) != "none"
        self._store(
            views.relaxation_attributes(
                self, relaxed, X, y, selected, offset, groups, criteria=not corrected
            )
        )
        if not bayes:
            return
        sigma = getattr(self, "noise_scale_", None)  # the guide's (Gaussian)
        post = corrections.correct(
            self, X, y, offset, relaxed, groups, self.inclusion_probs_, sigma
        )
        if post is not None:
            self._adopt(post, X, y, offset, groups)
            return
        sizes = poisson_binomial(relaxed.gate_probs)
        pi = self._prior_pi(params.n_gates(groups, X.shape[1]))
        self._store(views.size_posterior(sizes, pi, relaxed.result.params))

    def _fit_exact(self, X, y, offset, groups) -> None:
        """``method="exact"``: the posterior over all gate structures, enumerated without SVI
        (:func:`~l0bayes.linear_model.corrections.enumerated_posterior`); the
        median-probability model refitted by maximum likelihood."""
        G = params.n_gates(groups, X.shape[1])
        params.check_exact(self, G)
        self.lam_ = params.code_cost("bayes", X.shape[0], self._prior_pi(G))[0]
        post, exact = corrections.enumerated_posterior(self, X, y, offset, groups)
        if exact is not None:
            self.exact_ = exact
        self._adopt(post, X, y, offset, groups)
        if self.prior == "raw":
            self.noise_scale_ = float(self.noise_scale)
        elif self.family == "gaussian":
            self.noise_scale_ = views.rms(y - self.intercept_ - X @ self.coef_)

    def _adopt(self, post: corrections.CorrectedPosterior, X, y, offset=None, groups=None) -> None:
        """Store a corrected posterior (:func:`~l0bayes.linear_model.views.
        posterior_attributes`); one ``RuntimeWarning`` per alert."""
        guide = getattr(self, "inclusion_probs_", None)  # the guide's, after SVI
        pi = self._prior_pi(post.model_size_probs.size - 1)
        self._store(views.posterior_attributes(self, post, X, y, offset, groups, guide, pi))
        for message in post.alerts:
            warnings.warn(message, RuntimeWarning, stacklevel=5)

    def _prior_pi(self, p: int) -> PriorInclusion:
        """The prior on inclusion of p gates (:func:`~l0bayes.linear_model.params.
        prior_inclusion`, with the rows of this fit)."""
        return params.prior_inclusion(self, p, getattr(self, "n_samples_", math.inf))

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


__all__ = [
    "L0Regression",
    "METHODS",
    "PENALTIES",
]
