"""A plain-PyTorch L0 MLP (the paper's formulation, no Pyro): the speed baseline.

Written from the paper's equations (see ``shared/PAPER.md``), the way its official code
structures them: each layer holds ``log_alpha`` for its input neurons, draws one hard concrete
gate vector per minibatch, and adds

.. math::

    \\frac{1}{N}\\sum_j P(z_j \\ne 0)
    \\big(\\lambda S + \\tfrac{\\lambda_2}{2}\\lVert\\theta_j\\rVert^2\\big)

to the mean cross-entropy (:math:`\\lambda_2` = ``decay`` is the precision per data set: the
paper's weight decay 5e-4 per data point is ``decay = 5e-4 * N``); Adam, the clamp of
:math:`\\log\\alpha` to [log 0.01, log 100] and a bias-corrected EMA of the parameters after
every step, as the official MLP script does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

BETA, GAMMA, ZETA = 2.0 / 3.0, -0.1, 1.1


class PlainL0Dense(nn.Module):
    def __init__(self, n_in: int, n_out: int, drop_rate: float, lam: float, decay: float):
        super().__init__()
        bound = 1.0 / math.sqrt(n_in)
        self.weight = nn.Parameter(torch.empty(n_in, n_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(n_out))
        init = math.log(1 - drop_rate) - math.log(drop_rate)
        self.log_alpha = nn.Parameter(init + 0.01 * torch.randn(n_in))
        self.lam, self.decay = lam, decay

    def sample_gates(self) -> torch.Tensor:
        u = torch.rand_like(self.log_alpha).clamp(1e-6, 1 - 1e-6)
        s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + self.log_alpha) / BETA)
        return (s * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.sample_gates()) @ self.weight + self.bias

    def regularization(self) -> torch.Tensor:
        p_open = torch.sigmoid(self.log_alpha - BETA * math.log(-GAMMA / ZETA))
        per_gate = self.lam * self.weight.shape[1] + 0.5 * self.decay * self.weight.pow(2).sum(1)
        return (p_open * per_gate).sum()


class PlainL0MLP(nn.Module):
    def __init__(self, lam: float = 0.1, decay: float = 5e-4, sizes=(784, 300, 100, 10)):
        super().__init__()
        drops = [0.2] + [0.5] * (len(sizes) - 2)
        self.layers = nn.ModuleList(
            PlainL0Dense(a, b, r, lam, decay)
            for a, b, r in zip(sizes[:-1], sizes[1:], drops, strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x

    def regularization(self) -> torch.Tensor:
        return sum(layer.regularization() for layer in self.layers)


class PlainTrainer:
    """Adam steps on the per-data-point objective, log-alpha clamp and EMA after each step."""

    def __init__(self, net: PlainL0MLP, num_data: int, lr: float = 1e-3, ema: float = 0.999):
        self.net, self.num_data = net, num_data
        self.optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        self.beta = ema
        self.shadow = [torch.zeros_like(p) for p in net.parameters()]

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(self.net(x), y) + self.net.regularization() / self.num_data
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            for layer in self.net.layers:
                layer.log_alpha.clamp_(math.log(0.01), math.log(100.0))
            for avg, p in zip(self.shadow, self.net.parameters(), strict=True):
                avg.mul_(self.beta).add_(p, alpha=1 - self.beta)
        return loss.detach()
