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
import sys
import tempfile
import time
from pathlib import Path

from l0bayes.device import torch_threads
from l0bayes.training.config import TrainConfig
from l0bayes.training.sweep import sweep, sweep_configs
from l0bayes.training.trainer import train

TARGET = 2.5


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--network", default="mnist-mlp", choices=["mnist-mlp", "lenet5"])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-size", type=int, default=2000)
    p.add_argument("--test-size", type=int, default=1000)
    args = p.parse_args(argv)
    sizes = dict(epochs=args.epochs, train_size=args.train_size, test_size=args.test_size)
    base = TrainConfig(
        network=args.network, dataset="synthetic", num_threads=1, progress=False, **sizes
    )
    with tempfile.TemporaryDirectory() as tmp, torch_threads(1):
        warm = dict(epochs=1, train_size=200, test_size=100)  # imports, allocator: untimed
        sweep(sweep_configs(TrainConfig(**{**base.__dict__, **warm}), [0.1], [0], Path(tmp) / "w"))
        tic = time.perf_counter()
        one = train(TrainConfig(**{**base.__dict__, "out": str(Path(tmp) / "train")}))
        t_train = time.perf_counter() - tic
        tic = time.perf_counter()
        four = sweep(sweep_configs(base, [0.1, 1.0], [0, 1], Path(tmp) / "sweep"))
        t_sweep = time.perf_counter() - tic
    result = {
        "train_seconds_whole": t_train,
        "sweep_seconds_whole": t_sweep,
        "ratio_whole": t_sweep / t_train,
        "train_loop_seconds": one["train_seconds"],
        "sweep_loop_seconds": four[0]["train_seconds"],
        "ratio_loop": four[0]["train_seconds"] / one["train_seconds"],
    }
    command = " ".join(["python bench/sweep_speed.py", *(argv or sys.argv[1:])])
    print(f"{args.network}, synthetic {args.train_size} x {args.epochs} epochs, one thread:")
    print(f"  one train run : {t_train:6.2f} s (training loop {one['train_seconds']:.2f} s)")
    print(f"  sweep of four : {t_sweep:6.2f} s (training loop {four[0]['train_seconds']:.2f} s)")
    print(
        f"  ratio sweep/train: {result['ratio_whole']:.2f} whole, {result['ratio_loop']:.2f} "
        f"training loop (target <= {TARGET}; four separate runs: 4)"
    )
    print(f"command: {command}")
    return result


if __name__ == "__main__":
    main()
