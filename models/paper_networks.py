"""The paper's network experiments (Tables 1 and 2) with their published hyper-parameters.

Each row is an ``l0bayes train`` command line; extra arguments are passed through (and win,
being last), so a row can be run on another seed, device or data folder::

    python models/paper_networks.py mlp --out runs/mlp-s0 --data-dir ../shared/data
    python models/paper_networks.py lenet5 --out runs/lenet-s0 --device cuda
    python models/paper_networks.py lenet5-sep --out runs/lenet-sep-s0
    python models/paper_networks.py wrn-28-10 --out runs/wrn --data-dir ~/data --device cuda
    python models/paper_networks.py --list

Settings (``shared/PAPER.md``): 200 epochs, batch 100, Adam with learning rate 1e-3, weight
decay 5e-4 per data point (the Gaussian slab's precision is N × 5e-4 = 30 on MNIST; the official
LeNet-5 script leaves out the factor N, which ``--weight-precision 5e-4`` reproduces and which
then replaces the row's ``--weight-decay``), λ = 0.1/N (``--lam 0.1``), gates initialised at drop
rate 0.2 for the MLP's input layer and 0.5 elsewhere, one gate draw per minibatch, and the
paper's temporal averaging: an EMA (β = 0.999) of the parameters for evaluation. The official
LeNet-5 script defines that β but never hands it to its model, so it evaluates the last iterate;
``--ema 0`` reproduces it. WRN-28-10 on CIFAR-10: SGD with Nesterov momentum 0.9, learning
rate 0.1 times 0.2 at epochs 60, 120 and 160, batch 128, λ = 0.001/N, drop rate 0.3, EMA
β = 0.99.

Gated layers start from torch's U(±1/√fan-in) weights; the official code uses He's
N(0, 2/fan-in) (``--weight-init he``). Over four MLP seeds each, the two gave the same error
(README).
"""

from __future__ import annotations

import sys

from l0bayes.cli import main as l0bayes

MNIST = [
    *("--epochs", "200", "--batch-size", "100", "--lr", "1e-3"),
    *("--weight-decay", "5e-4", "--ema", "0.999"),
]

#: Row name -> (paper's result, ``l0bayes train`` arguments).
ROWS: dict[str, tuple[str, list[str]]] = {
    "mlp": (
        "MLP 784-300-100, L0 lambda=0.1/N: 219-214-100, 1.4%",
        ["mnist-mlp", *MNIST, "--lam", "0.1", "--init-drop-rate", "0.2", "0.5", "0.5"],
    ),
    "lenet5": (
        "LeNet-5-Caffe, L0 lambda=0.1/N: 20-25-45-462, 0.9%",
        ["lenet5", *MNIST, "--lam", "0.1", "--init-drop-rate", "0.5"],
    ),
    "lenet5-sep": (
        "LeNet-5-Caffe, L0 lambda sep. (10, 0.5, 0.1, 0.1)/N: 9-18-65-25, 1.0%",
        [
            "lenet5",
            *MNIST,
            "--lam",
            "10",
            "0.5",
            "0.1",
            "0.1",
            "--init-drop-rate",
            "0.5",
        ],
    ),  # fmt: skip
    "wrn-28-10": (
        "WRN-28-10 on CIFAR-10, L0 lambda=0.001/N: 3.83%",
        [
            "wrn",
            "--depth",
            "28",
            "--width",
            "10",
            "--dataset",
            "cifar10",
            "--epochs",
            "200",
            "--batch-size",
            "128",
            "--optimizer",
            "sgd",
            "--lr",
            "0.1",
            "--lam",
            "0.001",
            "--init-drop-rate",
            "0.3",
            "--ema",
            "0.99",
        ],
    ),  # fmt: skip
}


def command(row: str, extra: list[str]) -> list[str]:
    """The ``l0bayes`` argument list of a row, with ``extra`` arguments appended (a
    ``--weight-precision`` among them replaces the row's ``--weight-decay``)."""
    if row not in ROWS:
        raise SystemExit(f"unknown row {row!r}; choose one of {sorted(ROWS)}")
    args = list(ROWS[row][1])
    if "--weight-precision" in extra and "--weight-decay" in args:
        i = args.index("--weight-decay")
        del args[i : i + 2]
    return ["train", *args, *extra]


def run(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "--list"):
        print(__doc__)
        for name, (paper, args) in ROWS.items():
            print(f"{name:12s} {paper}\n{'':12s} l0bayes train {' '.join(args)}")
        return 0
    return l0bayes(command(argv[0], argv[1:]))


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
