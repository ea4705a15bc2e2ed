"""The chains' convergence diagnostic (split-R-hat of the weight-scaled PIP traces): no false
alarm when chains agree on a posterior whose mass sits on two structures, an alarm when chains
really disagree."""

import numpy as np
import pytest

from l0bayes.model_space.chains import run_chains
from l0bayes.model_space.convergence import split_rhat
from l0bayes.model_space.diagnostics import MAX_RHAT, diagnose
from l0bayes.model_space.scorer import enumerate_models


class TableScorer:
    """A posterior over ``p`` gates given as a table of log posteriors indexed by the bitmask
    :math:`\\sum_j \\gamma_j 2^j`."""

    def __init__(self, log_posts):
        self.table = np.asarray(log_posts, float)
        self.p = int(np.log2(self.table.size))

    def score(self, models):
        models = np.asarray(models, bool)
        return self.table[(models.astype(np.int64) << np.arange(self.p)).sum(-1)]

    def log_posterior(self, inside):
        return float(self.score(inside))

    def neighbours(self, insides, log_posts):
        insides = np.asarray(insides, bool)
        flips = np.eye(self.p, dtype=bool)
        return np.stack([self.score(insides ^ flips[j]) for j in range(self.p)], axis=-1)


# Laplace log evidences + log prior of the 16 gate structures of models/sleepstudy_mixed.py
# (gates: days, subject_intercept, subject_days, subject_days2; bit j = gate j), relative to the
# best: the posterior is 0.987 on all four open and 0.013 on subject_days2 shut.
SLEEPSTUDY = [-97.73, -70.44, -73.29, -18.64, -79.97, -70.91, -13.06, -4.35,
              -99.83, -72.52, -75.31, -18.87, -82.03, -72.97, -8.69, 0.0]  # fmt: skip


@pytest.mark.parametrize("sampler", ["tempered", "mh"])
def test_chains_that_agree_on_two_structures_raise_no_rhat_alarm(sampler):
    scorer = TableScorer(SLEEPSTUDY)
    starts = np.array([[1, 1, 1, 1], [1, 1, 1, 0], [0, 1, 1, 1], [1, 1, 0, 1]], bool)
    exact = enumerate_models(scorer).inclusion_probs
    for seed in range(3):
        res = run_chains(scorer, starts, n_iter=2000, seed=seed, sampler=sampler)
        assert np.abs(res.inclusion_probs - exact).max() < 0.01
        assert res.rhat <= MAX_RHAT
        assert not [w for w in diagnose(res) if w.startswith("rhat")]
    if sampler == "tempered":  # the unweighted RB traces' R-hat, the false alarm it replaces
        plain = max(
            split_rhat(res.rb_trace[:, :, j]) for j in range(4) if res.rb_trace[:, :, j].std()
        )
        assert plain > MAX_RHAT


@pytest.mark.parametrize("sampler", ["tempered", "mh"])
def test_chains_stuck_in_different_modes_still_warn(sampler):
    """Two equally probable structures six flips apart (000111 and 111000), every other
    structure 30 nats per flip below the nearer one: chains started in each stay there."""
    p = 6
    bits = (np.arange(2**p)[:, None] >> np.arange(p)) & 1
    modes = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]])
    distance = np.abs(bits[:, None, :] - modes[None]).sum(-1).min(axis=1)
    scorer = TableScorer(-30.0 * distance)
    starts = np.repeat(modes, 2, axis=0).astype(bool)
    res = run_chains(scorer, starts, n_iter=2000, seed=0, sampler=sampler)
    assert res.rhat > 10 * MAX_RHAT
    assert [w for w in diagnose(res) if w.startswith("rhat")]
