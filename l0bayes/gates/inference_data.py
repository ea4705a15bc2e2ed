r"""ArviZ export of a fitted model with gated sites: posterior draws from any guide.

Each of ``num_samples`` draws runs the guide, replays the model on it, and records every latent
site (gates, gated values, the deterministic :math:`z \odot \theta`, other latents; not a
plate's subsample index) under
``posterior``, the pointwise :math:`\log p(y_i \mid \text{draw})` of every observed site under
``log_likelihood`` (Pyro's ``fn.log_prob``, masks applied), and the observed values under
``observed_data``; so ``arviz.summary``, ``arviz.plot_posterior`` and ``arviz.loo`` work on the
result.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample

from l0bayes.validation import check_count

#: A variable whose draws spread less than this, relative to their size, is round-off around
#: one value (ArviZ cannot histogram a spread of 1e-13): :func:`collapse_round_off`.
ROUND_OFF = 1e-9


def collapse_round_off(values: np.ndarray) -> np.ndarray:
    """``values`` (draws along the first axis) with every element whose draws spread by no
    more than round-off (:data:`ROUND_OFF` of its size) set to its mean: a point estimate
    carried through arithmetic differs at 1e-13 from draw to draw, which ``az.plot_posterior``
    cannot bin ("Too many bins for data range"); a true constant stays what it is."""
    values = np.asarray(values, dtype=float)
    spread = np.ptp(values, axis=0)
    size = np.maximum(np.abs(values).max(axis=0), 1.0)
    return np.where(spread <= ROUND_OFF * size, values.mean(axis=0), values)


def to_inference_data(guide, model, *args, num_samples: int = 200, **kwargs) -> az.InferenceData:
    """Draw ``num_samples`` posterior samples from ``guide`` and build an ``InferenceData``.

    :param guide: a fitted guide (e.g. :class:`~l0bayes.gates.AutoL0Guide`).
    :param model: the Pyro model it was fitted to.
    :param args: the model's positional arguments (the data).
    :param num_samples: number of draws (one chain).
    :param kwargs: the model's keyword arguments.
    :return: an ``arviz.InferenceData`` with groups ``posterior``, ``log_likelihood`` and
        ``observed_data``.
    """
    n = check_count("num_samples", num_samples)
    posterior: dict[str, list] = {}
    loglik: dict[str, list] = {}
    observed: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for _ in range(n):
            guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
            model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(
                *args, **kwargs
            )
            for name, site in model_trace.nodes.items():
                if site["type"] != "sample" or site_is_subsample(site):
                    continue  # a plate's index (e.g. "data") is no random variable
                value = site["value"].detach().cpu()
                if not site["is_observed"] or site["infer"].get("_deterministic"):
                    posterior.setdefault(name, []).append(value.numpy())
                    continue
                log_p = site["fn"].log_prob(site["value"])
                if site["mask"] is not None:
                    log_p = torch.where(site["mask"], log_p, torch.zeros_like(log_p))
                loglik.setdefault(name, []).append(log_p.detach().cpu().numpy())
                observed[name] = value.numpy()
    if not loglik:
        raise ValueError("the model has no observed site: pass the data (e.g. y) to the model")
    return az.from_dict(
        posterior={k: collapse_round_off(np.stack(v))[None] for k, v in posterior.items()},
        log_likelihood={k: np.stack(v)[None] for k, v in loglik.items()},
        observed_data=observed,
    )


__all__ = ["ROUND_OFF", "collapse_round_off", "to_inference_data"]
