"""A training run turned into a report folder.

:func:`make_report` reads a run directory of ``l0bayes train`` (it never
re-trains) and writes ``RUN/report/``: ``report.md`` with the metrics, the architecture, the
posterior over architectures and Bayesian model averaging against the deterministic pruned
network (:mod:`l0bayes.nn.posterior`), figures as PNG and PDF (:mod:`l0bayes.viz.plotting`) and
tables
as CSV and LaTeX. :func:`add_report_parser` and :func:`run_report_command` make it the
``l0bayes report RUN`` command.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

import l0bayes.nn.posterior as posterior
import l0bayes.viz.plotting as plotting
from l0bayes._version import __version__
from l0bayes.data.files import ImageDataset
from l0bayes.data.images import image_splits
from l0bayes.device import THREADS_HELP, resolve_device, torch_threads
from l0bayes.nn.layers import L0Conv2d, L0Layer, L0Network, l0_layers
from l0bayes.nn.networks import get_network
from l0bayes.reporting.report_folder import REPORT_FILES, check_report_dir, new_report_folder
from l0bayes.reporting.sweep_report import is_sweep_folder, make_sweep_report
from l0bayes.training.config import TrainConfig
from l0bayes.training.datasets import load_dataset
from l0bayes.training.safe_files import read_limited
from l0bayes.training.trainer import load_network
from l0bayes.validation import check_count
from l0bayes.viz.tables import Table, to_latex, to_markdown, write_csv

if (
    TYPE_CHECKING
):  # l0bayes.training.trainer imports the package itself: loaded when a report is made
    from l0bayes.data.files import ImageDataset
# ============================================================================= run reports
#: The folder of a run directory that :func:`make_report` writes.
REPORT_DIR = "report"
REPORT_HELP = """\
Turn a training run directory into RUN/report/: report.md (metrics, architecture, posterior
over architectures, Bayesian model averaging vs the deterministic pruned network), figures
(PNG and PDF) and tables (CSV and LaTeX). Nothing is re-trained: the run's checkpoint is read
(with the EMA-averaged parameters when the run kept them). Without the run's data set the
report is still written, without the test-set comparison.
"""


@dataclass
class _Run:
    """Everything one report shows, computed once by :func:`make_report`."""

    run: Path
    out: Path
    cfg: TrainConfig
    net: L0Network
    num_samples: int
    seed: int
    level: float
    metrics: dict | None
    history: dict[str, np.ndarray]
    pips: dict[str, np.ndarray]
    post: posterior.ArchitecturePosterior
    summary: list[dict]
    agreement: dict[str, np.ndarray]
    bma: dict | None = None
    test_y: np.ndarray | None = None
    data_note: str | None = None

    @property
    def layers(self) -> list[L0Layer]:
        return l0_layers(self.net)

    @property
    def labels(self) -> list[str]:
        return [f"layer {k}" for k in range(1, len(self.layers) + 1)]

    @property
    def num_test(self) -> int:
        return 0 if self.test_y is None else len(self.test_y)


def make_report(
    run_dir: str | Path,
    data: ImageDataset | None = None,
    num_samples: int = posterior.DEFAULT_SAMPLES,
    *,
    data_dir: str | Path | None = None,
    device: str = "cpu",
    seed: int = 0,
    batch_size: int = 1000,
    level: float = 0.9,
    progress: bool = False,
    num_threads: int | None = None,
) -> Path:
    r"""Write ``RUN/report/`` for the run directory ``run_dir`` and return its path.

    Reads ``config.json``, ``checkpoint.pt``, ``history.csv`` and (when the run finished)
    ``metrics.json``; never re-trains. Draws ``num_samples`` gate (and weight) vectors from the
    guide with ``seed`` for the posterior over architectures and for the Bayesian model average
    (:mod:`l0bayes.nn.posterior`). ``report.md`` links to ``figures/*.png`` (each also as PDF) and
    ``tables/*.csv`` (each also as ``.tex``, except the per-gate ``pips.csv``).

    :param data: the data set to evaluate on, used as given; default: the run's own, loaded
        as it was trained (``data_dir`` overrides the configured folder). When it cannot be
        loaded the report says so and leaves out what needs it.
    :param num_samples: draws from the guide :math:`S`.
    :param device: where the network runs (``"cpu"`` or ``"cuda"``).
    :param batch_size: test examples per forward pass.
    :param level: credible level of the posterior intervals.
    :param progress: show a bar over the stages (:data:`STAGES`) on stderr (a terminal).
    :param num_threads: torch CPU threads (default: :func:`l0bayes.device.default_threads`).
    :raises FileNotFoundError: ``run_dir`` is not a run directory (no ``config.json`` or
        ``checkpoint.pt``).
    :raises ValueError: an unreadable ``config.json`` or checkpoint, or bad arguments.
    """
    run = _check_run_dir(run_dir)
    check_count("num_samples", num_samples)
    check_count("batch_size", batch_size)
    if num_threads is not None:
        check_count("--threads", num_threads)
    dev = resolve_device(device)
    with _stages(progress) as stage, torch_threads(num_threads):
        return _make_report(run, data, num_samples, data_dir, dev, seed, batch_size, level, stage)


#: The stages of :func:`make_report`, as its progress bar names them.
STAGES = (
    "loading the run",
    "sampling architectures",
    "BMA over the test set",
    "figures",
    "tables",
)


@contextmanager
def _stages(progress: bool) -> Iterator:
    """A function ``stage(name)`` that closes the previous stage and starts ``name`` on a
    bar over :data:`STAGES` (on stderr when it is a terminal; nothing when ``progress`` is
    false)."""
    bar = tqdm(
        total=len(STAGES),
        disable=not (progress and sys.stderr.isatty()),  # a log file gets no bar lines
        file=sys.stderr,
        unit="stage",
        leave=False,
        bar_format="report: {desc} [{n_fmt}/{total_fmt} stages, {elapsed}]",
    )
    started = [False]

    def stage(name: str) -> None:
        if started[0]:
            bar.update(1)
        started[0] = True
        bar.set_description_str(name)

    try:
        yield stage
    finally:
        bar.close()


def _make_report(run, data, num_samples, data_dir, dev, seed, batch_size, level, stage) -> Path:
    stage(STAGES[0])
    check_report_dir(run / REPORT_DIR)  # before the work; again before the folder is replaced
    try:
        cfg, net = load_network(run, dev)
    except (TypeError, KeyError, RuntimeError) as err:  # a config or state that does not fit
        raise ValueError(f"cannot rebuild the network of {run}: {err}") from err
    stage(STAGES[1])
    post = posterior.sample_architectures(
        net, get_network(cfg.network).input_shape, num_samples, seed
    )
    rep = _Run(
        run=run,
        out=run / REPORT_DIR,
        cfg=cfg,
        net=net,
        num_samples=num_samples,
        seed=seed,
        level=level,
        metrics=_read_json(run / "metrics.json"),
        history=read_history(run / "history.csv"),
        pips=posterior.inclusion_probabilities(net),
        post=post,
        summary=posterior.architecture_summary(post, level),
        agreement=posterior.unit_agreement(post),
    )
    stage(STAGES[2])
    test, rep.data_note = _test_split(cfg, data, data_dir)
    if test is not None:
        rep.bma = posterior.compare_bma(net, *test, num_samples, seed, batch_size)
        rep.test_y = test[1].numpy()
    with new_report_folder(run / REPORT_DIR) as rep.out:
        stage(STAGES[3])
        figures = _figures(rep)
        stage(STAGES[4])
        tables = _tables(rep)
        (rep.out / "report.md").write_text(_markdown(rep, figures, tables), encoding="utf-8")
    rep.out = run / REPORT_DIR
    stage("done")
    return rep.out


def _check_run_dir(run_dir: str | Path) -> Path:
    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"no run directory at {run} (write one with `l0bayes train`)")
    for name in ("config.json", "checkpoint.pt"):  # what is there is checked when read
        if not ((run / name).exists() or (run / name).is_symlink()):
            raise FileNotFoundError(
                f"{run} has no {name}: not a run directory written by `l0bayes train --out "
                f"{run}`, or the run stopped before its first checkpoint"
            )
    TrainConfig.from_run(run)  # untrusted: a one-line error naming a bad config.json
    return run


#: The largest ``metrics.json`` and ``history.csv`` read (l0bayes writes a few KiB).
RECORD_LIMIT = 1 << 26


def _read_json(path: Path) -> dict | None:
    """A JSON object from ``path``; ``None`` when the file is missing or is not one.

    :raises ValueError: ``path`` is a FIFO, a device, a directory or a huge file (not read).
    """
    if not path.exists() and not path.is_symlink():
        return None
    try:
        value = json.loads(read_limited(path, RECORD_LIMIT, "run file").decode("utf-8"))
    except FileNotFoundError:
        return None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def read_history(path: str | Path) -> dict[str, np.ndarray]:
    """The columns of a run's ``history.csv`` as float arrays (non-numeric cells become NaN;
    an empty dict when there is no history)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return {}
    text = read_limited(path, RECORD_LIMIT, "history")
    try:
        rows = list(csv.DictReader(io.StringIO(text.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"{path} is not a readable history CSV file ({err})") from None
    if rows and any(None in row or None in row.values() for row in rows):
        raise ValueError(f"{path} is not a history written by l0bayes (ragged rows)")
    return {key: np.array([_float(row[key]) for row in rows]) for key in rows[0]} if rows else {}


def _float(text: str | None) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def _test_split(
    cfg: TrainConfig, data: ImageDataset | None, data_dir: str | Path | None
) -> tuple[tuple[torch.Tensor, torch.Tensor] | None, str | None]:
    """``((x, y), None)`` for the test split, scaled as in training; ``(None, reason)`` when
    the data set cannot be loaded."""
    if data is None:
        if data_dir is not None:
            cfg = replace(cfg, data_dir=str(data_dir))
        try:
            data = load_dataset(cfg)
        except (OSError, ValueError) as err:
            return None, f"the {cfg.dataset} data set could not be loaded ({err})"
    _, test = image_splits(data, get_network(cfg.network).input_shape, cfg.standardize)
    return test.batch(torch.arange(len(test))), None


def describe_layer(layer: L0Layer) -> str:
    """``L0Linear 784→300, input-neuron gates`` or ``L0Conv2d 1→20 5×5, output-map gates``."""
    if isinstance(layer, L0Conv2d):
        kind = "weight" if layer.gate_kind == "weight" else "output-map"
        kh, kw = layer.kernel_size
        return f"L0Conv2d {layer.in_channels}→{layer.out_channels} {kh}×{kw}, {kind} gates"
    kind = "weight" if layer.gate_kind == "weight" else "input-neuron"
    return f"L0Linear {layer.in_features}→{layer.out_features}, {kind} gates"


# ----------------------------------------------------------------------------- figures
def _figures(rep: _Run) -> dict[str, str]:
    """Save the figures; returns their stems (``figures/NAME``) by caption."""
    figs = {}

    def save(fig, name: str, caption: str) -> None:
        plotting.save_figure(fig, rep.out / "figures" / name)
        figs[caption] = f"figures/{name}"

    if len(rep.history.get("epoch", ())):
        gates = [layer.num_gates for layer in rep.layers]
        fig = plotting.plot_training_curves(rep.history, gates, rep.labels)
        save(fig, "training_curves", "Training curves")
    rows = rep.summary[: len(rep.layers)]
    fig = plotting.plot_active_units(rows, rep.labels, rep.num_samples, rep.level)
    save(fig, "active_units", "Active units per layer")
    kept = rep.post.deterministic_open
    fig = plotting.plot_layer_pips(rep.pips, kept, rep.labels)
    save(fig, "pips", "Inclusion probabilities")
    try:
        image = posterior.input_gate_image(rep.net)
    except ValueError:  # not the MNIST MLP
        image = None
    if image is not None:
        first = next(iter(kept.values())).reshape(image.shape)
        save(plotting.plot_input_gates(image, first), "input_gates", "Input-pixel gates")
    if rep.bma is not None:
        curves = {}
        for key, label in (("bma", f"BMA, S = {rep.num_samples}"), ("deterministic", "Eq. 13")):
            res = rep.bma[key]
            bins = posterior.reliability_bins(res["log_probs"].exp().numpy(), rep.test_y)
            curves[f"{label} (ECE {100 * res['ece']:.1f}%)"] = bins
        save(plotting.plot_reliability(curves), "reliability", "Reliability diagram")
    return figs


# ----------------------------------------------------------------------------- tables
def _si(x: float) -> str:
    """``2293000`` → ``2.29M``."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def _save_table(rep: _Run, name: str, rows: list[dict], cells: Table, numeric_from: int = 1) -> str:
    """``tables/NAME.csv`` (the raw values of ``rows``) and ``tables/NAME.tex`` (the
    formatted ``cells``); returns the Markdown table."""
    write_csv(rows, rep.out / "tables" / f"{name}.csv")
    (rep.out / "tables" / f"{name}.tex").write_text(to_latex(cells, numeric_from), "utf-8")
    return to_markdown(cells, numeric_from)


def _tables(rep: _Run) -> dict[str, str]:
    """Write the tables; returns their Markdown by name."""
    tables = {
        "metrics": _metrics_table(rep),
        "architecture": _architecture_table(rep),
        "costs": _costs_table(rep),
    }
    if rep.bma is not None:
        tables["bma"] = _bma_table(rep)
    _pip_csv(rep)
    return tables


def _metrics_table(rep: _Run) -> str:
    m, cfg = rep.metrics or {}, rep.cfg
    pairs = [
        ("network", cfg.network),
        ("data set", m.get("dataset", cfg.dataset)),
        ("epochs trained", f"{len(rep.history.get('epoch', ()))} of {cfg.epochs}"),
        ("training / test examples", f"{m.get('num_train', '?')} / {m.get('num_test', '?')}"),
        ("λ per parameter (nats; the paper's λ × N)", ", ".join(f"{v:g}" for v in cfg.lam)),
        ("KL mode", cfg.kl_mode),
        ("evaluated parameters", f"EMA, β = {cfg.ema}" if cfg.ema else "last iterate"),
    ]
    if m:
        best = f"{100 * m['best_test_error']:.2f}% (epoch {m['best_epoch']}; may be denser)"
        flops = " / ".join(_si(m[k]) for k in ("dense_flops", "compact_flops", "expected_flops"))
        pairs += [
            ("test error, last epoch (Eq. 13 gates)", f"{100 * m['test_error']:.2f}%"),
            ("best test error over epochs", best),
            ("architecture (dense -> Eq. 13)", m["architecture_string"]),
            ("FLOPs: dense / Eq. 13 / expected", flops),
            (
                "non-zero parameters / dense",
                f"{_si(m['nonzero_params'])} / {_si(m['dense_params'])}",
            ),
            ("training time", f"{m['train_seconds']:.1f} s on {m.get('device', '?')}"),
        ]
    rows = [dict(quantity=k, value=str(v)) for k, v in pairs]
    return _save_table(
        rep, "metrics", rows, (["quantity", "value"], [[k, str(v)] for k, v in pairs]), 2
    )


def _architecture_table(rep: _Run) -> str:
    rows, body = [], []
    layer_rows = rep.summary[: len(rep.layers)]
    for k, (layer, s, name) in enumerate(zip(rep.layers, layer_rows, rep.post.names, strict=True)):
        pip = rep.pips[name]
        r = dict(
            layer=k + 1,
            module=name,
            kind=describe_layer(layer),
            gates=layer.num_gates,
            eq13_open_gates=int(rep.post.deterministic_open[name].sum()),
            eq13_units=s["deterministic"],
            expected_l0=float(pip.sum()),
            pip_above_half=int((pip > 0.5).sum()),
            posterior_mean_units=s["posterior_mean"],
            lower=s["lower"],
            upper=s["upper"],
            eq13_rank=s["deterministic_rank"],
            agreement=float(rep.agreement[name].mean()),
        )
        rows.append(r)
        body.append(
            [
                f"{k + 1}: {name}",
                r["kind"],
                str(r["gates"]),
                str(r["eq13_open_gates"]),
                f"{r['eq13_units']:.0f}",
                f"{r['expected_l0']:.1f}",
                str(r["pip_above_half"]),
                f"{r['posterior_mean_units']:.1f}",
                f"[{r['lower']:.0f}, {r['upper']:.0f}]",
                f"{r['eq13_rank']:.2f}",
                f"{100 * r['agreement']:.1f}%",
            ]
        )
    header = [
        "layer",
        "kind",
        "gates",
        "Eq. 13 open gates",
        "Eq. 13 units",
        "E[L0] = Σ PIP",
        "PIP > 0.5",
        "posterior mean units",
        f"{rep.level:.0%} interval",
        "rank of Eq. 13 units",
        "agreement",
    ]
    return _save_table(rep, "architecture", rows, (header, body), 2)


def _costs_table(rep: _Run) -> str:
    rows = rep.summary[len(rep.layers) :]
    body = [
        [
            r["quantity"],
            _si(r["dense"]),
            _si(r["deterministic"]),
            _si(r["expected"]),
            _si(r["posterior_mean"]),
            f"[{_si(r['lower'])}, {_si(r['upper'])}]",
            f"{r['deterministic_rank']:.2f}",
        ]
        for r in rows
    ]
    header = [
        "quantity",
        "dense",
        "Eq. 13",
        "expected (closed form)",
        "posterior mean",
        f"{rep.level:.0%} interval",
        "rank of Eq. 13",
    ]
    return _save_table(rep, "costs", rows, (header, body))


def _bma_table(rep: _Run) -> str:
    rows, body = [], []
    for key, label, draws in (
        ("bma", "Bayesian model average", rep.num_samples),
        ("deterministic", "deterministic pruned network (Eq. 13)", 1),
    ):
        res = rep.bma[key]
        rows.append(dict(predictor=key, draws=draws, **{k: res[k] for k in METRIC_KEYS}))
        body.append(
            [
                label,
                str(draws),
                f"{100 * res['accuracy']:.2f}%",
                f"{100 * res['error']:.2f}%",
                f"{res['nll']:.4f}",
                f"{100 * res['ece']:.2f}%",
            ]
        )
    header = ["predictor", "draws", "accuracy", "error", "NLL (nats)", "ECE (15 bins)"]
    return _save_table(rep, "bma", rows, (header, body), 2)


METRIC_KEYS = ("accuracy", "error", "nll", "ece")


def _pip_csv(rep: _Run) -> None:
    """``tables/pips.csv``: one row per gate (CSV only: thousands of rows)."""
    rows = []
    for k, (layer, name) in enumerate(zip(rep.layers, rep.post.names, strict=True), start=1):
        with torch.no_grad():
            z_hat = layer.deterministic_gates().cpu().numpy()
        rows += [
            dict(
                layer=k,
                module=name,
                gate=g,
                pip=float(pip),
                eq13_gate=float(z_hat[g]),
                eq13_open=bool(rep.post.deterministic_open[name][g]),
                agreement=float(rep.agreement[name][g]),
            )
            for g, pip in enumerate(rep.pips[name])
        ]
    write_csv(rows, rep.out / "tables" / "pips.csv")


# ----------------------------------------------------------------------------- markdown
def _figure_md(figs: dict[str, str], caption: str, alt: str) -> str:
    if caption not in figs:
        return ""
    stem = figs[caption]
    return f"![{alt}]({stem}.png)\n\n*{caption}* ([PDF]({stem}.pdf))\n"


def _markdown(rep: _Run, figs: dict[str, str], tables: dict[str, str]) -> str:
    cfg = rep.cfg
    finished = rep.metrics is not None
    lines = [
        f"# Run report: {cfg.network} on {cfg.dataset}",
        "",
        f"Run directory `{rep.run}`; written by l0bayes {__version__} from its `config.json`, "
        f"`checkpoint.pt`, `history.csv`{' and `metrics.json`' if finished else ''}. Nothing "
        "was re-trained. Test-time gates are the paper's deterministic estimator (Eq. 13), "
        "ẑ = min(1, max(0, σ(log α)(ζ − γ) + γ)); a unit is pruned when ẑ = 0. The posterior "
        f"is the guide q(z) = HardConcrete(log α): {rep.num_samples} draws, seed {rep.seed}.",
        "",
    ]
    if not finished:
        lines += ["> **The run has not finished** (no `metrics.json`): this reports its last "
                  "checkpoint.", ""]  # fmt: skip
    if rep.data_note:
        lines += [
            f"> **Data not available**: {rep.data_note}. The Bayesian-model-averaging "
            "comparison and the reliability diagram need the test set and are left out; "
            "everything else below is computed from the checkpoint alone. Rerun with "
            "`--data-dir DIR` (or `make_report(..., data_dir=...)`) to add them.",
            "",
        ]
    lines += ["## Metrics", "", tables["metrics"], _figure_md(figs, "Training curves", "curves")]
    lines += [
        "## Architecture",
        "",
        "Units count what enters each gated layer: input neurons of a linear layer, output "
        "maps of a convolution (the paper's architecture strings); a unit whose every reader "
        "or writer is pruned counts as pruned too, so *units* can be fewer than *open gates*. "
        "E[L0] is the sum of the layer's inclusion probabilities P(z ≠ 0). The posterior "
        f"columns count the units of each of the {rep.num_samples} drawn architectures (mean "
        f"and equal-tailed {rep.level:.0%} interval). *Rank of Eq. 13 units* is "
        "P(U < û) + ½ P(U = û) for the posterior count U and the test-time count û (0.5: "
        "typical of the posterior; 0 or 1: outside every draw). *Agreement* is the mean over "
        "the layer's gates of the fraction of draws with 1[z ≠ 0] = 1[ẑ ≠ 0].",
        "",
        tables["architecture"],
        _figure_md(figs, "Active units per layer", "active units"),
        "## Posterior inclusion probabilities",
        "",
        "Per-gate values are in [`tables/pips.csv`](tables/pips.csv). Gates with a PIP below "
        "0.5 that Eq. 13 keeps sit between log α = logit(−γ/(ζ−γ)) ≈ −2.40 and "
        "β log(−γ/ζ) ≈ −1.60.",
        "",
        _figure_md(figs, "Inclusion probabilities", "PIPs"),
        _figure_md(figs, "Input-pixel gates", "input gates"),
        "## Posterior over FLOPs and parameters",
        "",
        "Multiply–accumulates per example (one multiply and one add = 1 FLOP) of every weight "
        "layer, and non-zero weights and biases, as `l0bayes.nn.architecture` counts them. "
        "*Expected (closed form)* is the exact expectation under the guide; the posterior mean "
        "is its Monte-Carlo estimate.",
        "",
        tables["costs"],
        "## Bayesian model averaging vs the deterministic network",
        "",
    ]
    if rep.bma is None:
        lines += ["Left out: the test set is not available (see above).", ""]
    else:
        lines += [
            f"On the {rep.num_test} test examples. The model average is "
            f"p(y | x) ≈ (1/S) Σ_s p(y | x, z⁽ˢ⁾, θ⁽ˢ⁾) over S = {rep.num_samples} draws of all "
            "gates and weights from the guide (one draw is one network, shared by every "
            "example). NLL is −(1/N) Σ_i log p(y_i | x_i) in nats. ECE is the expected "
            "calibration error with 15 equal-width bins of the confidence c = max_k p(k | x): "
            "Σ_b (n_b / N) |accuracy_b − mean confidence_b| (Guo et al., 2017).",
            "",
            tables["bma"],
            _consistency(rep),
            _figure_md(figs, "Reliability diagram", "reliability"),
        ]
    lines += ["## Files", ""]
    for name in sorted(p.stem for p in (rep.out / "tables").glob("*.csv")):
        tex = rep.out / "tables" / f"{name}.tex"
        extra = f", [LaTeX](tables/{name}.tex)" if tex.exists() else ""
        lines.append(f"- `{name}`: [CSV](tables/{name}.csv){extra}")
    for caption, stem in figs.items():
        lines.append(f"- {caption}: [PNG]({stem}.png), [PDF]({stem}.pdf)")
    return "\n".join(lines) + "\n"


def _consistency(rep: _Run) -> str:
    """A line comparing the recomputed deterministic test error with ``metrics.json``'s."""
    if not rep.metrics:
        return ""
    ours, saved = rep.bma["deterministic"]["error"], rep.metrics["test_error"]
    if abs(ours - saved) <= 0.5 / max(rep.num_test, 1):
        return f"The deterministic test error matches `metrics.json` ({100 * saved:.2f}%).\n"
    return (
        f"**Note:** the deterministic test error here ({100 * ours:.2f}%) differs from "
        f"`metrics.json` ({100 * saved:.2f}%): the data evaluated are not the run's test set.\n"
    )


# ----------------------------------------------------------------------------- command line
def add_report_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand to ``parser.add_subparsers(...)``; its handler is
    :func:`run_report_command` (also set as the ``handler`` default)."""
    parser = subparsers.add_parser(
        "report",
        help="turn a training run or a sweep into RUN/report/ (markdown, figures, tables)",
        description=REPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "run",
        metavar="RUN",
        help="run directory written by `l0bayes train`, or a sweep folder written by "
        "`l0bayes sweep` (then a table of every network and the error-size Pareto figure)",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=100,
        help="draws from the guide for the architecture posterior and the model average "
        "(default 100)",
    )
    parser.add_argument(
        "--data-dir",
        help="data folder (default: the run's --data-dir, then $L0BAYES_DATA, then "
        "$XDG_CACHE_HOME/l0bayes, i.e. ~/.cache/l0bayes). The command line never downloads: "
        "fetch MNIST from Python with l0bayes.data.load_mnist(download=True) (or "
        "load_fashion_mnist), or place the files there by hand; without them the report "
        "leaves out the test-set comparison",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    parser.add_argument(
        "--batch-size", type=int, default=1000, help="test examples per chunk (default 1000)"
    )
    parser.add_argument("--threads", type=int, dest="num_threads", metavar="N", help=THREADS_HELP)
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the bar over the report's stages"
    )
    parser.set_defaults(handler=run_report_command)
    return parser


def run_report_command(args: argparse.Namespace) -> Path:
    """Run ``l0bayes report`` with parsed ``args``; prints and returns the report folder.

    A sweep folder (``l0bayes sweep --out SWEEP``) gets the sweep's report instead
    (:func:`l0bayes.reporting.sweep_report.make_sweep_report`).

    :raises FileNotFoundError: ``RUN`` is not a run directory.
    :raises ValueError: bad arguments or an unreadable run.
    """
    if is_sweep_folder(args.run):
        out = make_sweep_report(args.run)
        print(f"sweep report written to {out / 'report.md'}")
        return out
    out = make_report(
        args.run,
        num_samples=args.samples,
        data_dir=args.data_dir,
        device=args.device,
        seed=args.seed,
        batch_size=args.batch_size,
        progress=not getattr(args, "no_progress", False),
        num_threads=getattr(args, "num_threads", None),
    )
    print(f"report written to {out / 'report.md'}")
    return out


__all__ = [
    "METRIC_KEYS",
    "RECORD_LIMIT",
    "REPORT_DIR",
    "REPORT_FILES",
    "REPORT_HELP",
    "STAGES",
    "add_report_parser",
    "check_report_dir",
    "describe_layer",
    "make_report",
    "read_history",
    "run_report_command",
]
