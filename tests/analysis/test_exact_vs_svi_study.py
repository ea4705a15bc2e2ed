"""Smoke test of ``analysis/exact_vs_svi_study.py``."""

from __future__ import annotations

import csv
import math
from pathlib import Path

PROBLEM_COLUMNS = {
    "problem",
    "n",
    "p",
    "rho",
    "snr",
    "seed",
    "pip_mae_svi",
    "pip_mae_raw",
    "pip_max_err_svi",
    "pip_max_err_raw",
    "covers_true_svi",
    "covers_true_exact",
    "size_overlap_svi",
    "size_overlap_raw",
    "pareto_k",
    "ess",
    "exact_seconds",
    "svi_seconds",
    "low_ess_warning",
    "warnings",
}
FEATURE_COLUMNS = {"problem", "p", "feature", "true_feature", "exact_pip", "svi_pip", "raw_pip"}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def assert_finite(rows: list[dict[str, str]], columns: set[str]) -> None:
    for row in rows:
        for col in columns:
            assert math.isfinite(float(row[col])), (col, row[col])


def test_quick_run_writes_outputs(tmp_path, load_script):
    study = load_script("analysis/exact_vs_svi_study.py")
    study.main(["--quick", "--steps", "100", "--out-dir", str(tmp_path)])
    for name in ("problems.csv", "features.csv", "summary.md", "summary.tex"):
        assert (tmp_path / name).stat().st_size > 0, name
    for suffix in (".png", ".pdf"):
        assert (tmp_path / f"pip_scatter{suffix}").stat().st_size > 0
    problems = read_csv(tmp_path / "problems.csv")
    features = read_csv(tmp_path / "features.csv")
    assert len(problems) == 1 and len(features) == 8
    assert PROBLEM_COLUMNS <= set(problems[0])
    assert FEATURE_COLUMNS <= set(features[0])
    assert_finite(problems, PROBLEM_COLUMNS - {"warnings", "pareto_k"})
    # k is NaN ("not estimable") when the top weights tie (a concentrated guide)
    k_hat = float(problems[0]["pareto_k"])
    assert math.isfinite(k_hat) or math.isnan(k_hat)
    assert problems[0]["psis_failed"] == "0"
    assert_finite(features, FEATURE_COLUMNS)
    assert "PIP mean abs. error" in (tmp_path / "summary.md").read_text()
    assert r"\begin{tabular}" in (tmp_path / "summary.tex").read_text()
