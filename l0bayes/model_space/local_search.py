r"""Flip-and-swap local search over models: the missed-mass check of every corrected posterior.

From a model :math:`\gamma`, :func:`climb` moves to the best of the :math:`p + k(p - k)` models
one flip (add or drop) or one swap (drop one, add another) away while it improves
:math:`\log p(y \mid \gamma) + \log p(\gamma)`; a swap trades a feature for a correlated
substitute, which no single flip can do without passing a worse model. A climb that ends far
above every model a guide proposed shows mass the guide never saw
(:data:`~l0bayes.model_space.diagnostics.MISSED_MASS_NATS`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from l0bayes.validation import check_count


def flip_swap_neighbourhood(model: np.ndarray) -> np.ndarray:
    """Every model one flip (add or drop) or one swap (drop one, add another) away."""
    p = model.size
    flips = model[None, :] ^ np.eye(p, dtype=bool)
    inside, outside = np.flatnonzero(model), np.flatnonzero(~model)
    swaps = np.repeat(model[None, :], inside.size * outside.size, axis=0)
    rows = np.arange(len(swaps))
    swaps[rows, np.repeat(inside, outside.size)] = False
    swaps[rows, np.tile(outside, inside.size)] = True
    return np.concatenate([flips, swaps])


def climb(
    score: Callable[[np.ndarray], np.ndarray], start: np.ndarray, *, max_steps: int = 100
) -> tuple[np.ndarray, float]:
    r"""Best-improvement ascent of ``score`` (log posteriors ``(m,)`` of bool models
    ``(m, p)``) from ``start`` over :func:`flip_swap_neighbourhood`: every step scores the
    neighbours and moves to the best while it improves. Returns the local optimum and its
    score."""
    here = np.asarray(start, dtype=bool).copy()
    value = float(score(here[None])[0])
    for _ in range(check_count("max_steps", max_steps)):
        neighbours = flip_swap_neighbourhood(here)
        scores = score(neighbours)
        best = int(np.argmax(scores))
        if not scores[best] > value:
            break
        here, value = neighbours[best], float(scores[best])
    return here, value


__all__ = ["climb", "flip_swap_neighbourhood"]
