"""Smoke test of ``analysis/exact_vs_svi_study.py`` and a check of its Poisson-binomial."""

from __future__ import annotations

import csv
import importlib.util
import itertools
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "analysis" / "exact_vs_svi_study.py"

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


def load_script(path: Path) -> ModuleType:
    """Import a script that is not part of a package from its file path."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def study() -> ModuleType:
    return load_script(SCRIPT)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def assert_finite(rows: list[dict[str, str]], columns: set[str]) -> None:
    for row in rows:
        for col in columns:
            assert math.isfinite(float(row[col])), (col, row[col])


def test_poisson_binomial_matches_enumeration(study):
    probs = np.array([0.1, 0.45, 0.8, 0.97])
    brute = np.zeros(len(probs) + 1)
    for gamma in itertools.product((0, 1), repeat=len(probs)):
        g = np.array(gamma)
        brute[g.sum()] += np.prod(np.where(g == 1, probs, 1.0 - probs))
    got = study.poisson_binomial(probs)
    np.testing.assert_allclose(got, brute, rtol=1e-12, atol=1e-15)
    assert got.sum() == pytest.approx(1.0)


def test_quick_run_writes_outputs(study, tmp_path):
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
    # arviz reports k = inf when the tail has too few distinct weights (a concentrated guide)
    k_hat = float(problems[0]["pareto_k"])
    assert math.isfinite(k_hat) or k_hat == math.inf
    assert_finite(features, FEATURE_COLUMNS)
    assert "PIP mean abs. error" in (tmp_path / "summary.md").read_text()
    assert r"\begin{tabular}" in (tmp_path / "summary.tex").read_text()
