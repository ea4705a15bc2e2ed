"""Shared pytest fixtures for the l0bayes test suite."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pyro
import pytest
import torch


@pytest.fixture(autouse=True)
def _fresh_pyro_state():
    """Give every test an empty param store, argument validation and a fixed RNG seed."""
    pyro.clear_param_store()
    pyro.enable_validation(True)
    pyro.set_rng_seed(0)
    yield
    pyro.clear_param_store()


_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, _CUDA])])
def device(request) -> str:
    """Run a test on the CPU and, marked ``gpu`` (skipped without CUDA), on the GPU."""
    return request.param


@pytest.fixture
def float64():
    """Make float64 the default dtype for one test, restoring the previous default after."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield torch.float64
    finally:
        torch.set_default_dtype(old)


@pytest.fixture
def one_thread():
    """One torch thread for one test: tiny networks gain nothing from more, and several threads
    contend badly on a busy CPU (10x slower on two shared cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def load_script():
    """Import a script of ``models/``, ``analysis/`` or ``bench/`` (not a package) by its path
    relative to the repository root; it is registered in ``sys.modules`` because dataclasses
    look their module up there."""

    def load(relative_path: str) -> ModuleType:
        path = REPO / relative_path
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def arviz_tools():
    """A check that ArviZ's everyday tools run on an ``InferenceData``: ``plot_posterior``,
    ``summary``, ``plot_forest`` and ``loo`` (matplotlib's Agg backend; their warnings, e.g.
    about a constant variable or a Pareto k over 0.7, are information, not failures)."""
    import warnings

    az = pytest.importorskip("arviz")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def check(idata):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            az.plot_posterior(idata)
            summary = az.summary(idata)
            az.plot_forest(idata)
            loo = az.loo(idata)
        plt.close("all")
        return summary, loo

    return check
