"""The benchmark scripts run on tiny settings and report what the README quotes."""

import pytest


def test_train_speed_reports_both_implementations(load_script, tmp_path):
    bench = load_script("bench/train_speed.py")
    out = tmp_path / "speed.json"
    result = bench.main(["--data-dir", str(tmp_path / "none"), "--examples", "300",
                         "--repeats", "1", "--out", str(out)])  # fmt: skip
    assert result["examples"] == 300 and out.is_file()
    assert result["median_seconds"]["plain"] > 0 and result["median_seconds"]["l0bayes"] > 0
    assert result["ratio_l0bayes_to_plain"] > 0


def test_compaction_speed_uses_the_papers_architectures(load_script):
    bench = load_script("bench/compaction_speed.py")
    results = bench.main(["--batch", "16", "--repeats", "2", "--plain"])
    lenet = [r for r in results if r["network"] == "lenet5"]
    assert [r["engine"] for r in lenet] == [
        "tiles of 91 / 91 images",  # the default: 4 MiB of 20×24×24 float maps
        "the same in NCHW layout",
        "tiles of 0 / 0 images",
        "nn.MaxPool2d kernels, whole batch",
    ]
    assert len({r["compact_flops"] for r in lenet}) == 1  # one network, several engines
    by_name = {r["network"]: r for r in results}
    assert by_name["mnist-mlp"]["architecture"] == "219-214-100"
    assert by_name["lenet5"]["architecture"] == "20-25-45-462"
    mlp = by_name["mnist-mlp"]
    assert mlp["compact_flops"] == 219 * 214 + 214 * 100 + 100 * 10
    assert mlp["flops_ratio"] == pytest.approx(mlp["dense_flops"] / mlp["compact_flops"])


def test_chain_speed_reports_each_sampler(load_script):
    bench = load_script("bench/chain_speed.py")
    rows = bench.main(["--quick"])
    assert [r["sampler"] for r in rows] == ["mh", "tempered"]
    for r in rows:
        assert r["seconds"] > 0 and 0 <= r["spread"] <= 1 and r["rhat"] >= 1


def test_sweep_speed_reports_the_ratio_and_its_compute_floor(load_script, one_thread):
    bench = load_script("bench/sweep_speed.py")
    result = bench.main(["--epochs", "1", "--train-size", "200", "--test-size", "100",
                         "--repeats", "1"])  # fmt: skip
    assert result["ratio_whole"] > 0 and result["ratio_loop"] > 0
    assert 1.0 < result["matmul_floor"] < 8.0  # four networks' products: more than one's


def test_bayes_speed_reports_the_enumeration_and_p_above_n(load_script):
    bench = load_script("bench/bayes_speed.py")
    rows = bench.main(["--quick"])
    assert [(r["cell"], r["method"]) for r in rows] == [
        ("diabetes", "auto"),
        ("diabetes", "svi"),
        ("p > n", "auto"),
    ]
    assert rows[0]["pip_method"] == rows[1]["pip_method"] == "enumerate"
    assert rows[2]["pip_method"] == "mc3" and rows[2]["p"] > rows[2]["n"]
    assert all(r["cpu_seconds"] > 0 for r in rows)


def test_stack_speed_times_the_engine_against_the_plain_graph_stack(load_script, one_thread):
    """On the CPU both run eagerly: a smoke test of the GPU benchmark's two sides."""
    bench = load_script("bench/stack_speed.py")
    result = bench.main(["--networks", "2", "--steps", "3", "--num-data", "300", "--repeats", "1"])
    (row,) = result["rows"]
    assert row["networks"] == 2 and row["l0bayes_ms_per_step"] > 0 and row["ratio"] > 0


@pytest.mark.filterwarnings("ignore")  # the JIT tracers' warnings
def test_gated_speed_reports_every_arm_of_every_model(load_script, one_thread):
    bench = load_script("bench/gated_speed.py")
    rows = bench.main(["--steps", "2", "--repeats", "1"])
    assert rows[0]["model"] == "README linear" and rows[1]["model"] == "logistic"
    arms = {"plain", "gated", "pyro_jit_tmf", "jit_tmf", "jit_trace"}
    assert all(set(row) == arms | {"model"} for row in rows)
    assert all(row[arm] > 0 for row in rows for arm in arms)


def test_optim_param_cost_times_each_count(load_script, one_thread):
    bench = load_script("bench/optim_param_cost.py")
    out = bench.main(["--counts", "1", "3"])
    assert set(out) == {1, 3} and all(us > 0 for us in out.values())
