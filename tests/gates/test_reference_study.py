"""Smoke test of ``analysis/gates_reference_study.py --quick`` (one small real model)."""

import csv


def test_quick_study_writes_outputs(load_script, tmp_path):
    study = load_script("analysis/gates_reference_study.py")
    rows = study.main(["--quick", "--out-dir", str(tmp_path)])
    assert len(rows) == 1
    with (tmp_path / "results.csv").open(newline="") as fh:
        written = list(csv.DictReader(fh))
    assert {"guide_mae", "corrected_mae", "reference_pips"} <= set(written[0])
    assert 0.0 <= float(written[0]["corrected_mae"]) <= 1.0
    assert "Command:" in (tmp_path / "summary.md").read_text()
