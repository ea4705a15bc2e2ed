"""One naming rule and one start for the gates of ``gated``, the layers and the regression
model."""

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine

from l0bayes.distributions import GATE_ROLE, VALUE_ROLE, initial_log_alpha, site_name
from l0bayes.gates import AutoL0Guide, gated
from l0bayes.linear_model.model import RegressionPrior, regression_guide, regression_model
from l0bayes.nn import L0Linear


def test_site_names_and_initial_log_alpha():
    assert site_name("beta", GATE_ROLE) == "beta.gate"
    assert site_name("beta", VALUE_ROLE) == "beta.theta"
    assert site_name("", GATE_ROLE) == "gate"
    like = torch.zeros(1, dtype=torch.float64)
    start = initial_log_alpha(-1.5, (2, 3), like)
    assert start.shape == (2, 3) and start.dtype == torch.float64 and bool((start == -1.5).all())
    per_gate = torch.tensor([0.0, 1.0])
    fresh = initial_log_alpha(per_gate, (2,), like)
    fresh += 1  # a fresh tensor: the caller's init is untouched
    assert per_gate.tolist() == [0.0, 1.0]


def _sample_sites(fn, *args):
    trace = poutine.trace(fn).get_trace(*args)
    return {name for name, site in trace.nodes.items() if site["type"] == "sample"}


def test_the_primitive_the_layers_and_the_regression_name_their_gates_alike():
    X, y = torch.randn(8, 3), torch.randn(8)

    def model(X, y):
        beta = gated("beta", dist.Normal(0.0, 1.0).expand([3]))
        with pyro.plate("data", 8):
            pyro.sample("y", dist.Normal((X * beta).sum(-1), 1.0), obs=y)

    assert {site_name("beta", GATE_ROLE), site_name("beta", VALUE_ROLE)} <= _sample_sites(
        model, X, y
    )
    guide = AutoL0Guide(model, init_log_alpha=-2.0)
    guide(X, y)
    assert bool((guide.gate_guide.log_alpha.beta == -2.0).all())
    layer = L0Linear(3, 2, weight_precision=1.0)
    layer_sites = _sample_sites(layer.model)
    assert {site_name(layer._pyro_name, GATE_ROLE), site_name(layer._pyro_name, VALUE_ROLE)} <= (
        layer_sites
    )
    prior = RegressionPrior(init_log_alpha=-0.5, slab_precision=1.0)
    assert site_name("", GATE_ROLE) in _sample_sites(regression_model, X, y, prior)
    pyro.clear_param_store()
    regression_guide(X, y, prior)
    assert bool((pyro.param("gate_log_alpha") == -0.5).all())
