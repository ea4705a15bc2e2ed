"""Smoke test of ``analysis/lambda_path.py`` on a three-point λ grid."""


def test_writes_table_csv_and_figure(tmp_path, load_script):
    script = load_script("analysis/lambda_path.py")
    path = script.main(["--lams", "0.3", "--steps", "100", "--out-dir", str(tmp_path)])
    assert [r.criterion for r in path.rows] == ["", "AIC", "BIC"]
    for name in ("path.csv", "path.md", "lambda_path.png", "lambda_path.pdf"):
        assert (tmp_path / name).stat().st_size > 200, name
    assert "BIC (exhaustive)" in (tmp_path / "path.md").read_text()
