"""The engine on a scorer that is not a regression: enumeration against brute force, chains
against the enumeration, and the flip-and-swap climb."""

import itertools

import numpy as np
import pytest
from scipy.special import logsumexp

from l0bayes.model_space import (
    BatchScorer,
    Enumeration,
    best_support,
    climb,
    default_starts,
    diagnose,
    enumerate_models,
    flip_swap_neighbourhood,
    model_key,
    run_chains,
    support_batches,
)
from l0bayes.model_space.scorer import bit_marginals, model_sizes, top_models


class PairScorer:
    """log p(gamma) = a . gamma + gamma' B gamma / 2: any posterior over {0, 1}^p."""

    def __init__(self, p: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.p = p
        self.a = rng.normal(size=p)
        B = rng.normal(scale=0.8, size=(p, p))
        self.B = np.triu(B, 1) + np.triu(B, 1).T

    def score(self, models: np.ndarray) -> np.ndarray:
        g = np.atleast_2d(models).astype(float)
        return g @ self.a + 0.5 * np.einsum("mi,ij,mj->m", g, self.B, g)

    def log_posterior(self, inside: np.ndarray) -> float:
        return float(self.score(inside[None])[0])

    def neighbours(self, insides: np.ndarray, log_posts: np.ndarray) -> np.ndarray:
        flipped = np.atleast_2d(insides)[:, None, :] ^ np.eye(self.p, dtype=bool)
        return self.score(flipped.reshape(-1, self.p)).reshape(len(insides), self.p)


def _brute_force(scorer):
    models = np.array(list(itertools.product([False, True], repeat=scorer.p)))
    log_w = scorer.score(models)
    w = np.exp(log_w - logsumexp(log_w))
    return w @ models, float(logsumexp(log_w))


def test_enumeration_equals_brute_force():
    scorer = PairScorer(4)
    post = enumerate_models(scorer)
    pips, log_evidence = _brute_force(scorer)
    np.testing.assert_allclose(post.inclusion_probs, pips, atol=1e-12)
    assert post.log_evidence == pytest.approx(log_evidence)
    assert post.model_size_probs.sum() == pytest.approx(1.0)


def test_enumeration_summaries_equal_the_full_table_with_ties_to_the_smaller_index():
    """PIPs, size probabilities and the top models of a bitmask-indexed posterior, computed
    without the 2^p x p table, equal the table's; tied models keep index order, as a stable
    sort of all 2^p would give."""
    p = 5
    rng = np.random.default_rng(3)
    log_joint = rng.normal(size=2**p)
    log_joint[[3, 9, 17, 30]] = log_joint.max() + 1.0  # a four-way tie for the mode
    log_joint[[5, 6]] = -np.inf  # unscored models
    post = Enumeration.from_log_joint(log_joint, top=7)
    bits = ((np.arange(2**p)[:, None] >> np.arange(p)) & 1).astype(bool)
    probs = np.exp(log_joint - logsumexp(log_joint))
    np.testing.assert_allclose(post.inclusion_probs, probs @ bits, rtol=1e-13, atol=1e-15)
    sizes = np.bincount(bits.sum(axis=1), weights=probs, minlength=p + 1)
    np.testing.assert_allclose(post.model_size_probs, sizes, rtol=1e-13, atol=1e-15)
    order = np.argsort(-log_joint, kind="stable")[:7]
    assert [i for i in order[:4]] == [3, 9, 17, 30]
    for (mask, prob), i in zip(post.top_models, order, strict=True):
        np.testing.assert_array_equal(mask, bits[i])
        assert prob == pytest.approx(probs[i], rel=1e-13)
    np.testing.assert_array_equal(model_sizes(p), bits.sum(axis=1))
    np.testing.assert_allclose(bit_marginals(probs, p), probs @ bits, rtol=1e-13, atol=1e-15)
    assert top_models(post.log_posterior, p, 0) == []


@pytest.mark.parametrize("sampler", ["tempered", "mh"])
def test_chains_agree_with_the_enumeration(sampler):
    scorer = PairScorer(5, seed=1)
    exact = enumerate_models(scorer).inclusion_probs
    starts = default_starts(scorer.p, 100, 4, seed=0)
    res = run_chains(scorer, starts, n_iter=4000, sampler=sampler, seed=0)
    assert np.abs(res.inclusion_probs - exact).max() < 0.03
    assert not diagnose(res), diagnose(res)


def test_flip_swap_neighbourhood_and_climb():
    model = np.array([True, False, False])
    neighbours = flip_swap_neighbourhood(model)
    assert len(neighbours) == 3 + 1 * 2  # three flips, one in x two out swaps
    assert len({model_key(m) for m in neighbours}) == len(neighbours)
    scorer = PairScorer(4, seed=2)
    found, value = climb(scorer.score, np.zeros(4, bool))
    assert value == pytest.approx(scorer.log_posterior(found))
    assert value >= scorer.score(flip_swap_neighbourhood(found)).max()  # a local optimum


class QuadraticBatch(BatchScorer):
    """The PairScorer's posterior through the batched protocol (score_indices only)."""

    def __init__(self, p: int, seed: int = 0) -> None:
        self.pair = PairScorer(p, seed)
        self.p = p

    def score_indices(self, idx: np.ndarray) -> np.ndarray:
        masks = np.zeros((len(idx), self.p), dtype=bool)
        np.put_along_axis(masks, idx, True, axis=1)
        return self.pair.score(masks)


def test_support_batches_walk_every_support_once_by_size_then_lexicographically():
    walked = [tuple(row) for k in range(5) for b in support_batches(4, k, 3) for row in b]
    expected = [c for k in range(5) for c in itertools.combinations(range(4), k)]
    assert walked == expected
    assert all(len(b) <= 3 for b in support_batches(6, 2, 3))


def test_batch_scorer_serves_the_engine_as_the_plain_scorer_does():
    batch = QuadraticBatch(5, seed=3)
    models = np.random.default_rng(0).random((7, 5)) < 0.5
    np.testing.assert_array_equal(batch.score(models), batch.pair.score(models))
    assert batch.log_posterior(models[0]) == batch.pair.log_posterior(models[0])
    np.testing.assert_array_equal(
        batch.neighbours(models, None), batch.pair.neighbours(models, None)
    )
    a, b = enumerate_models(batch), enumerate_models(batch.pair)
    np.testing.assert_allclose(a.inclusion_probs, b.inclusion_probs, atol=1e-14)
    with pytest.raises(ValueError, match="bool array"):
        batch.score(np.ones((2, 4), dtype=bool))


def test_best_support_is_the_enumerations_mode_and_max_size_truncates():
    scorer = PairScorer(5, seed=4)
    idx, value, count = best_support(scorer)
    post = enumerate_models(scorer)
    assert count == 2**5
    np.testing.assert_array_equal(np.flatnonzero(post.top_models[0][0]), idx)
    assert value == pytest.approx(scorer.log_posterior(post.top_models[0][0]))
    small = enumerate_models(scorer, max_size=2)
    assert small.model_size_probs[3:].sum() == 0.0 and small.model_size_probs.sum() == 1.0
    assert best_support(scorer, max_size=2)[2] == 1 + 5 + 10
