"""``l0bayes.viz.tables``: mean ± sd cells, Markdown and LaTeX tables, CSV."""

import csv

import numpy as np

from l0bayes.viz import tables


def test_mean_sd_counts_what_it_leaves_out():
    assert tables.mean_sd([1.0, 2.0, 3.0, np.nan], ".1f") == "2.0 ± 1.0 (excl. 1 nan)"
    assert tables.mean_sd([2.0, np.inf], ".2f", note=False) == "2.00"
    assert tables.mean_sd([np.nan], ".2f") == "n/a (excl. 1 nan)"


def test_markdown_and_latex_tables():
    table = (["name", "x_1 & y"], [["a%", "1.0 ± 0.1"]])
    md = tables.to_markdown(table)
    assert md.splitlines()[1] == "|---|---:|"
    tex = tables.to_latex(table)
    assert r"x\_1 \& y" in tex and r"a\%" in tex and r"1.0 $\pm$ 0.1" in tex
    assert tex.startswith(r"\begin{tabular}{lr}")


def test_write_csv(tmp_path):
    path = tables.write_csv([dict(a=1, b="x"), dict(a=2, b="y")], tmp_path / "t.csv")
    with path.open(newline="") as fh:
        assert list(csv.DictReader(fh)) == [dict(a="1", b="x"), dict(a="2", b="y")]
