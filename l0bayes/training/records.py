"""Run records: the per-epoch history (CSV), progress lines, and the environment of a run."""

from __future__ import annotations

import csv
import io
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyro
import torch

from l0bayes._version import __version__


def progress_postfix(loss: float, last: dict | None) -> dict[str, str]:
    post = {"-elbo/N": f"{loss:.4f}"}
    if last is not None and "test_error" in last:  # rank 0 evaluates
        post["err"] = f"{100 * last['test_error']:.2f}%"
        post["units"] = "-".join(f"{u:.0f}" for u in last["units"])
    return post


def epoch_line(row: dict, label: str | None = None) -> str:
    """One history row as the line printed after each epoch; ``label`` (a sweep's network,
    e.g. ``lam-0.1_seed-0``) comes first when given."""
    units = "-".join(f"{u:.0f}" for u in row["units"])
    l0 = "-".join(f"{v:.0f}" for v in row["expected_l0"])
    name = f"{label} " if label else ""
    return (
        f"{name}epoch {row['epoch']}: -ELBO/N {row['train_loss']:.4f}  test error "
        f"{100 * row['test_error']:.2f}%  units {units}  E[L0] {l0}  "
        f"E[FLOPs] {row['expected_flops']:.3g}"
    )


def architecture_string(dense: tuple[float, ...], units: list[float]) -> str:
    fmt = lambda us: "-".join(f"{u:.0f}" for u in us)  # noqa: E731
    return f"{fmt(dense)} -> {fmt(units)}"


def history_csv(history: list[dict]) -> str:
    """The per-epoch history as CSV; list-valued columns are expanded per gated layer
    (``units_1``, ``expected_l0_1``, ...)."""
    rows = [_flat(row) for row in history]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _flat(row: dict) -> dict:
    out = {}
    for key, value in row.items():
        if isinstance(value, list):
            out.update({f"{key}_{i + 1}": v for i, v in enumerate(value)})
        else:
            out[key] = value
    return out


def environment() -> dict[str, Any]:
    """Versions and the git commit (when the package runs from a checkout)."""
    env = {
        "torch_version": torch.__version__,
        "pyro_version": pyro.__version__,
        "l0bayes_version": __version__,
        "python_version": platform.python_version(),
        "numpy_version": np.__version__,
    }
    try:
        root = Path(__file__).resolve().parents[1]
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        env["git_commit"] = commit or None
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
        env["git_dirty"] = bool(status.strip())  # uncommitted changes: the commit is not all
    except (OSError, subprocess.SubprocessError):
        env["git_commit"] = None
    return env


def peak_rss_mib() -> float | None:
    """The process's peak resident memory (MiB), where the platform reports it."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024**2 if platform.system() == "Darwin" else peak / 1024


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


__all__ = [
    "architecture_string",
    "device_name",
    "environment",
    "epoch_line",
    "history_csv",
    "peak_rss_mib",
    "progress_postfix",
]
