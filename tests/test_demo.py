"""The diabetes demo: its table and figure show each fit's own answer."""

import numpy as np

import l0bayes.demo as demo


def test_demo_inclusion_is_each_fits_answer(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "comparison_table", lambda n_steps: [])
    result = demo.run_demo(out=tmp_path, n_steps=60, progress=False)
    printed = capsys.readouterr().out
    fits, shown = result["fits"], result["pips"]
    np.testing.assert_array_equal(shown["L0-AIC"], fits["L0-AIC"].ic_weights_.inclusion)
    np.testing.assert_array_equal(shown["L0-BIC"], fits["L0-BIC"].ic_weights_.inclusion)
    for name in ("L0-bayes", "exact"):
        np.testing.assert_array_equal(shown[name], fits[name].inclusion_probs_)
    rows = printed.split("(* = selected)\n")[1].split("\n\n")[0].splitlines()[1:]
    assert len(rows) == 10
    for j, row in enumerate(rows):
        cells = row.split()[1:]
        for cell, fit in zip(cells, fits.values(), strict=True):
            assert cell.endswith("*") == bool(fit.selected_[j])
            assert float(cell.rstrip("*")) == round(float(shown[_name(fits, fit)][j]), 3)
    assert (tmp_path / "diabetes_pips.png").is_file()


def _name(fits, fit):
    return next(name for name, other in fits.items() if other is fit)
