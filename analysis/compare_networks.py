"""Compare sparse networks: L0 over a λ grid and at target fractions, one-shot and gradual
magnitude pruning at matched sparsity, Sparse VD.

Methods, per seed, all on the same data (the same subset and standardisation) and epochs:

* ``dense``: the network trained with ``lam = 0`` (gates, no penalty): the reference, and the
  network that one-shot magnitude pruning starts from;
* ``l0bayes``: L0 at each ``--lams`` value (code cost per parameter; the paper's λ = lam/N);
  test time: the deterministic Eq. 13 gates. ``--lam-warmup``, ``--l0-finetune-epochs`` and
  ``--bma-samples`` are ``l0bayes train``'s options of the same names;
* ``l0-target``: L0 with λ = 0 and the expected fraction of non-zero parameters held below
  each ``--targets`` value by the Lagrangian (``l0bayes train --target params``);
* ``magnitude``: the dense network's test-time weights, globally pruned to as many non-zero
  weights as each l0bayes run's test-time network uses
  (:func:`l0bayes.baselines.pruning.magnitude_prune`; ``nonzero_weights`` counts used
  weights, :func:`l0bayes.baselines.pruning.live_chain`), optionally fine-tuned for
  ``--fine-tune-epochs`` with the mask fixed;
* ``gmp``: gradual magnitude pruning (Zhu & Gupta 2017, the cubic schedule,
  :func:`l0bayes.baselines.pruning.gradual_magnitude_prune`) of a freshly initialised dense
  network to the same matched count, pruning from ``--gmp-begin`` to ``--gmp-end`` of the
  L0 runs' budget (``--epochs`` plus ``--l0-finetune-epochs``) and training the survivors for
  the rest;
* ``svd``: Sparse Variational Dropout (:mod:`l0bayes.baselines.sparse_vd`), local
  reparameterisation, KL weight warmed up linearly over ``--svd-warmup`` epochs; test time:
  log α > 3 pruned.

One process trains the study, every method stacked: every L0 network (dense included) of all
seeds in one ``l0bayes sweep`` (:func:`l0bayes.training.sweep.sweep`; the target fractions in a
second one), each exactly as ``l0bayes train`` would train it, into ``runs/lam-<λ>_seed-<s>``
and ``runs/lam-0_target-<t>_seed-<s>`` (a finished run with the same settings is reused); the
fine-tuning of every magnitude-pruned network, the gradual pruning of every (seed, λ) and the
Sparse VD network of every seed each as one stack (:mod:`l0bayes.baselines.stacking`). With
``--device cuda`` every method trains on the GPU, each step replayed from a captured CUDA graph
(``--no-graph``: eagerly); the test errors are counted on the device.

Non-zero parameters and FLOPs (multiply–accumulates per example, every weight layer) are those
of each method's test-time network, counted the same way for all
(:func:`l0bayes.baselines.pruning.masked_architecture`; for l0bayes the run's own
``compact_flops``, equal
by construction). ``wall_seconds`` is training time (evaluation excluded); for ``magnitude``
it is the dense run's plus pruning and fine-tuning. Writes into ``--out-dir``: ``results.csv``
(tidy: one row per method, λ and seed), ``summary.md`` and ``summary.tex`` (mean ± sd over
seeds), ``pareto.{png,pdf}`` (test error against FLOPs and non-zero parameters) and the L0
run directories under ``runs/`` (a finished run with the same settings is reused).

    .venv/bin/python analysis/compare_networks.py --data-dir /work/shared/data --out-dir runs/cmp
    .venv/bin/python analysis/compare_networks.py --quick --out-dir runs/cmp_quick
    python3 analysis/compare_networks.py --device cuda ...   # on a GPU: bench/gpu_compare.sh

The full-length study of the issue (the paper's 200 epochs; a GPU run)::

    .venv/bin/python analysis/compare_networks.py --data-dir ../shared/data --epochs 200 \
        --seeds 2 --lams 0.1 0.3 1 3 --targets 0.02 0.05 0.1 0.3 --lam-warmup 10 \
        --l0-finetune-epochs 10 --bma-samples 16 --out-dir runs/cmp-200

Its cost is five stacks (the λ sweep, the target sweep, gradual pruning, the fine-tuning,
Sparse VD), each a few single runs on a CPU (``bench/sweep_speed.py``) and close to one on a
GPU, where a step is bound by kernel launches. ``bench/gpu_compare.sh`` is the prepared
command for one H200. Measured times are in ``analysis/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from l0bayes.baselines.pruning import (
    fine_tune_many,
    gradual_magnitude_prune_many,
    live_chain,
    magnitude_prune,
    masked_architecture,
    nonzero_weights,
    plain_chain,
)
from l0bayes.baselines.sparse_vd import fit_sparse_vd_many, svd_network
from l0bayes.baselines.stacking import PlainStack, test_errors
from l0bayes.data.images import image_splits
from l0bayes.nn.networks import get_network
from l0bayes.reporting.comparison import summary_table
from l0bayes.training.config import TrainConfig
from l0bayes.training.datasets import load_dataset
from l0bayes.training.engine import StackedImages
from l0bayes.training.loop import TrainingInterrupted
from l0bayes.training.sweep import PENDING, sweep, sweep_configs
from l0bayes.training.trainer import load_network
from l0bayes.viz import tables
from l0bayes.viz.plotting import pyplot, save_figure

METHODS = ("l0bayes", "l0-target", "magnitude", "gmp", "svd")
NETWORK_CHOICES = ("mnist-mlp", "lenet5")
#: Columns of ``results.csv``.
COLUMNS = (
    "method",
    "network",
    "dataset",
    "seed",
    "lam",
    "epochs",
    "train_size",
    "fine_tune_epochs",
    "target_fraction",
    "test_error",
    "nonzero_params",
    "nonzero_weights",
    "flops",
    "architecture",
    "wall_seconds",
)
#: Summary columns: (row key, title, format).
SUMMARY = (
    ("test_error_pct", "test error (%)", ".2f"),
    ("nonzero_params", "non-zero params", ".0f"),
    ("flops", "FLOPs", ".0f"),
    ("wall_seconds", "train time (s)", ".0f"),
)
MARKERS = {"dense": "*", "l0bayes": "o", "l0-target": "D", "magnitude": "s", "gmp": "v", "svd": "^"}
LABELS = {
    "dense": "dense (λ = 0)",
    "l0bayes": "L0 (l0bayes, per λ)",
    "l0-target": "L0 (Lagrangian target fraction)",
    "magnitude": "one-shot magnitude pruning of the dense net (matched non-zero weights)",
    "gmp": "gradual magnitude pruning, cubic schedule (matched non-zero weights)",
    "svd": "Sparse VD",
}
#: Methods drawn as lines through their λ points, and labelled with λ.
LINES = ("l0bayes", "magnitude", "gmp")


# ------------------------------------------------------------------------------- methods
def _row(method: str, args, seed: int, lam: float, data, **values) -> dict:
    row = dict.fromkeys(COLUMNS)
    row.update(
        method=method,
        network=args.network,
        dataset=data.name,
        seed=seed,
        lam=lam,
        epochs=args.epochs,
        train_size=len(data.y_train),
        fine_tune_epochs=args.fine_tune_epochs if method == "magnitude" else 0,
        target_fraction=math.nan,
    )
    row.update(values)
    return row


def _config(args, seed: int, lam: float, out: Path) -> TrainConfig:
    return TrainConfig(
        lam_warmup=args.lam_warmup,
        finetune_epochs=args.l0_finetune_epochs,
        bma_samples=args.bma_samples,
        network=args.network,
        out=str(out),
        epochs=args.epochs,
        lam=[lam],
        dataset=args.dataset,
        data_dir=args.data_dir,
        train_size=args.train_size,
        test_size=args.test_size,
        seed=seed,
        num_threads=args.num_threads,
        progress=False,
        device=args.device,
        graph=args.graph,
    )


#: Files of an L0 run whose sweep was interrupted after a commit (or in one): resumed.
BEGUN = ("checkpoint.pt", PENDING)
#: Settings a reused run may differ in (where and how it ran, not what it computed).
_FREE = {"out", "progress", "num_threads", "data_dir", "device", "graph"}


def _finished(cfg: TrainConfig, args) -> dict | None:
    """The metrics of a finished run with ``cfg``'s settings in ``cfg.out``, else None."""
    out = Path(cfg.out)
    if not (out / "metrics.json").is_file():
        return None
    saved = {k: v for k, v in asdict(TrainConfig.from_run(out)).items() if k not in _FREE}
    wanted = {k: v for k, v in asdict(cfg.resolved()).items() if k not in _FREE}
    if saved != wanted:
        raise ValueError(f"{out} holds a run with other settings; choose another --out-dir")
    print(f"reusing the finished run {out}")
    args.reused.append(str(out))
    return json.loads((out / "metrics.json").read_text())


def run_stacked(args, cfgs: list[TrainConfig]) -> list[tuple[dict, Path]]:
    """Train ``cfgs`` as one ``l0bayes sweep`` (:func:`l0bayes.training.sweep.sweep`; each
    network loads its own seed's data, as ``l0bayes train`` would), reusing finished identical
    runs and resuming an interrupted sweep; ``(metrics, run directory)`` in the order of
    ``cfgs``."""
    found = [_finished(cfg, args) for cfg in cfgs]
    pending = [cfg for cfg, metrics in zip(cfgs, found, strict=True) if metrics is None]
    begun = any((Path(c.out) / name).is_file() for c in pending for name in BEGUN)
    if begun:
        print(f"resuming the interrupted sweep of {len(pending)} networks", flush=True)
    trained = iter(sweep(pending, resume=begun) if pending else [])
    return [
        (metrics if metrics is not None else next(trained), Path(cfg.out))
        for cfg, metrics in zip(cfgs, found, strict=True)
    ]


def run_l0_grid(args) -> dict[tuple, tuple[dict, Path]]:
    """Every L0 network of the study: ``("lam", λ, seed)`` for λ = 0 (dense) and ``--lams``
    in one sweep, ``("target", t, seed)`` for each ``--targets`` fraction in another."""
    base = _config(args, 0, 0.0, Path(args.out_dir))
    runs = Path(args.out_dir) / "runs"
    seeds = list(range(args.seeds))
    lams = [0.0, *args.lams]
    cfgs = sweep_configs(base, lams, seeds, runs)
    keys = [("lam", lam, seed) for lam in lams for seed in seeds]
    if args.targets and "l0-target" in args.methods:
        target = replace(base, target="params")
        cfgs += sweep_configs(target, [0.0], seeds, runs, args.targets)
        keys += [("target", fraction, seed) for fraction in args.targets for seed in seeds]
    grid = {}
    for kind in ("lam", "target"):
        chosen = [(k, c) for k, c in zip(keys, cfgs, strict=True) if k[0] == kind]
        if chosen:
            done = run_stacked(args, [c for _, c in chosen])
            grid.update(zip([k for k, _ in chosen], done, strict=True))
    return grid


def l0_row(args, seed: int, lam: float, data, metrics: dict, method: str, weights: int) -> dict:
    return _row(
        method,
        args,
        seed,
        lam,
        data,
        test_error=metrics["test_error"],
        nonzero_params=metrics["nonzero_params"],
        nonzero_weights=weights,
        flops=metrics["compact_flops"],
        architecture="-".join(f"{u:.0f}" for u in metrics["architecture"]),
        wall_seconds=network_seconds(metrics),
    )


def network_seconds(metrics: dict) -> float:
    """A run's training seconds; for a network trained in a sweep, the sweep's time divided by
    its number of networks (``metrics.json`` records the whole sweep's)."""
    return metrics["train_seconds"] / metrics.get("sweep", {}).get("networks", 1)


def _chain_row(method, args, seed, lam, data, chain, test_error: float, seconds: float) -> dict:
    """The row of a plain test-time chain: its sparsity and FLOPs counted one way for every
    method (:func:`l0bayes.baselines.pruning.masked_architecture`)."""
    shape = get_network(args.network).input_shape
    chain = chain.cpu()
    arch = masked_architecture(chain, shape)
    return _row(
        method, args, seed, lam, data, test_error=test_error, nonzero_params=arch.params,
        nonzero_weights=nonzero_weights(live_chain(chain, shape)), flops=arch.flops,
        architecture=str(arch), wall_seconds=seconds,
    )  # fmt: skip


def chain_errors(chains: list, tests: list) -> list[float]:
    """Test errors of plain chains, counted together on the device
    (:func:`l0bayes.baselines.stacking.test_errors`)."""
    return test_errors(PlainStack([copy.deepcopy(c) for c in chains]).logits, StackedImages(tests))


def seconds_each(fit) -> float:
    """A stacked fit's seconds per network (the stack's over its networks)."""
    return fit.train_seconds / fit.networks


def magnitude_results(args, pairs, dense_chains, dense_seconds, splits) -> dict:
    """One-shot magnitude pruning of each seed's dense chain to each matched count, then the
    fine-tuning of all of them at once: ``{(seed, λ): (chain, error, seconds)}``."""
    tic = time.perf_counter()
    pruned = {key: magnitude_prune(dense_chains[key[0]], count) for key, count in pairs.items()}
    each = (time.perf_counter() - tic) / max(1, len(pruned))
    keys = list(pruned)
    seconds = {key: dense_seconds[key[0]] + each for key in keys}
    if args.fine_tune_epochs and keys:
        fits = fine_tune_many(
            [pruned[k] for k in keys], [splits[k[0]][0] for k in keys], args.fine_tune_epochs,
            seeds=[k[0] for k in keys], graph=args.graph,
        )  # fmt: skip
        for key, fit in zip(keys, fits, strict=True):
            seconds[key] += seconds_each(fit)
    errors = chain_errors([pruned[k] for k in keys], [splits[k[0]][1] for k in keys])
    return {k: (pruned[k], e, seconds[k]) for k, e in zip(keys, errors, strict=True)}


def gmp_results(args, pairs, splits) -> dict:
    """Gradual magnitude pruning (cubic schedule) of a freshly initialised dense network per
    (seed, λ) to the matched count, all stacked, in the L0 runs' budget (``--epochs`` plus
    ``--l0-finetune-epochs``): ``{(seed, λ): (chain, error, seconds)}``."""
    spec = get_network(args.network)
    keys = list(pairs)
    chains = []
    for seed, _ in keys:
        torch.manual_seed(seed)
        chains.append(plain_chain(spec.make(), gates="open").to(args.device))
    fits = gradual_magnitude_prune_many(
        chains, [splits[k[0]][0] for k in keys], args.epochs + args.l0_finetune_epochs,
        [pairs[k] for k in keys], seeds=[k[0] for k in keys], begin=args.gmp_begin,
        end=args.gmp_end, batch_size=spec.batch_size, lr=spec.lr, graph=args.graph,
    )  # fmt: skip
    errors = chain_errors(chains, [splits[k[0]][1] for k in keys])
    return {
        k: (c, e, seconds_each(f)) for k, c, e, f in zip(keys, chains, errors, fits, strict=True)
    }


def svd_results(args, datas, standardize: bool) -> dict:
    """Sparse VD of every seed, stacked: ``{seed: (chain, error, seconds)}``."""
    shape = get_network(args.network).input_shape
    nets = []
    for seed in range(args.seeds):
        torch.manual_seed(seed)
        nets.append(svd_network(args.network).to(args.device))
    fits = fit_sparse_vd_many(
        nets, datas, shape, args.epochs, seeds=list(range(args.seeds)),
        kl_warmup_epochs=args.svd_warmup, standardize=standardize, graph=args.graph,
    )  # fmt: skip
    return {
        seed: (plain_chain(net), error, seconds_each(fit))
        for seed, (net, (fit, error)) in enumerate(zip(nets, fits, strict=True))
    }


def run_study(args, grid: dict) -> list[dict]:
    """Every method for every seed (the L0 networks come trained in ``grid``); the baselines
    of all seeds and λ values are trained together, one stack per method."""
    shape = get_network(args.network).input_shape
    cfgs = [_config(args, seed, 0.0, Path(args.out_dir)).resolved() for seed in range(args.seeds)]
    datas = [load_dataset(cfg) for cfg in cfgs]
    splits = [
        image_splits(d, shape, c.standardize, args.device) for d, c in zip(datas, cfgs, strict=True)
    ]
    dense_chains, dense_seconds, counts = [], [], {}
    for seed in range(args.seeds):
        dense_metrics, dense_dir = grid[("lam", 0.0, seed)]
        dense_chains.append(plain_chain(load_network(dense_dir, args.device)[1]))
        dense_seconds.append(network_seconds(dense_metrics))
        for lam in args.lams:
            _, run_dir = grid[("lam", lam, seed)]
            chain = plain_chain(load_network(run_dir)[1])
            counts[(seed, lam)] = nonzero_weights(live_chain(chain, shape))
    magnitude = gmp = svd = {}
    if "magnitude" in args.methods:
        magnitude = magnitude_results(args, counts, dense_chains, dense_seconds, splits)
    if "gmp" in args.methods:
        gmp = gmp_results(args, counts, splits)
    if "svd" in args.methods:
        svd = svd_results(args, datas, cfgs[0].standardize)
    rows = []
    for seed, data in enumerate(datas):
        dense_metrics, _ = grid[("lam", 0.0, seed)]
        used = nonzero_weights(live_chain(dense_chains[seed].cpu(), shape))
        rows.append(l0_row(args, seed, 0.0, data, dense_metrics, "dense", used))
        for lam in args.lams:
            metrics, _ = grid[("lam", lam, seed)]
            if "l0bayes" in args.methods:
                rows.append(l0_row(args, seed, lam, data, metrics, "l0bayes", counts[(seed, lam)]))
            for method, results in (("magnitude", magnitude), ("gmp", gmp)):
                if (seed, lam) in results:
                    rows.append(_chain_row(method, args, seed, lam, data, *results[(seed, lam)]))
        for fraction in args.targets if "l0-target" in args.methods else []:
            metrics, run_dir = grid[("target", fraction, seed)]
            weights = nonzero_weights(live_chain(plain_chain(load_network(run_dir)[1]), shape))
            row = l0_row(args, seed, math.nan, data, metrics, "l0-target", weights)
            rows.append({**row, "target_fraction": fraction})
        if seed in svd:
            rows.append(_chain_row("svd", args, seed, math.nan, data, *svd[seed]))
    return rows


# ------------------------------------------------------------------------------- outputs
def _lam_label(row: dict) -> str:
    if row["method"] == "l0-target":
        return f"target {row['target_fraction']:g}"
    lam = row["lam"]
    if lam is None or not math.isfinite(lam):
        return "–"
    return f"{lam:g}" + (" (matched)" if row["method"] in ("magnitude", "gmp") else "")


def summary(rows: Sequence[dict]) -> tables.Table:
    """Mean ± sd over seeds per network, method, λ and number of epochs."""
    shown = [{**r, "λ": _lam_label(r), "test_error_pct": 100 * r["test_error"]} for r in rows]
    return summary_table(shown, SUMMARY, by=("network", "method", "λ", "epochs"))


def _points(rows: Sequence[dict], method: str, key: str) -> np.ndarray:
    """(x mean, error mean %, error sd %) per λ of ``method``, sorted by x."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        if r["method"] == method:
            groups.setdefault(_lam_label(r), []).append(r)
    pts = []
    for group in groups.values():
        err = 100 * np.array([r["test_error"] for r in group])
        sd = float(np.std(err, ddof=1)) if len(err) > 1 else 0.0
        pts.append((np.mean([r[key] for r in group]), err.mean(), sd, group[0]["lam"]))
    return np.array(sorted(pts, key=lambda p: p[0]), dtype=float).reshape(-1, 4)


def _front(points: np.ndarray) -> np.ndarray:
    """The points no other point beats in both cost and error (sorted by cost)."""
    order = points[np.argsort(points[:, 0])]
    front, best = [], np.inf
    for p in order:
        if p[1] < best:
            front.append(p)
            best = p[1]
    return np.array(front)


def plot_pareto(rows: Sequence[dict], title: str):
    """Test error against test-time FLOPs and against non-zero parameters (log axes): mean ±
    sd over seeds per method and λ, the overall Pareto front dashed."""
    plt = pyplot()
    from matplotlib.ticker import EngFormatter, LogLocator, NullFormatter, ScalarFormatter

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), layout="constrained")
    panels = (
        ("flops", "test-time FLOPs per example (multiply–accumulates, log scale)"),
        ("nonzero_params", "non-zero parameters at test time (log scale)"),
    )
    methods = [m for m in MARKERS if any(r["method"] == m for r in rows)]
    for ax, (key, xlabel) in zip(axes, panels, strict=True):
        everything = []
        for i, method in enumerate(methods):
            pts = _points(rows, method, key)
            everything.append(pts)
            ax.errorbar(
                pts[:, 0],
                pts[:, 1],
                yerr=pts[:, 2],
                fmt=MARKERS[method] + ("-" if method in (*LINES, "l0-target") else ""),
                ms=11 if method == "dense" else 6,
                capsize=3,
                color=f"C{i}",
                label=LABELS[method],
                zorder=3 if method == "dense" else 2,
            )
            if method in LINES:  # l0bayes labels above, the pruning methods below
                offset = (4, 5) if method == "l0bayes" else (4, -11)
                for x, y, _, lam in pts:
                    ax.annotate(
                        f"λ={lam:g}",
                        (x, y),
                        textcoords="offset points",
                        xytext=offset,
                        fontsize=7,
                        color=f"C{i}",
                    )
        front = _front(np.concatenate(everything))
        ax.step(front[:, 0], front[:, 1], where="post", color="grey", ls="--", lw=1, zorder=0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test error (%, log scale)")
        ax.grid(alpha=0.3, which="both")
    axes[0].plot([], [], color="grey", ls="--", lw=1, label="Pareto front (means)")
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(title)
    return fig


# ---------------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="mnist-mlp", choices=NETWORK_CHOICES)
    parser.add_argument("--epochs", type=int, default=10, help="epochs of every method")
    parser.add_argument("--train-size", type=int, default=None, help="first N training images")
    parser.add_argument("--test-size", type=int, default=None, help="first N test images")
    parser.add_argument("--seeds", type=int, default=2, help="seeds 0..SEEDS-1")
    parser.add_argument(
        "--lams", type=float, nargs="+", default=[0.1, 0.3, 1.0, 3.0], help="λ grid (per param)"
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument(
        "--fine-tune-epochs", type=int, default=0, help="fine-tune magnitude-pruned nets"
    )
    parser.add_argument(
        "--targets", type=float, nargs="*", default=[],
        help="kept-parameter fractions for L0 held by the Lagrangian (method l0-target)",
    )  # fmt: skip
    parser.add_argument(
        "--lam-warmup", type=float, default=0.0, help="L0: λ warm-up epochs (train's option)"
    )
    parser.add_argument(
        "--l0-finetune-epochs", type=int, default=0,
        help="L0: extra epochs of the weights with the gates frozen (train's --finetune-epochs)",
    )  # fmt: skip
    parser.add_argument(
        "--bma-samples", type=int, default=0, help="L0: also report the gate-averaged error"
    )
    parser.add_argument(
        "--gmp-begin", type=float, default=0.1, help="gradual pruning starts at this fraction"
    )
    parser.add_argument(
        "--gmp-end", type=float, default=0.6, help="gradual pruning ends at this fraction"
    )
    parser.add_argument(
        "--svd-warmup", type=float, default=None, help="KL warm-up epochs (default: epochs / 2)"
    )
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "synthetic"])
    parser.add_argument("--data-dir", default=None, help="MNIST folder (default: $L0BAYES_DATA)")
    parser.add_argument("--num-threads", type=int, default=1, help="torch threads")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (every method trains there)")
    parser.add_argument(
        "--no-graph", dest="graph", action="store_false",
        help="on CUDA, launch each step's kernels one by one instead of one captured graph",
    )  # fmt: skip
    parser.add_argument("--out-dir", default="runs/compare_networks")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: synthetic images, 1 epoch, 300 train / 100 test, 1 seed, λ 0.1 and 30",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.dataset, args.epochs, args.seeds = "synthetic", 1, 1
        args.train_size, args.test_size, args.lams = 300, 100, [0.1, 30.0]
        args.targets = args.targets or [0.3]
    args.reused = []  # finished L0 runs found in --out-dir
    if args.svd_warmup is None:
        args.svd_warmup = args.epochs / 2
    for name in ("epochs", "seeds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.fine_tune_epochs < 0:
        parser.error("--fine-tune-epochs must be >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> list[dict]:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    command = tables.command_line(__file__, argv)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.num_threads)
    start = time.perf_counter()
    try:
        grid = run_l0_grid(args)
        print(f"L0 networks trained in {time.perf_counter() - start:.0f} s", flush=True)
        rows = run_study(args, grid)
    finally:
        torch.set_num_threads(threads)
    elapsed = time.perf_counter() - start
    table = summary(rows)
    n = rows[0]["train_size"]
    budget = args.epochs + args.l0_finetune_epochs
    note = (
        f"Mean ± sd over {args.seeds} seed(s); {args.network} on {rows[0]['dataset']} "
        f"(N = {n} training images). Budgets: L0 and dense {args.epochs} epochs"
        f"{f' + {args.l0_finetune_epochs} with frozen gates' if args.l0_finetune_epochs else ''}"
        f"{f', λ warmed up over {args.lam_warmup:g} epochs' if args.lam_warmup else ''}; "
        f"gmp {budget} epochs (pruning from {args.gmp_begin:g} to {args.gmp_end:g} of them); "
        f"magnitude: the dense network pruned once, fine-tuned {args.fine_tune_epochs} epochs; "
        f"svd {args.epochs} epochs. λ: code cost per parameter (the paper's λ = lam/N); "
        "magnitude and gmp rows are pruned to the number of non-zero weights that the l0bayes "
        "run at that λ uses. FLOPs: multiply–accumulates per example of the test-time network, "
        "every weight layer. Train time excludes evaluation; an L0 network trained in a sweep "
        "is charged the sweep's time over its networks, and magnitude includes the dense run's. "
        f"Wall time of this invocation {elapsed:.0f} s ({len(args.reused)} finished L0 runs "
        f"reused). Command: `{command}`\n"
    )
    tables.write_csv(rows, out / "results.csv")
    (out / "summary.md").write_text(
        "# Sparse network comparison\n\n" + tables.to_markdown(table, 4) + "\n" + note
    )
    (out / "summary.tex").write_text(tables.to_latex(table, 4))
    title = (
        f"{args.network} on {rows[0]['dataset']} (N = {n}), {args.epochs} epoch(s): "
        f"mean ± sd over {args.seeds} seed(s)"
    )
    save_figure(plot_pareto(rows, title), out / "pareto")
    print("\n" + tables.to_markdown(table, 4))
    print(f"{len(rows)} rows in {elapsed:.0f} s; outputs in {out}\ncommand: {command}")
    return rows


if __name__ == "__main__":
    try:
        main()
    except TrainingInterrupted as stop:  # SIGINT: the running sweep checkpointed
        print(f"compare_networks: {stop}; run the same command to resume", file=sys.stderr)
        sys.exit(130)
