"""Smoke test of the models/ experiment script with tiny arguments."""

import numpy as np


def test_simulated_selection_runs_and_finds_strong_signal(capsys, load_script):
    mod = load_script("models/simulated_selection.py")
    cfg = mod.parse(["--n", "150", "--p", "5", "--k", "2", "--snr", "8", "--steps", "150"])
    selected = mod.main(cfg)
    assert set(selected) == {"aic", "bic", "bayes"}
    assert np.array_equal(selected["bic"][:2], [True, True])
    assert "BIC=" in capsys.readouterr().out
