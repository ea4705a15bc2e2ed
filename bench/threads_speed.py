"""Does the default thread count ever make a run slower than one thread?

Times a short training (the MNIST MLP, 200 SVI steps on synthetic images) and an
``L0Regression`` fit large enough that torch's thread count applies (n x p over a million
numbers) at three settings: ``--threads 1``, the default (:func:`l0bayes.device.default_threads`)
and all cores (torch's own default), on the machine as it is and with CPU burners running
beside it (one busy process per ``--burners``). Prints the seconds and the ratios to one thread.

Reproduce::

    python bench/threads_speed.py                 # about a minute on 2 cores
    python bench/threads_speed.py --burners 2     # every core of a 2-core machine busy
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
import warnings

import numpy as np

from l0bayes.device import default_threads, torch_threads
from l0bayes.linear_model import L0Regression
from l0bayes.training.config import TrainConfig
from l0bayes.training.trainer import train


def burn(stop) -> None:
    """Spin one core until ``stop`` is set."""
    x = 0
    while not stop.is_set():
        for _ in range(10_000):
            x = (x * 1103515245 + 12345) % 2**31


def time_training(threads: int | None, steps: int) -> float:
    batch = 100
    epochs = max(1, steps // 20)
    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(
            network="mnist-mlp",
            out=out,
            dataset="synthetic",
            epochs=epochs,
            batch_size=batch,
            train_size=20 * batch,
            test_size=200,
            num_threads=threads,
            progress=False,
        )
        start = time.perf_counter()
        train(cfg)
        return time.perf_counter() - start


def time_regression(threads: int | None, n: int, p: int, steps: int) -> float:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, p))
    y = X[:, :5] @ np.ones(5) + rng.standard_normal(n)
    est = L0Regression(penalty="bic", n_steps=steps, progress=False, seed=0)
    start = time.perf_counter()
    with torch_threads(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)  # fit_svi keeps the threads set here for problems over 1e6 numbers
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="training SVI steps")
    parser.add_argument("--reg-n", type=int, default=20_000)
    parser.add_argument("--reg-p", type=int, default=60)
    parser.add_argument("--reg-steps", type=int, default=300)
    parser.add_argument("--burners", type=int, default=1, help="busy processes in 'busy'")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    settings = {"1": 1, f"default ({default_threads()})": None, f"all ({cores})": cores}
    print(f"{cores} cores, load average {os.getloadavg()[0]:.2f} at start", flush=True)
    time_training(1, 20)  # warm-up: imports, allocator, data synthesis caches
    time_regression(1, 2000, args.reg_p, 20)
    rows = []
    for busy in (False, True):
        stop, procs = mp.Event(), []
        if busy:
            procs = [mp.Process(target=burn, args=(stop,)) for _ in range(args.burners)]
            for proc in procs:
                proc.start()
            time.sleep(1.0)
        try:
            for task in ("training", "regression"):
                times = {}
                for name, threads in settings.items():
                    if task == "training":
                        times[name] = time_training(threads, args.steps)
                    else:
                        times[name] = time_regression(
                            threads, args.reg_n, args.reg_p, args.reg_steps
                        )
                rows.append((task, "busy" if busy else "as is", times))
                base = times["1"]
                cells = "  ".join(f"{k}: {v:6.2f}s ({v / base:4.2f}x)" for k, v in times.items())
                print(f"{task:10} {rows[-1][1]:6} {cells}", flush=True)
        finally:
            stop.set()
            for proc in procs:
                proc.join()
    print("ratios are seconds over the --threads 1 seconds (above 1: slower than one thread)")
    print("reproduce: python " + " ".join(["bench/threads_speed.py", *(argv or sys.argv[1:])]))


if __name__ == "__main__":
    main()
