r"""Views of a fitted :class:`~l0bayes.linear_model.estimator.L0Regression`: the per-feature
summary table, the posterior of the model size and of :math:`\pi`, and the per-feature
attributes widened from the columns fitted to all columns of X.

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

from l0bayes.linear_model.model_size import PriorInclusion, pi_posterior, pmf_interval
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


__all__ = ["PER_FEATURE", "size_posterior", "summary_table", "widened"]
