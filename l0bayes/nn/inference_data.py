"""Draws of a gated network's guide as ArviZ ``InferenceData`` (arviz 0.23 API)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from l0bayes.nn.posterior import sampled_log_probs

if TYPE_CHECKING:
    import arviz as az

    from l0bayes.nn.layers import L0Network


def network_inference_data(
    net: L0Network,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    X_holdout: torch.Tensor | None = None,
    y_holdout: torch.Tensor | None = None,
    num_samples: int = 100,
    seed: int = 0,
    batch_size: int = 1000,
    include_weights: bool = False,
) -> az.InferenceData:
    r"""Draws from a gated network's guide as ``InferenceData``.

    A draw is one network (gates and, for a Gaussian weight guide, weights of every gated
    layer, shared by all examples; :func:`l0bayes.nn.posterior.sampled_log_probs`). Groups:

    * ``posterior``: ``<layer>.gate`` for every gated layer (dim ``<layer>.gate_id``): the gate
      values :math:`z \in [0, 1]`, exactly 0 for a pruned unit; with ``include_weights`` and a
      Gaussian weight guide also ``<layer>.weight`` (large: ``S`` times the layer's weights).
    * ``log_likelihood["obs"]``: :math:`\log p(y_i \mid x_i, z^{(s)}, \theta^{(s)})` per draw
      and example of ``(X, y)`` (dim ``obs_id``), so ``az.loo``/``az.waic`` run;
      ``observed_data["obs"]``: ``y``.
    * with ``X_holdout``/``y_holdout``: ``holdout_log_likelihood`` and ``holdout_observed_data``
      (see :func:`to_inference_data`; score them with :func:`holdout_elpd`).

    :param X: images as the network takes them (e.g. ``(N, 784)`` or ``(N, 1, 28, 28)``).
    :param y: integer class labels ``(N,)``.
    """
    import arviz as az

    if (X_holdout is None) != (y_holdout is None):
        raise ValueError("give both X_holdout and y_holdout, or neither")
    sets = {"obs": (X, y)}
    if X_holdout is not None:
        sets["holdout"] = (X_holdout, y_holdout)
    for name, (x, labels) in sets.items():
        if len(x) != len(labels) or len(x) == 0:
            raise ValueError(f"{name}: X and y need the same, non-zero number of rows")
    both = torch.cat([torch.as_tensor(x) for x, _ in sets.values()])
    labels = {k: torch.as_tensor(v[1]).long().cpu() for k, v in sets.items()}
    gates, weights, loglik = {}, {}, {k: [] for k in sets}
    for draw, logp in sampled_log_probs(net, both, num_samples, seed, batch_size):
        for layer_name, d in draw.items():
            gates.setdefault(f"{layer_name}.gate", []).append(d.gates.cpu().numpy())
            if include_weights:
                weights.setdefault(f"{layer_name}.weight", []).append(d.weight.cpu().numpy())
        start = 0
        for key, target in labels.items():
            part = logp[start : start + len(target)]
            loglik[key].append(part.gather(1, target[:, None])[:, 0].numpy())
            start += len(target)
    posterior = {k: np.stack(v)[None] for k, v in {**gates, **weights}.items()}
    dims = {k: [f"{k}_id"] for k in gates}
    idata = az.from_dict(
        posterior=posterior,
        log_likelihood={"obs": np.stack(loglik["obs"])[None]},
        observed_data={"obs": labels["obs"].numpy()},
        dims={**dims, "obs": ["obs_id"]},
    )
    if "holdout" in sets:
        held = {"obs": ["holdout_id"]}
        idata.add_groups(
            holdout_log_likelihood=az.dict_to_dataset(
                {"obs": np.stack(loglik["holdout"])[None]}, dims=held
            ),
            holdout_observed_data=az.dict_to_dataset(
                {"obs": labels["holdout"].numpy()}, default_dims=[], dims=held
            ),
        )
    return idata


__all__ = ["network_inference_data"]
