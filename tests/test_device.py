"""``l0bayes.device``: the device and the default thread policy."""

import pytest
import torch

from l0bayes.device import THREADS_ENV_VARS, default_threads, resolve_device, torch_threads


@pytest.fixture
def no_thread_env(monkeypatch):
    for name in THREADS_ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def test_default_is_one_thread(no_thread_env):
    assert default_threads() == 1


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"L0BAYES_THREADS": "3"}, 3),
        ({"OMP_NUM_THREADS": "2"}, 2),
        ({"L0BAYES_THREADS": "4", "OMP_NUM_THREADS": "2"}, 4),  # ours first
        ({"L0BAYES_THREADS": " ", "OMP_NUM_THREADS": "2"}, 2),  # empty counts as unset
    ],
)
def test_environment_sets_the_default(no_thread_env, monkeypatch, env, expected):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert default_threads() == expected


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_environment_value_is_a_clear_error(no_thread_env, monkeypatch, value):
    monkeypatch.setenv("L0BAYES_THREADS", value)
    with pytest.raises(ValueError, match=r"\$L0BAYES_THREADS must be a positive integer"):
        default_threads()


def test_an_environment_count_past_the_limit_is_refused(no_thread_env, monkeypatch):
    """A pool of 100,000 threads crashed torch (a segfault) whichever way it was asked for."""
    monkeypatch.setenv("OMP_NUM_THREADS", "100000")
    with pytest.raises(ValueError, match=r"\$OMP_NUM_THREADS must be at most 1024"):
        default_threads()


def test_torch_threads_none_applies_the_default_and_restores(no_thread_env):
    before = torch.get_num_threads()
    with torch_threads(None):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_torch_threads_n_sets_n_and_restores():
    before = torch.get_num_threads()
    with torch_threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("n", [0, -1, True, 1.5])
def test_torch_threads_rejects_non_positive_integers(n):
    with pytest.raises(ValueError, match="--threads must be a positive integer"):
        with torch_threads(n):
            pass


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="not a torch device"):
        resolve_device("gpu0")


# --------------------------------------------------------------- the policy at import
def _threads_after(code: str, env: dict[str, str]) -> list[int]:
    """Run ``code`` in a fresh interpreter (no thread variables but ``env``); the integers it
    prints."""
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items() if k not in (*THREADS_ENV_VARS, "MKL_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", code], env=clean | env, capture_output=True, text=True, check=True
    ).stdout
    return [int(word) for word in out.split()]


def test_importing_l0bayes_applies_the_one_thread_policy():
    code = "import torch, l0bayes; print(torch.get_num_threads())"
    assert _threads_after(code, {}) == [1]
    assert _threads_after(code, {"L0BAYES_THREADS": "3"}) == [3]


def test_a_count_set_before_the_import_is_kept():
    code = (
        "import torch; n = torch.get_num_threads() + 2; torch.set_num_threads(n)\n"
        "import l0bayes; print(n, torch.get_num_threads())"
    )
    n, after = _threads_after(code, {})
    assert after == n


def test_a_count_set_after_the_import_is_what_a_fit_uses_and_keeps():
    """L0Regression (through fit_svi) runs on the user's count and leaves it in place; with no
    count set it runs on the policy's one thread."""
    code = """
import numpy as np, torch
from pyro.infer import SVI
import l0bayes.linear_model.svi as svi
from l0bayes import L0Regression
seen = []
class Spy(SVI):  # records the thread count of each step
    def step(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return super().step(*args, **kwargs)
svi.SVI = Spy
X = np.random.default_rng(0).normal(size=(50, 3)); y = X[:, 0]
L0Regression(penalty="bayes", method="svi", n_steps=2, progress=False).fit(X, y)
print(seen[-1], torch.get_num_threads())
torch.set_num_threads(3)
L0Regression(penalty="bayes", method="svi", n_steps=2, progress=False).fit(X, y)
print(seen[-1], torch.get_num_threads())
"""
    assert _threads_after(code, {}) == [1, 1, 3, 3]


def test_torch_threads_none_keeps_a_count_the_user_set(no_thread_env):
    from l0bayes.device import user_threads

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(before + 1)
        assert user_threads() == before + 1
        with torch_threads(None):
            assert torch.get_num_threads() == before + 1
    finally:
        torch.set_num_threads(before)
    assert user_threads() is None
