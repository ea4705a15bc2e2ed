"""What one more parameter tensor costs a ``pyro.optim.Adam`` step: Pyro keeps one torch
optimiser per parameter, so each tensor pays the optimiser's fixed Python cost. A gated
coefficient has one tensor more than a plain one (its log alpha), which bounds how close a
gated SVI step can come to the plain one (``bench/gated_speed.py``).

Run: ``python bench/optim_param_cost.py [--size 10] [--counts 4 5]``; prints the microseconds
of one optimiser step (gradients set, no model) for each number of parameter tensors, the
fastest of 7 rounds of 500 steps.
"""

from __future__ import annotations

import argparse
import sys
import timeit

import pyro
import torch


def step_us(count: int, size: int) -> float:
    """Microseconds per ``pyro.optim.Adam`` step over ``count`` tensors of ``size`` each."""
    pyro.clear_param_store()
    params = [pyro.param(f"p{i}", torch.randn(size)).unconstrained() for i in range(count)]
    optim = pyro.optim.Adam({"lr": 0.01})

    def step() -> None:
        for p in params:
            p.grad = torch.ones_like(p)
        optim(params)

    step()
    return min(timeit.repeat(step, number=500, repeat=7)) / 500 * 1e6


def main(argv: list[str] | None = None) -> dict[int, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=10, help="elements per tensor")
    parser.add_argument("--counts", type=int, nargs="+", default=[4, 5])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out = {n: step_us(n, args.size) for n in args.counts}
    for n, us in out.items():
        print(f"{n} tensors: {us:7.1f} us per step ({us / n:5.1f} us per tensor)")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
