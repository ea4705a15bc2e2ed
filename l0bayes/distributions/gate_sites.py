r"""What every gated block shares, whoever declares it (:func:`l0bayes.gates.gated`, the
layers of :mod:`l0bayes.nn`, the fused regression model of :mod:`l0bayes.linear_model`): the
names of its sites, and the start of its guide's parameter :math:`\log\alpha`.

A gated block named ``prefix`` has a gate site ``prefix.gate`` (:math:`z \sim
\text{SpikeSlabGate}(\lambda)`, guided by :math:`\text{HardConcrete}(\log\alpha)`) and a value
site ``prefix.theta`` (:math:`\theta \mid z \ne 0 \sim \text{slab}`); an empty prefix gives
the bare role (the regression model's ``"gate"``). The KLs of both sites are
:func:`~l0bayes.distributions.gate_kl` and :math:`P_q(z \ne 0)\,\mathrm{KL}(q(\theta) \,\|\,
\text{slab})`, for all three.
"""

from __future__ import annotations

import torch

#: The role of a gate site: ``site_name(prefix, GATE_ROLE)``.
GATE_ROLE = "gate"
#: The role of a gated value site.
VALUE_ROLE = "theta"


def site_name(prefix: str, role: str) -> str:
    """``prefix.role``, or ``role`` for an empty prefix.

    :param prefix: the gated block's name.
    :param role: :data:`GATE_ROLE`, :data:`VALUE_ROLE` or another site of the block.
    """
    return f"{prefix}.{role}" if prefix else role


def initial_log_alpha(
    init: float | torch.Tensor, shape: tuple[int, ...] | torch.Size, like: torch.Tensor
) -> torch.Tensor:
    r"""The starting :math:`\log\alpha` of ``shape`` gates: ``init`` (a float or a tensor
    broadcastable to ``shape``), as a fresh tensor in ``like``'s dtype and device.

    :param init: the initial :math:`\log\alpha` (0 gives :math:`P(z \ne 0) \approx 0.83`).
    :param shape: the gates' shape.
    :param like: a tensor of the wanted dtype and device.
    """
    value = torch.as_tensor(init, dtype=like.dtype, device=like.device)
    return value.expand(torch.Size(shape)).clone()


__all__ = ["GATE_ROLE", "VALUE_ROLE", "initial_log_alpha", "site_name"]
