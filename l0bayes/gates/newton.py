r"""Modes and Laplace integrals of smooth functions in float64: damped Newton steps with
autograd derivatives (:func:`newton`), and the same from finite differences for a function
that is itself the result of an optimisation (:func:`fd_newton`).

Both minimise an *energy* :math:`E(u)` (a negative log density) and return, at the mode
:math:`\hat u`, :math:`E(\hat u)` and :math:`\log\det \nabla^2 E(\hat u)`, from which

.. math::

    \log \int e^{-E(u)}\, du \approx -E(\hat u) + \tfrac d2 \log 2\pi
        - \tfrac12 \log\det \nabla^2 E(\hat u)

(:func:`laplace_log_integral`). A Newton step solves :math:`H s = g` (with the spectrum of
:math:`H` shifted up to :math:`10^{-3}` where it is indefinite) and is halved until the
Armijo condition holds; the mode is found when the Newton decrement :math:`g^\top H^{-1} g / 2`
is below the tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

#: Newton decrement (nats) below which an autograd mode is found.
TOLERANCE = 1e-10
#: The same for finite-difference derivatives (limited by their accuracy).
FD_TOLERANCE = 1e-5
#: Finite-difference step in the unconstrained space.
FD_STEP = 1e-2
_LOG_2PI = math.log(2.0 * math.pi)

Mode = tuple[float, torch.Tensor, float]
"""``(E(mode), mode, log det of the Hessian)``."""


def energy_at(fn: Callable[[torch.Tensor], torch.Tensor | float], u: torch.Tensor) -> float:
    """``fn(u)`` as a float; ``inf`` where it is not finite or the model refuses ``u`` (e.g. a
    scale that underflowed to 0 in a trial step)."""
    try:
        value = float(fn(u))
    except ValueError:
        return math.inf
    return value if math.isfinite(value) else math.inf


def laplace_log_integral(mode: Mode) -> float:
    r""":math:`\log\int e^{-E}` by Laplace's method from a :data:`Mode`."""
    energy, u, logdet = mode
    return -energy + 0.5 * u.numel() * _LOG_2PI - 0.5 * logdet


def derivatives(energy: Callable[[torch.Tensor], torch.Tensor], u: torch.Tensor):
    """``E(u)``, its gradient and (symmetrised) Hessian by autograd."""
    u = u.detach().requires_grad_(True)
    value = energy(u)
    if u.numel() == 0:
        return value.detach(), u.detach(), u.new_zeros(0, 0)
    (grad,) = torch.autograd.grad(value, u, create_graph=True)
    eye = torch.eye(u.numel(), dtype=u.dtype)
    if not grad.requires_grad:  # E is linear in u
        return value.detach(), grad.detach(), torch.zeros_like(eye)
    (hess,) = torch.autograd.grad(grad, u, eye, is_grads_batched=True)
    return value.detach(), grad.detach(), 0.5 * (hess + hess.T).detach()


def fd_gradient(energy: Callable[[torch.Tensor], float], u: torch.Tensor, step: float = FD_STEP):
    """The central-difference gradient of ``energy`` at ``u`` (``2d`` evaluations), and the
    values at ``u ± step e_i``."""
    eye = torch.eye(u.numel(), dtype=u.dtype) * step
    plus = u.new_tensor([energy(u + e) for e in eye])
    minus = u.new_tensor([energy(u - e) for e in eye])
    return (plus - minus) / (2 * step), plus, minus


def fd_derivatives(energy: Callable[[torch.Tensor], float], u: torch.Tensor, step: float = FD_STEP):
    """``E(u)``, its gradient and Hessian by central differences (``1 + 2d + d(d - 1)``
    evaluations; the off-diagonal terms from the two corners ``u ± step (e_i + e_j)``)."""
    d = u.numel()
    eye = torch.eye(d, dtype=u.dtype) * step
    value = energy(u)
    grad, plus, minus = fd_gradient(energy, u, step)
    hess = torch.diag((plus - 2 * value + minus) / step**2)
    for i in range(d):
        for j in range(i):
            both = energy(u + eye[i] + eye[j]) + energy(u - eye[i] - eye[j])
            mixed = both - plus[i] - minus[i] - plus[j] - minus[j] + 2 * value
            hess[i, j] = hess[j, i] = mixed / (2 * step**2)
    return u.new_tensor(value), grad, hess


def _minimise(derivs, energy, u0: torch.Tensor, max_steps: int, tolerance: float) -> Mode | None:
    u = u0.detach().clone()
    if u.numel() == 0:
        return float(derivs(u)[0]), u, 0.0
    for _ in range(max_steps):
        value, grad, hess = derivs(u)
        if not (math.isfinite(float(value)) and bool(torch.isfinite(hess).all())):
            return None
        chol, info = torch.linalg.cholesky_ex(hess)
        if int(info) == 0:
            step = torch.cholesky_solve(grad[:, None], chol)[:, 0]
            if float(grad @ step) / 2 < tolerance:
                return float(value), u, float(2 * chol.diagonal().log().sum())
        else:  # indefinite: shift the spectrum up
            low = float(torch.linalg.eigvalsh(hess)[0])
            step = torch.linalg.solve(hess + (1e-3 - low) * torch.eye(len(u), dtype=u.dtype), grad)
        slope, t = float(grad @ step), 1.0
        while True:
            trial = u - t * step
            if energy_at(energy, trial) <= float(value) - 1e-4 * t * slope:
                break
            t *= 0.5
            if t < 1e-12:
                return None
        u = trial
    return None


def newton(energy: Callable[[torch.Tensor], torch.Tensor], u0: torch.Tensor, max_steps: int = 100):
    """The mode of ``energy`` (a differentiable torch function) from ``u0`` by damped Newton
    steps with autograd derivatives: a :data:`Mode`, or ``None`` if none was found."""

    def plain(u):
        with torch.no_grad():
            return energy(u)

    return _minimise(lambda u: derivatives(energy, u), plain, u0, max_steps, TOLERANCE)


def fd_newton(energy: Callable[[torch.Tensor], float], u0: torch.Tensor, max_steps: int = 50):
    """The mode of ``energy`` (any smooth function of a few variables, e.g. a Laplace integral
    over other variables) from ``u0``: quasi-Newton steps (BFGS updates of a finite-difference
    Hessian, central-difference gradients), and a fresh finite-difference Hessian to confirm
    the mode and to return: a :data:`Mode` with the Hessian appended, or ``None``."""

    def safe(u):
        return energy_at(energy, u)

    u = u0.detach().clone()
    if u.numel() == 0:
        return safe(u), u, 0.0, u.new_zeros(0, 0)
    value, grad, hess = fd_derivatives(safe, u)
    fresh = True
    for _ in range(max_steps):
        if not (math.isfinite(float(value)) and bool(torch.isfinite(hess).all())):
            return None
        chol, info = torch.linalg.cholesky_ex(hess)
        if int(info) == 0:
            step = torch.cholesky_solve(grad[:, None], chol)[:, 0]
            if float(grad @ step) / 2 < FD_TOLERANCE:
                if fresh:
                    return float(value), u, float(2 * chol.diagonal().log().sum()), hess
                value, grad, hess = fd_derivatives(safe, u)
                fresh = True
                continue
        else:
            low = float(torch.linalg.eigvalsh(hess)[0])
            step = torch.linalg.solve(hess + (1e-3 - low) * torch.eye(len(u), dtype=u.dtype), grad)
        slope, t = float(grad @ step), 1.0
        while True:
            trial = u - t * step
            trial_value = safe(trial)
            if trial_value <= float(value) - 1e-4 * t * slope:
                break
            t *= 0.5
            if t < 1e-12:
                return None
        new_grad = fd_gradient(safe, trial)[0]
        s_k, y_k = trial - u, new_grad - grad
        if float(s_k @ y_k) > 0:  # BFGS update of the Hessian
            hs = hess @ s_k
            hess = (
                hess
                - torch.outer(hs, hs) / float(s_k @ hs)
                + torch.outer(y_k, y_k) / float(s_k @ y_k)
            )
        u, value, grad, fresh = trial, u.new_tensor(trial_value), new_grad, False
    return None


#: Whitened abscissae of :func:`fd_log_integral`'s axis corrections.
AXIS_GRID = torch.arange(-6.0, 6.5, 1.0)


def _axis_log_ratio(energy, u, direction, value: float) -> float:
    r""":math:`\log \int e^{E(\hat u) - E(\hat u + x v)}\,dx / \sqrt{2\pi}` along one
    whitened axis (0 for a quadratic :math:`E`): the trapezoid rule on :data:`AXIS_GRID`, and
    exponential tails beyond it from the last two points on each side."""
    gaps = [value - energy_at(energy, u + float(x) * direction) if x else 0.0 for x in AXIS_GRID]
    logs = u.new_tensor(gaps)
    f, step = logs.exp(), float(AXIS_GRID[1] - AXIS_GRID[0])
    body = step * (f.sum() - (f[0] + f[-1]) / 2)
    tail = u.new_zeros(())
    for end, inner in ((0, 1), (-1, -2)):
        slope = (logs[inner] - logs[end]) / step  # decay rate towards the outside
        if bool(torch.isfinite(logs[end])) and float(slope) > 0:
            tail = tail + f[end] / slope
    return float(torch.log(body + tail)) - 0.5 * _LOG_2PI


def fd_log_integral(energy: Callable[[torch.Tensor], float], u0: torch.Tensor):
    r""":math:`\log \int e^{-E(u)}\, du` for a smooth function of a few variables (each value
    of ``energy`` may itself come from an optimisation): Laplace's method at the mode of
    :func:`fd_newton`, times a correction along each eigenvector :math:`v_i` of the Hessian
    (whitened, :math:`x = \sqrt{\lambda_i}\, v_i^\top (u - \hat u)`),

    .. math::

        \log \int e^{-E} \approx \text{Laplace}
            + \sum_i \log \int \frac{e^{E(\hat u) - E(\hat u + x v_i/\sqrt{\lambda_i})}}
            {\sqrt{2\pi}}\, dx,

    exact for a Gaussian and, for a product of one-dimensional factors along those axes, up
    to the quadrature (:func:`_axis_log_ratio`): the skewed, heavy-tailed posterior of a log
    scale whose variance component may be near 0 is where Laplace alone errs (0.2 nats for a
    block of 20 random effects). Returns ``(log integral, mode)`` or ``None``.
    """
    found = fd_newton(energy, u0)
    if found is None:
        return None
    value, u, logdet, hess = found
    total = -value + 0.5 * u.numel() * _LOG_2PI - 0.5 * logdet
    if u.numel():
        scales, vectors = torch.linalg.eigh(hess)
        for i in range(u.numel()):
            total += _axis_log_ratio(energy, u, vectors[:, i] / scales[i].sqrt(), value)
    return total, u


__all__ = [
    "FD_STEP",
    "FD_TOLERANCE",
    "TOLERANCE",
    "Mode",
    "derivatives",
    "energy_at",
    "AXIS_GRID",
    "fd_derivatives",
    "fd_gradient",
    "fd_log_integral",
    "fd_newton",
    "laplace_log_integral",
    "newton",
]
