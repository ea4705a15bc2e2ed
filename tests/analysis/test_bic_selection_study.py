"""Smoke test of ``analysis/bic_selection_study.py`` on one easy problem."""

import csv


def test_one_problem_writes_csv_and_match_rates(tmp_path, capsys, load_script):
    study = load_script("analysis/bic_selection_study.py")
    out = tmp_path / "bic.csv"
    study.main(["--seeds", "1", "--steps", "200", "--rho", "0", "--snr", "4", "--out", str(out)])
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1
    row = rows[0]
    # a strong signal: the polished estimator finds the exhaustive best-subset BIC model
    assert row["polished_match"] == "True"
    assert int(row["best_size"]) >= 3
    assert "polished_match: 1.000" in capsys.readouterr().out
