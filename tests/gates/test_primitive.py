"""``gated``: site shapes with plates and groups, prior draws, bad input."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import SVI, Predictive, TraceMeanField_ELBO

from l0bayes.gates import AutoL0Guide, gated, primitive
from l0bayes.gates.pairing import GatedProduct
from l0bayes.gates.primitive import is_observed_data


def _shapes(model, *args):
    trace = poutine.trace(model).get_trace(*args)
    return {k: tuple(v["value"].shape) for k, v in trace.nodes.items() if v["type"] == "sample"}


@pytest.mark.parametrize(
    "declare, gate_shape, value_shape",
    [
        (lambda: gated("b", dist.Normal(0.0, 1.0).expand([4])), (4,), (4,)),
        (lambda: gated("b", dist.Normal(0.0, 1.0).expand([4]).to_event(1)), (4,), (4,)),
        (lambda: gated("b", dist.Normal(0.0, 1.0).expand([2, 3])), (2, 3), (2, 3)),
        (lambda: gated("b", dist.Normal(0.0, 1.0).expand([4]), groups=[0, 0, 1, 2]), (3,), (4,)),
    ],
)
def test_shapes_outside_plates(declare, gate_shape, value_shape):
    shapes = _shapes(declare)
    assert shapes["b.gate"] == gate_shape
    assert shapes["b.theta"] == value_shape
    assert shapes["b"] == value_shape


def test_shapes_inside_parameter_plates():
    def model():
        with pyro.plate("firms", 5):
            gated("a", dist.Normal(0.0, 1.0))
            gated("w", dist.Normal(0.0, 1.0).expand([3]).to_event(1), groups=[0, 0, 1])

    shapes = _shapes(model)
    assert shapes["a.gate"] == (5,) and shapes["a.theta"] == (5,)
    assert shapes["w.gate"] == (5, 2) and shapes["w.theta"] == (5, 3)


def test_model_and_guide_agree_in_plates_with_validation():
    X = torch.randn(30, 3)
    y = torch.randn(30)
    firm = torch.arange(30) % 5

    def model(X, y=None):
        beta = gated("beta", dist.Normal(0.0, 1.0).expand([3]), groups=[0, 0, 1])
        with pyro.plate("firms", 5):
            effect = gated("firm", dist.Normal(0.0, 1.0), expected_model_size=2)
        with pyro.plate("data", 30):
            pyro.sample("y", dist.Normal((X * beta).sum(-1) + effect[firm], 1.0), obs=y)

    guide = AutoL0Guide(model)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.01}), TraceMeanField_ELBO())
    assert torch.isfinite(torch.tensor(svi.step(X, y)))
    assert guide.inclusion_probs()["firm"].shape == (5,)
    assert guide.inclusion_probs()["beta"].shape == (2,)


def test_grouped_gates_open_and_close_whole_groups():
    groups = torch.tensor([0, 0, 1, 1, 1, 2])

    def model():
        return gated("b", dist.Normal(0.0, 1.0).expand([6]), groups=groups)

    for _ in range(20):  # prior draws
        value = model()
        zero = value == 0
        for g in range(3):
            assert zero[groups == g].all() or not zero[groups == g].any()
    guide = AutoL0Guide(model)
    for _ in range(20):  # guide draws, replayed
        trace = poutine.trace(poutine.replay(model, trace=poutine.trace(guide).get_trace()))
        zero = trace.get_trace().nodes["b"]["value"] == 0
        for g in range(3):
            assert zero[groups == g].all() or not zero[groups == g].any()


def test_prior_and_posterior_predictive():
    X = torch.randn(20, 3)

    def model(X, y=None):
        beta = gated("beta", dist.Normal(0.0, 1.0).expand([3]), prior_inclusion=0.3)
        with pyro.plate("data", X.shape[0]):
            return pyro.sample("y", dist.Normal((X * beta).sum(-1), 1.0), obs=y)

    prior = Predictive(model, num_samples=7)(X)
    # sites outside the data plate get Predictive's usual singleton plate dimension
    assert prior["y"].shape == (7, 20) and prior["beta.gate"].shape == (7, 1, 3)
    assert set(prior["beta.gate"].unique().tolist()) <= {0.0, 1.0}
    guide = AutoL0Guide(model)
    guide(X)
    post = Predictive(model, guide=guide, num_samples=7)(X)
    assert post["y"].shape == (7, 20) and post["beta"].shape == (7, 1, 3)
    assert torch.equal(post["beta"], post["beta.gate"] * post["beta.theta"])
    vectorised = Predictive(model, guide=guide, num_samples=7, parallel=True)(X)
    assert vectorised["beta"].shape == (7, 1, 3)
    assert torch.equal(vectorised["beta"], vectorised["beta.gate"] * vectorised["beta.theta"])


def test_the_deterministic_site_is_a_point_mass_of_log_density_zero():
    value = torch.randn(4, 3)
    fn = GatedProduct(value, event_dim=1)
    assert fn.batch_shape == (4,) and fn.event_shape == (3,)
    assert torch.equal(fn.log_prob(value), torch.zeros(4))
    assert torch.equal(fn.log_prob(value.expand(2, 4, 3)), torch.zeros(2, 4))
    wider = fn.expand([5, 4])
    assert wider.batch_shape == (5, 4) and torch.equal(wider.sample()[2], value)
    assert torch.equal(fn.rsample((2,)), value.expand(2, 4, 3))
    site = poutine.trace(lambda: gated("b", dist.Normal(0.0, 1.0).expand([3]))).get_trace()
    assert site.nodes["b"]["infer"]["_deterministic"] and site.nodes["b"]["is_observed"]


def test_lam_is_per_element_and_pi_per_gate():
    def model(**prior):
        gated("b", dist.Normal(0.0, 1.0).expand([3]), groups=[0, 0, 1], **prior)

    site = poutine.trace(lambda: model(lam=0.5)).get_trace().nodes["b.gate"]
    assert torch.allclose(site["fn"].base_dist.lam, torch.tensor([1.0, 0.5]))
    site = poutine.trace(lambda: model(prior_inclusion=0.25)).get_trace().nodes["b.gate"]
    assert torch.allclose(site["fn"].base_dist.prior_inclusion, torch.tensor([0.25, 0.25]))
    site = poutine.trace(lambda: model(expected_model_size=1)).get_trace().nodes["b.gate"]
    assert torch.allclose(site["fn"].base_dist.prior_inclusion, torch.tensor([0.5, 0.5]))


def _in_data_plate():
    with pyro.plate("data", 10):
        b = gated("b", dist.Normal(0.0, 1.0))
        pyro.sample("y", dist.Normal(b, 1.0), obs=torch.zeros(10))


def _subsampled():
    with pyro.plate("data", 10, subsample_size=5):
        gated("b", dist.Normal(0.0, 1.0))


BAD = [
    (lambda: gated("b", dist.Normal(0.0, 1.0).expand([3]), groups=[0.0, 1.0, 1.0]), "integer"),
    (lambda: gated("b", dist.Normal(0.0, 1.0).expand([3]), groups=[0, 1]), "one id per"),
    (lambda: gated("b", dist.Normal(0.0, 1.0).expand([3]), groups=[0, 2, 2]), "every id"),
    (
        lambda: gated("b", dist.Normal(0.0, 1.0).expand([3]), lam=1.0, prior_inclusion=0.2),
        "at most one",
    ),
    (lambda: gated("b", dist.Normal(0.0, 1.0).expand([3]), prior_inclusion=1.5), "(0, 1)"),
    (lambda: gated("b", dist.Normal(0.0, 1.0).expand([3]), expected_model_size=3), "strictly"),
    (lambda: gated("b", dist.Normal(0.0, 1.0).expand([3]), lam=-1.0, kl_mode="l0"), ">= 0"),
    (lambda: gated("b", dist.Normal(0.0, 1.0), kl_mode="bic"), "kl_mode"),
    (lambda: gated("b", dist.MultivariateNormal(torch.zeros(2), torch.eye(2))), "independent"),
    (lambda: gated("", dist.Normal(0.0, 1.0)), "non-empty"),
    (_subsampled, "outside the data plate"),
    (lambda: AutoL0Guide(_in_data_plate)(), "outside the data plate"),
    (lambda: AutoL0Guide(_in_data_plate, values="laplace"), "values"),
]


@pytest.mark.parametrize("call, match", BAD)
def test_bad_input_is_one_value_error(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_docstring_example_runs():
    source = primitive.__doc__.split("reporting PIPs)::\n", 1)[1].split("\n\nWrite the predictor")[
        0
    ]
    code = "\n".join(line[4:] for line in source.splitlines())
    namespace: dict = {}
    with pyro.validation_enabled(False):
        exec(code.replace("range(500)", "range(60)").replace("print(", "_ = ("), namespace)
    assert namespace["guide"].inclusion_probs()["beta"].shape == (5,)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
def test_fits_on_cuda():
    X = torch.randn(50, 3, device="cuda")
    y = X[:, 0] + 0.1 * torch.randn(50, device="cuda")

    def model(X, y=None):
        loc, scale = X.new_zeros(()), X.new_ones(())
        beta = gated("beta", dist.Normal(loc, scale).expand([3]))
        with pyro.plate("data", 50):
            pyro.sample("y", dist.Normal((X * beta).sum(-1), 1.0), obs=y)

    guide = AutoL0Guide(model)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.05}), TraceMeanField_ELBO())
    for _ in range(5):
        svi.step(X, y)
    assert guide.inclusion_probs()["beta"].device.type == "cuda"


def test_observed_data_are_the_observations_not_conditioned_gates_or_products():
    def model(y=None):
        beta = gated("beta", dist.Normal(0.0, 1.0).expand([2]))
        pyro.sample("y", dist.Normal(beta.sum(), 1.0), obs=y)

    conditioned = poutine.condition(model, {"beta.gate": torch.ones(2)})
    trace = poutine.trace(conditioned).get_trace(torch.tensor(0.5))
    observed = {name for name, site in trace.nodes.items() if is_observed_data(site)}
    assert observed == {"y"}
    assert trace.nodes["beta.gate"]["is_observed"] and trace.nodes["beta"]["is_observed"]
