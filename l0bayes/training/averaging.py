"""What a run keeps besides the weights: the parameters' moving average (the paper's temporal
averaging) and the Lagrange multipliers of a sparsity target."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from l0bayes.nn.layers import L0Network
from l0bayes.nn.networks import (
    network_architecture,
    network_expected_cost,
)
from l0bayes.training.config import TrainConfig


class ParameterEMA:
    r"""Bias-corrected exponential moving average of a network's parameters (the official
    code's temporal averaging): :math:`m_t = \beta m_{t-1} + (1-\beta)\theta_t`, evaluated with
    :math:`m_t / (1 - \beta^t)`."""

    def __init__(self, module: nn.Module, beta: float) -> None:
        self.beta = beta
        self.steps = 0
        self.shadow = {n: torch.zeros_like(p) for n, p in module.named_parameters()}
        self._pairs = None

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        r""":math:`m \leftarrow m + (1-\beta)(\theta - m)`, one fused call for all tensors."""
        if self._pairs is None:
            named = dict(module.named_parameters())
            self._pairs = ([self.shadow[n] for n in named], [p.detach() for p in named.values()])
        self.steps += 1
        torch._foreach_lerp_(*self._pairs, 1.0 - self.beta)

    @contextlib.contextmanager
    def applied(self, module: nn.Module) -> Iterator[None]:
        """Swap the averaged parameters in for the duration of the block."""
        if self.steps == 0:
            yield
            return
        params = dict(module.named_parameters())
        saved = {n: p.detach().clone() for n, p in params.items()}
        self.copy_to(module)
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in params.items():
                    p.copy_(saved[name])

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        """Overwrite the module's parameters with the bias-corrected averages."""
        correction = 1.0 - self.beta**self.steps
        for name, p in module.named_parameters():
            p.copy_(self.shadow[name] / correction)

    def rebind(self, shadow: dict[str, torch.Tensor]) -> None:
        """Keep the averages in ``shadow`` (e.g. views of a stacked engine's averages)."""
        self.shadow, self._pairs = shadow, None

    def state_dict(self) -> dict:
        return {"beta": self.beta, "steps": self.steps, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.beta, self.steps = state["beta"], state["steps"]
        for name, value in state["shadow"].items():
            self.shadow[name].copy_(value)


class Lagrangian:
    r"""Constraints :math:`c_k(\phi) \le t` held by multipliers :math:`\mu_k \ge 0` learned by
    gradient ascent (see the module docstring)."""

    def __init__(self, cfg: TrainConfig, net: L0Network, input_shape, device) -> None:
        self.kind, self.target, self.lr = cfg.target, cfg.target_fraction, cfg.lagrange_lr
        self.scope = cfg.target_scope
        self.net, self.input_shape = net, input_shape
        with torch.no_grad():
            dense = network_architecture(net, input_shape, "dense")
        self.dense = dense.flops if self.kind == "flops" else dense.params
        count = len(net.gated_layers()) if self.scope == "layer" else 1
        self.mu = torch.zeros(count, device=device)

    def fractions(self) -> torch.Tensor:
        """The constrained expected fractions :math:`c(\\phi)` (differentiable)."""
        if self.scope == "layer":
            return torch.stack(
                [layer.inclusion_probs().mean() for layer in self.net.gated_layers()]
            )
        flops, params = network_expected_cost(self.net, self.input_shape)
        cost = flops if self.kind == "flops" else params
        return (cost / self.dense).reshape(1)

    def penalty(self) -> tuple[torch.Tensor, torch.Tensor]:
        """:math:`\\sum_k \\mu_k (c_k - t)` and the fractions."""
        c = self.fractions()
        return (self.mu * (c - self.target)).sum(), c.detach()

    def ascend(self, fractions: torch.Tensor) -> None:
        self.mu = (self.mu + self.lr * (fractions - self.target)).clamp(min=0.0)


__all__ = [
    "Lagrangian",
    "ParameterEMA",
]
