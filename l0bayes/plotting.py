"""Figures (matplotlib, headless): every figure is saved as PNG and PDF."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path) -> list[Path]:
    """Save ``fig`` as ``path.png`` and ``path.pdf`` (suffix of ``path`` ignored)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = [path.with_suffix(".png"), path.with_suffix(".pdf")]
    for p in out:
        fig.savefig(p, dpi=150, bbox_inches="tight")
    _pyplot().close(fig)
    return out


def plot_pips(
    pips: Mapping[str, Sequence[float]],
    names: Sequence[str],
    title: str = "Posterior inclusion probabilities",
    threshold: float = 0.5,
):
    """Grouped bars of P(z_j ≠ 0) per feature, one colour per method, with the 0.5 line
    (the median-probability model includes the features above it)."""
    plt = _pyplot()
    methods = list(pips)
    x = np.arange(len(names))
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(names) + 2), 3.8))
    for i, method in enumerate(methods):
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, pips[method], width, label=method)
    ax.axhline(threshold, color="black", linestyle="--", linewidth=1, label=f"{threshold} line")
    ax.set_xticks(x, names, rotation=45, ha="right")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("feature")
    ax.set_ylabel("P(z ≠ 0)  (posterior inclusion probability)")
    ax.set_title(title)
    ax.legend(
        fontsize=8,
        ncol=min(len(methods) + 1, 4),
        loc="upper center",
        bbox_to_anchor=(0.5, -0.28),
        frameon=False,
    )
    return fig
