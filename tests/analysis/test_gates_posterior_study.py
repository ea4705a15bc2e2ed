"""Smoke test of ``analysis/gates_posterior_study.py --quick`` (small models, one run each)."""

import csv

import pytest


@pytest.mark.slow  # about 20 s: three models fitted, enumerated and importance-sampled
def test_quick_study_writes_outputs(load_script, tmp_path):
    study = load_script("analysis/gates_posterior_study.py")
    rows = study.main(["--quick", "--out-dir", str(tmp_path)])
    assert rows and all("CRASH" not in r["auto_warnings"] for r in rows)
    with (tmp_path / "runs.csv").open(newline="") as fh:
        written = list(csv.DictReader(fh))
    assert {"raw_max", "auto_max", "chains_max", "auto_warnings"} <= set(written[0])
    for row in written:  # the enumeration is the reference: the corrected PIPs equal it
        assert float(row["auto_max"]) < 1e-6
    summary = (tmp_path / "summary.md").read_text()
    assert "Command:" in summary and "IS vs Laplace" in summary
