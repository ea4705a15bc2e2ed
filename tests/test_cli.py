"""The ``l0bayes`` command line: help, the demo, CSV selection and one-line errors."""

import subprocess
import sys

import numpy as np
import pytest

from l0bayes.cli import build_parser, main


def test_help_explains_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in build_parser()._subparsers._group_actions[0].choices:
        assert name in out
    assert "lambda = 1 is AIC" in out


def test_demo_prints_tables_and_saves_plot(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--steps", "80", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Posterior inclusion probabilities" in out
    assert "best subset BIC" in out and "AIC" in out
    assert "Method comparison" in out and "| varbvs |" in out and "| lasso-cv |" in out
    assert (tmp_path / "diabetes_pips.png").stat().st_size > 10_000
    assert (tmp_path / "diabetes_pips.pdf").exists()


def test_select_on_csv(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 3))
    y = 2 * X[:, 1] + rng.standard_normal(120)
    path = tmp_path / "data.csv"
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header="a,b,c,y", comments="")
    assert main(["select", str(path), "--target", "y", "--steps", "100"]) == 0
    out = capsys.readouterr().out
    assert "selected model: k=2" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["select", "missing.csv", "--target", "y"], "cannot read"),
        (["select", "{csv}", "--target", "nope"], "is not a column"),
        (["select", "{csv}", "--target", "y", "--penalty", "-2"], "must be >= 0"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(tmp_path, argv, message):
    path = tmp_path / "d.csv"
    path.write_text("a,y\n1,2\n2,3\n3,5\n4,4\n")
    argv = [a.format(csv=path) for a in argv]
    proc = subprocess.run(
        [sys.executable, "-m", "l0bayes.cli", *argv], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
