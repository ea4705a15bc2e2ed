r"""What the model-space engine needs of a posterior over models, and the exact posterior
over all :math:`2^p` models of any scorer.

A *model* is a bool vector :math:`\gamma \in \{0, 1\}^p` (which gates, or groups of gates,
are open); a :class:`ModelScorer` returns :math:`\log p(y \mid \gamma) + \log p(\gamma)` up
to one constant. The conjugate scorers of :mod:`l0bayes.linear_model.model_space`, the Laplace
scorer of GLMs (:mod:`l0bayes.linear_model.laplace`) and the Laplace scorer of any gated Pyro
model (:mod:`l0bayes.gates.laplace`) are scorers; :func:`enumerate_models`,
:func:`~l0bayes.model_space.chains.run_chains` and
:func:`~l0bayes.model_space.local_search.climb` serve them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy.special import logsumexp

from l0bayes.validation import check_count


class ModelScorer(Protocol):
    """What the chains need of a posterior over models :math:`\\gamma \\in \\{0, 1\\}^p`."""

    p: int

    def log_posterior(self, inside: np.ndarray) -> float:
        """:math:`\\log p(y \\mid \\gamma) + \\log p(\\gamma)` + const (bool ``(p,)``)."""
        ...

    def neighbours(self, insides: np.ndarray, log_posts: np.ndarray) -> np.ndarray:
        """The log posteriors ``(m, p)`` of the single-flip neighbours of each row of
        ``insides`` (bool ``(m, p)``), whose own log posteriors are ``log_posts``."""
        ...

    def score(self, models: np.ndarray) -> np.ndarray:
        """The log posteriors ``(m,)`` of the rows of a bool matrix ``(m, p)``."""
        ...


def model_key(inside: np.ndarray) -> bytes:
    """A hashable key of a bool model vector."""
    return np.packbits(inside).tobytes()


@dataclass(frozen=True)
class Enumeration:
    r"""The exact posterior over all :math:`2^p` models.

    :param inclusion_probs: PIPs :math:`P(\gamma_j = 1 \mid y)`, shape ``(p,)``.
    :param model_size_probs: :math:`P(|\gamma| = k \mid y)`, ``k = 0..p``.
    :param top_models: ``(mask, probability)`` of the most probable models, best first.
    :param log_evidence: :math:`\log \sum_\gamma p(\gamma) \mathrm{BF}(\gamma : \emptyset)`.
    :param log_posterior: :math:`\log p(\gamma \mid y)` indexed by the bitmask
        :math:`\sum_j \gamma_j 2^j`.
    """

    inclusion_probs: np.ndarray
    model_size_probs: np.ndarray
    top_models: list[tuple[np.ndarray, float]]
    log_evidence: float
    log_posterior: np.ndarray = field(repr=False)

    @classmethod
    def from_log_joint(cls, log_joint: np.ndarray, top: int = 10) -> Enumeration:
        r"""The posterior from :math:`\log p(\gamma) + \log p(y \mid \gamma)` (up to one
        constant) of all :math:`2^p` models, indexed by the bitmask :math:`\sum_j
        \gamma_j 2^j`: normalised by its log-sum-exp, the evidence."""
        p = int(np.log2(len(log_joint)))
        log_evidence = float(logsumexp(log_joint))
        log_post = np.asarray(log_joint, dtype=float) - log_evidence
        probs = np.exp(log_post)
        powers = 1 << np.arange(p, dtype=np.int64)
        bits = (np.arange(2**p, dtype=np.int64)[:, None] & powers[None, :]) != 0
        order = np.argsort(-log_post, kind="stable")[: check_count("top", top, minimum=0)]
        return cls(
            inclusion_probs=probs @ bits,
            model_size_probs=np.bincount(bits.sum(axis=1), weights=probs, minlength=p + 1),
            top_models=[(bits[i].copy(), float(probs[i])) for i in order],
            log_evidence=log_evidence,
            log_posterior=log_post,
        )


def enumerate_models(scorer: ModelScorer, top: int = 10) -> Enumeration:
    """The exact posterior over all :math:`2^p` models of a scorer (``scorer.p <= 20``)."""
    if scorer.p > 20:
        raise ValueError(f"enumerating 2^{scorer.p} models: more than 2^20")
    bits = ((np.arange(2**scorer.p)[:, None] >> np.arange(scorer.p)) & 1).astype(bool)
    return Enumeration.from_log_joint(scorer.score(bits), top)


__all__ = ["Enumeration", "ModelScorer", "enumerate_models", "model_key"]
