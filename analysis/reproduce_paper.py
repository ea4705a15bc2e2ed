"""The paper's MNIST table (Louizos et al. 2018, Table 1) with our runs beside it.

Reads the ``metrics.json`` (and ``config.json``) of finished ``l0bayes train`` run directories
(it never trains) and writes ``paper_table.md`` and ``paper_table.tex`` into ``--out-dir``.
Runs of the same network, data set, λ, epochs, training-set size and variant (weight decay
other than the paper's 5e-4 per data point, parameter averaging other than the paper's, kl mode,
per-example gates, weight initialisation, input scaling) are one row, averaged over their
seeds; a row is set beside the paper's when it is an MNIST run of the same network and λ (per
parameter, the paper's λ·N). Columns:

* paper: architecture (units entering each gated layer, Eq. 13 gates) and test error after
  200 epochs;
* ours: architecture (mean units per layer over seeds), the test error at the **last epoch**
  (deterministic Eq. 13 gates, EMA parameters where the run kept them; what the paper reports),
  the **best** test error over epochs and its epoch (the official LeNet-5 script prints it; it
  may come from a denser network), epochs, seeds, training time per run, device.

    .venv/bin/python analysis/reproduce_paper.py analysis/results/mnist-mlp-s0 --out-dir runs/paper
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from l0bayes.nn.networks import NETWORKS
from l0bayes.viz import tables


@dataclass(frozen=True)
class PaperRow:
    """One MNIST row of the paper's Table 1."""

    network: str  # the l0bayes network name
    label: str
    lam: tuple[float, ...]  # per gated layer; one value when uniform
    method: str
    architecture: str
    test_error: float  # fraction


PAPER_ROWS = (
    PaperRow("mnist-mlp", "MLP 784-300-100", (0.1,), "L0, λ = 0.1/N", "219-214-100", 0.014),
    PaperRow(
        "lenet5", "LeNet-5-Caffe 20-50-800-500", (0.1,), "L0, λ = 0.1/N", "20-25-45-462", 0.009
    ),
    PaperRow(
        "lenet5",
        "LeNet-5-Caffe 20-50-800-500",
        (10.0, 0.5, 0.1, 0.1),
        "L0, λ sep. = (10, 0.5, 0.1, 0.1)/N",
        "9-18-65-25",
        0.010,
    ),
)
NETWORK_LABELS = {row.network: row.label for row in PAPER_ROWS}
#: The paper's weight decay, per data point (the default replication; PAPER.md).
PAPER_WEIGHT_DECAY = 5e-4
HEADER = [
    "network",
    "data set",
    "method",
    "paper: architecture",
    "paper: error (%)",
    "ours: architecture",
    "ours: error, last epoch (%)",
    "ours: best error (%) [epoch]",
    "epochs",
    "seeds",
    "train time per run",
    "device",
]
DASH = "–"


# ------------------------------------------------------------------------------- reading
def read_run(run_dir: str | Path) -> dict:
    """The metrics of a finished run, with the settings of its ``config.json`` under
    ``"config"`` (empty when absent).

    :raises FileNotFoundError: no ``metrics.json`` (not a run directory, or unfinished).
    """
    run = Path(run_dir)
    path = run / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{run} has no metrics.json: not a run directory of `l0bayes train`, or the run "
            "has not finished"
        )
    metrics = json.loads(path.read_text())
    config = run / "config.json"
    metrics["config"] = json.loads(config.read_text()) if config.is_file() else {}
    metrics["run_dir"] = str(run)
    return metrics


def lam_key(lam: Sequence[float]) -> tuple[float, ...]:
    """λ per gated layer, one value when every layer has the same."""
    values = tuple(float(v) for v in lam)
    return values[:1] if len(set(values)) == 1 else values


def weight_precision(run: dict) -> float | None:
    """The run's slab precision per data set (N × its per-data-point weight decay); ``None``
    when its configuration is unknown."""
    if "weight_precision_per_data_set" in run:
        return float(run["weight_precision_per_data_set"])
    cfg = run["config"]
    if cfg.get("weight_precision") is not None:
        return float(cfg["weight_precision"])
    if cfg.get("weight_decay") is not None:
        return float(cfg["weight_decay"]) * run["num_train"]
    return None


def variant(run: dict) -> str:
    """How the run's setting differs from the default replication (empty when it does not)."""
    cfg = run["config"]
    notes = []
    precision = weight_precision(run)
    if precision is not None and not np.isclose(precision, PAPER_WEIGHT_DECAY * run["num_train"]):
        notes.append(f"weight decay {precision:g}/N")
    if cfg.get("network") in NETWORKS and "ema" in cfg:
        paper_ema = NETWORKS[cfg["network"]].ema or 0.0  # the paper's temporal averaging
        if (cfg["ema"] or 0.0) != paper_ema:
            notes.append(f"EMA β = {cfg['ema']:g}" if cfg["ema"] else "no EMA")
    if cfg.get("kl_mode", "l0") != "l0":
        notes.append(f"{cfg['kl_mode']} KL")
    if cfg.get("local_rep"):
        notes.append("per-example gates")
    if cfg.get("weight_init", "uniform") != "uniform":
        notes.append(f"{cfg['weight_init']} initialisation")
    # a config.json without the key predates pixels in [0, 1]: its inputs were standardised
    if cfg.get("standardize", bool(cfg)):
        notes.append("standardised inputs")
    if cfg.get("target"):
        notes.append(f"{cfg['target']} target {cfg.get('target_fraction')}")
    return ", ".join(notes)


def group_runs(runs: Sequence[dict]) -> dict[tuple, list[dict]]:
    """Runs that differ only in their seed, keyed by (network, data set, λ, epochs, training
    set size, variant, device type), in order of appearance: runs on a GPU get their own row
    (their training time is not the CPU's)."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        key = (
            run["network"],
            run["dataset"],
            lam_key(run["lam_per_parameter_nats"]),
            run["epochs"],
            run["num_train"],
            variant(run),
            str(run.get("device", "cpu")).split(":")[0],
        )
        groups.setdefault(key, []).append(run)
    return groups


def paper_row(key: tuple) -> PaperRow | None:
    """The paper's row for a group: an MNIST run of the same network and λ."""
    network, dataset, lam = key[:3]
    for row in PAPER_ROWS:
        if dataset == "mnist" and row.network == network and row.lam == lam:
            return row
    return None


# ------------------------------------------------------------------------------- cells
def _method(lam: tuple[float, ...], extra: str) -> str:
    lam_text = f"{lam[0]:g}" if len(lam) == 1 else "(" + ", ".join(f"{v:g}" for v in lam) + ")"
    text = f"L0, λ = {lam_text}/N" if len(lam) == 1 else f"L0, λ sep. = {lam_text}/N"
    return text + (f", {extra}" if extra else "")


def _architecture(runs: Sequence[dict]) -> str:
    units = np.array([run["architecture"] for run in runs], dtype=float)
    return "-".join(f"{u:.0f}" for u in units.mean(axis=0))


def _best(runs: Sequence[dict]) -> str:
    cell = tables.mean_sd([100 * run["best_test_error"] for run in runs], ".2f")
    epochs = ", ".join(str(run["best_epoch"]) for run in runs)
    return f"{cell} [{epochs}]"


def _duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return DASH
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _device(runs: Sequence[dict]) -> str:
    names = {f"{run.get('device', '?')} ({run.get('device_name', '?')})" for run in runs}
    return "; ".join(sorted(names))


def _ours(key: tuple, runs: Sequence[dict]) -> tuple[list[str], int]:
    seconds = [run.get("train_seconds", np.nan) for run in runs]
    n_train = key[4]
    return [
        _architecture(runs),
        tables.mean_sd([100 * run["test_error"] for run in runs], ".2f"),
        _best(runs),
        str(key[3]),
        str(len(runs)),
        _duration(float(np.mean(seconds))),
        _device(runs),
    ], n_train


def _data_label(dataset: str, n_train: int) -> str:
    full = {"mnist": 60000}
    return dataset if full.get(dataset) == n_train else f"{dataset} (N = {n_train})"


def paper_table(runs: Sequence[dict]) -> tables.Table:
    """The table: every paper row with the groups of runs that match it (or dashes), then the
    groups that match no paper row."""
    groups = group_runs(runs)
    body = []
    used = set()
    for row in PAPER_ROWS:
        matched = [key for key in groups if paper_row(key) == row]
        paper = [row.architecture, f"{100 * row.test_error:.1f}"]
        if not matched:
            body.append([row.label, "mnist", row.method, *paper, *[DASH] * 7])
        for key in matched:
            used.add(key)
            ours, n_train = _ours(key, groups[key])
            method = _method(key[2], key[5])
            body.append([row.label, _data_label("mnist", n_train), method, *paper, *ours])
    for key, group in groups.items():
        if key in used:
            continue
        ours, n_train = _ours(key, group)
        label = NETWORK_LABELS.get(key[0], key[0])
        method = _method(key[2], key[5])
        body.append([label, _data_label(key[1], n_train), method, DASH, DASH, *ours])
    return list(HEADER), body


# ---------------------------------------------------------------------------------- main
NOTE = (
    "Paper: Louizos, Welling & Kingma (ICLR 2018), Table 1, test error after 200 epochs. "
    "λ is the code cost per parameter in the total log-likelihood, the paper's λ·N. "
    "Architectures count the units entering each gated layer (input neurons of fully connected "
    "layers, output maps of convolutions) under the deterministic Eq. 13 gates; ours is the "
    "mean over seeds. 'last epoch' is what the paper reports; 'best' is the minimum test error "
    "over epochs [at the epoch(s) given], which may come from a denser network. Errors are "
    "mean ± sd over seeds. Rows without a paper value are other data sets, λ values or "
    "settings. 'weight decay p/N' marks runs whose Gaussian slab had precision p per data set "
    "instead of the paper's weight decay 5e-4 per data point (p = 30 on MNIST); p = 0.0005 is "
    "the official LeNet-5 script's unscaled decay. 'no EMA' marks runs evaluated at the last "
    "iterate instead of with the paper's temporal averaging (an EMA of the parameters, β = "
    "0.999 on MNIST), as the official LeNet-5 script does. Runs on a GPU are rows of their own."
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories of `l0bayes train`")
    parser.add_argument("--out-dir", default="runs/paper_table")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> tables.Table:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    runs = [read_run(run) for run in args.runs]
    table = paper_table(runs)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    command = tables.command_line(__file__, argv)
    (out / "paper_table.md").write_text(
        "# The paper's MNIST table and our runs\n\n"
        + tables.to_markdown(table, 3)
        + f"\n{NOTE}\n\nRuns: {', '.join(run['run_dir'] for run in runs)}. "
        f"Command: `{command}`\n"
    )
    (out / "paper_table.tex").write_text(tables.to_latex(table, 3))
    print(tables.to_markdown(table, 3))
    print(f"written to {out}/paper_table.md and .tex")
    return table


if __name__ == "__main__":
    main()
