"""Is a sweep of four networks in one stacked job cheaper than four ``train`` runs?

Times, in one process and one thread each, one ``l0bayes train`` run of the MNIST MLP and one
``l0bayes sweep`` of four such networks (2 λ × 2 seeds), on the same data: the synthetic images,
2 epochs of 2,000 training examples (1,000 test). Prints the seconds (whole command, and the
training loop alone) and the ratio sweep / train. The target: at most 2.5 (four separate runs
take 4).

Reproduce::

    python bench/sweep_speed.py                      # about half a minute on one core
    python bench/sweep_speed.py --network lenet5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from l0bayes.device import torch_threads
from l0bayes.training.config import TrainConfig
from l0bayes.training.sweep import sweep, sweep_configs
from l0bayes.training.trainer import train

TARGET = 2.5
#: The MNIST MLP's gated products: (inputs, outputs) of each layer, batch 100.
MLP_LAYERS = ((784, 300), (300, 100), (100, 10))


def matmul_floor(networks: int = 4, batch: int = 100, repeats: int = 200) -> float:
    """The compute floor of a stacked step: the time of the MLP's gated products, forward and
    backward, for ``networks`` stacked networks (``torch.bmm``, as the sweep) over their time
    for one network (``@``, as ``train``): the median ratio of ``repeats`` interleaved pairs, on
    one thread. No stacking
    can make the sweep cheaper than this ratio times one run's matrix-product time."""

    def step(k: int | None) -> float:
        shape = () if k is None else (k,)
        h = torch.rand(*shape, batch, MLP_LAYERS[0][0])
        params = [(torch.randn(*shape, i, o, requires_grad=True),
                   torch.rand(*shape, i, requires_grad=True)) for i, o in MLP_LAYERS]  # fmt: skip
        tic = time.perf_counter()
        for w, z in params:
            gated = h * (z if k is None else z[:, None, :])
            h = torch.relu(gated @ w if k is None else torch.bmm(gated, w))
        h.sum().backward()
        return time.perf_counter() - tic

    for _ in range(5):  # warm-up
        step(None), step(networks)
    # interleaved pairs, so that a burst of load or a clock change hits both sides alike
    return statistics.median(step(networks) / step(None) for _ in range(repeats))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--network", default="mnist-mlp", choices=["mnist-mlp", "lenet5"])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-size", type=int, default=2000)
    p.add_argument("--test-size", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats (medians)")
    args = p.parse_args(argv)
    sizes = dict(epochs=args.epochs, train_size=args.train_size, test_size=args.test_size)
    base = TrainConfig(
        network=args.network, dataset="synthetic", num_threads=1, progress=False, **sizes
    )
    t_train, t_sweep, loop_train, loop_sweep = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp, torch_threads(1):
        warm = dict(epochs=1, train_size=200, test_size=100)  # imports, allocator: untimed
        sweep(sweep_configs(TrainConfig(**{**base.__dict__, **warm}), [0.1], [0], Path(tmp) / "w"))
        for r in range(args.repeats):  # interleaved, so that a burst of load hits both
            tic = time.perf_counter()
            one = train(TrainConfig(**{**base.__dict__, "out": str(Path(tmp) / f"train{r}")}))
            t_train.append(time.perf_counter() - tic)
            tic = time.perf_counter()
            four = sweep(sweep_configs(base, [0.1, 1.0], [0, 1], Path(tmp) / f"sweep{r}"))
            t_sweep.append(time.perf_counter() - tic)
            loop_train.append(one["train_seconds"])
            loop_sweep.append(four[0]["train_seconds"])
    med = statistics.median
    result = {
        "train_seconds_whole": med(t_train),
        "sweep_seconds_whole": med(t_sweep),
        "ratio_whole": med(s / t for s, t in zip(t_sweep, t_train, strict=True)),
        "train_loop_seconds": med(loop_train),
        "sweep_loop_seconds": med(loop_sweep),
        "ratio_loop": med(s / t for s, t in zip(loop_sweep, loop_train, strict=True)),
    }
    result["matmul_floor"] = matmul_floor()
    command = " ".join(["python bench/sweep_speed.py", *(argv or sys.argv[1:])])
    print(f"{args.network}, synthetic {args.train_size} x {args.epochs} epochs, one thread:")
    print(f"medians of {args.repeats} interleaved repeats:")
    print(f"  one train run : {result['train_seconds_whole']:6.2f} s "
          f"(training loop {result['train_loop_seconds']:.2f} s)")  # fmt: skip
    print(f"  sweep of four : {result['sweep_seconds_whole']:6.2f} s "
          f"(training loop {result['sweep_loop_seconds']:.2f} s)")  # fmt: skip
    print(
        f"  ratio sweep/train: {result['ratio_whole']:.2f} whole, {result['ratio_loop']:.2f} "
        f"training loop (target <= {TARGET}; four separate runs: 4)"
    )
    print(
        f"  compute floor: the MLP's gated products, forward and backward, cost "
        f"{result['matmul_floor']:.2f}x for four stacked networks (bmm) as for one (mm)"
    )
    print(f"command: {command}")
    return result


if __name__ == "__main__":
    main()
