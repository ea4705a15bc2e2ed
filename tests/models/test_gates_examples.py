"""Smoke tests of the ``gated`` example scripts with tiny arguments."""


def test_poisson_counts(load_script, tmp_path, capsys):
    script = load_script("models/poisson_counts.py")
    result = script.main(["--steps", "20", "--out", str(tmp_path)])
    assert result["pips"].shape == (6,)
    assert (tmp_path / "pips.png").exists()
    assert "AIC" in capsys.readouterr().out
