"""Figures: what they draw is the data they were given."""

import numpy as np

from l0bayes.viz.plotting import plot_pips, pyplot


def test_plot_pips_draws_the_values_and_marks_the_selected_set():
    values = {"A": [0.9, 0.2, 0.6], "B": [0.1, 0.8, 0.4]}
    selected = {"A": [True, False, False], "B": [False, True, True]}
    fig = plot_pips(values, ["a", "b", "c"], selected=selected, ylabel="weight")
    ax = fig.axes[0]
    bars = ax.patches
    np.testing.assert_allclose([b.get_height() for b in bars], values["A"] + values["B"])
    edged = [b.get_linewidth() > 1.0 for b in bars]
    assert edged == selected["A"] + selected["B"]
    dots = np.concatenate([line.get_xydata() for line in ax.lines if line.get_marker() == "o"])
    assert len(dots) == 3  # one dot above each selected bar
    assert ax.get_ylabel() == "weight"
    assert "selected (black edge)" in [t.get_text() for t in ax.get_legend().get_texts()]
    pyplot().close(fig)


def test_plot_pips_without_selection_marks_nothing():
    fig = plot_pips({"A": [0.3, 0.7]}, ["a", "b"])
    assert all(b.get_linewidth() <= 1.0 for b in fig.axes[0].patches)
    pyplot().close(fig)
