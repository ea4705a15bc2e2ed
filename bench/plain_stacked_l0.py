"""A plain-PyTorch stack of K L0 MLPs, each step one captured CUDA graph: the speed reference.

Written from the paper's equations (``shared/PAPER.md``), apart from l0bayes (torch only): K
networks 784-300-100-10, a hard concrete gate on every layer's input neurons (one draw per
minibatch, ``torch.rand`` inside the graph), per-network weights ``(K, in, out)`` applied by
batched matrix products, the per-data-point objective

    mean cross-entropy + (1/N) sum_j P(z_j != 0) (lambda S + (lambda_2 / 2) ||theta_j||^2)

summed over the networks, Adam (``capturable=True``), the clamp of log alpha to
[log 0.01, log 100] and an EMA of the parameters after every step; the data on the device,
each network's minibatch gathered by an index tensor. On CUDA the whole step (gather, forward,
backward, Adam, clamp, EMA) is captured once and replayed; on the CPU it runs eagerly (a smoke
test). ``bench/stack_speed.py`` times it against l0bayes's engine.

    python bench/plain_stacked_l0.py --networks 64 --steps 600 --device cuda
    python bench/plain_stacked_l0.py --networks 2 --steps 5          # CPU smoke test
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F

BETA, GAMMA, ZETA = 2.0 / 3.0, -0.1, 1.1
SIZES = (784, 300, 100, 10)
DROP_RATES = (0.2, 0.5, 0.5)


class PlainStack:
    """K MLPs with stacked parameters and the whole training step as one function."""

    def __init__(self, K: int, num_data: int, device, lam=0.1, decay=5e-4, lr=1e-3, ema=0.999):
        self.K, self.num_data, self.lam, self.beta = K, num_data, lam, ema
        self.decay = decay * num_data  # the paper's weight decay per data point, per data set
        torch.manual_seed(0)
        self.params = []
        for n_in, n_out, rate in zip(SIZES[:-1], SIZES[1:], DROP_RATES, strict=True):
            bound = 1.0 / math.sqrt(n_in)
            weight = torch.empty(K, n_in, n_out, device=device).uniform_(-bound, bound)
            bias = torch.zeros(K, n_out, device=device)
            log_alpha = math.log(1 - rate) - math.log(rate) + 0.01 * torch.randn(K, n_in)
            self.params += [weight, bias, log_alpha.to(device)]
        for p in self.params:
            p.requires_grad_(True)
        capturable = torch.device(device).type == "cuda"
        self.optimizer = torch.optim.Adam(self.params, lr=lr, foreach=True, capturable=capturable)
        self.shadow = [torch.zeros_like(p) for p in self.params]
        self.loss_sum = torch.zeros(K, device=device)

    def step(self, x_all: torch.Tensor, y_all: torch.Tensor, index: torch.Tensor) -> None:
        x = x_all[index].float().div_(255.0)  # (K, B, 784)
        y = y_all[index]
        h, penalty = x, 0.0
        for i in range(3):
            weight, bias, log_alpha = self.params[3 * i : 3 * i + 3]
            u = torch.rand_like(log_alpha).clamp_(1e-6, 1 - 1e-6)
            s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + log_alpha) / BETA)
            z = (s * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0)
            h = torch.baddbmm(bias[:, None], h * z[:, None], weight)
            if i < 2:
                h = F.relu(h)
            p_open = torch.sigmoid(log_alpha - BETA * math.log(-GAMMA / ZETA))
            per_gate = self.lam * weight.shape[2] + 0.5 * self.decay * weight.square().sum(2)
            penalty = penalty + (p_open * per_gate).sum(1)
        nll = F.cross_entropy(h.flatten(0, 1), y.flatten(), reduction="none")
        losses = nll.view(y.shape).mean(1) + penalty / self.num_data
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        self.optimizer.step()
        with torch.no_grad():
            for log_alpha in self.params[2::3]:
                log_alpha.clamp_(math.log(0.01), math.log(100.0))
            torch._foreach_lerp_(self.shadow, self.params, 1.0 - self.beta)
            self.loss_sum += losses.detach()


def time_steps(K: int, steps: int, device: str, num_data: int = 60000, warmup: int = 3) -> dict:
    """Seconds per step of K stacked MLPs over ``steps`` steps (after ``warmup`` eager ones),
    the step replayed from one CUDA graph on CUDA, eager on the CPU."""
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(1)
    x_all = torch.randint(0, 256, (num_data, 784), dtype=torch.uint8, generator=gen).to(dev)
    y_all = torch.randint(0, 10, (num_data,), generator=gen).to(dev)
    stack = PlainStack(K, num_data, dev)
    orders = torch.stack([torch.randperm(num_data, generator=gen) for _ in range(K)]).to(dev)
    index = orders[:, :100].clone()
    cuda = dev.type == "cuda"
    if cuda:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                stack.step(x_all, y_all, index)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            stack.step(x_all, y_all, index)
        torch.cuda.synchronize()
    tic = time.perf_counter()
    per_epoch = num_data // 100
    for s in range(steps):
        start = (s % per_epoch) * 100
        if cuda:
            index.copy_(orders[:, start : start + 100])
            graph.replay()
        else:
            stack.step(x_all, y_all, orders[:, start : start + 100])
    float(stack.loss_sum.sum())  # the one synchronisation
    seconds = time.perf_counter() - tic
    return {"networks": K, "steps": steps, "device": device, "seconds_per_step": seconds / steps}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=64)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-data", type=int, default=60000)
    args = parser.parse_args(argv)
    result = time_steps(args.networks, args.steps, args.device, args.num_data)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
