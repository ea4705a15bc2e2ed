"""Figures and tables (no model knowledge: they draw and format what they are given)."""

from l0bayes.viz.plotting import (
    plot_active_units,
    plot_input_gates,
    plot_layer_pips,
    plot_pips,
    plot_reliability,
    plot_training_curves,
    pyplot,
    save_figure,
)
from l0bayes.viz.tables import (
    Table,
    command_line,
    finite,
    indices,
    mean_sd,
    nonfinite_count,
    nonfinite_note,
    tex_escape,
    to_latex,
    to_markdown,
    write_csv,
)

__all__ = [
    "Table",
    "command_line",
    "finite",
    "indices",
    "mean_sd",
    "nonfinite_count",
    "nonfinite_note",
    "plot_active_units",
    "plot_input_gates",
    "plot_layer_pips",
    "plot_pips",
    "plot_reliability",
    "plot_training_curves",
    "plotting",
    "pyplot",
    "save_figure",
    "tables",
    "tex_escape",
    "to_latex",
    "to_markdown",
    "write_csv",
]
