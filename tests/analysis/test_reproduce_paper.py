"""``analysis/reproduce_paper.py`` on the finished 200-epoch MLP run and tiny synthetic runs."""

from pathlib import Path

import pytest

from l0bayes.training.config import TrainConfig
from l0bayes.training.trainer import train

REPO = Path(__file__).resolve().parents[2]
MLP_RUN = REPO / "analysis" / "results" / "mnist-mlp-s0"


def _tiny_run(path: Path, seed: int) -> Path:
    cfg = TrainConfig(
        network="mnist-mlp",
        out=str(path),
        epochs=1,
        dataset="synthetic",
        train_size=200,
        test_size=100,
        seed=seed,
        num_threads=1,
        progress=False,
    )
    train(cfg)
    return path


@pytest.mark.skipif(not (MLP_RUN / "metrics.json").is_file(), reason="no finished MLP run")
def test_paper_table_beside_our_runs(tmp_path, load_script, one_thread):
    script = load_script("analysis/reproduce_paper.py")
    runs = [_tiny_run(tmp_path / f"syn-s{seed}", seed) for seed in (0, 1)]
    out = tmp_path / "table"
    header, body = script.main([str(MLP_RUN), *map(str, runs), "--out-dir", str(out)])
    assert header == script.HEADER
    assert (out / "paper_table.md").stat().st_size > 0
    tex = (out / "paper_table.tex").read_text()
    assert r"\begin{tabular}" in tex and "219-214-100" in tex
    cells = [dict(zip(header, row, strict=True)) for row in body]
    assert len(cells) == 4  # three paper rows, then the synthetic runs in one row

    mlp = cells[0]  # the 200-epoch run beside the paper's MLP row
    ours = script.read_run(MLP_RUN)
    assert mlp["paper: architecture"] == "219-214-100"
    assert mlp["paper: error (%)"] == "1.4"
    assert mlp["ours: architecture"] == "-".join(f"{u:.0f}" for u in ours["architecture"])
    assert mlp["ours: error, last epoch (%)"] == f"{100 * ours['test_error']:.2f}"
    best = f"{100 * ours['best_test_error']:.2f} [{ours['best_epoch']}]"
    assert mlp["ours: best error (%) [epoch]"] == best
    assert (mlp["epochs"], mlp["seeds"]) == (str(ours["epochs"]), "1")
    assert mlp["method"].startswith("L0, λ = 0.1/N")
    for lenet in cells[1:3]:  # no LeNet-5 runs given: dashes
        assert lenet["ours: architecture"] == "–" and lenet["paper: error (%)"] in ("0.9", "1.0")

    # same network and λ, but synthetic data: never set beside the paper's MNIST row
    syn = cells[3]
    assert (syn["paper: architecture"], syn["paper: error (%)"]) == ("–", "–")
    assert syn["data set"] == "synthetic (N = 200)"
    assert syn["seeds"] == "2"
    errors = [script.read_run(run)["test_error"] * 100 for run in runs]
    mean = sum(errors) / 2
    assert syn["ours: error, last epoch (%)"].startswith(f"{mean:.2f} ± ")


def test_unfinished_run_is_refused(tmp_path, load_script):
    script = load_script("analysis/reproduce_paper.py")
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        script.main([str(tmp_path), "--out-dir", str(tmp_path / "out")])


def test_variant_names_every_departure_from_the_replication(load_script):
    variant = load_script("analysis/reproduce_paper.py").variant
    base = {"standardize": False, "kl_mode": "l0", "local_rep": False, "weight_init": "uniform"}
    base["weight_decay"] = 5e-4  # per data point, the paper's
    assert variant({"config": base, "num_train": 60000}) == ""
    changed = {**base, "local_rep": True, "weight_init": "he", "kl_mode": "bayes"}
    want = "bayes KL, per-example gates, he initialisation"
    assert variant({"config": changed, "num_train": 60000}) == want
    assert variant({"config": {}, "num_train": 60000}) == ""  # no config.json: nothing known
    # runs from before --weight-decay was per data point saved the slab's precision
    legacy = {**base, "weight_decay": None, "weight_precision": 5e-4}
    assert variant({"config": legacy, "num_train": 60000}) == "weight decay 0.0005/N"
    scaled = {**legacy, "weight_precision": 30.0}
    assert variant({"config": scaled, "num_train": 60000}) == ""
    # finished runs record it in metrics.json, which wins
    run = {"config": legacy, "num_train": 60000, "weight_precision_per_data_set": 30.0}
    assert variant(run) == ""


@pytest.mark.parametrize(
    ("network", "ema", "want"),
    [
        ("mnist-mlp", 0.999, ""),
        ("lenet5", 0.999, ""),  # the paper's temporal averaging, on every MNIST network
        ("lenet5", None, "no EMA"),  # the official LeNet-5 script: the last iterate
        ("mnist-mlp", 0.99, "EMA β = 0.99"),
        ("wrn", 0.99, ""),
    ],
)
def test_variant_names_parameter_averaging_other_than_the_papers(load_script, network, ema, want):
    variant = load_script("analysis/reproduce_paper.py").variant
    config = {"network": network, "ema": ema, "weight_decay": 5e-4, "standardize": False}
    assert variant({"config": config, "num_train": 60000}) == want


RESULTS = REPO / "analysis" / "results"
CPU_GPU = [
    RESULTS / "mnist-mlp-wd-s0",
    RESULTS / "mnist-mlp-wd-gpu-s0",
    RESULTS / "mnist-mlp-wd-s1",
]


@pytest.mark.skipif(
    not all((run / "metrics.json").is_file() for run in CPU_GPU), reason="no finished runs"
)
def test_gpu_runs_of_the_same_setting_are_a_row_of_their_own(load_script):
    script = load_script("analysis/reproduce_paper.py")
    runs = [script.read_run(run) for run in CPU_GPU]
    groups = list(script.group_runs(runs).values())
    assert [[run["device"] for run in group] for group in groups] == [["cpu", "cpu"], ["cuda"]]
    header, body = script.paper_table(runs)
    cells = [dict(zip(header, row, strict=True)) for row in body]
    mlp = [cell for cell in cells if cell["network"].startswith("MLP")]
    assert [cell["device"].split(" ")[0] for cell in mlp] == ["cpu", "cuda"]
    assert [cell["seeds"] for cell in mlp] == ["2", "1"]
