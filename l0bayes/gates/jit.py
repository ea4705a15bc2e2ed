"""A :class:`pyro.infer.JitTraceMeanField_ELBO` that compiles once.

Pyro 1.9's ``JitTraceMeanField_ELBO`` looks for its compiled loss under one attribute
(``_loss_and_surrogate_loss``) and stores it under another (``_differentiable_loss``), so it
builds a new compiled function, and traces the model and the guide again, at every step: the
JIT ELBO is then about 10x slower than the eager one, with or without gates
(``bench/gated_speed.py``). :class:`JitTraceMeanField_ELBO` stores the compiled loss where
Pyro looks for it, so it is traced once per set of keyword arguments (Pyro's own rule), and a
step is faster than the eager ELBO's. Use it in place of Pyro's class; everything else is
Pyro's.
"""

from __future__ import annotations

import pyro.infer


class JitTraceMeanField_ELBO(pyro.infer.JitTraceMeanField_ELBO):  # noqa: N801 (Pyro's name)
    """Pyro's ``JitTraceMeanField_ELBO``, compiled once instead of at every step (module
    docstring); the analytic KLs of :func:`~l0bayes.gates.gated` apply as in the eager ELBO."""

    def differentiable_loss(self, model, guide, *args, **kwargs):
        loss = super().differentiable_loss(model, guide, *args, **kwargs)
        self._loss_and_surrogate_loss = self._differentiable_loss  # where Pyro looks
        return loss


__all__ = ["JitTraceMeanField_ELBO"]
