"""Seconds per training step of K stacked MNIST MLPs: l0bayes's engine against a plain-PyTorch
CUDA-graph stack written apart from it (``bench/plain_stacked_l0.py``).

Both take the same step of K networks 784-300-100-10 (input-neuron hard concrete gates on all
three layers, batch 100, Adam, the log-alpha clamp and the EMA), the data on the device. The
engine is timed through its own step program (:meth:`l0bayes.training.engine.StackedTraining.
program`: one captured CUDA graph per step unless ``--no-graph``), the reference through its
graph; both after their warm-up steps, synchronised once at the end. Interleaved repeats,
medians. The issue's targets (one H200): 64 MLPs within 1.3x of the reference, 200 epochs of
64 in at most 3 minutes; one ``train`` run of 200 epochs in at most 90 s.

    python bench/stack_speed.py --device cuda --networks 1 16 64 --out stack_speed.json
    python bench/stack_speed.py --networks 2 --steps 5 --num-data 1000     # CPU smoke test
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plain_stacked_l0 import time_steps  # noqa: E402

from l0bayes.data.images import synthetic_images  # noqa: E402
from l0bayes.training.config import TrainConfig  # noqa: E402
from l0bayes.training.engine import StackedTraining  # noqa: E402
from l0bayes.training.sweep import sweep_configs  # noqa: E402
from l0bayes.training.trainer import Trainer  # noqa: E402

EPOCH_STEPS = 600  # MNIST: 60,000 images in minibatches of 100


def engine_step_seconds(K: int, steps: int, device: str, num_data: int, graph: bool) -> float:
    """Seconds per step of K stacked MLPs through the engine (λ spread over the networks)."""
    data = synthetic_images((784,), n_train=num_data, n_test=100, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        base = TrainConfig(
            network="mnist-mlp", device=device, graph=graph, progress=False, epochs=1
        )
        lams = [0.1 * (1 + k) for k in range(K)]
        trainers = [Trainer(cfg, data=data) for cfg in sweep_configs(base, lams, [0], tmp)]
        for t in trainers[1:]:  # one copy of the images on the device, as a sweep keeps
            t.train, t.test = trainers[0].train, trainers[0].test
        engine = StackedTraining(trainers, commit=lambda: None)
        program = engine.program(False)
        orders = torch.stack([torch.randperm(num_data) for _ in range(K)]).to(device)
        per_epoch = num_data // 100

        def batch(s: int) -> torch.Tensor:
            start = (s % per_epoch) * 100
            return orders[:, start : start + 100]

        for s in range(4):  # the eager warm-up steps and the capture
            program(batch(s))
        engine.loss_sum.tolist()
        tic = time.perf_counter()
        for s in range(steps):
            program(batch(s))
        engine.loss_sum.tolist()  # the one synchronisation
        return (time.perf_counter() - tic) / steps


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-data", type=int, default=60000)
    parser.add_argument("--no-graph", dest="graph", action="store_false")
    parser.add_argument("--out", default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    rows = []
    for K in args.networks:
        ours, plain = [], []
        for _ in range(args.repeats):  # interleaved
            ours.append(engine_step_seconds(K, args.steps, args.device, args.num_data, args.graph))
            plain.append(time_steps(K, args.steps, args.device, args.num_data)["seconds_per_step"])
        row = {
            "networks": K,
            "l0bayes_ms_per_step": 1e3 * statistics.median(ours),
            "plain_graph_ms_per_step": 1e3 * statistics.median(plain),
        }
        row["ratio"] = row["l0bayes_ms_per_step"] / row["plain_graph_ms_per_step"]
        row["l0bayes_200_epochs_seconds"] = row["l0bayes_ms_per_step"] * EPOCH_STEPS * 200 / 1e3
        rows.append(row)
        print(json.dumps(row), flush=True)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    command = " ".join(["python bench/stack_speed.py", *(argv or sys.argv[1:])])
    result = {"device": args.device, "device_name": name, "graph": args.graph, "rows": rows}
    result["command"] = command
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
