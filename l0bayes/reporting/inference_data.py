"""Fitted l0bayes models as ArviZ ``InferenceData``, and the held-out predictive density."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from l0bayes.linear_model.inference_data import to_inference_data as regression_inference_data
from l0bayes.nn.inference_data import network_inference_data

if TYPE_CHECKING:
    import arviz as az

    from l0bayes.linear_model.estimator import L0Regression
    from l0bayes.nn.layers import L0Network


def to_inference_data(
    fit: L0Regression | L0Network,
    X: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    *,
    X_holdout: np.ndarray | torch.Tensor | None = None,
    y_holdout: np.ndarray | torch.Tensor | None = None,
    num_samples: int | None = None,
    seed: int = 0,
    source: str = "posterior",
) -> az.InferenceData:
    """Posterior draws of a fitted model as ``InferenceData``: a regression goes to
    :func:`l0bayes.linear_model.inference_data.to_inference_data` (default 1000 draws; the
    posterior the fit reports, or with ``source="guide"`` its variational guide), a gated
    network to :func:`l0bayes.nn.inference_data.network_inference_data` (default 100 draws
    of its guide). See those for the groups; :func:`holdout_elpd` reads the held-out ones."""
    from l0bayes.nn.layers import L0Network

    if isinstance(fit, L0Network):
        return network_inference_data(
            fit,
            X,
            y,
            X_holdout=X_holdout,
            y_holdout=y_holdout,
            num_samples=100 if num_samples is None else num_samples,
            seed=seed,
        )
    return regression_inference_data(
        fit,
        X,
        y,
        X_holdout=X_holdout,
        y_holdout=y_holdout,
        num_samples=1000 if num_samples is None else num_samples,
        seed=seed,
        source=source,
    )


@dataclass(frozen=True)
class HoldoutElpd:
    """Expected log predictive density of held-out points, its standard error and the
    pointwise values."""

    elpd: float
    se: float
    pointwise: np.ndarray


def holdout_elpd(idata: az.InferenceData) -> HoldoutElpd:
    r"""Log predictive density of the held-out points, estimated from the posterior draws:

    .. math::

        \widehat{\mathrm{elpd}} = \sum_{i=1}^m \log \frac1S \sum_{s=1}^S
            p(\tilde y_i \mid \tilde x_i, \beta^{(s)}), \qquad
        \mathrm{se} = \sqrt{m\, \widehat{\mathrm{Var}}_i}\,,

    the held-out counterpart of ``az.loo(idata).elpd_loo`` (compare per point: divide by m
    and by n). Needs an ``idata`` from :func:`to_inference_data` with held-out data.
    """
    from scipy.special import logsumexp

    if "holdout_log_likelihood" not in idata.groups():
        raise ValueError("idata has no holdout_log_likelihood: pass X_holdout and y_holdout")
    ll = idata["holdout_log_likelihood"]["obs"].values  # (chain, draw, m)
    ll = ll.reshape(-1, ll.shape[-1])
    pointwise = logsumexp(ll, axis=0) - np.log(ll.shape[0])
    se = float(np.sqrt(pointwise.size * np.var(pointwise, ddof=1))) if pointwise.size > 1 else 0.0
    return HoldoutElpd(float(pointwise.sum()), se, pointwise)


__all__ = ["HoldoutElpd", "holdout_elpd", "to_inference_data"]
