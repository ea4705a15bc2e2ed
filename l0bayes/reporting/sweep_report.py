r"""The report of a sweep folder (``l0bayes sweep --out SWEEP``): every network in one table
and the trade-off between test error and size.

A *sweep folder* is not itself a run directory but holds run directories, one per network
(``lam-<λ>_seed-<s>``, ``lam-<λ>_target-<t>_seed-<s>``). :func:`make_sweep_report` reads each
network's ``config.json``, ``metrics.json`` (a finished network) or else the last row of its
``history.csv`` (an unfinished one, marked as such), never re-training, and writes
``SWEEP/report/`` as a whole (a report killed at any point leaves the old one or the new one,
:func:`~l0bayes.reporting.report_folder.new_report_folder`):

* ``report.md``: the table, the figure, and the command that reports each network in full
  (``l0bayes report SWEEP/<network>``);
* ``tables/networks.csv`` (the raw values) and ``tables/networks.tex``;
* ``figures/pareto.{png,pdf}``: test error against non-zero parameters and against test-time
  FLOPs, with the **Pareto front**: the networks that no other network beats in both size and
  error (:func:`pareto_front`).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

import l0bayes.viz.plotting as plotting
from l0bayes.reporting.report_folder import new_report_folder
from l0bayes.training.checkpoint import write_text
from l0bayes.training.run_directory import is_run_directory
from l0bayes.viz.tables import to_latex, to_markdown, write_csv

REPORT_DIR = "report"
#: The columns of ``tables/networks.csv``.
COLUMNS = (
    "network",
    "lam",
    "seed",
    "target_fraction",
    "epochs",
    "finished",
    "test_error",
    "best_test_error",
    "nonzero_params",
    "dense_params",
    "compact_flops",
    "architecture",
)


def is_sweep_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder, not a run directory, holding at least one run
    directory."""
    path = Path(path)
    return path.is_dir() and not is_run_directory(path) and bool(sweep_networks(path))


def sweep_networks(path: str | Path) -> list[Path]:
    """The run directories directly inside ``path``, by name."""
    return sorted(p for p in Path(path).iterdir() if p.is_dir() and is_run_directory(p))


def pareto_front(cost: np.ndarray, error: np.ndarray) -> np.ndarray:
    """The mask of the points that no other point beats in both: a point is on the front
    unless another has a cost and an error no larger, and one of them smaller."""
    cost, error = np.asarray(cost, dtype=float), np.asarray(error, dtype=float)
    no_worse = (cost[None, :] <= cost[:, None]) & (error[None, :] <= error[:, None])
    better = (cost[None, :] < cost[:, None]) | (error[None, :] < error[:, None])
    return ~(no_worse & better).any(axis=1)


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not readable JSON ({err})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} is not a JSON object")
    return value


def _last_history_row(path: Path) -> dict:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        return {}
    return rows[-1] if rows else {}


def network_row(run: Path) -> dict:
    """One network's row (:data:`COLUMNS`): from ``metrics.json`` when it finished, else from
    its configuration and the last ``history.csv`` row (sizes unknown: NaN)."""
    cfg, metrics = _read_json(run / "config.json"), _read_json(run / "metrics.json")
    lam = cfg.get("lam") or []
    row = {
        "network": run.name,
        "lam": " ".join(f"{v:g}" for v in lam),
        "seed": cfg.get("seed"),
        "target_fraction": cfg.get("target_fraction"),
        "finished": bool(metrics),
    }
    if metrics:
        return row | {
            "epochs": metrics.get("epochs"),
            "test_error": metrics.get("test_error"),
            "best_test_error": metrics.get("best_test_error"),
            "nonzero_params": metrics.get("nonzero_params"),
            "dense_params": metrics.get("dense_params"),
            "compact_flops": metrics.get("compact_flops"),
            "architecture": metrics.get("architecture_string", ""),
        }
    last = _last_history_row(run / "history.csv")
    error = float(last["test_error"]) if last.get("test_error") else float("nan")
    return row | {
        "epochs": int(last["epoch"]) if last.get("epoch") else 0,
        "test_error": error,
        "best_test_error": float("nan"),
        "nonzero_params": float("nan"),
        "dense_params": float("nan"),
        "compact_flops": float(last["compact_flops"]) if last.get("compact_flops") else np.nan,
        "architecture": "(unfinished)",
    }


def _cells(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    def pct(v) -> str:
        return "–" if v is None or not np.isfinite(v) else f"{100 * v:.2f}"

    def count(v) -> str:
        return "–" if v is None or not np.isfinite(v) else f"{v:,.0f}"

    header = ["network", "λ", "seed", "epochs", "test error %", "best %", "non-zero params",
              "FLOPs", "architecture"]  # fmt: skip
    body = [
        [
            r["network"] + ("" if r["finished"] else " (unfinished)"),
            r["lam"],
            str(r["seed"]),
            str(r["epochs"]),
            pct(r["test_error"]),
            pct(r["best_test_error"]),
            count(r["nonzero_params"]),
            count(r["compact_flops"]),
            r["architecture"],
        ]
        for r in rows
    ]
    return header, body


def make_sweep_report(sweep_dir: str | Path) -> Path:
    """Write ``SWEEP/report/`` (module docstring) and return its path.

    :raises FileNotFoundError: ``sweep_dir`` holds no run directory.
    :raises ValueError: a network's ``config.json`` or ``metrics.json`` is unreadable.
    """
    sweep = Path(sweep_dir)
    runs = sweep_networks(sweep) if sweep.is_dir() else []
    if not runs:
        raise FileNotFoundError(
            f"{sweep} holds no run directory: not a folder written by `l0bayes sweep --out "
            f"{sweep}` (or `l0bayes train`)"
        )
    rows = [network_row(run) for run in runs]
    with new_report_folder(sweep / REPORT_DIR) as out:
        _write_report(sweep, runs, rows, out)
    return sweep / REPORT_DIR


def _write_report(sweep: Path, runs: list[Path], rows: list[dict], out: Path) -> None:
    """The files of the sweep's report (module docstring), written into ``out``."""
    write_csv([{k: r.get(k) for k in COLUMNS} for r in rows], out / "tables" / "networks.csv")
    cells = _cells(rows)
    write_text(out / "tables" / "networks.tex", to_latex(cells, numeric_from=1))
    done = [r for r in rows if r["finished"]]
    figure = ""
    if done:
        points = {
            "error": [r["test_error"] for r in done],
            "nonzero_params": [r["nonzero_params"] for r in done],
            "compact_flops": [r["compact_flops"] for r in done],
        }
        front = {
            key: pareto_front(np.asarray(points[key]), np.asarray(points["error"]))
            for key in ("nonzero_params", "compact_flops")
        }
        fig = plotting.plot_error_against_size(
            points, front, [r["network"] for r in done], f"Sweep {sweep.name}: error and size"
        )
        plotting.save_figure(fig, out / "figures" / "pareto")
        on_front = [r["network"] for r, f in zip(done, front["nonzero_params"], strict=True) if f]
        figure = (
            "## Error against size\n\n![test error against non-zero parameters and FLOPs]"
            "(figures/pareto.png)\n\n[PDF](figures/pareto.pdf). On the Pareto front (no other "
            f"network is both smaller and more accurate): {', '.join(on_front)}.\n\n"
        )
    unfinished = len(rows) - len(done)
    lines = [
        f"# Sweep report: {sweep.name}\n",
        f"{len(rows)} networks ({unfinished} unfinished: their last epoch is shown; resume "
        "with the sweep's command and `--resume`). Test errors use the deterministic "
        "(Eq. 13) gates; sizes are those of the compacted network.\n",
        "## Networks\n",
        to_markdown(cells, numeric_from=1),
        "Tables: [CSV](tables/networks.csv), [LaTeX](tables/networks.tex).\n",
        figure,
        "## Each network in full\n",
        "Every network is an ordinary run directory; its own report (architecture posterior, "
        "model averaging, figures) is written by\n",
        "```bash\n" + "\n".join(f"l0bayes report {sweep / r.name}" for r in runs) + "\n```\n",
    ]
    write_text(out / "report.md", "\n".join(lines))


__all__ = [
    "COLUMNS",
    "REPORT_DIR",
    "is_sweep_folder",
    "make_sweep_report",
    "network_row",
    "pareto_front",
    "sweep_networks",
]
