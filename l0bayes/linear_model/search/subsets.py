r"""Best subsets over an information criterion: the exhaustive search (the one enumeration of
:func:`~l0bayes.model_space.scorer.best_support` over a
:class:`~l0bayes.linear_model.criteria.CriterionScorer`), the best-improvement local search
that polishes a relaxed solution, and the search over groups of columns (the same enumeration
over a :class:`GroupCriterionScorer` up to ``exhaustive_limit`` groups).  They walk the
likelihood engines of :mod:`l0bayes.linear_model.criteria` without knowing the family.

Each public search checks its input and calls its ``*_checked`` twin, which takes arrays
already checked (the estimator's boundary checks them once) and the penalty λ itself.
"""

from __future__ import annotations

import numpy as np

from l0bayes.linear_model.criteria import (
    BATCH_ELEMENTS,
    IMPROVE_TOL,
    NO_COLUMNS,
    CriterionScorer,
    Likelihood,
    SubsetResult,
    check_support,
    criterion_penalty,
    evaluate_supports,
    make_likelihood,
    penalised,
    subset_result,
)
from l0bayes.model_space.scorer import BatchScorer, best_support
from l0bayes.validation import check_count, check_offset, check_Xy


def best_subset(
    X: np.ndarray,
    y: np.ndarray,
    criterion: str | float = "bic",
    family: str = "gaussian",
    max_features: int = 20,
    offset: np.ndarray | None = None,
) -> SubsetResult:
    r"""Exhaustive search over all :math:`2^p` supports for the minimum criterion: the one
    enumeration (:func:`~l0bayes.model_space.scorer.best_support`) over a
    :class:`CriterionScorer`.

    Minimises :math:`-\ell(S) + \lambda k(S)` with :math:`\lambda = 1` for ``"aic"``,
    :math:`\tfrac12\log n` for ``"bic"``, or ``criterion`` itself when it is a number.
    Supports are enumerated by model size m = 0, ..., p; all :math:`\binom pm` supports of one
    size are scored together by a batched (numpy-vectorised) Cholesky sweep of their
    :math:`(m+1)\times(m+1)` augmented Gram blocks (Gaussian), or by one IRLS fit each
    (Bernoulli; supports whose MLE does not exist are skipped).  Ties go to the first support
    found, hence to the smallest model.

    Raises ``ValueError`` if ``p > max_features``. ``offset``: as in
    :func:`information_criteria`.
    """
    X, y = check_Xy(X, y, family)
    offset = check_offset(offset, len(y))
    p = X.shape[1]
    if p > check_count("max_features", max_features, minimum=0):
        raise ValueError(
            f"best_subset would evaluate 2**{p} = {2**p:,} models, more than max_features ="
            f" {max_features} allows; use local_search from a relaxed solution instead, or raise"
            " max_features if you can afford the enumeration"
        )
    return best_subset_checked(X, y, criterion_penalty(criterion, len(y)), family, offset)


def best_subset_checked(
    X: np.ndarray, y: np.ndarray, lam: float, family: str, offset: np.ndarray | None
) -> SubsetResult:
    """:func:`best_subset` of checked data for the penalty λ = ``lam`` (module docstring)."""
    scorer = make_likelihood(X, y, family, offset)
    criterion_scorer = CriterionScorer.of(scorer, lam)
    best_columns, _, count = best_support(criterion_scorer, elements=BATCH_ELEMENTS)
    return subset_result(scorer, best_columns, n_evaluated=count)


def _drop_one(columns: np.ndarray) -> np.ndarray:
    """Row i is ``columns`` without its i-th entry, shape (k, k - 1)."""
    k = columns.size
    return np.tile(columns, (k, 1))[~np.eye(k, dtype=bool)].reshape(k, max(k - 1, 0))


def _best_move(
    scorer: Likelihood, current: np.ndarray, lam: float
) -> tuple[np.ndarray | None, int]:
    r"""The best neighbour of ``current`` if it improves by more than 1e-10, and the count scored.

    The neighbours are :math:`S \cup j` (add), :math:`S \setminus i` (drop) and
    :math:`S \setminus i \cup j` (swap) for :math:`i \in S`, :math:`j \notin S`.  Two calls of
    the scorer cover them all: the base S grown by every outside column, and the k bases
    :math:`S \setminus i` alone and grown by every outside column.  Ties go to the first
    neighbour in the order adds, drops, swaps.
    """
    outside = np.setdiff1d(np.arange(scorer.p), current)
    dropped = _drop_one(current)
    here = scorer.extend(current[None, :], outside)
    there = scorer.extend(dropped, outside)
    moves = [
        (here.grown_loglik[0], here.grown_k[0], lambda i: np.append(current, outside[i])),
        (there.loglik, there.k, lambda i: dropped[i]),
        (
            there.grown_loglik.ravel(),
            there.grown_k.ravel(),
            lambda i: np.append(dropped[i // outside.size], outside[i % outside.size]),
        ),
    ]
    best_value = penalised(here.loglik, here.k, lam)[0] - IMPROVE_TOL
    best_support = None
    for loglik, k, support_of in moves:
        values = penalised(loglik, k, lam)
        if values.size and values.min() < best_value:
            i = int(np.argmin(values))
            best_value, best_support = values[i], support_of(i)
    return best_support, 1 + sum(move[0].size for move in moves)


def local_search(
    X: np.ndarray,
    y: np.ndarray,
    start: np.ndarray,
    criterion: str | float = "bic",
    family: str = "gaussian",
    max_iter: int = 1000,
    offset: np.ndarray | None = None,
) -> SubsetResult:
    r"""Best-improvement local search on the exact criterion from the support ``start``.

    Each iteration scores every neighbour of the current support S (add one column, drop one,
    swap one in for one out: :math:`p + |S|(p-|S|)` supports) and moves to the one with the
    smallest :math:`-\ell + \lambda k` if that improves on S by more than 1e-10; otherwise S is
    a local optimum and is returned.  For the Gaussian family one iteration costs
    :math:`O(p|S|^3)`: each of the :math:`|S|+1` bases S and :math:`S \setminus i` is swept once and
    every outside column is then added in :math:`O(|S|^2)` (see :class:`_GaussianScorer`).  The
    criterion decreases strictly, so the search terminates; ``max_iter`` only caps the number
    of moves.  The result is never worse than ``start``.  A start whose MLE does not exist
    (Gaussian: :math:`k \ge n`, a perfect fit; Bernoulli: separated data) is replaced by the
    empty support, the intercept-only model.  ``n_evaluated`` counts the supports scored, the
    start and the current one at every iteration included.
    """
    X, y = check_Xy(X, y, family)
    n, p = X.shape
    mask = check_support(start, p)
    lam = criterion_penalty(criterion, n)
    max_iter = check_count("max_iter", max_iter, minimum=0)
    return local_search_checked(X, y, mask, lam, family, check_offset(offset, n), max_iter)


def local_search_checked(
    X: np.ndarray,
    y: np.ndarray,
    start: np.ndarray,
    lam: float,
    family: str,
    offset: np.ndarray | None,
    max_iter: int = 1000,
) -> SubsetResult:
    """:func:`local_search` of checked data from the boolean mask ``start`` for the penalty
    λ = ``lam`` (module docstring)."""
    scorer = make_likelihood(X, y, family, offset)
    current = np.flatnonzero(start)
    n_evaluated = 1
    if not np.isfinite(evaluate_supports(scorer, current[None, :])[0][0]):
        current = NO_COLUMNS  # no MLE at the start: search from the intercept-only model
    for _ in range(max_iter):
        move, scored = _best_move(scorer, current, lam)
        n_evaluated += scored
        if move is None:
            break
        current = np.sort(move)
    return subset_result(scorer, current, n_evaluated)


def check_groups(groups: object, p: int) -> np.ndarray:
    """``groups`` as an int array of length p mapping each column to a group id; the ids are
    relabelled 0..G-1 in order of first appearance."""
    array = np.asarray(groups)
    if array.shape != (p,) or array.dtype.kind not in "iu":
        raise ValueError(
            f"groups must be an integer array of length p = {p} (the group id of each column), "
            f"got dtype {array.dtype} and shape {array.shape}"
        )
    _, first, inverse = np.unique(array, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse].astype(np.intp)


def group_subset(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    criterion: str | float = "bic",
    family: str = "gaussian",
    offset: np.ndarray | None = None,
    start: np.ndarray | None = None,
    exhaustive_limit: int = 12,
    max_iter: int = 1000,
) -> tuple[SubsetResult, bool]:
    r"""Best subset of *groups* of columns (all columns of a group enter together) for the
    criterion :math:`-\ell(S) + \lambda k(S)`, with k counting parameters: a group of s
    independent columns costs :math:`\lambda s`, so AIC and BIC keep their meaning.

    With :math:`G \le` ``exhaustive_limit`` groups all :math:`2^G` group subsets are scored
    by the one enumeration (:func:`~l0bayes.model_space.scorer.best_support` over a
    :class:`GroupCriterionScorer`; ties go to the fewest groups, then to the lexicographically
    first) and the result is the optimum (the returned flag is True); beyond, a
    best-improvement local search (add, drop or swap one group) from ``start`` (a column mask;
    default the empty model) returns a local optimum (flag False). Each support is one exact
    refit.

    :param groups: int (p,), the group id of each column (:func:`check_groups`).
    :returns: the :class:`SubsetResult` (a column mask) and whether it is proven optimal.
    """
    X, y = check_Xy(X, y, family)
    n, p = X.shape
    groups = check_groups(groups, p)
    start = None if start is None else check_support(start, p)
    exhaustive_limit = check_count("exhaustive_limit", exhaustive_limit, minimum=0)
    max_iter = check_count("max_iter", max_iter, minimum=0)
    lam, offset = criterion_penalty(criterion, n), check_offset(offset, n)
    limits = exhaustive_limit, max_iter
    return group_subset_checked(X, y, groups, lam, family, offset, start, *limits)


def group_subset_checked(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    lam: float,
    family: str,
    offset: np.ndarray | None,
    start: np.ndarray | None = None,
    exhaustive_limit: int = 12,
    max_iter: int = 1000,
) -> tuple[SubsetResult, bool]:
    """:func:`group_subset` of checked data (``groups`` from :func:`check_groups`, ``start``
    a boolean mask or None) for the penalty λ = ``lam`` (module docstring)."""
    likelihood = make_likelihood(X, y, family, offset)
    scorer = GroupCriterionScorer(likelihood, groups, lam)
    n_groups, value = scorer.p, scorer.criterion
    if n_groups <= exhaustive_limit:  # the one enumeration (ties: fewest groups, then first)
        best_idx, _, _ = best_support(scorer)
        best = np.zeros(n_groups, dtype=bool)
        best[best_idx] = True
        return subset_result(likelihood, scorer.columns(best), len(scorer.refits)), True
    current = np.zeros(n_groups, dtype=bool)
    if start is not None:
        current = np.array([start[groups == g].any() for g in range(n_groups)])
    if not np.isfinite(value(current)):
        current = np.zeros(n_groups, dtype=bool)
    for _ in range(max_iter):
        inside, outside = np.flatnonzero(current), np.flatnonzero(~current)
        moves = [[g] for g in range(n_groups)] + [[i, o] for i in inside for o in outside]
        best_value, best_move = value(current) - IMPROVE_TOL, None
        for move in moves:
            trial = current.copy()
            trial[move] = ~trial[move]
            if (v := value(trial)) < best_value:
                best_value, best_move = v, trial
        if best_move is None:
            break
        current = best_move
    return subset_result(likelihood, scorer.columns(current), len(scorer.refits)), False


class GroupCriterionScorer(BatchScorer):
    r"""An information criterion over groups of columns as a model scorer
    (:mod:`l0bayes.model_space.scorer`): a model is a set :math:`G` of groups, scored
    :math:`s(G) = \ell(\hat\beta_S) - \lambda\, k(S)` for :math:`S` the columns of its groups
    (minus the penalised criterion, as :class:`CriterionScorer`); one exact refit per model,
    cached.

    :param likelihood: the family's likelihood engine over all columns.
    :param groups: int (p,), the group id of each column (:func:`check_groups`).
    :param lam: the penalty λ per parameter.
    """

    def __init__(self, likelihood: Likelihood, groups: np.ndarray, lam: float) -> None:
        self.likelihood, self.groups, self.lam = likelihood, groups, float(lam)
        self.p = int(groups.max()) + 1
        self.refits: dict[bytes, float] = {}

    def columns(self, mask: np.ndarray) -> np.ndarray:
        """The sorted column indices of the groups in ``mask`` (bool (G,))."""
        return np.flatnonzero(mask[self.groups])

    def criterion(self, mask: np.ndarray) -> float:
        r""":math:`-\ell(\hat\beta_S) + \lambda k(S)` of one group mask (bool (G,)), cached
        (``inf`` where the MLE does not exist)."""
        key = mask.tobytes()
        if key not in self.refits:
            loglik, k = evaluate_supports(self.likelihood, self.columns(mask)[None, :])
            self.refits[key] = float(penalised(loglik, k, self.lam)[0])
        return self.refits[key]

    def score_indices(self, idx: np.ndarray) -> np.ndarray:
        """Minus the criterion of each group support ``idx[b]`` ``(B, m)``."""
        masks = np.zeros((len(idx), self.p), dtype=bool)
        np.put_along_axis(masks, idx, True, axis=1)
        return np.array([-self.criterion(mask) for mask in masks])


__all__ = [
    "GroupCriterionScorer",
    "best_subset",
    "best_subset_checked",
    "check_groups",
    "group_subset",
    "group_subset_checked",
    "local_search",
    "local_search_checked",
]
