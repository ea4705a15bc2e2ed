"""``AutoL0Guide``: the ELBO's KL against its closed form, and the guide's summaries."""

import warnings

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO
from torch.distributions import kl_divergence

from l0bayes.distributions import HardConcrete, gate_kl
from l0bayes.gates import (
    AutoL0Guide,
    GatedValue,
    GateGuide,
    fit_autol0,
    gated,
    hard_concrete_quantile,
)
from l0bayes.gates.autoguide import MEAN_FIELD_ORDER_WARNING

LOG_ALPHA = torch.tensor([-2.0, 0.5, 3.0])
LOC = torch.tensor([0.3, -1.0, 2.0])
SCALE = torch.tensor([0.2, 0.5, 1.5])


def _prior_only():
    gated("b", dist.Normal(0.0, 2.0).expand([3]), lam=0.7)


def _set(guide):
    part = guide.gate_guide
    part.log_alpha.b = LOG_ALPHA.clone()
    part.loc.b = LOC.clone()
    part.scale.b = SCALE.clone()


def test_elbo_kl_equals_closed_form(float64):
    guide = AutoL0Guide(_prior_only)
    guide()
    _set(guide)
    loss = TraceMeanField_ELBO().differentiable_loss(_prior_only, guide)
    q = HardConcrete(LOG_ALPHA.double())
    slab_kl = kl_divergence(dist.Normal(LOC, SCALE), dist.Normal(0.0, 2.0)).double()
    expected = gate_kl(q, 0.7, "bayes").sum() + (q.prob_nonzero * slab_kl).sum()
    assert torch.allclose(loss, expected, atol=1e-10)


@pytest.mark.parametrize("elbo", [TraceMeanField_ELBO, Trace_ELBO], ids=["tmf", "trace"])
def test_the_gate_part_alone_guides_the_gated_sites(elbo, float64):
    """``GateGuide`` used on its own (no ``AutoL0Guide`` around it makes the plates) gives the
    same loss as inside ``AutoL0Guide``, and the closed form."""
    standalone = GateGuide(_prior_only)
    standalone()
    for name, value in (("log_alpha", LOG_ALPHA), ("loc", LOC), ("scale", SCALE)):
        getattr(standalone, name).b = value.clone()
    listed = AutoL0Guide(_prior_only)
    listed()
    _set(listed)
    q = HardConcrete(LOG_ALPHA.double())
    slab_kl = kl_divergence(dist.Normal(LOC, SCALE), dist.Normal(0.0, 2.0)).double()
    expected = gate_kl(q, 0.7, "bayes").sum() + (q.prob_nonzero * slab_kl).sum()
    for guide in (standalone, listed):
        loss = elbo().differentiable_loss(_prior_only, guide)
        assert torch.allclose(loss, expected, atol=1e-10)


def test_weighted_value_kl_matches_monte_carlo(float64):
    """The guide's masked log density estimates the same P(z≠0)·KL as the analytic term."""
    q = HardConcrete(LOG_ALPHA)
    z = q.sample((200_000,))
    q_theta, slab = dist.Normal(LOC, SCALE), dist.Normal(0.0, 2.0)
    theta = q_theta.sample((200_000,))
    mc = ((z != 0) * (q_theta.log_prob(theta) - slab.log_prob(theta))).mean(0)
    exact = q.prob_nonzero * kl_divergence(q_theta, slab)
    assert torch.allclose(mc, exact, atol=0.02)


def test_summaries():
    guide = AutoL0Guide(_prior_only)
    with pytest.raises(ValueError, match="not been run"):
        guide.inclusion_probs()
    guide()
    _set(guide)
    pips = guide.inclusion_probs()["b"]
    assert torch.allclose(pips, HardConcrete(LOG_ALPHA).prob_nonzero)
    structures = guide.sample_structures(4000)["b"]
    assert structures.shape == (4000, 3) and structures.dtype == torch.bool
    assert torch.allclose(structures.float().mean(0), pips, atol=0.03)
    median = guide.median()
    assert torch.allclose(median["b.theta"], LOC)
    assert torch.allclose(median["b.gate"], hard_concrete_quantile(HardConcrete(LOG_ALPHA), 0.5))
    quantiles = guide.quantiles([0.1, 0.9])
    assert quantiles["b.gate"].shape == (2, 3) and quantiles["b.theta"].shape == (2, 3)
    assert (quantiles["b.theta"][0] < LOC).all() and (quantiles["b.theta"][1] > LOC).all()


def test_gate_quantile_inverts_the_cdf(float64):
    q = HardConcrete(torch.tensor([-1.0, 0.0, 2.0]))
    level = torch.tensor(0.6)
    z = hard_concrete_quantile(q, level)
    inside = (z > 0) & (z < 1)
    assert torch.allclose(q.cdf(z)[inside], level.expand(3)[inside])


def test_delta_values_and_other_latents():
    X = torch.randn(40, 2)
    y = X[:, 0] + 0.1 * torch.randn(40)

    def model(X, y=None):
        scale = pyro.sample("scale", dist.HalfNormal(2.0))
        sigma = pyro.sample("sigma", dist.HalfNormal(1.0))
        beta = gated("beta", dist.Normal(0.0, scale).expand([2]))
        with pyro.plate("data", 40):
            pyro.sample("y", dist.Normal((X * beta).sum(-1), sigma), obs=y)

    for values in ("delta", "normal"):
        pyro.clear_param_store()
        guide = AutoL0Guide(model, values=values)
        svi = pyro.infer.SVI(model, guide, pyro.optim.Adam({"lr": 0.05}), TraceMeanField_ELBO())
        for _ in range(5):
            svi.step(X, y)
        assert set(guide.median()) == {"beta.gate", "beta.theta", "scale", "sigma"}


def test_positive_slab_uses_a_transformed_guide():
    def model():
        gated("s", dist.HalfNormal(1.0).expand([2]))

    guide = AutoL0Guide(model)
    value = guide()["s.theta"]
    assert (value > 0).all()
    loss = TraceMeanField_ELBO().loss(model, guide)
    assert torch.isfinite(torch.tensor(loss))


def test_fit_autol0_fits_a_users_model_and_checks_its_arguments():
    import pyro.distributions as dist

    from l0bayes.gates import fit_autol0, gated

    def model(X, y=None):
        sigma = pyro.sample("sigma", dist.HalfNormal(1.0))
        beta = gated("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]), prior_inclusion=0.2)
        with pyro.plate("data", X.shape[0]):
            pyro.sample("y", dist.Normal((X * beta).sum(-1), sigma), obs=y)

    gen = torch.Generator().manual_seed(0)
    X = torch.randn(200, 4, generator=gen)
    y = 3 * X[:, 0] + 0.3 * torch.randn(200, generator=gen)
    guide = fit_autol0(model, X, y, num_steps=300, seed=1)
    pips = guide.inclusion_probs()["beta"]
    assert pips[0] > 0.95 and (pips[1:] < 0.5).all()
    with pytest.raises(ValueError, match="num_steps must be a positive integer"):
        fit_autol0(model, X, y, num_steps=0)


def _two_names(X, y=None):
    """Two gated names, one with groups (3 gates over 4 values), and fixed noise."""
    beta = gated("beta", dist.Normal(0.0, 1.0).expand([4]), groups=[0, 0, 1, 2])
    u = gated("u", dist.Normal(0.0, 2.0).expand([2]), prior_inclusion=0.3)
    with pyro.plate("data", X.shape[0]):
        mean = (X * beta).sum(-1) + u.sum(-1)
        pyro.sample("y", dist.Normal(mean, 1.0), obs=y)


def _written_guide(X, y=None):
    """``AutoL0Guide``'s gate part written out with three parameter tensors per name."""
    for name, gates, ids in (("beta", 3, [0, 0, 1, 2]), ("u", 2, None)):
        size = len(ids) if ids else gates
        log_alpha = pyro.param(f"log_alpha_{name}", torch.zeros(gates))
        loc = pyro.param(f"loc_{name}", torch.zeros(size))
        scale = pyro.param(
            f"scale_{name}", torch.full((size,), 0.1), constraint=dist.constraints.positive
        )
        q = HardConcrete(log_alpha)
        z = pyro.sample(f"{name}.gate", q.to_event(1))
        weight = q.prob_nonzero
        if ids:
            z, weight = z[ids], weight[ids]
        value = GatedValue(dist.Normal(loc, scale), weight, z != 0)
        pyro.sample(f"{name}.theta", value.to_event(1))


def test_one_parameter_tensor_per_name_takes_the_same_steps(float64):
    """The guide keeps each name's log alpha, loc and log scale in one tensor (one optimiser
    state, not three) and takes the same Adam steps as three tensors per name."""
    gen = torch.Generator().manual_seed(3)
    X = torch.randn(30, 4, generator=gen)
    y = 2 * X[:, 0] - X[:, 3] + torch.randn(30, generator=gen)
    guide = AutoL0Guide(_two_names)
    guide(X, y)  # set up (its prototype traces draw from the prior) before the seed
    assert len(pyro.get_param_store()) == 2  # one tensor per gated name
    fitted = {}
    for name, g in (("packed", guide), ("written", _written_guide)):
        pyro.set_rng_seed(0)
        svi = pyro.infer.SVI(_two_names, g, pyro.optim.Adam({"lr": 0.05}), TraceMeanField_ELBO())
        fitted[name] = [svi.step(X, y) for _ in range(25)]
    params = {n: guide.gate_guide.unpacked(n) for n in ("beta", "u")}
    assert fitted["packed"] == pytest.approx(fitted["written"], rel=1e-12)
    for name in ("beta", "u"):
        for role in ("log_alpha", "loc", "scale"):
            written = pyro.param(f"{role}_{name}")
            assert torch.allclose(params[name][role], written, rtol=1e-12, atol=1e-14)


def test_the_roles_are_read_and_set_by_name(float64):
    guide = AutoL0Guide(_two_names)
    X = torch.randn(5, 4)
    guide(X)
    part = guide.gate_guide
    assert part.gated_names == ["beta", "u"] and dir(part.scale) == ["beta", "u"]
    part.scale.beta = torch.tensor([0.5, 1.0, 2.0, 4.0])
    part.log_alpha.u = 1.5  # broadcast
    assert torch.allclose(part.scale.beta, torch.tensor([0.5, 1.0, 2.0, 4.0]))
    assert torch.equal(part.log_alpha.u, torch.full((2,), 1.5))
    assert part.log_alpha.beta.shape == (3,) and part.loc.beta.shape == (4,)
    with pytest.raises(AttributeError, match="no loc parameters for the gated name 'gamma'"):
        _ = part.loc.gamma
    with pytest.raises(ValueError, match="scale must be positive"):
        part.scale.u = torch.tensor([1.0, 0.0])
    with pytest.raises(ValueError, match="already holds .*clear_param_store"):
        AutoL0Guide(_two_names, values="delta")(X)  # the normal guide's values are stored
    pyro.clear_param_store()
    delta = AutoL0Guide(_two_names, values="delta")
    delta(X)
    with pytest.raises(KeyError, match="has no 'scale' parameters"):
        delta.gate_guide.scale.u = 1.0
    with pytest.raises(ValueError, match="not been run"):
        AutoL0Guide(_two_names).gate_guide.unpacked("beta")


def test_dotted_names_that_nest_are_separate_parameters():
    """``"a"`` and ``"a.b"`` (a network's layer and its weight) each get their own tensor."""

    def model():
        gated("a", dist.Normal(0.0, 1.0).expand([2]))
        gated("a.b", dist.Normal(0.0, 1.0).expand([3]))

    guide = AutoL0Guide(model)
    guide()
    part = guide.gate_guide
    assert {k: v.shape for k, v in guide.inclusion_probs().items()} == {"a": (2,), "a.b": (3,)}
    part.assign("a.b", "log_alpha", torch.tensor([5.0, -5.0, 5.0]))
    assert torch.equal(part.unpacked("a.b")["log_alpha"], torch.tensor([5.0, -5.0, 5.0]))
    assert torch.equal(part.log_alpha.a, torch.zeros(2))

    def clashing():
        gated("a.b", dist.Normal(0.0, 1.0).expand([2]))
        gated("a/b", dist.Normal(0.0, 1.0).expand([2]))

    with pytest.raises(ValueError, match="differ only in '.' against '/'"):
        AutoL0Guide(clashing)()


def test_fit_autol0_is_silent_about_latents_sampled_after_a_gate():
    """Pyro's order check warns when the model samples a latent after ``gated`` (the guide
    draws the other latents first); the guide is mean-field by construction, so the fit is
    silent, and the warning is Pyro's own in a loop of the user's."""

    def model(X, y=None):
        beta = gated("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]))
        sigma = pyro.sample("sigma", dist.HalfNormal(1.0))
        with pyro.plate("data", X.shape[0]):
            pyro.sample("y", dist.Normal((X * beta).sum(-1), sigma), obs=y)

    X = torch.randn(20, 2)
    y = X[:, 0] + 0.1 * torch.randn(20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_autol0(model, X, y, num_steps=2)
    pyro.clear_param_store()
    svi = pyro.infer.SVI(model, AutoL0Guide(model), pyro.optim.Adam({}), TraceMeanField_ELBO())
    with pytest.warns(UserWarning, match=MEAN_FIELD_ORDER_WARNING), pyro.validation_enabled():
        svi.step(X, y)
