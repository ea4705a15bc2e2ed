"""One training epoch of the MNIST MLP: l0bayes's engine vs a plain-PyTorch L0 MLP.

Both run the same network (784-300-100-10, input-neuron gates, one gate draw per minibatch),
the same objective, Adam, the log-alpha clamp and the EMA, on the same batches (batch 100).
l0bayes is timed through its real training loop (``Trainer``, the ``train_seconds`` it records:
the loop only, no evaluation), once with its default closed-form ELBO and once with Pyro's
traced ``TraceMeanField_ELBO``. Runs are interleaved and repeated; the medians and their ratios
are printed (and written as JSON with ``--out``).

    python bench/train_speed.py --data-dir ../shared/data            # MNIST, CPU, 1 thread
    python bench/train_speed.py --device cuda --threads 0             # on a GPU

Without MNIST (``--data-dir`` missing) a synthetic set of the same shape is used.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plain_l0 import PlainL0MLP, PlainTrainer  # noqa: E402

from l0bayes.data.files import load_mnist  # noqa: E402
from l0bayes.data.images import Images, epoch_order, synthetic_images
from l0bayes.device import resolve_device
from l0bayes.training.config import TrainConfig
from l0bayes.training.trainer import Trainer


def load(data_dir: str | None, n: int):
    try:
        ds = load_mnist(data_dir)
    except FileNotFoundError:
        print("MNIST not found: timing on a synthetic set of the same shape", file=sys.stderr)
        ds = synthetic_images((784,), n_train=n, n_test=100)
    return dataclasses.replace(ds, x_train=ds.x_train[:n], y_train=ds.y_train[:n])


def engine_epoch(ds, device: str, elbo: str, threads: int | None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            network="mnist-mlp",
            out=tmp + "/run",
            epochs=1,
            device=device,
            elbo=elbo,
            progress=False,
            num_threads=threads,
        )
        trainer = Trainer(cfg, data=ds)
        trainer.evaluate = lambda: {  # only the loop is timed; skip the test pass
            "test_error": 0.0,
            "units": [],
            "expected_l0": [],
            "expected_flops": 0.0,
            "compact_flops": 0.0,
            "nonzero_params": 0.0,
        }
        trainer.run()
        return trainer.state.train_seconds


def plain_epoch(ds, device: str, threads: int | None) -> float:
    dev = resolve_device(device)
    torch.manual_seed(0)
    images = Images(ds.x_train, ds.y_train, (784,), dev)  # pixels in [0, 1], as the engine
    net = PlainL0MLP(decay=5e-4 * len(images))  # the engine's default weight decay
    trainer = PlainTrainer(net.to(dev), num_data=len(images))
    order = epoch_order(0, 0, len(images)).to(dev)
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        _sync(dev)
        tic = time.perf_counter()
        for start in range(0, len(images), 100):
            trainer.step(*images.batch(order[start : start + 100]))
        _sync(dev)
        return time.perf_counter() - tic
    finally:
        torch.set_num_threads(before)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--examples", type=int, default=60000, help="examples per epoch")
    parser.add_argument("--no-trace", action="store_true", help="skip the traced-ELBO timing")
    parser.add_argument("--out", default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    ds = load(args.data_dir, args.examples)
    threads = args.threads or None
    times = {"plain": [], "l0bayes": [], "l0bayes_trace": []}
    for _ in range(args.repeats):  # interleaved: the machine's load hits all alike
        times["plain"].append(plain_epoch(ds, args.device, threads))
        times["l0bayes"].append(engine_epoch(ds, args.device, "analytic", threads))
        if not args.no_trace:
            times["l0bayes_trace"].append(engine_epoch(ds, args.device, "trace", threads))
    median = {k: statistics.median(v) for k, v in times.items() if v}
    result = {
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
        "threads": torch.get_num_threads() if threads is None else threads,
        "examples": len(ds.y_train),
        "seconds": times,
        "median_seconds": median,
        "min_seconds": {k: min(v) for k, v in times.items() if v},
        "ratio_l0bayes_to_plain": median["l0bayes"] / median["plain"],
        "ratio_of_minimums": min(times["l0bayes"]) / min(times["plain"]),
        "torch_version": torch.__version__,
    }
    if "l0bayes_trace" in median:
        result["ratio_trace_to_plain"] = median["l0bayes_trace"] / median["plain"]
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
