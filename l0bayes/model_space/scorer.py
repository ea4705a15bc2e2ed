r"""The one scorer protocol of the model-space engine, and the one enumeration over it.

A *model* (or support) is a bool vector :math:`\gamma \in \{0, 1\}^p` (which gates, columns
or groups are open).  A :class:`SupportScorer` maps a batch of them to **log scores**
:math:`s(\gamma)`, larger is better, up to one constant shared by all models:

* a posterior over models: :math:`s(\gamma) = \log p(y \mid \gamma) + \log p(\gamma)`
  (conjugate marginal likelihoods, Laplace approximations, the raw slab);
* an information criterion in nats, :math:`\mathcal C_\lambda(\gamma) = -\ell(\hat\beta_\gamma)
  + \lambda k(\gamma)` (:math:`\tfrac12` AIC for :math:`\lambda = 1`, :math:`\tfrac12` BIC
  for :math:`\lambda = \tfrac12 \log n`): :math:`s(\gamma) = -\mathcal C_\lambda(\gamma)`,
  so that :math:`e^{s}` normalised are the Akaike (Burnham & Anderson 2002) weights
  :math:`\propto e^{-\Delta\mathrm{IC}/2}` and the maximiser is the best subset.

:class:`ModelScorer` adds what the chains need (one model, cached, and the single-flip
neighbourhood); :class:`BatchScorer` derives both from ``score_indices``, the batched score of
supports of equal size given as index arrays, which is what every fast path computes.

The enumeration walks every support once, by size and then in lexicographic order
(:func:`support_batches`), and reduces the scores either to the normalised posterior
(:func:`enumerate_models`, an :class:`Enumeration`) or to the best support
(:func:`best_support`, ties to the first found: the smallest, then lexicographically first).

The conjugate scorers of :mod:`l0bayes.linear_model.model_space`, the Laplace scorer of GLMs
(:mod:`l0bayes.linear_model.laplace`), the information criteria
(:class:`l0bayes.linear_model.selection.CriterionScorer`) and the Laplace scorer of any gated
Pyro model (:mod:`l0bayes.gates.laplace`) are scorers; :func:`enumerate_models`,
:func:`best_support`, :func:`~l0bayes.model_space.chains.run_chains` and
:func:`~l0bayes.model_space.local_search.climb` serve them all.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from scipy.special import logsumexp

from l0bayes.validation import check_count


class SupportScorer(Protocol):
    """The one scorer protocol: bool supports ``(m, p)`` -> log scores ``(m,)`` (module
    docstring: a log posterior up to a constant, or minus a criterion in nats)."""

    p: int

    def score(self, models: np.ndarray) -> np.ndarray:
        """The log scores ``(m,)`` of the rows of a bool matrix ``(m, p)``."""
        ...


class ModelScorer(SupportScorer, Protocol):
    r"""What the chains need of a scorer over models :math:`\gamma \in \{0, 1\}^p`."""

    def log_posterior(self, inside: np.ndarray) -> float:
        r""":math:`\log p(y \mid \gamma) + \log p(\gamma)` + const (bool ``(p,)``)."""
        ...

    def neighbours(self, insides: np.ndarray, log_posts: np.ndarray) -> np.ndarray:
        """The log posteriors ``(m, p)`` of the single-flip neighbours of each row of
        ``insides`` (bool ``(m, p)``), whose own log posteriors are ``log_posts``."""
        ...


def by_size(models: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The rows of a bool matrix ``(m, p)`` grouped by size: ``(rows, idx)`` pairs, ``idx``
    ``(len(rows), k)`` the sorted column indices of each row."""
    sizes = models.sum(axis=1)
    for k in np.unique(sizes):
        rows = np.flatnonzero(sizes == k)
        yield rows, np.nonzero(models[rows])[1].reshape(len(rows), int(k))


class BatchScorer:
    """A :class:`ModelScorer` from ``score_indices(idx)``, the log scores ``(B,)`` of the
    supports ``idx`` ``(B, k)`` of one size: :meth:`score` groups any batch by size,
    :meth:`log_posterior` caches one model, :meth:`neighbours` scores the flips afresh."""

    p: int

    def score_indices(self, idx: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def score(self, models: np.ndarray) -> np.ndarray:
        """The log scores ``(m,)`` of the rows of a bool matrix ``(m, p)``."""
        models = np.atleast_2d(np.asarray(models, dtype=bool))
        if models.ndim != 2 or models.shape[1] != self.p:
            raise ValueError(f"models must be a bool array (m, p={self.p}), got {models.shape}")
        out = np.empty(len(models))
        for rows, idx in by_size(models):
            out[rows] = self.score_indices(idx)
        return out

    def log_posterior(self, inside: np.ndarray) -> float:
        """The log score of one model, cached by model."""
        cache = self.__dict__.setdefault("_cache", {})
        key = model_key(inside)
        if (hit := cache.get(key)) is None:
            hit = cache[key] = float(self.score(inside[None])[0])
        return hit

    def neighbours(self, insides: np.ndarray, log_posts: np.ndarray | None = None) -> np.ndarray:
        """The ``p`` single-flip neighbours of each row, scored afresh in one batch."""
        insides = np.atleast_2d(insides)
        flipped = insides[:, None, :] ^ np.eye(self.p, dtype=bool)
        return self.score(flipped.reshape(-1, self.p)).reshape(len(insides), self.p)


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
        return cls(
            inclusion_probs=bit_marginals(probs, p),
            model_size_probs=np.bincount(model_sizes(p), weights=probs, minlength=p + 1),
            top_models=top_models(log_post, p, top),
            log_evidence=log_evidence,
            log_posterior=log_post,
        )


def bit_marginals(probs: np.ndarray, p: int) -> np.ndarray:
    r""":math:`P(\gamma_j = 1) = \sum_\gamma \gamma_j\, p(\gamma)` of probabilities indexed by
    the bitmask :math:`\sum_j \gamma_j 2^j`, without a :math:`2^p \times p` table: viewed as
    :math:`(2,) \times p`, axis :math:`p - 1 - j` holds bit :math:`j`."""
    cube = probs.reshape((2,) * p)
    return np.array([cube.take(1, axis=p - 1 - j).sum() for j in range(p)])


def model_sizes(p: int) -> np.ndarray:
    """The number of set bits of every bitmask ``0 .. 2^p - 1`` (int8, one pass per bit)."""
    index = np.arange(2**p, dtype=np.int64)
    sizes = np.zeros(2**p, dtype=np.int8)
    for j in range(p):
        sizes += ((index >> j) & 1).astype(np.int8)
    return sizes


def top_models(log_post: np.ndarray, p: int, top: int) -> list[tuple[np.ndarray, float]]:
    """The ``top`` most probable bitmask-indexed models as ``(mask, probability)``, best
    first, ties to the smaller index (what a stable sort of all :math:`2^p` would give, from a
    partition of them)."""
    top = min(check_count("top", top, minimum=0), log_post.size)
    if top == 0:
        return []
    threshold = np.partition(log_post, log_post.size - top)[log_post.size - top]
    candidates = np.flatnonzero(log_post >= threshold)  # increasing index
    order = candidates[np.argsort(-log_post[candidates], kind="stable")][:top]
    powers = 1 << np.arange(p, dtype=np.int64)
    return [((int(i) & powers) != 0, float(np.exp(log_post[i]))) for i in order]


def support_batches(p: int, k: int, rows: int) -> Iterator[np.ndarray]:
    """Every size-``k`` subset of ``range(p)`` once, in lexicographic order, as index arrays
    ``(B, k)`` of at most ``rows`` rows: the one walk over supports of every enumeration."""
    if k == 0:
        yield np.zeros((1, 0), dtype=np.intp)
        return
    combos = itertools.chain.from_iterable(itertools.combinations(range(p), k))
    chunk = max(1, int(rows)) * k
    while (flat := np.fromiter(itertools.islice(combos, chunk), dtype=np.intp)).size:
        yield flat.reshape(-1, k)


def _batch_rows(k: int, elements: int) -> int:
    return max(1, elements // max(k * k, 1))


def _scores(scorer: SupportScorer, idx: np.ndarray) -> np.ndarray:
    if isinstance(scorer, BatchScorer):
        return scorer.score_indices(idx)
    masks = np.zeros((len(idx), scorer.p), dtype=bool)
    np.put_along_axis(masks, idx, True, axis=1)
    return scorer.score(masks)


def scored_supports(
    scorer: SupportScorer, sizes: Iterable[int], elements: int = 1 << 22
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(idx, scores)`` for every support of the given sizes, in batches of equal size
    (``elements`` bounds B k^2, the memory of a batch of k-by-k blocks)."""
    for k in sizes:
        for idx in support_batches(scorer.p, k, _batch_rows(k, elements)):
            yield idx, _scores(scorer, idx)


def enumerate_models(
    scorer: SupportScorer, top: int = 10, max_size: int | None = None
) -> Enumeration:
    r"""The exact posterior over all :math:`2^p` models of a scorer (``scorer.p <= 20``),
    :math:`p(\gamma \mid y) = e^{s(\gamma)} / \sum_{\gamma'} e^{s(\gamma')}`; models with
    more than ``max_size`` entries get probability 0 (unscored)."""
    p = scorer.p
    if p > 20:
        raise ValueError(f"enumerating 2^{p} models: more than 2^20")
    last = p if max_size is None else min(p, max_size)
    log_joint = np.full(2**p, -np.inf)
    powers = 1 << np.arange(p, dtype=np.int64)
    for idx, scores in scored_supports(scorer, range(last + 1)):
        log_joint[powers[idx].sum(axis=1)] = scores
    return Enumeration.from_log_joint(log_joint, top)


def best_support(
    scorer: SupportScorer, max_size: int | None = None, elements: int = 1 << 22
) -> tuple[np.ndarray, float, int]:
    """The maximiser of the scorer over every support of at most ``max_size`` entries (ties
    to the first found: smallest, then lexicographically first), as sorted column indices,
    with its score and the number of supports scored."""
    last = scorer.p if max_size is None else min(scorer.p, max_size)
    best, best_idx, count = -np.inf, np.zeros(0, dtype=np.intp), 0
    for idx, scores in scored_supports(scorer, range(last + 1), elements):
        count += len(idx)
        i = int(np.argmax(scores))
        if scores[i] > best:
            best, best_idx = float(scores[i]), idx[i]
    return best_idx, best, count


__all__ = [
    "BatchScorer",
    "bit_marginals",
    "Enumeration",
    "ModelScorer",
    "SupportScorer",
    "best_support",
    "by_size",
    "enumerate_models",
    "model_key",
    "model_sizes",
    "scored_supports",
    "support_batches",
    "top_models",
]
