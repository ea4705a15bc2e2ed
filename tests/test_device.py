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
