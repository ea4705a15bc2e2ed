"""Fitted attributes and views of L0Regression: the summary table, the model-size posterior,
the attributes widened over constant columns, the criteria of an answer without an MLE."""

import math

import numpy as np
import pytest
import torch

from l0bayes import L0Regression
from l0bayes.linear_model.preprocessing import Standardizer
from l0bayes.linear_model.views import (
    criteria_attributes,
    probs_attributes,
    size_posterior,
    widened,
)

FAST = dict(n_steps=150, num_particles=4, progress=False)


def test_summary_of_an_ic_fit_shows_the_answers_weights_not_the_relaxation(simulated):
    """Issue 28: the pip column of an AIC/BIC fit was the relaxation's gate probability and
    contradicted selected; the summary now shows the criterion's inclusion weights, whose
    heaviest support is the certified selection."""
    X, y, _ = simulated(n=100, p=3)
    est = L0Regression(**FAST, method="svi").fit(X, y)
    table = est.summary(names=["a", "b", "c"])
    assert list(table.columns) == ["ic_weight", "coef", "selected"]
    assert list(table.index) == ["a", "b", "c"]
    np.testing.assert_array_equal(table["ic_weight"], est.ic_weights_.inclusion)
    np.testing.assert_array_equal(table["coef"], est.coef_)
    np.testing.assert_array_equal(table["selected"], est.selected_)
    assert est.optimal_
    np.testing.assert_array_equal(est.ic_weights_.supports[0], est.selected_)
    assert table.attrs["ic_weight"].startswith("BIC weight")
    np.testing.assert_array_equal(est.relaxed_support_, est.relaxed_inclusion_probs_ > 0.5)


def test_summary_of_a_bayes_fit_shows_the_pips(simulated):
    X, y, _ = simulated(n=100, p=3)
    est = L0Regression(penalty="bayes", **FAST).fit(X, y)
    table = est.summary()
    assert list(table.columns) == ["pip", "coef", "selected"]
    np.testing.assert_array_equal(table["pip"], est.inclusion_probs_)
    np.testing.assert_array_equal(table["selected"], table["pip"] > 0.5)
    assert "ic_weight" not in table.attrs


def test_summary_without_criterion_weights_has_no_inclusion_column(simulated):
    X, y, _ = simulated(n=150, p=3, family="bernoulli")
    est = L0Regression(family="bernoulli", penalty="aic", **FAST).fit(X, y)
    assert list(est.summary().columns) == ["coef", "selected"]


def test_constant_column_is_named_and_weighs_nothing(simulated):
    pd = pytest.importorskip("pandas")
    X, y, _ = simulated(n=100, p=3)
    frame = pd.DataFrame(np.column_stack([X, np.ones(100)]), columns=["a", "b", "c", "one"])
    with pytest.warns(UserWarning, match=r"constant columns \['one'\]"):
        est = L0Regression(**FAST, method="svi").fit(frame, y)
    assert est.ic_weights_.inclusion[3] == 0.0 and est.relaxed_inclusion_probs_[3] == 0.0
    assert est.ic_weights_.supports.shape[1] == 4
    np.testing.assert_array_equal(est.summary()["ic_weight"], est.ic_weights_.inclusion)


def test_fixed_pi_posterior_is_a_point_and_guide_size_is_poisson_binomial(simulated):
    from l0bayes.linear_model.model_size import poisson_binomial

    X, y, _ = simulated(n=80, p=5)
    est = L0Regression(penalty="bayes", prior_inclusion=0.3, correction="none", **FAST)
    est.fit(X, y)
    assert est.prior_inclusion_interval_ == (0.3, 0.3)
    np.testing.assert_allclose(est.model_size_probs_, poisson_binomial(est.inclusion_probs_))


def test_size_posterior_of_a_beta_prior_mixes_the_conjugate_updates():
    """p(π | y) = Σ_k P(k | y) Beta(a + k, b + p - k), of mean Σ_k P(k) (a + k) / (a + b + p)."""
    sizes = np.array([0.1, 0.2, 0.3, 0.4])
    out = size_posterior(sizes, ("beta", 2.0, 3.0))
    assert out["model_size_mean_"] == pytest.approx(0.2 + 0.6 + 1.2)
    expected = sum(q * (2.0 + k) / (2.0 + 3.0 + 3) for k, q in enumerate(sizes))
    assert out["prior_inclusion_mean_"] == pytest.approx(expected)
    low, high = out["prior_inclusion_interval_"]
    assert 0.0 < low < expected < high < 1.0


def test_size_posterior_uses_the_guides_beta_when_it_has_one():
    params = {
        "inclusion_concentration1": torch.tensor(3.0),
        "inclusion_concentration0": torch.tensor(1.0),
    }
    out = size_posterior(np.array([0.5, 0.5]), 0.5, params)
    assert out["prior_inclusion_mean_"] == pytest.approx(0.75)


def test_widened_closes_the_gates_of_constant_columns():
    keep = np.array([True, False, True])
    std = Standardizer(np.array([1.0, 2.0]), np.array([2.0, 4.0]), 0.5, 3.0)
    fitted = {
        "coef_": np.array([1.5, -2.0]),
        "selected_": np.array([True, False]),
        "model_size_probs_": np.array([0.2, 0.3, 0.5]),
        "top_models_": [(np.array([True, False]), 0.7)],
        "params_": {"gate_log_alpha": torch.tensor([0.3, -0.2]), "intercept": torch.tensor(0.1)},
        "_standardizer_": std,
        "intercept_": 4.0,
    }
    out = widened(fitted, keep, np.array([0.0, 7.0, 0.0]), slab_scale=2.0)
    np.testing.assert_array_equal(out["coef_"], [1.5, 0.0, -2.0])
    np.testing.assert_array_equal(out["selected_"], [True, False, False])
    np.testing.assert_array_equal(out["model_size_probs_"], [0.2, 0.3, 0.5, 0.0])
    np.testing.assert_array_equal(out["top_models_"][0][0], [True, False, False])
    assert out["params_"]["gate_log_alpha"][1] == -math.inf
    np.testing.assert_array_equal(out["_standardizer_"].x_mean, [1.0, 7.0, 2.0])
    np.testing.assert_array_equal(out["_standardizer_"].x_scale, [2.0, 1.0, 4.0])
    assert "intercept_" not in out  # not per feature: unchanged
    assert fitted["params_"]["gate_log_alpha"].shape == (2,)  # the input is left alone


def test_criteria_of_a_bayes_answer_without_an_mle_say_why():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(4, 3)), rng.normal(size=4)
    everything = np.ones(3, dtype=bool)  # k = 4 parameters on n = 4 rows: an exact fit
    out = criteria_attributes(X, y, everything, "gaussian", None, bayes=True)
    assert out["criteria_"] is None and out["criteria_error_"]
    with pytest.raises(ValueError):
        criteria_attributes(X, y, everything, "gaussian", None, bayes=False)


def test_group_probs_are_widened_to_their_columns():
    out = probs_attributes(np.array([0.9, 0.2]), np.array([0, 0, 1]))
    np.testing.assert_array_equal(out["inclusion_probs_"], [0.9, 0.9, 0.2])
    np.testing.assert_array_equal(out["group_inclusion_probs_"], [0.9, 0.2])
