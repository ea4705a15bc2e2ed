"""Smoke test of ``analysis/compare_networks.py --quick`` (synthetic images, one epoch)."""

import csv
import json


def test_quick_writes_tidy_csv_tables_and_figures(tmp_path, load_script, one_thread):
    study = load_script("analysis/compare_networks.py")
    out = tmp_path / "cmp"
    study.main(["--quick", "--out-dir", str(out)])
    with (out / "results.csv").open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == study.COLUMNS
        rows = list(reader)
    methods = [r["method"] for r in rows]
    assert methods == [
        "dense", "l0bayes", "magnitude", "gmp", "l0bayes", "magnitude", "gmp", "l0-target", "svd"
    ]  # fmt: skip
    for name in ("summary.md", "summary.tex", "pareto.png", "pareto.pdf"):
        assert (out / name).stat().st_size > 0
    md = (out / "summary.md").read_text()
    assert "| mnist-mlp | magnitude | 30 (matched) | 1 |" in md
    assert r"\begin{tabular}" in (out / "summary.tex").read_text()

    dense = rows[0]
    assert float(dense["flops"]) == 784 * 300 + 300 * 100 + 100 * 10  # MACs of the MLP
    for l0, pruned, gradual in ((rows[1], rows[2], rows[3]), (rows[4], rows[5], rows[6])):
        # gradual pruning reaches the l0bayes run's count of non-zero weights
        assert gradual["lam"] == l0["lam"]
        assert int(gradual["nonzero_weights"]) <= int(l0["nonzero_weights"])
        # magnitude pruning matches the l0bayes run's number of non-zero weights
        assert pruned["lam"] == l0["lam"]
        assert int(pruned["nonzero_weights"]) <= int(l0["nonzero_weights"])
        assert float(pruned["flops"]) <= float(dense["flops"])
        if pruned["nonzero_weights"] == dense["nonzero_weights"]:
            # nothing pruned: the plain test-time chain reproduces the trainer's evaluation
            assert pruned["test_error"] == dense["test_error"]
    assert any(r["nonzero_weights"] == dense["nonzero_weights"] for r in (rows[2], rows[5]))
    assert float(rows[7]["target_fraction"]) == 0.3
    # every L0 network was trained in a sweep: λ grid in one, the target fractions in another
    for run in (out / "runs").iterdir():
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["sweep"]["networks"] == (1 if "_target-" in run.name else 3)
    svd = rows[-1]
    assert float(svd["nonzero_params"]) < float(dense["nonzero_params"])
