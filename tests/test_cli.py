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
    assert "Inclusion: posterior probability P(z != 0 | y)" in out
    assert "Akaike and BIC weights" in out
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
        (["select", "missing.csv", "--target", "y"], "cannot read the CSV file 'missing.csv'"),
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


# ----------------------------------------------------------------------------- --version
def test_version_prints_the_package_version(capsys):
    from l0bayes._version import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"l0bayes {__version__}"


# ----------------------------------------------------------------------------- select
def write_data(path, n=60, p=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    y = 2 * X[:, 1] + rng.standard_normal(n)
    header = ",".join([f"x{j}" for j in range(p)] + ["y"])
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header=header, comments="")
    return str(path)


def test_select_output_csv_holds_the_summary_table(tmp_path, capsys):
    import csv

    data, out = write_data(tmp_path / "d.csv"), tmp_path / "summary.csv"
    argv = ["select", data, "--target", "y", "--steps", "30", "--output", str(out)]
    assert main(argv) == 0
    assert f"summary written to {out}" in capsys.readouterr().out
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["feature"] for r in rows] == ["x0", "x1", "x2"]
    assert list(rows[0]) == ["feature", "ic_weight", "coef", "selected"]
    assert all(0.0 <= float(r["ic_weight"]) <= 1.0 for r in rows)


def test_select_output_json_has_rows_and_the_selected_model(tmp_path, capsys):
    import json

    data, out = write_data(tmp_path / "d.csv"), tmp_path / "summary.JSON"
    assert main(["select", data, "--target", "y", "--steps", "30", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    saved = json.loads(out.read_text())
    assert [r["feature"] for r in saved["features"]] == ["x0", "x1", "x2"]
    model = saved["selected_model"]
    assert set(model) == {"k", "log_likelihood", "aic", "bic", "intercept", "noise_scale"}
    assert f"selected model: k={model['k']} loglik={model['log_likelihood']:.3f}" in printed
    assert model["aic"] == pytest.approx(2 * model["k"] - 2 * model["log_likelihood"])
    assert saved["penalty"] == "bic" and saved["certificate"]["optimal"] is True


def test_select_json_and_table_agree_with_the_fitted_estimator(tmp_path, capsys):
    """Every number select prints or writes is the fitted attribute's (issue 28)."""
    import json

    from l0bayes import L0Regression

    data, out = write_data(tmp_path / "d.csv"), tmp_path / "s.json"
    argv = ["select", data, "--target", "y", "--penalty", "aic", "--steps", "30", "--seed", "3"]
    assert main([*argv, "--no-progress", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    table = np.loadtxt(data, delimiter=",", skiprows=1)
    est = L0Regression(penalty="aic", n_steps=30, seed=3, progress=False)
    est.fit(table[:, :3], table[:, 3])
    saved = json.loads(out.read_text())
    rows = saved["features"]
    np.testing.assert_allclose([r["ic_weight"] for r in rows], est.ic_weights_.inclusion)
    np.testing.assert_allclose([r["coef"] for r in rows], est.coef_)
    assert [r["selected"] for r in rows] == est.selected_.tolist()
    assert saved["selected_model"]["intercept"] == pytest.approx(est.intercept_)
    assert saved["certificate"] == {
        "optimal": est.optimal_,
        "criterion_gap": est.criterion_gap_,
        "nodes": est.search_.nodes,
    }
    assert saved["ic_weight"] == est.ic_weights_.describe()
    assert f"ic_weight = {est.ic_weights_.describe()}" in printed
    for r in rows:
        assert f"{r['ic_weight']:.6f}" in printed


def test_select_json_of_a_bayes_fit_has_pips_and_their_method(tmp_path, capsys):
    import json

    data, out = write_data(tmp_path / "d.csv"), tmp_path / "s.json"
    argv = ["select", data, "--target", "y", "--penalty", "bayes", "--steps", "30"]
    assert main([*argv, "--no-progress", "--output", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert list(saved["features"][0]) == ["feature", "pip", "coef", "selected"]
    assert saved["pips"] == {"method": "enumerate", "warnings": []}
    assert "certificate" not in saved and saved["penalty"] == "bayes"


def test_select_no_progress_hides_the_bar(tmp_path, capsys):
    data = write_data(tmp_path / "d.csv", p=17)  # p > 16: a relaxation runs before the search
    assert main(["select", data, "--target", "y", "--steps", "30"]) == 0
    assert "L0Regression" in capsys.readouterr().err
    assert main(["select", data, "--target", "y", "--steps", "30", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "selected model" in captured.out


def test_select_names_a_constant_column_in_one_line(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.standard_normal((40, 2)), np.full(40, 7.0)])
    y = X[:, 0] + rng.standard_normal(40)
    path = tmp_path / "c.csv"
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header="a,b,flat,y", comments="")
    assert main(["select", str(path), "--target", "y", "--steps", "30", "--no-progress"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("l0bayes select: warning: X has constant columns ['flat']")
    assert ".py" not in err[0]


@pytest.mark.parametrize("name", ["summary.txt", "summary", "summary.csv.gz"])
def test_select_output_with_another_extension_is_a_one_line_error(tmp_path, capsys, name):
    data = write_data(tmp_path / "d.csv")
    argv = ["select", data, "--target", "y", "--steps", "30", "--output", str(tmp_path / name)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # refused before the fit
    assert len(captured.err.strip().splitlines()) == 1
    assert "must end in .csv or .json" in captured.err
    assert not (tmp_path / name).exists()


def test_select_quiet_prints_nothing_but_still_writes(tmp_path, capsys):
    data, out = write_data(tmp_path / "d.csv"), tmp_path / "s.json"
    assert (
        main(["select", data, "--target", "y", "--steps", "30", "--quiet", "--output", str(out)])
        == 0
    )
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert out.is_file()


def test_select_quiet_still_prints_errors(tmp_path, capsys):
    data = write_data(tmp_path / "d.csv")
    assert main(["select", data, "--target", "nope", "--quiet"]) == 2
    assert "is not a column" in capsys.readouterr().err


def test_select_prints_every_row_of_a_wide_table(tmp_path, capsys):
    """pandas cuts a DataFrame over 60 rows to 10; select prints all of them."""
    data = write_data(tmp_path / "wide.csv", n=20, p=80)
    assert main(["select", data, "--target", "y", "--penalty", "aic", "--steps", "5"]) == 0
    captured = capsys.readouterr()
    assert "warning: p = 80 features and only n = 20 observations" in captured.err
    out = captured.out
    assert "..." not in out
    for j in range(80):
        assert f"\nx{j} " in out


def test_format_summary_shows_3000_rows():
    pd = pytest.importorskip("pandas")
    names = [f"f{j}" for j in range(3000)]
    table = pd.DataFrame(
        {"pip": np.full(3000, 0.5), "coef": np.zeros(3000), "selected": np.zeros(3000, bool)},
        index=pd.Index(names, name="feature"),
    )
    from l0bayes.cli import format_summary

    text = format_summary(table)
    assert "..." not in text
    assert len(text.splitlines()) == 3000 + 2  # the column and index headers
    assert "f2999" in text and "f1500" in text


@pytest.mark.parametrize(
    "argv, env, message",
    [
        (["--threads", "0"], {}, "--threads must be a positive integer"),
        ([], {"L0BAYES_THREADS": "many"}, "$L0BAYES_THREADS must be a positive integer"),
    ],
)
def test_bad_thread_counts_are_one_line_errors(tmp_path, capsys, monkeypatch, argv, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    data = write_data(tmp_path / "d.csv")
    assert main(["select", data, "--target", "y", "--steps", "30", *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert message in err


@pytest.mark.parametrize("command", ["select", "train"])
def test_help_documents_the_thread_policy(capsys, command):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--threads N" in out and "$L0BAYES_THREADS" in out and "else 1" in out


@pytest.mark.parametrize("command", ["train", "report"])
def test_data_dir_help_says_where_and_how_to_get_the_data(capsys, command):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "$L0BAYES_DATA" in out and "~/.cache/l0bayes" in out
    assert "never downloads" in out and "load_mnist(download=True)" in out


# ----------------------------------------------------------------------------- train --quick
def test_train_help_calls_quick_a_smoke_run(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--quick a smoke run, not a result" in out


def test_train_quick_sets_the_smoke_settings_and_the_gates_move(tmp_path, capsys):
    """Issue 28: a --quick run looked broken (gates at their start). Its settings are recorded,
    a given one wins, and the expected L0 of every gated layer falls epoch by epoch from its
    value at initialisation."""
    import csv
    import json

    from l0bayes.nn.networks import mnist_mlp
    from l0bayes.training.config import quick_settings

    out = tmp_path / "run"
    argv = ["train", "mnist-mlp", "--out", str(out), "--quick", "--dataset", "synthetic"]
    assert main([*argv, "--epochs", "2", "--threads", "1", "--no-progress"]) == 0
    assert "smoke run" in capsys.readouterr().out
    cfg = json.loads((out / "config.json").read_text())
    quick = quick_settings("mnist-mlp")
    assert cfg["quick"] is True and cfg["epochs"] == 2  # given wins
    for key in ("train_size", "test_size", "lr"):
        assert cfg[key] == quick[key]
    assert quick["ema"] == 0.0 and cfg["ema"] == 0.0  # 0 turns the EMA off (issue 27)
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["num_train"], metrics["num_test"]) == (quick["train_size"], quick["test_size"])
    with (out / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    start = [float(layer.inclusion_probs().sum().detach()) for layer in mnist_mlp().gated_layers()]
    for k, initial in enumerate(start, start=1):
        l0 = [initial] + [float(row[f"expected_l0_{k}"]) for row in rows]
        assert all(b < a for a, b in zip(l0, l0[1:], strict=False)), (k, l0)


@pytest.mark.slow
def test_train_quick_on_mnist_shows_the_method_working(tmp_path, capsys):
    """The full smoke run on MNIST (skipped without the files): a useful error, pruned input
    pixels and hidden units, and a report whose figures are not degenerate."""
    import json
    from pathlib import Path

    data = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not (data / "mnist").is_dir():
        pytest.skip("MNIST is not in ../shared/data")
    out = tmp_path / "run"
    argv = ["train", "mnist-mlp", "--quick", "--out", str(out), "--data-dir", str(data)]
    assert main([*argv, "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_error"] < 0.2
    assert metrics["architecture_string"] != "784-300-100 -> 784-300-100"
    assert main(["report", str(out)]) == 0
    assert (out / "report" / "figures" / "input_gates.png").is_file()


def test_train_quick_with_resume_is_a_one_line_error(tmp_path, capsys):
    argv = ["train", "mnist-mlp", "--out", str(tmp_path), "--quick", "--resume"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "--quick" in err and "--resume" in err


def test_sweep_writes_run_directories_train_and_report_read(tmp_path, capsys):
    import json

    out = tmp_path / "sweep"
    args = ["sweep", "mnist-mlp", "--lam", "0.1", "1", "--seeds", "0", "--out", str(out)]
    args += ["--dataset", "synthetic", "--train-size", "200", "--test-size", "100"]
    args += ["--epochs", "1", "--bma-samples", "2", "--lam-warmup", "1", "--no-progress"]
    assert main(args) == 0
    shown = json.loads(capsys.readouterr().out)
    assert sorted(shown["runs"]) == ["lam-0.1_seed-0", "lam-1_seed-0"]
    for name in shown["runs"]:
        run = out / name
        for f in ("config.json", "history.csv", "metrics.json", "checkpoint.pt", ".l0bayes-run"):
            assert (run / f).is_file()
        cfg = json.loads((run / "config.json").read_text())
        assert cfg["bma_samples"] == 2 and cfg["lam_warmup"] == 1.0
        assert main(["report", str(run)]) == 0
    resume = args[:9] + ["--epochs", "2", "--resume", "--no-progress"]
    assert main(resume) == 0
    assert json.loads((out / "lam-1_seed-0" / "metrics.json").read_text())["epochs"] == 2
    capsys.readouterr()
    assert main(["sweep", "wrn", "--lam", "1", "--seeds", "0", "--out", str(tmp_path / "x")]) == 2
    assert "train wrn networks one by one" in capsys.readouterr().err


def test_sweep_over_target_fractions_names_and_resumes_each_network(tmp_path, capsys):
    """Two or more --target-fraction values: one network per (λ, fraction, seed), each in its
    own folder with its own fraction, resumed by the same command; one value is shared (as in
    train); fractions without --target are refused in one line."""
    import json

    out = tmp_path / "targets"
    args = ["sweep", "mnist-mlp", "--lam", "0", "--seeds", "0", "--out", str(out),
            "--target", "params", "--target-fraction", "0.3", "0.6"]  # fmt: skip
    tiny = ["--dataset", "synthetic", "--train-size", "200", "--test-size", "100", "--epochs", "1"]
    assert main([*args, *tiny, "--no-progress"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert sorted(shown["runs"]) == ["lam-0_target-0.3_seed-0", "lam-0_target-0.6_seed-0"]
    for name, fraction in (("lam-0_target-0.3_seed-0", 0.3), ("lam-0_target-0.6_seed-0", 0.6)):
        assert json.loads((out / name / "config.json").read_text())["target_fraction"] == fraction
    assert main([*args, "--epochs", "2", "--resume", "--no-progress"]) == 0
    metrics = json.loads((out / "lam-0_target-0.6_seed-0" / "metrics.json").read_text())
    assert metrics["epochs"] == 2
    capsys.readouterr()
    one = ["sweep", "mnist-mlp", "--lam", "0", "--seeds", "0", "--out", str(tmp_path / "one"),
           "--target", "params", "--target-fraction", "0.5", *tiny, "--no-progress"]  # fmt: skip
    assert main(one) == 0
    assert sorted(json.loads(capsys.readouterr().out)["runs"]) == ["lam-0_seed-0"]
    bad = ["sweep", "mnist-mlp", "--lam", "0", "--seeds", "0", "--out", str(tmp_path / "bad"),
           "--target-fraction", "0.3", "0.6", *tiny]  # fmt: skip
    assert main(bad) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--target" in err


@pytest.mark.parametrize(
    "command, api, cli",
    [
        ("select", "n_steps must be a positive integer, got 0", "--steps must be"),
        ("select", "slab_scale must be a finite number > 0", "--slab-scale must be"),
        ("select", "expected_model_size must lie strictly", "--expected-model-size must"),
        (
            "train",
            "(from data_dir argument: no such directory) Fix: pass data_dir=<a folder>, or call "
            "load_mnist(..., download=True) to fetch them.",
            "(from --data-dir argument: no such directory) Fix: pass --data-dir=<a folder>, or "
            "fetch them from Python with l0bayes.data.load_mnist(download=True)",
        ),
        ("train", "cannot read /tmp/data_dir/x.npz", "cannot read /tmp/data_dir/x.npz"),
    ],
)
def test_errors_use_the_command_lines_words(command, api, cli):
    """Issue 28: the command line showed the Python API's names (`Fix: pass data_dir=...`)."""
    from l0bayes.cli import cli_wording

    assert cli_wording(api, command).startswith(cli)


def test_a_bad_step_count_names_the_flag(tmp_path, capsys):
    data = write_data(tmp_path / "d.csv")
    assert main(["select", data, "--target", "y", "--steps", "0", "--no-progress"]) == 2
    assert "error: --steps must be a positive integer" in capsys.readouterr().err


def test_sweep_resume_refuses_a_changed_shared_target_fraction(tmp_path, capsys):
    """One --target-fraction is a setting every network shares: a resume that changes it is
    refused (as train's is), one that repeats it goes on."""
    out = tmp_path / "one"
    args = ["sweep", "mnist-mlp", "--lam", "0", "--seeds", "0", "--out", str(out),
            "--target", "params", "--dataset", "synthetic", "--train-size", "200",
            "--test-size", "100", "--no-progress"]  # fmt: skip
    assert main([*args, "--target-fraction", "0.5", "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main([*args, "--target-fraction", "0.4", "--epochs", "2", "--resume"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--target-fraction 0.4 (the run has 0.5)" in err
    assert main([*args, "--target-fraction", "0.5", "--epochs", "2", "--resume"]) == 0


def test_select_output_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    """Issue 27: --output was written in place; a failure (or a kill) mid-way left half a file.
    It is now written to a temporary file in the same folder and renamed onto the path."""
    import l0bayes.cli as cli

    data, out = write_data(tmp_path / "d.csv"), tmp_path / "s.json"
    out.write_text("the previous table\n")

    def broken(est, names):
        raise RuntimeError("disk full")

    monkeypatch.setattr(cli, "selection_record", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        main(["--debug", "select", data, "--target", "y", "--no-progress", "--output", str(out)])
    assert out.read_text() == "the previous table\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "s.json"]  # no temporary
