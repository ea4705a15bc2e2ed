r"""Exact spike-and-slab linear regression posterior, enumerating all :math:`2^p` models.

Model (Gaussian family, known noise scale :math:`\sigma`):

.. math::

    y_i = b + \sum_j \gamma_j \beta_j x_{ij} + \varepsilon_i, \qquad
    \varepsilon_i \sim N(0, \sigma^2), \qquad
    p(b) \propto 1, \qquad
    \beta_j \mid \gamma_j = 1 \sim N(0, s_j^2), \qquad \gamma_j \in \{0, 1\}.

The prior on :math:`\gamma` is either iid Bernoulli(:math:`\pi`),
:math:`p(\gamma) = \pi^k (1 - \pi)^{p - k}`, or beta-binomial with :math:`\pi \sim
\mathrm{Beta}(a, b)` integrated out, :math:`p(\gamma) = B(a + k, b + p - k) / B(a, b)`, where
:math:`k = \sum_j \gamma_j`.

**Flat intercept = centring.** Substituting :math:`b' = b + \bar x^\top \beta` (a shift with unit
Jacobian, so :math:`b'` is again flat and independent of :math:`\beta`) turns the model into
:math:`y = b' \mathbf 1 + X_c \beta + \varepsilon` with column-centred :math:`X_c`. As
:math:`X_c^\top \mathbf 1 = 0`, the covariance :math:`\Sigma_\gamma = \sigma^2 I +
X_{c\gamma} S_\gamma X_{c\gamma}^\top` has :math:`\mathbf 1` as an eigenvector with eigenvalue
:math:`\sigma^2`. Rotating onto :math:`[\mathbf 1 / \sqrt n, U]` (:math:`U` an orthonormal basis of
:math:`\mathbf 1^\perp`) splits the likelihood, and the flat intercept integrates out exactly:

.. math::

    \int N_n(y; b \mathbf 1 + X_\gamma \beta_\gamma, \sigma^2 I)\, p(\beta_\gamma)\,
    d\beta_\gamma\, db
    = \frac{1}{\sqrt n}\, N_{n-1}\!\left(U^\top y;\, 0,\, \sigma^2 I
      + U^\top X_{c\gamma} S_\gamma X_{c\gamma}^\top U\right).

The factor :math:`n^{-1/2}` does not depend on :math:`\gamma`, and the right-hand side depends on
the data only through the centred :math:`X_c, y_c`. With :math:`G = X_c^\top X_c`,
:math:`g = X_c^\top y_c` and :math:`A_\gamma = G_\gamma + \sigma^2 S_\gamma^{-1}`, the Woodbury
identity and the matrix determinant lemma give

.. math::

    \log p(y \mid \gamma) = -\tfrac12 \log n - \tfrac{n-1}{2} \log(2 \pi \sigma^2)
      - \tfrac12 \log\det\!\left(I + S_\gamma^{1/2} G_\gamma S_\gamma^{1/2} / \sigma^2\right)
      - \frac{1}{2 \sigma^2}\left(y_c^\top y_c - g_\gamma^\top A_\gamma^{-1} g_\gamma\right).

This is the marginal likelihood with the intercept integrated against the flat prior of unit
density (Lebesgue measure :math:`db`), so ``log_evidence`` is an absolute number given that
convention; adding :math:`\tfrac12 \log n` gives the density of the :math:`n - 1` contrasts
:math:`U^\top y`. The posterior of :math:`\beta_\gamma` given :math:`\gamma` has mean
:math:`m_\gamma = A_\gamma^{-1} g_\gamma` and :math:`E[b \mid y] = \bar y - \bar x^\top E[\beta
\mid y]`.

**Computation.** With :math:`M_\gamma = I + S_\gamma^{1/2} G_\gamma S_\gamma^{1/2} / \sigma^2`
(eigenvalues :math:`\ge 1`) and :math:`h = S^{1/2} g`, we have :math:`A_\gamma = \sigma^2
S_\gamma^{-1/2} M_\gamma S_\gamma^{-1/2}`, hence :math:`g_\gamma^\top A_\gamma^{-1} g_\gamma =
h_\gamma^\top M_\gamma^{-1} h_\gamma / \sigma^2` and :math:`m_\gamma = S_\gamma^{1/2}
M_\gamma^{-1} h_\gamma / \sigma^2`. Models are batched by size :math:`k`; the :math:`k \times k`
blocks of :math:`M` are gathered, factorised with a batched Cholesky in float64, and the
log-determinant is :math:`2 \sum_i \log L_{ii}`. The cost depends on :math:`n` only through
forming :math:`G` and :math:`g`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import logsumexp

from l0bayes.device import resolve_device
from l0bayes.linear_model.model_size import (
    PriorInclusion,
    check_prior_inclusion,
    log_prior_by_size,
    pi_posterior,
)
from l0bayes.linear_model.stats import GaussianStats
from l0bayes.model_space.scorer import Enumeration, support_batches
from l0bayes.validation import as_float_array, check_count, check_positive, checks_Xy

__all__ = [
    "ExactPosterior",
    "exact_posterior",
    "log_marginal_likelihoods",
]

_DTYPE = torch.float64
# Elements of one batched k-by-k block tensor (x 8 bytes): bounds memory to a few hundred MB.
_CHUNK_ELEMENTS = 1 << 22
_CALIBRATION_MODELS = 2048
_CALIBRATION_MAX_K = 20


@dataclass
class ExactPosterior:
    """Exact posterior summaries of the spike-and-slab regression (see module docstring)."""

    inclusion_probs: np.ndarray
    model_size_probs: np.ndarray
    top_models: list[tuple[np.ndarray, float]]
    coef_mean: np.ndarray
    intercept: float
    log_evidence: float
    log_model_probs: np.ndarray
    prior_inclusion_mean: float
    prior_inclusion_interval: tuple[float, float]
    elapsed: float


@dataclass
class _SlabTerms:
    """The torch tensors of the raw slab, derived from the one accumulator
    (:class:`~l0bayes.linear_model.stats.GaussianStats`): scaled Gram ``B = S^½ G S^½ / σ²``
    and ``h = S^½ g``, with ``yy`` = y_cᵀy_c, the constant ``c`` and the means."""

    B: torch.Tensor
    h: torch.Tensor
    slab: torch.Tensor
    sigma2: float
    yy: float
    const: float
    x_mean: np.ndarray
    y_mean: float


@dataclass
class _Block:
    """One batch of models of equal size ``k``: ids, supports, log-likelihoods, means."""

    ids: torch.Tensor
    support: torch.Tensor
    loglik: torch.Tensor
    coef: torch.Tensor


# ----------------------------------------------------------------------------- validation


def _check_noise(noise_scale: float) -> float:
    sigma = check_positive("noise_scale", noise_scale)
    if not 0.0 < sigma * sigma < math.inf:  # (sigma ** 2 raises OverflowError)
        raise ValueError(
            f"noise_scale={noise_scale!r} is too extreme: its square is not a positive float64; "
            "rescale y (and noise_scale with it)"
        )
    return sigma


def _check_slab(slab_scale: float | np.ndarray, p: int) -> np.ndarray:
    slab = as_float_array(slab_scale, "slab_scale")
    if slab.ndim == 0:
        slab = np.full(p, float(slab))
    if slab.shape != (p,):
        raise ValueError(
            f"slab_scale must be a scalar or have one entry per feature (shape ({p},)); "
            f"got shape {slab.shape}."
        )
    if not (np.all(np.isfinite(slab)) and np.all(slab > 0)):
        raise ValueError(
            f"slab_scale must be finite and > 0 for every feature; got {slab_scale!r}."
        )
    return slab


def _check_size(p: int, max_features: int, device: torch.device) -> None:
    if p <= check_count("max_features", max_features, minimum=0):
        return
    seconds = _seconds_per_model(device) * 2.0 ** min(p, 1000)
    raise ValueError(
        f"p={p} means {_sci(p * math.log10(2))} models, about {_duration(seconds)}; "
        f"pass max_features={p} to force it, or use L0Regression(method='svi')."
    )


def _seconds_per_model(device: torch.device) -> float:
    r"""Measured wall time per model on a synthetic problem with :math:`k = 10` (mid-size)."""
    p = _CALIBRATION_MAX_K
    stats = _SlabTerms(
        B=torch.eye(p, dtype=_DTYPE, device=device) * 0.5,
        h=torch.ones(p, dtype=_DTYPE, device=device),
        slab=torch.ones(p, dtype=_DTYPE, device=device),
        sigma2=1.0,
        yy=1.0,
        const=0.0,
        x_mean=np.zeros(p),
        y_mean=0.0,
    )
    rand = torch.rand(_CALIBRATION_MODELS, p, device=device)
    support = rand.argsort(dim=1)[:, : p // 2].sort(dim=1).values
    start = time.perf_counter()
    _solve(stats, support)
    return (time.perf_counter() - start) / _CALIBRATION_MODELS


def _sci(log10_value: float) -> str:
    exponent = math.floor(log10_value)
    mantissa = round(10 ** (log10_value - exponent), 1)
    if mantissa >= 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa:.1f}e{exponent}"


def _duration(seconds: float) -> str:
    units = (("years", 365.25 * 86400), ("days", 86400), ("hours", 3600), ("minutes", 60))
    for name, size in units:
        if seconds >= 2 * size:
            return f"{seconds / size:.3g} {name}"
    return f"{seconds:.2g} seconds"


# ---------------------------------------------------------------------------- computation


def _slab_terms(
    stats: GaussianStats, sigma: float, slab: np.ndarray, device: torch.device
) -> _SlabTerms:
    r"""Form :math:`B = S^{1/2} G S^{1/2} / \sigma^2`, :math:`h = S^{1/2} g` from the centred
    statistics.

    .. math::

        G = X_c^\top X_c, \quad g = X_c^\top y_c, \quad
        c = -\tfrac12 \log n - \tfrac{n - 1}{2} \log(2 \pi \sigma^2).
    """
    n = stats.n
    sigma2 = sigma**2
    B = slab[:, None] * stats.gram * slab[None, :] / sigma2
    h = slab * stats.xty
    as_tensor = torch.as_tensor
    return _SlabTerms(
        B=as_tensor(B, dtype=_DTYPE, device=device),
        h=as_tensor(h, dtype=_DTYPE, device=device),
        slab=as_tensor(slab, dtype=_DTYPE, device=device),
        sigma2=sigma2,
        yy=stats.yty,
        const=-0.5 * math.log(n) - 0.5 * (n - 1) * math.log(2 * math.pi * sigma2),
        x_mean=stats.x_mean.copy(),
        y_mean=stats.y_mean,
    )


def _solve(stats: _SlabTerms, support: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Log-likelihoods and conditional means for a batch of supports of equal size.

    .. math::

        M = L L^\top, \quad \log\det M = 2 \sum_i \log L_{ii}, \quad
        z = M^{-1} h_\gamma, \quad m_\gamma = s_\gamma \odot z / \sigma^2,

        \log p(y \mid \gamma) = c - \tfrac12 \log\det M
            - \frac{1}{2 \sigma^2}\left(y_c^\top y_c - h_\gamma^\top z / \sigma^2\right).
    """
    k = support.shape[1]
    eye = torch.eye(k, dtype=_DTYPE, device=support.device)
    M = stats.B[support[:, :, None], support[:, None, :]] + eye
    L, info = torch.linalg.cholesky_ex(M)
    if bool((info != 0).any()):
        raise FloatingPointError("Cholesky failed on I + S^1/2 G S^1/2 / sigma^2 (not PD).")
    h = stats.h[support]
    z = torch.cholesky_solve(h.unsqueeze(-1), L).squeeze(-1)
    logdet = 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
    fit = (h * z).sum(-1) / stats.sigma2
    loglik = stats.const - 0.5 * logdet - 0.5 * (stats.yy - fit) / stats.sigma2
    return loglik, stats.slab[support] * z / stats.sigma2


def _iter_blocks(stats: _SlabTerms) -> Iterator[_Block]:
    """Every model exactly once, in chunks of equal size ``k`` that bound memory (the walk
    of :func:`~l0bayes.model_space.scorer.support_batches`)."""
    p, device = stats.h.shape[0], stats.h.device
    empty = torch.zeros((1, 0), dtype=torch.int64, device=device)
    null_loglik = torch.tensor([stats.const - 0.5 * stats.yy / stats.sigma2], dtype=_DTYPE)
    yield _Block(empty.sum(1), empty, null_loglik.to(device), empty.to(_DTYPE))
    powers = 2 ** torch.arange(p, device=device)
    for k in range(1, p + 1):
        for idx in support_batches(p, k, max(1, _CHUNK_ELEMENTS // (k * k))):
            support = torch.from_numpy(idx).to(device=device, dtype=torch.int64)
            loglik, coef = _solve(stats, support)
            yield _Block(powers[support].sum(1), support, loglik, coef)


def _prepare(
    X: np.ndarray,
    y: np.ndarray,
    noise_scale: float,
    slab_scale: float | np.ndarray,
    max_features: int | None,
    device: str | torch.device,
) -> _SlabTerms:
    """The slab's terms of checked ``X``, ``y`` (n >= 2 rows) and the checked
    settings."""
    sigma = _check_noise(noise_scale)
    slab = _check_slab(slab_scale, X.shape[1])
    device = resolve_device(device)
    if max_features is not None:  # None: the caller scores chosen models, not all 2^p
        _check_size(X.shape[1], max_features, device)
    return _slab_terms(GaussianStats.from_checked(X, y), sigma, slab, device)


@checks_Xy(min_samples=2)  # n >= 2: the flat intercept
def log_marginal_likelihoods(
    X: np.ndarray,
    y: np.ndarray,
    noise_scale: float,
    slab_scale: float | np.ndarray = 1.0,
    *,
    max_features: int = 20,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    r"""Log marginal likelihood :math:`\log p(y \mid \gamma)` of each of the :math:`2^p` models.

    Entry :math:`i` is the model whose bit :math:`j` is :math:`\gamma_j`. The intercept is
    integrated against a flat prior of unit density, so (see the module docstring)

    .. math::

        \log p(y \mid \gamma) = -\tfrac12 \log n - \tfrac{n-1}{2} \log(2 \pi \sigma^2)
          - \tfrac12 \log\det\!\left(I + S_\gamma^{1/2} G_\gamma S_\gamma^{1/2} / \sigma^2\right)
          - \frac{1}{2 \sigma^2}\left(y_c^\top y_c - g_\gamma^\top A_\gamma^{-1} g_\gamma\right).
    """
    stats = _prepare(X, y, noise_scale, slab_scale, max_features, device)
    out = torch.empty(2 ** stats.h.shape[0], dtype=_DTYPE, device=stats.h.device)
    for block in _iter_blocks(stats):
        out[block.ids] = block.loglik
    return out.cpu().numpy()


# ------------------------------------------------------------------------------ posterior


class _WeightedMean:
    r"""Streaming :math:`\sum_\gamma w_\gamma m_\gamma` with :math:`w \propto e^{\ell}`.

    Keeps :math:`\mathrm{acc} = \sum e^{\ell_\gamma - r} m_\gamma` with :math:`r` the running
    maximum of :math:`\ell`, so no un-normalised log weight is ever exponentiated.
    """

    def __init__(self, p: int, device: torch.device) -> None:
        self.acc = torch.zeros(p, dtype=_DTYPE, device=device)
        self.ref = -math.inf

    def add(self, logw: torch.Tensor, support: torch.Tensor, coef: torch.Tensor) -> None:
        ref = max(self.ref, float(logw.max()))
        self.acc *= math.exp(self.ref - ref)
        weighted = torch.exp(logw - ref).unsqueeze(-1) * coef
        self.acc.index_add_(0, support.reshape(-1), weighted.reshape(-1))
        self.ref = ref

    def mean(self, log_normaliser: float) -> np.ndarray:
        return (self.acc * math.exp(self.ref - log_normaliser)).cpu().numpy()


def _posterior_models(stats: _SlabTerms, log_prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Unnormalised log posterior :math:`\log p(y \mid \gamma) + \log p(\gamma)` of all models
    (indexed by the bitmask :math:`\sum_j \gamma_j 2^j`), and the streamed
    :math:`E[\gamma \beta \mid y]`."""
    p, device = stats.h.shape[0], stats.h.device
    log_post = torch.empty(2**p, dtype=_DTYPE, device=device)
    coef = _WeightedMean(p, device)
    for block in _iter_blocks(stats):
        logw = block.loglik + float(log_prior[block.support.shape[1]])
        log_post[block.ids] = logw
        coef.add(logw, block.support, block.coef)
    log_post_np = log_post.cpu().numpy()
    return log_post_np, coef.mean(float(logsumexp(log_post_np)))


@checks_Xy(min_samples=2)  # n >= 2: the flat intercept
def exact_posterior(
    X: np.ndarray,
    y: np.ndarray,
    *,
    noise_scale: float,
    slab_scale: float | np.ndarray = 1.0,
    prior_inclusion: PriorInclusion = 0.5,
    max_features: int = 20,
    top: int = 10,
    device: str | torch.device = "cpu",
) -> ExactPosterior:
    r"""Exact posterior over all :math:`2^p` supports of the spike-and-slab regression.

    .. math::

        p(\gamma \mid y) = \frac{p(y \mid \gamma)\, p(\gamma)}
            {\sum_{\gamma'} p(y \mid \gamma')\, p(\gamma')}, \qquad
        E[\gamma_j \beta_j \mid y] = \sum_\gamma p(\gamma \mid y)\, \gamma_j\, (m_\gamma)_j,

    normalised with log-sum-exp; ``log_evidence`` is :math:`\log \sum_\gamma p(y \mid \gamma)
    p(\gamma)` with the intercept integrated against a flat prior of unit density.

    ``prior_inclusion`` is :math:`\pi \in (0, 1)` or ``("beta", a, b)``. Raises ``ValueError``
    on invalid input and when ``p > max_features`` (the message estimates the run time).
    """
    start = time.perf_counter()
    prior = check_prior_inclusion(prior_inclusion)
    top = check_count("top", top, minimum=0)
    stats = _prepare(X, y, noise_scale, slab_scale, max_features, device)
    p = stats.h.shape[0]
    log_post, coef_mean = _posterior_models(stats, log_prior_by_size(prior, p))
    models = Enumeration.from_log_joint(log_post, top)
    pi_mean, pi_interval = pi_posterior(prior, models.model_size_probs)
    return ExactPosterior(
        inclusion_probs=models.inclusion_probs,
        model_size_probs=models.model_size_probs,
        top_models=models.top_models,
        coef_mean=coef_mean,
        intercept=float(stats.y_mean - stats.x_mean @ coef_mean),
        log_evidence=models.log_evidence,
        log_model_probs=models.log_posterior,
        prior_inclusion_mean=pi_mean,
        prior_inclusion_interval=pi_interval,
        elapsed=time.perf_counter() - start,
    )


@checks_Xy(min_samples=2)
def score_supports(
    X: np.ndarray,
    y: np.ndarray,
    supports: np.ndarray,
    *,
    noise_scale: float,
    slab_scale: float | np.ndarray = 1.0,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    r"""Log marginal likelihoods :math:`\log p(y \mid \gamma)` and conditional posterior means
    :math:`E[\beta \mid y, \gamma]` (zeros off the support) of the given models only.

    ``supports`` is a boolean array ``(S, p)``; models are grouped by size and scored with the
    same batched Cholesky as :func:`log_marginal_likelihoods`, so the numbers are identical to
    the corresponding entries of the full enumeration. Use it when :math:`2^p` is too many.
    """
    stats = _prepare(X, y, noise_scale, slab_scale, max_features=None, device=device)
    supports = np.asarray(supports, dtype=bool)
    if supports.ndim != 2 or supports.shape[1] != stats.h.shape[0]:
        raise ValueError(f"supports must be a boolean array (S, p={stats.h.shape[0]})")
    loglik = np.empty(len(supports))
    coef = np.zeros(supports.shape, dtype=np.float64)
    sizes = supports.sum(axis=1)
    loglik[sizes == 0] = stats.const - 0.5 * stats.yy / stats.sigma2
    for k in np.unique(sizes[sizes > 0]):
        rows = np.flatnonzero(sizes == k)
        idx = torch.as_tensor(np.nonzero(supports[rows])[1].reshape(len(rows), k))
        ll, m = _solve(stats, idx.to(stats.h.device))
        loglik[rows] = ll.cpu().numpy()
        block = np.zeros((len(rows), supports.shape[1]))
        np.put_along_axis(block, idx.numpy(), m.cpu().numpy(), axis=1)
        coef[rows] = block
    return loglik, coef
