"""Figures: what they draw is the data they were given."""

import numpy as np

from l0bayes.viz.plotting import plot_lambda_path, plot_pips, pyplot


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


def test_plot_lambda_path_draws_the_rows_marks_the_criteria_and_the_exhaustive_minima():
    from types import SimpleNamespace

    lams = np.array([0.1, 1.0, 2.3])
    cols = {
        "lam": lams,
        "n_selected": np.array([5, 3, 2]),
        "aic": np.array([110.0, 104.0, 106.0]),
        "bic": np.array([125.0, 115.0, 112.0]),
    }
    best = SimpleNamespace(criteria=SimpleNamespace(aic=103.5, bic=111.0))
    path = SimpleNamespace(
        as_dict=lambda: cols, n=100, lam_bic=2.3, best_subset_aic=best, best_subset_bic=None
    )
    fig = plot_lambda_path(path, "toy")
    top, bottom = fig.axes
    np.testing.assert_array_equal(top.lines[0].get_xydata(), np.c_[lams, cols["n_selected"]])
    np.testing.assert_array_equal(bottom.lines[0].get_ydata(), cols["aic"])
    np.testing.assert_array_equal(bottom.lines[1].get_ydata(), cols["bic"])
    levels = [line.get_ydata()[0] for line in bottom.lines if line.get_linestyle() == ":"]
    assert levels == [103.5]  # the AIC minimum drawn, no BIC minimum given
    verticals = {line.get_xdata()[0] for line in top.lines if line.get_linestyle() == "--"}
    assert verticals == {1.0, 2.3}  # lambda_AIC and lambda_BIC
    assert top.get_xscale() == "log" and "n = 100" in fig.get_suptitle()
    pyplot().close(fig)
