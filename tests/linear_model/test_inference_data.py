"""The ArviZ export of L0Regression: the posterior the fit reports, and ArviZ's tools on it."""

import numpy as np
import pytest
from sklearn.datasets import load_diabetes

from l0bayes import L0Regression
from l0bayes.data.simulate import simulate_regression

FAST = dict(n_steps=60, num_particles=2, progress=False)
DRAWS = 2000


def counts(seed=0, family="poisson"):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((150, 4))
    mu = np.exp(0.5 + 0.6 * X[:, 0] - 0.4 * X[:, 1])
    y = rng.poisson(mu) if family == "poisson" else rng.negative_binomial(2, 2 / (2 + mu))
    return X, y.astype(float)


def gaussian():
    X, y = load_diabetes(return_X_y=True)  # centred columns: the guide's intercept is constant
    return X[:, :6], y


def bernoulli():
    prob = simulate_regression(n=200, p=4, k=2, snr=2.0, seed=1, family="bernoulli")
    return prob.X, prob.y


FITS = {
    "bic": (gaussian, dict(penalty="bic")),
    "aic": (gaussian, dict(penalty="aic")),
    "bayes": (gaussian, dict(penalty="bayes")),
    "bayes-hyper-g": (gaussian, dict(penalty="bayes", prior="hyper-g")),
    "bayes-raw": (gaussian, dict(penalty="bayes", prior="raw", noise_scale=55.0)),
    "bayes-groups": (gaussian, dict(penalty="bayes", groups=[0, 0, 1, 2, 2, 3])),
    "bayes-exact": (gaussian, dict(penalty="bayes", method="exact")),
    "bayes-uncorrected": (gaussian, dict(penalty="bayes", correction="none")),
    "bernoulli-bic": (bernoulli, dict(family="bernoulli", penalty="bic")),
    "bernoulli-bayes": (bernoulli, dict(family="bernoulli", penalty="bayes")),
    "poisson-aic": (counts, dict(family="poisson", penalty="aic")),
    "nb-bayes": (lambda: counts(family="nb"), dict(family="negative_binomial", penalty="bayes")),
}
#: The guide's export is one code path for every fit: a few families suffice.
GUIDES = ["bic", "bayes", "bayes-groups", "bernoulli-bayes", "nb-bayes"]
CASES = [(name, "posterior") for name in sorted(FITS)] + [(name, "guide") for name in GUIDES]


@pytest.mark.parametrize("name, source", CASES)
def test_arviz_tools_run_on_every_export(name, source, arviz_tools):
    """Issue 28: az.plot_posterior raised "Too many bins" on a constant intercept."""
    data, kwargs = FITS[name]
    X, y = data()
    guide = {"method": "svi"} if source == "guide" else {}  # method="auto" may run no SVI
    est = L0Regression(**kwargs, **guide, **FAST).fit(X, y)
    idata = est.to_inference_data(X, y, num_samples=200, source=source)
    summary, loo = arviz_tools(idata)
    assert np.isfinite(loo.elpd_loo)
    assert idata.log_likelihood["obs"].shape == (1, 200, len(y))
    assert f"coef[{idata.posterior.feature.values[0]}]" in summary.index
    reported = "guide" if kwargs.get("correction") == "none" else source
    assert idata.posterior.attrs["source"] == reported


def test_an_exact_fit_has_no_guide_to_export():
    X, y = gaussian()
    est = L0Regression(penalty="bayes", method="exact").fit(X, y)
    with pytest.raises(ValueError, match="source='guide' needs an SVI fit"):
        est.to_inference_data(X, y, num_samples=50, source="guide")


def share_with_gate(idata):
    return (idata.posterior["gate"].values[0] != 0).mean(axis=0)


def test_bayes_export_draws_the_reported_pips():
    """P(gate != 0) in the export equals inclusion_probs_ within Monte Carlo error (4.5 sd of
    a mean of DRAWS independent draws), not the guide's probabilities."""
    X, y = load_diabetes(return_X_y=True)
    est = L0Regression(penalty="bayes", **FAST).fit(X, y)
    idata = est.to_inference_data(X, y, num_samples=DRAWS)
    probs = est.inclusion_probs_
    se = np.sqrt(np.clip(probs * (1 - probs), 1e-4, None) / DRAWS)
    np.testing.assert_array_less(np.abs(share_with_gate(idata) - probs), 4.5 * se)
    assert idata.posterior.attrs["models"] == "enumeration"
    coef, gate = idata.posterior["coef"].values[0], idata.posterior["gate"].values[0]
    assert ((coef != 0) == (gate == 1)).all()
    assert idata.posterior["noise_scale"].values.std() > 0  # σ integrated out: drawn


def test_bic_export_agrees_with_the_answer():
    """Issue 28: a BIC export had weights with sd 0 but coefficients spread by the relaxed
    gates. Now gates are drawn with the BIC weights, coefficients given each model, and a
    coefficient is non-zero exactly when its gate is open."""
    X, y = load_diabetes(return_X_y=True)
    est = L0Regression(penalty="bic", **FAST).fit(X, y)
    idata = est.to_inference_data(X, y, num_samples=DRAWS)
    assert "weight" not in idata.posterior and idata.posterior.attrs["models"] == "ic_weights"
    probs = est.ic_weights_.inclusion
    se = np.sqrt(np.clip(probs * (1 - probs), 1e-4, None) / DRAWS)
    np.testing.assert_array_less(np.abs(share_with_gate(idata) - probs), 4.5 * se)
    coef, gate = idata.posterior["coef"].values[0], idata.posterior["gate"].values[0]
    assert ((coef != 0) == (gate == 1)).all()
    best = (gate == est.selected_).all(axis=1)  # the draws of the selected model
    se = coef[best].std(axis=0) / np.sqrt(best.sum())
    assert (np.abs(coef[best].mean(axis=0) - est.coef_) <= 4.5 * se + 1e-12).all()
    assert idata.posterior["intercept"].values.std() > 0


def test_raw_prior_keeps_its_fixed_sigma_in_constant_data():
    X, y = gaussian()
    est = L0Regression(penalty="bayes", prior="raw", noise_scale=55.0, **FAST).fit(X, y)
    idata = est.to_inference_data(X, y, num_samples=50)
    assert "noise_scale" not in idata.posterior
    assert idata.constant_data["noise_scale"].values.item() == est.noise_scale_ == 55.0


def test_guide_export_is_the_raw_guide_on_request():
    X, y = gaussian()
    est = L0Regression(penalty="bayes", method="svi", **FAST).fit(X, y)
    idata = est.to_inference_data(X, y, num_samples=DRAWS, source="guide")
    probs = est.variational_inclusion_probs_
    se = np.sqrt(np.clip(probs * (1 - probs), 1e-4, None) / DRAWS)
    np.testing.assert_array_less(np.abs(share_with_gate(idata) - probs), 4.5 * se)
    assert np.ptp(idata.posterior["intercept"].values) == 0.0  # a point estimate, no round-off
    with pytest.raises(ValueError, match="source must be one of"):
        est.to_inference_data(X, y, source="prior")
