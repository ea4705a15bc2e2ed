r"""The posterior over gate structures of a gated Pyro model: what the guide's inclusion
probabilities should have been.

A mean-field guide reads one mode. Its gate probabilities are biased when predictors are
correlated (it cannot say "one of these two"), and a gate that ends stuck at 0 or 1 is never
revisited: a different initialisation can end in a different mode. So
:func:`posterior_inclusion_probs` (also ``guide.posterior_inclusion_probs(model, *args)``)
computes the posterior over structures :math:`\gamma` with the same model-space engine as
:class:`~l0bayes.L0Regression`, over the Laplace evidences of
:class:`~l0bayes.gates.laplace.GatedLaplaceScorer`:

.. math::

    P(\gamma_j = 1 \mid y) = \sum_\gamma \gamma_j\, p(\gamma \mid y), \qquad
    p(\gamma \mid y) \propto \hat p(y, \gamma).

* ``method="enumerate"`` (the default for :math:`G \le` :data:`ENUMERATION_LIMIT` gates):
  every one of the :math:`2^G` structures is scored; exact up to Laplace's approximation, and
  independent of the guide.
* ``method="chains"`` (beyond): weighted tempered Gibbs chains over the structures
  (:func:`~l0bayes.model_space.run_chains`), started from the guide's best distinct draws and
  from their best single-flip neighbours, so that a gate stuck in the guide is flipped and
  scored at once. The chains continue while a diagnostic of
  :func:`~l0bayes.model_space.diagnose` fires (up to eight times their first length). Then a
  flip-and-swap climb (:func:`~l0bayes.model_space.climb`) from the best structure they
  visited looks for mass outside the explored set.

``pip_diagnostics`` says how the probabilities were computed, with a list of warnings, each
naming its diagnostic (``ess``, ``pip_spread``, ``rhat``, ``missed_mass``, ``laplace``); each
warning is also raised as a ``RuntimeWarning``. ``guide_gap`` is the best structure's log
evidence minus that of the best structure the guide drew: a large gap says that the raw guide
should not be read.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from pyro import poutine
from tqdm.auto import tqdm

from l0bayes.gates.laplace import GatedLaplaceScorer
from l0bayes.model_space import (
    MISSED_MASS_NATS,
    MC3Result,
    climb,
    diagnose,
    enumerate_models,
    run_chains,
)
from l0bayes.validation import check_choice, check_count

#: The most gates (or groups) whose :math:`2^G` structures ``method="auto"`` enumerates.
ENUMERATION_LIMIT = 16
METHODS = ("auto", "enumerate", "chains")
#: Structures drawn from the guide to start the chains and to measure ``guide_gap``.
GUIDE_DRAWS = 1000


@dataclass(frozen=True)
class GatePosterior:
    r"""The posterior over the gate structures of a gated model.

    :param inclusion_probs: :math:`P(z_g \ne 0 \mid y)` per ``gated`` name, shaped like
        :meth:`~l0bayes.gates.AutoL0Guide.inclusion_probs`.
    :param variational_inclusion_probs: the guide's own :math:`P_q(z_g \ne 0)`.
    :param model_size_probs: :math:`P(|\gamma| = k \mid y)`, ``k = 0..G``.
    :param top_models: the most probable structures (enumeration) or the best visited
        (chains), as ``({name: bool gates}, probability or None)``.
    :param pip_diagnostics: how they were computed and the warnings (module docstring).
    """

    inclusion_probs: dict[str, torch.Tensor]
    variational_inclusion_probs: dict[str, torch.Tensor]
    model_size_probs: np.ndarray
    top_models: list[tuple[dict[str, torch.Tensor], float | None]]
    pip_diagnostics: dict


def _guide_draws(guide, names: list[str], num: int, seed: int) -> np.ndarray:
    """``num`` structures drawn from the guide, bool ``(num, G)`` in the scorer's order."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        draws = guide.sample_structures(num)
    return np.concatenate([draws[name].cpu().numpy() for name in names], axis=1)


def _starts(scorer: GatedLaplaceScorer, draws: np.ndarray, n_chains: int) -> np.ndarray:
    """Half the chains from the guide's best distinct draws, half from the best single-flip
    neighbours of those draws that the guide did not draw (a stuck gate flipped)."""
    unique, counts = np.unique(draws, axis=0, return_counts=True)
    frequent = unique[np.argsort(-counts, kind="stable")[: 2 * n_chains]]
    scores = scorer.score(frequent)
    best = frequent[np.argsort(-scores, kind="stable")]
    seen = {row.tobytes() for row in unique}
    starts = list(best[: (n_chains + 1) // 2])
    for row in best:
        flipped = row[None, :] ^ np.eye(scorer.p, dtype=bool)
        for j in np.argsort(-scorer.neighbours(row[None])[0], kind="stable"):
            if flipped[j].tobytes() not in seen:
                starts.append(flipped[j])
                seen.add(flipped[j].tobytes())
                break
        if len(starts) == n_chains:
            break
    while len(starts) < n_chains:  # too few distinct draws: the empty structure, then random
        starts.append(np.zeros(scorer.p, bool) if len(starts) % 2 else best[0].copy())
    return np.array(starts[:n_chains])


def _chain_diagnostics(res: MC3Result) -> dict:
    return {
        "method": "laplace-chains",
        "pip_spread": res.pip_spread,
        "rhat": res.rhat,
        "ess": res.ess_log_posterior,
        "n_models": res.n_models,
        "warnings": diagnose(res),
    }


def _run_chains(scorer, starts, n_iter: int, seed: int, progress: bool) -> MC3Result:
    with tqdm(total=len(starts) * n_iter, desc="model-space chains", disable=not progress,
              leave=False, mininterval=1.0) as bar:  # fmt: skip

        def enough(result: MC3Result) -> bool:
            if not diagnose(result):
                return True
            bar.total = len(starts) * 2 * result.n_iter
            bar.refresh()
            return False

        return run_chains(
            scorer, starts, n_iter=n_iter, max_iter=8 * n_iter, enough=enough,
            sampler="tempered", seed=seed, progress=bar.update,
        )  # fmt: skip


def _check_same_observations(model: Callable, guide, args: tuple, kwargs: dict) -> None:
    """Refuse data that leave a site latent that was observed when the guide was fitted (a
    response forgotten: it would be integrated out, and the PIPs would be the prior's)."""
    if getattr(guide, "prototype_trace", None) is None:
        raise ValueError("the guide has not been run yet: fit it (or call it once) first")
    with poutine.block(), torch.random.fork_rng(devices=[]):  # the user's stream untouched
        now = poutine.trace(model).get_trace(*args, **kwargs)
    missing = [
        name
        for name in guide.observed_sites
        if name not in now.nodes or not now.nodes[name]["is_observed"]
    ]
    if missing:
        raise ValueError(
            f"the site(s) {missing} were observed when the guide was fitted but are latent "
            "with these arguments: pass the same data (e.g. y) as to the fit"
        )


def missed_mass(scorer: GatedLaplaceScorer, best: np.ndarray, best_score: float) -> str | None:
    """The warning of a flip-and-swap climb from the chains' best structure ``best`` (log
    evidence ``best_score``) that ends more than
    :data:`~l0bayes.model_space.MISSED_MASS_NATS` above it, else ``None``."""
    _, climbed = climb(scorer.score, best)
    gap = climbed - best_score
    if gap <= MISSED_MASS_NATS:
        return None
    return (
        f"missed_mass: a flip-and-swap climb from the chains' best structure found one "
        f"{gap:.1f} nats more probable (> {MISSED_MASS_NATS}); structures outside the explored "
        "set carry mass: run longer chains (num_iter)"
    )


def posterior_inclusion_probs(
    model: Callable,
    guide,
    *args,
    method: str = "auto",
    num_chains: int = 4,
    num_iter: int | None = None,
    seed: int = 0,
    progress: bool = True,
    **kwargs,
) -> GatePosterior:
    r"""The posterior inclusion probabilities of a gated model (module docstring).

    :param model: the Pyro model the guide was fitted to (any gated model whose other latent
        sites are continuous).
    :param guide: its fitted :class:`~l0bayes.gates.AutoL0Guide`.
    :param args: the model's positional arguments (the data).
    :param method: ``"auto"``, ``"enumerate"`` or ``"chains"``.
    :param num_chains: chains for ``"chains"``.
    :param num_iter: first length of each chain (default :math:`\max(2000, 100 G)`).
    :param seed: seeds the guide's draws and the chains.
    :param progress: show progress bars.
    :param kwargs: the model's keyword arguments.
    """
    check_choice("method", method, METHODS)
    num_chains = check_count("num_chains", num_chains)
    _check_same_observations(model, guide, args, kwargs)
    medians = guide.median(*args, **kwargs)
    with tqdm(desc="Laplace fits of gate structures", disable=not progress, leave=False,
              mininterval=1.0) as bar:  # fmt: skip
        scorer = GatedLaplaceScorer(model, args, kwargs, init=medians, progress=bar.update)
        names = [name for _, name, _ in scorer.gates]
        draws = _guide_draws(guide, names, GUIDE_DRAWS, seed)
        G = scorer.p
        if method == "auto":
            method = "enumerate" if G <= ENUMERATION_LIMIT else "chains"
        if method == "enumerate":
            if G > 20:
                raise ValueError(f"enumerating 2^{G} gate structures: use method='chains'")
            bar.total = 2**G
            post = enumerate_models(scorer)
            pips, sizes = post.inclusion_probs, post.model_size_probs
            top = [(m, q) for m, q in post.top_models]
            best = float(np.max(post.log_posterior) + post.log_evidence)
            diagnostics = {"method": "laplace-enumerate", "n_models": 2**G, "warnings": []}
        else:
            n_iter = check_count("num_iter", num_iter) if num_iter else max(2000, 100 * G)
            res = _run_chains(scorer, _starts(scorer, draws, num_chains), n_iter, seed, progress)
            pips, sizes = res.inclusion_probs, res.model_size_probs
            top, best = [(res.best_model, None)], res.best_log_posterior
            diagnostics = _chain_diagnostics(res)
            missed = missed_mass(scorer, res.best_model, res.best_log_posterior)
            if missed:
                diagnostics["warnings"].append(missed)
        best_draw = float(scorer.score(np.unique(draws, axis=0)).max())
    diagnostics["guide_gap"] = best - best_draw
    diagnostics["laplace_failures"] = scorer.failures
    if scorer.failures:
        diagnostics["warnings"].append(
            f"laplace: the mode of {scorer.failures} gate structure(s) was not found; they "
            "were given no mass"
        )
    for message in diagnostics["warnings"]:
        warnings.warn(
            f"the inclusion probabilities may be wrong: {message}", RuntimeWarning, stacklevel=2
        )
    shapes = {name: shape for _, name, shape in scorer.gates}

    def per_name(values: np.ndarray, dtype=torch.float64) -> dict[str, torch.Tensor]:
        return {
            name: torch.as_tensor(part, dtype=dtype).reshape(shapes[name])
            for name, part in scorer.split(values).items()
        }

    return GatePosterior(
        inclusion_probs=per_name(pips),
        variational_inclusion_probs={k: guide.inclusion_probs()[k] for k in names},
        model_size_probs=np.asarray(sizes),
        top_models=[(per_name(m, torch.bool), q) for m, q in top],
        pip_diagnostics=diagnostics,
    )


__all__ = [
    "ENUMERATION_LIMIT",
    "GUIDE_DRAWS",
    "METHODS",
    "GatePosterior",
    "missed_mass",
    "posterior_inclusion_probs",
]
