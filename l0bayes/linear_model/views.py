r"""The fitted attributes of :class:`~l0bayes.linear_model.estimator.L0Regression` and its
views: the attributes of a relaxation (:func:`relaxation_attributes`) and of a corrected
posterior (:func:`posterior_attributes`), as name → value dicts the estimator stores; the
posterior of the model size and of :math:`\pi`; the per-feature attributes widened from the
columns fitted to all columns of X; the per-feature summary table.

The answer of a relaxation or a posterior is refitted by maximum likelihood
(:func:`refit`, with an intercept) and scored by its information criteria
(:func:`criteria_attributes`); the Gaussian noise sd of a refit is
:math:`\hat\sigma = \sqrt{\sum_i r_i^2 / n}` (:func:`rms`).

Posterior of the model size :math:`k = \sum_j 1[z_j \ne 0]` and of :math:`\pi`
(:func:`size_posterior`): from the guide, the Poisson-binomial of its gates and its Beta
guide of :math:`\pi`; from a model-size posterior (exact or importance weighted) under a
:math:`\mathrm{Beta}(a, b)` prior on :math:`\pi`,

.. math::

    p(\pi \mid y) = \sum_k P(k \mid y)\,\mathrm{Beta}(\pi;\ a + k,\ b + p - k).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch
from scipy.stats import beta as beta_dist

from l0bayes.linear_model.corrections import CorrectedPosterior
from l0bayes.linear_model.criteria import information_criteria_checked, refit_coefficients_checked
from l0bayes.linear_model.model_size import PriorInclusion, pi_posterior, pmf_interval
from l0bayes.linear_model.relaxation import Relaxation
from l0bayes.validation import feature_names

#: The per-feature attributes widened to all columns, with the value of a left-out column.
PER_FEATURE = (
    ("inclusion_probs_", 0.0),
    ("relaxed_inclusion_probs_", 0.0),
    ("variational_inclusion_probs_", 0.0),
    ("coef_", 0.0),
    ("selected_", False),
    ("relaxed_support_", False),
)


def refit(
    X: np.ndarray, y: np.ndarray, support: np.ndarray, family: str, offset=None
) -> tuple[np.ndarray, float]:
    """Maximum-likelihood coefficients (X's scale, 0 off ``support``) and intercept of the
    model on ``support``."""
    coef = np.zeros(X.shape[1])
    intercept, coef[support] = refit_coefficients_checked(X[:, support], y, family, offset)
    return coef, intercept


def rms(residuals: np.ndarray) -> float:
    """The maximum-likelihood noise sd of the residuals (module docstring)."""
    return float(np.sqrt(np.mean(residuals**2)))


def criteria_attributes(X, y, selected: np.ndarray, family: str, offset, bayes: bool) -> dict:
    """``criteria_`` of the selected model's maximum-likelihood refit. A Bayesian answer
    (``bayes``) may be a model without one (as many parameters as observations, or separated
    classes): then ``criteria_`` is None and ``criteria_error_`` says why; an
    information-criterion search never selects such a model (the error is raised)."""
    try:
        return {"criteria_": information_criteria_checked(X, y, selected, family, offset)}
    except ValueError as err:
        if not bayes:
            raise
        return {"criteria_": None, "criteria_error_": str(err)}


def probs_attributes(gate_probs: np.ndarray, groups: np.ndarray | None) -> dict:
    """``inclusion_probs_`` per column, and ``group_inclusion_probs_`` with groups."""
    if groups is None:
        return {"inclusion_probs_": np.asarray(gate_probs)}
    probs = np.asarray(gate_probs)
    return {"group_inclusion_probs_": probs, "inclusion_probs_": probs[groups]}


def relaxation_attributes(
    settings, relaxed: Relaxation, X, y, selected, offset, groups, criteria: bool = True
) -> dict:
    """The attributes of a relaxation whose answer is ``selected``: the guide (``params_``,
    ``losses_``, its PIPs) and, with ``penalty="bayes"``, its coefficients and σ; else the
    maximum-likelihood refit of ``selected`` and its σ. ``criteria=False`` leaves out
    ``criteria_`` (a corrected posterior's answer replaces the guide's)."""
    params, family = relaxed.result.params, settings.family
    selected = np.asarray(selected, dtype=bool)
    out = {
        "_standardizer_": relaxed.std,
        "params_": {k: v.cpu() for k, v in params.items()},
        "losses_": relaxed.result.losses,
        **probs_attributes(relaxed.gate_probs, groups),
        "selected_": selected,
    }
    bayes = settings.penalty == "bayes"
    if criteria:
        out |= criteria_attributes(X, y, selected, family, offset, bayes)
    if "dispersion" in params:
        out["dispersion_"] = float(params["dispersion"])
    if bayes:
        coef, intercept = relaxed.coef(groups)
        if family == "gaussian":
            sigma = settings.noise_scale or float(params["noise_scale"]) * relaxed.std.y_scale
            out["noise_scale_"] = float(sigma)
    else:
        coef, intercept = refit(X, y, selected, family, offset)
        if family == "gaussian":
            out["noise_scale_"] = rms(y - intercept - X @ coef)
    return out | {"coef_": coef, "intercept_": intercept}


def posterior_attributes(
    settings, post: CorrectedPosterior, X, y, offset, groups, guide_probs, pi: PriorInclusion
) -> dict:
    """The attributes of a corrected posterior: its PIPs (the guide's ``guide_probs``, if any,
    kept as ``variational_inclusion_probs_``) and ``pip_diagnostics_``, the 0.5-PIP model
    with its coefficients (or their maximum-likelihood refit) and criteria, and the posterior
    of the model size under the prior ``pi`` on inclusion."""
    out = {"pip_diagnostics_": post.diagnostics}
    if guide_probs is not None:
        out["variational_inclusion_probs_"] = guide_probs
    out |= probs_attributes(post.probs, groups if post.per_gate else None)
    selected = out["inclusion_probs_"] > 0.5
    coef = post.coef
    if coef is None:
        coef = refit(X, y, selected, settings.family, offset)
    out |= {"selected_": selected, "coef_": coef[0], "intercept_": coef[1]}
    if post.top_models is not None:
        out["top_models_"] = post.top_models
    out |= size_posterior(post.model_size_probs, pi)
    out |= criteria_attributes(X, y, selected, settings.family, offset, True)
    return out | post.attributes


def size_posterior(
    size_probs: np.ndarray, prior: PriorInclusion, params: dict | None = None
) -> dict:
    """``model_size_probs_``, ``model_size_mean_``, ``model_size_interval_`` (90%),
    ``prior_inclusion_mean_`` and ``prior_inclusion_interval_`` (module docstring); ``params``
    the guide's, whose Beta guide of π is used when it has one."""
    out = {
        "model_size_probs_": size_probs,
        "model_size_mean_": float(np.arange(size_probs.size) @ size_probs),
        "model_size_interval_": pmf_interval(size_probs),
    }
    if params is not None and "inclusion_concentration1" in params:
        a = float(params["inclusion_concentration1"])
        b = float(params["inclusion_concentration0"])
        out["prior_inclusion_mean_"] = a / (a + b)
        out["prior_inclusion_interval_"] = tuple(beta_dist(a, b).ppf([0.05, 0.95]).tolist())
    else:
        mean, interval = pi_posterior(prior, size_probs)
        out["prior_inclusion_mean_"], out["prior_inclusion_interval_"] = mean, interval
    return out


def _widen(values, keep: np.ndarray, fill) -> np.ndarray:
    out = np.full(keep.size, fill, dtype=np.asarray(values).dtype)
    out[keep] = values
    return out


def widened(fitted: dict, keep: np.ndarray, constants: np.ndarray, slab_scale: float) -> dict:
    """The fitted attributes ``fitted`` (name → value) of a fit on ``X[:, keep]`` widened to
    all columns of X: a constant column is a closed gate (log α = -inf) with coefficient 0;
    ``constants`` holds each column's value in one row (its mean where it is constant).
    Returns only the attributes that change."""
    p = keep.size
    out = {}
    if "ic_weights_" in fitted:
        out["ic_weights_"] = fitted["ic_weights_"].widen(keep)
    for name, fill in PER_FEATURE:
        if name in fitted:
            out[name] = _widen(fitted[name], keep, fill)
    if "model_size_probs_" in fitted:
        sizes = np.zeros(p + 1)
        sizes[: fitted["model_size_probs_"].size] = fitted["model_size_probs_"]
        out["model_size_probs_"] = sizes
    if "top_models_" in fitted:
        out["top_models_"] = [(_widen(s, keep, False), q) for s, q in fitted["top_models_"]]
    if "params_" in fitted:
        std = fitted["_standardizer_"]
        fills = {"gate_log_alpha": -math.inf, "weight_scale": slab_scale / std.y_scale}
        index = torch.as_tensor(keep)
        params = dict(fitted["params_"])
        for name, value in params.items():
            if value.shape == (int(keep.sum()),):
                full = value.new_full((p,), fills.get(name, 0.0))
                full[index] = value
                params[name] = full
        out["params_"] = params
        out["_standardizer_"] = replace(
            std,
            x_mean=_widen(std.x_mean, keep, 0.0) + np.where(keep, 0.0, constants),
            x_scale=_widen(std.x_scale, keep, 1.0),
        )
    return out


def _text_table(rows: dict, names: list[str], note: str | None) -> str:
    """The summary as plain text (no pandas)."""
    lines = [f"{'feature':>12} " + " ".join(f"{key:>11}" for key in rows)]
    for i, name in enumerate(names):
        cells = [
            f"{bool(v[i])!s:>11}" if v.dtype == bool else f"{v[i]:11.4g}"
            for v in map(np.asarray, rows.values())
        ]
        lines.append(f"{name:>12} " + " ".join(cells))
    return "\n".join(lines + ([f"ic_weight: {note}"] if note else []))


def summary_table(est, names=None):
    """One row per feature of a fitted ``est`` (its :meth:`~l0bayes.linear_model.estimator.
    L0Regression.summary`): a pandas ``DataFrame`` when pandas is installed, else text."""
    names = feature_names(est, names)
    weights = getattr(est, "ic_weights_", None)
    if est.penalty == "bayes":
        rows = {"pip": est.inclusion_probs_}
    elif weights is not None:
        rows = {"ic_weight": weights.inclusion}
    else:
        rows = {}
    rows |= {"coef": est.coef_, "selected": est.selected_}
    note = None if weights is None or est.penalty == "bayes" else weights.describe()
    try:
        import pandas as pd
    except ImportError:
        return _text_table(rows, names, note)
    table = pd.DataFrame(rows, index=pd.Index(names, name="feature"))
    if note:
        table.attrs["ic_weight"] = note
    return table


__all__ = [
    "PER_FEATURE",
    "criteria_attributes",
    "posterior_attributes",
    "probs_attributes",
    "refit",
    "relaxation_attributes",
    "rms",
    "size_posterior",
    "summary_table",
    "widened",
]
