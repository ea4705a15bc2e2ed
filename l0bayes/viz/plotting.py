"""Figures (matplotlib, headless): every figure is saved as PNG and PDF."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path) -> list[Path]:
    """Save ``fig`` as ``path.png`` and ``path.pdf`` (suffix of ``path`` ignored); the same
    figure gives the same bytes (the PDF carries no creation date)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = [path.with_suffix(".png"), path.with_suffix(".pdf")]
    for p in out:
        metadata = {"CreationDate": None} if p.suffix == ".pdf" else None
        fig.savefig(p, dpi=150, bbox_inches="tight", metadata=metadata)
    pyplot().close(fig)
    return out


def plot_pips(
    pips: Mapping[str, Sequence[float]],
    names: Sequence[str],
    title: str = "Posterior inclusion probabilities",
    threshold: float = 0.5,
    selected: Mapping[str, Sequence[bool]] | None = None,
    ylabel: str = "P(z ≠ 0)  (posterior inclusion probability)",
):
    """Grouped bars of an inclusion measure per feature (posterior inclusion probabilities,
    or a criterion's inclusion weights), one colour per method, with the 0.5 line. With
    ``selected`` (method → bool per feature) each method's selected features are marked by a
    black-edged bar and a dot above it, so the chosen set is read off the figure whatever the
    bar's height."""
    plt = pyplot()
    methods = list(pips)
    x = np.arange(len(names))
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(names) + 2), 3.8))
    for i, method in enumerate(methods):
        centre = x + (i - (len(methods) - 1) / 2) * width
        bars = ax.bar(centre, pips[method], width, label=method)
        if selected is not None and method in selected:
            chosen = np.asarray(selected[method], dtype=bool)
            for bar in np.asarray(bars.patches, dtype=object)[chosen]:
                bar.set_edgecolor("black")
                bar.set_linewidth(1.2)
            heights = np.asarray(pips[method], dtype=float)[chosen]
            ax.plot(centre[chosen], heights + 0.03, "o", color="black", markersize=2.5)
    ax.axhline(threshold, color="black", linestyle="--", linewidth=1, label=f"{threshold} line")
    if selected is not None:
        ax.plot([], [], "o", color="black", markersize=2.5, label="selected (black edge)")
    ax.set_xticks(x, names, rotation=45, ha="right")
    ax.set_ylim(0, 1.08)
    ax.set_xlabel("feature")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(
        fontsize=8,
        ncol=min(len(methods) + 2, 4),
        loc="upper center",
        bbox_to_anchor=(0.5, -0.28),
        frameon=False,
    )
    return fig


# ----------------------------------------------------------------------------- networks
def _integer_epochs(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_training_curves(
    history: Mapping[str, Sequence[float]], gates: Sequence[int], labels: Sequence[str]
):
    """Three panels against the epoch: the per-data-point negative ELBO, the test error with
    the test-time gates, and per gated layer the expected L0 (solid) and the Eq. 13 units
    (dashed) as percentages of the layer's gates. ``history`` maps the columns of a run's
    ``history.csv`` (``epoch``, ``train_loss``, ``test_error``, ``expected_l0_k``,
    ``units_k``) to their values."""
    plt = pyplot()
    epoch = np.asarray(history["epoch"], dtype=float)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), layout="constrained")
    marker = dict(marker="o", markersize=3) if len(epoch) <= 30 else {}
    ax = axes[0]
    ax.plot(epoch, history["train_loss"], **marker)
    ax.set_ylabel("−ELBO / N  (nats per training example)")
    ax.set_title("Training objective (epoch mean)")
    ax = axes[1]
    ax.plot(epoch, 100 * np.asarray(history["test_error"], dtype=float), **marker)
    ax.set_ylabel("test error (%)")
    ax.set_title("Test error, deterministic (Eq. 13) gates")
    ax = axes[2]
    for k, (g, label) in enumerate(zip(gates, labels, strict=True), start=1):
        colour = f"C{(k - 1) % 10}"
        if f"expected_l0_{k}" in history:
            l0 = 100 * np.asarray(history[f"expected_l0_{k}"], dtype=float) / g
            ax.plot(epoch, l0, color=colour, label=f"{label} ({g})", **marker)
        if f"units_{k}" in history:
            units = 100 * np.asarray(history[f"units_{k}"], dtype=float) / g
            ax.plot(epoch, units, color=colour, linestyle="--")
    ax.plot([], [], color="gray", linestyle="--", label="Eq. 13 units (dashed)")
    ax.set_ylabel("% of the layer's gates")
    ax.set_title("Expected L0 = Σ P(z ≠ 0) (solid) per layer")
    ax.legend(fontsize=8, title="layer (gates)", title_fontsize=8)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        _integer_epochs(ax)
    return fig


def plot_active_units(
    rows: Sequence[Mapping[str, float]], labels: Sequence[str], num_samples: int, level: float
):
    """Active units per gated layer as % of its gates: the posterior mean (bars) with its
    equal-tailed ``level`` interval, and the test-time (Eq. 13) architecture (diamonds).
    ``rows`` are the per-layer rows of :func:`l0bayes.nn.posterior.architecture_summary`."""
    plt = pyplot()
    x = np.arange(len(rows))
    dense = np.array([r["dense"] for r in rows], dtype=float)
    mean = 100 * np.array([r["posterior_mean"] for r in rows]) / dense
    low = 100 * np.array([r["lower"] for r in rows]) / dense
    high = 100 * np.array([r["upper"] for r in rows]) / dense
    det = 100 * np.array([r["deterministic"] for r in rows]) / dense
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(rows) + 2), 4.5), layout="constrained")
    ax.bar(x, mean, 0.6, color="C0", alpha=0.6, label="posterior mean")
    ax.errorbar(
        x,
        mean,
        yerr=[mean - low, high - mean],
        fmt="none",
        ecolor="black",
        capsize=6,
        label=f"{level:.0%} interval",
    )
    ax.scatter(x, det, marker="D", color="C3", zorder=3, label="test time (Eq. 13)")
    ticks = [
        f"{label}\n{r['posterior_mean']:.0f} [{r['lower']:.0f}, {r['upper']:.0f}]\n"
        f"Eq. 13: {r['deterministic']:.0f} of {r['dense']:.0f}"
        for label, r in zip(labels, rows, strict=True)
    ]
    ax.set_xticks(x, ticks)
    ax.set_ylim(0, 105)
    ax.set_xlabel(f"gated layer: posterior mean [{level:.0%} interval] and Eq. 13 units")
    ax.set_ylabel("active units (% of the layer's gates)")
    ax.set_title(f"Posterior over active units per layer ({num_samples} draws from the guide)")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_layer_pips(
    pips: Mapping[str, np.ndarray],
    kept: Mapping[str, np.ndarray],
    labels: Sequence[str],
    threshold: float = 0.5,
):
    """One panel per gated layer: P(z_g ≠ 0) of every gate as a stem, coloured by whether the
    test-time (Eq. 13) gate keeps it, with the 0.5 line of the median-probability model."""
    plt = pyplot()
    names = list(pips)
    fig, axes = plt.subplots(
        len(names), 1, figsize=(10, 2.4 * len(names) + 0.6), layout="constrained", squeeze=False
    )
    for ax, name, label in zip(axes[:, 0], names, labels, strict=True):
        p, on = np.asarray(pips[name]), np.asarray(kept[name], dtype=bool)
        idx = np.arange(len(p))
        for mask, colour, what in ((on, "C0", "kept"), (~on, "C3", "pruned")):
            ax.vlines(
                idx[mask],
                0,
                p[mask],
                color=colour,
                linewidth=0.8,
                label=f"{what} at test time (Eq. 13)",
            )
            if len(p) <= 100:
                ax.plot(idx[mask], p[mask], "o", color=colour, markersize=3)
        ax.axhline(threshold, color="black", linestyle="--", linewidth=1, label="PIP = 0.5")
        ax.set_ylim(0, 1.05)
        ax.set_xlim(-0.5, len(p) - 0.5)
        ax.set_ylabel("P(z ≠ 0)")
        ax.set_title(
            f"{label}: {len(p)} gates, E[L0] = {p.sum():.1f}, {int(on.sum())} kept by Eq. 13, "
            f"{int((p > threshold).sum())} with PIP > {threshold}",
            fontsize=10,
        )
    axes[-1, 0].set_xlabel("gate index (input neuron of a linear layer, output map of a conv)")
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=3, fontsize=8)
    fig.suptitle("Posterior inclusion probabilities of the gates")
    return fig


def plot_input_gates(pip_image: np.ndarray, kept_image: np.ndarray):
    """The input layer's gates as images: P(z ≠ 0) per pixel, and the pixels the test-time
    (Eq. 13) gates keep."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), layout="constrained")
    im = axes[0].imshow(pip_image, vmin=0, vmax=1, cmap="viridis")
    fig.colorbar(im, ax=axes[0], label="P(z ≠ 0)  (posterior inclusion probability)")
    axes[0].set_title("Input-pixel inclusion probabilities")
    kept = np.asarray(kept_image, dtype=bool)
    axes[1].imshow(kept, vmin=0, vmax=1, cmap="gray")
    axes[1].set_title(f"Pixels kept at test time (Eq. 13): {int(kept.sum())} of {kept.size}")
    for ax in axes:
        ax.set_xlabel("pixel column")
        ax.set_ylabel("pixel row")
    axes[1].legend(
        handles=[
            plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="black", label="kept"),
            plt.Rectangle((0, 0), 1, 1, facecolor="black", label="pruned"),
        ],
        loc="upper left",
        bbox_to_anchor=(1.02, 1),
        fontsize=8,
    )
    return fig


def plot_reliability(curves: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]):
    """Reliability diagram: accuracy against mean confidence per confidence bin, one line per
    predictor (``curves`` maps a label to the counts, accuracies and confidences of
    :func:`l0bayes.nn.posterior.reliability_bins`), the diagonal being perfect calibration; below
    it, how many test examples each bin holds (few examples: a noisy accuracy)."""
    plt = pyplot()
    fig, (ax, low) = plt.subplots(
        2, 1, figsize=(6, 6.5), sharex=True, height_ratios=(3, 1), layout="constrained"
    )
    ax.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=1, label="perfect calibration")
    n_bins = 1
    for i, (label, (counts, accuracy, confidence)) in enumerate(curves.items()):
        n_bins, full = len(counts), counts > 0
        ax.plot(confidence[full], accuracy[full], marker="os^"[i % 3], label=label)
        centres = (np.arange(n_bins) + 0.5) / n_bins
        width = 0.8 / n_bins / len(curves)
        offset = (i - (len(curves) - 1) / 2) * width
        low.bar(centres + offset, counts, width, color=f"C{i}", label=label)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy in the bin")
    ax.set_title(f"Reliability on the test set ({n_bins} equal-width confidence bins)")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    low.set_yscale("log")
    low.set_ylim(bottom=0.5)  # a bin of one example stays visible
    low.set_xlim(0, 1)
    low.set_xlabel("confidence: max_k p(k | x)  (bin mean above, bin centre below)")
    low.set_ylabel("examples in bin")
    low.grid(alpha=0.3)
    return fig


def plot_error_against_size(
    points: Mapping[str, Sequence[float]],
    front: Mapping[str, Sequence[bool]],
    names: Sequence[str],
    title: str,
):
    """Test error (%) against non-zero parameters and against test-time FLOPs, one panel
    each (log x), one point per network labelled by ``names``, the points of each panel's
    Pareto front (``front[key]``: no other network has both fewer and a lower error) joined by
    a dashed step line. ``points`` maps ``"error"``, ``"nonzero_params"`` and
    ``"compact_flops"`` to one value per network."""
    plt = pyplot()
    error = 100 * np.asarray(points["error"], dtype=float)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    panels = (
        ("nonzero_params", "non-zero parameters at test time (log scale)"),
        ("compact_flops", "test-time FLOPs per example (log scale)"),
    )
    for ax, (key, xlabel) in zip(axes, panels, strict=True):
        cost = np.asarray(points[key], dtype=float)
        best = np.asarray(front[key], dtype=bool)
        ax.scatter(cost[~best], error[~best], color="C0", label="network")
        ax.scatter(cost[best], error[best], color="C3", marker="D", label="Pareto front")
        order = np.argsort(cost[best])
        ax.step(cost[best][order], error[best][order], where="post", color="C3", ls="--", lw=1)
        for x, y, name in zip(cost, error, names, strict=True):
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test error (%), Eq. 13 gates")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return fig


__all__ = [
    "plot_active_units",
    "plot_error_against_size",
    "plot_input_gates",
    "plot_layer_pips",
    "plot_pips",
    "plot_reliability",
    "plot_training_curves",
    "pyplot",
    "save_figure",
]


def plot_lambda_path(path, title: str = "L0 path"):
    r"""Two panels against λ (log axis): selected features k, and AIC and BIC of the selected
    model, with :math:`\lambda_{\rm AIC} = 1` and :math:`\lambda_{\rm BIC} = \tfrac12 \log n`
    marked and the exhaustive minima as lines.

    :param path: a :class:`l0bayes.linear_model.path.LambdaPath` (any object with its
        ``as_dict()``, ``n``, ``lam_bic`` and ``best_subset_aic``/``best_subset_bic``, each None
        or holding ``criteria.aic``/``criteria.bic``).
    """
    plt = pyplot()
    cols = path.as_dict()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.0, 6.5), sharex=True)
    top.plot(cols["lam"], cols["n_selected"], marker="o", color="C0")
    top.set_ylabel("selected features (count)")
    bottom.plot(cols["lam"], cols["aic"], marker="o", color="C1", label="AIC of selected model")
    bottom.plot(cols["lam"], cols["bic"], marker="s", color="C2", label="BIC of selected model")
    for best, name, color in (
        (path.best_subset_aic, "AIC", "C1"),
        (path.best_subset_bic, "BIC", "C2"),
    ):
        if best is not None:
            value = getattr(best.criteria, name.lower())
            bottom.axhline(value, color=color, linestyle=":", label=f"best-subset {name} minimum")
    bottom.set_ylabel("AIC, BIC  (−2 log-lik + penalty)")
    bottom.set_xlabel("λ  (code cost per parameter, nats; log scale)")
    marks = (
        (1.0, r"$\lambda_{\rm AIC} = 1$"),
        (path.lam_bic, rf"$\lambda_{{\rm BIC}} = \frac{{1}}{{2}}\log n = {path.lam_bic:.2f}$"),
    )
    for ax in (top, bottom):
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
        for lam, _ in marks:
            ax.axvline(lam, color="grey", linestyle="--", linewidth=1)
    for (lam, name), ha in zip(marks, ("right", "left"), strict=True):  # AIC left of BIC
        top.text(lam, 1.02, name, transform=top.get_xaxis_transform(), ha=ha, fontsize=8)
    bottom.legend(fontsize=8)
    fig.suptitle(f"{title} (n = {path.n})")
    fig.tight_layout()
    return fig
