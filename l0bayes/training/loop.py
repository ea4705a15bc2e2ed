"""A minimal minibatch loop for the comparison baselines (Sparse VD, fine-tuning after pruning).

:mod:`l0bayes.training.trainer` is the full engine for L0 networks (checkpoints, resume, EMA,
targets,
several processes); the baselines of the comparison study need less: Adam over minibatches in
the same data order (:func:`l0bayes.data.images.epoch_order`) and the same images
(:class:`l0bayes.data.images.Images`), and the test error. Nothing is written to disk.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from l0bayes.data.images import Images, epoch_order

#: ``loss(x, y, progress)``: the minibatch loss to descend; ``progress`` is the number of epochs
#: done so far, fractional within an epoch (for warm-up schedules).
LossFn = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


@dataclass
class FitResult:
    """Mean training loss per epoch and the training time in seconds (no evaluation)."""

    epoch_loss: list[float] = field(default_factory=list)
    train_seconds: float = 0.0


def fit(
    loss: LossFn,
    params: Iterable[torch.nn.Parameter],
    train: Images,
    epochs: int,
    *,
    batch_size: int = 100,
    lr: float = 1e-3,
    seed: int = 0,
    after_step: Callable[[], None] | None = None,
) -> FitResult:
    """Adam on ``loss`` over ``epochs`` passes of ``train`` in minibatches of ``batch_size``.

    The data order of every epoch is :func:`~l0bayes.data.images.epoch_order` of ``(seed,
    epoch)``,
    the order ``l0bayes train`` uses; the caller seeds the random numbers of the loss itself.

    :param after_step: called after every optimiser step (e.g. to re-apply a pruning mask).
    :raises FloatingPointError: the loss became NaN or infinite.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    params = list(params)
    optimizer = torch.optim.Adam(params, lr=lr)
    n = len(train)
    steps = math.ceil(n / batch_size)
    result = FitResult()
    for epoch in range(epochs):
        tic = time.perf_counter()
        order = epoch_order(seed, epoch, n).to(train.y.device)
        total = torch.zeros(())
        for step in range(steps):
            x, y = train.batch(order[step * batch_size : (step + 1) * batch_size])
            value = loss(x, y, epoch + step / steps)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
            if after_step is not None:
                after_step()
            total += value.detach().cpu()
        mean = float(total) / steps
        if not math.isfinite(mean):
            raise FloatingPointError(f"the loss became {mean} in epoch {epoch + 1}; lower lr")
        result.epoch_loss.append(mean)
        result.train_seconds += time.perf_counter() - tic
    return result


@torch.no_grad()
def error_rate(model: nn.Module | Callable, images: Images, batch_size: int = 1000) -> float:
    """The fraction of ``images`` that ``model`` (logits) misclassifies."""
    was_training = getattr(model, "training", False)
    if isinstance(model, nn.Module):
        model.eval()
    try:
        wrong = 0
        for start in range(0, len(images), batch_size):
            index = torch.arange(start, min(start + batch_size, len(images)))
            x, y = images.batch(index.to(images.y.device))
            wrong += int((model(x).argmax(-1) != y).sum())
    finally:
        if isinstance(model, nn.Module):
            model.train(was_training)
    return wrong / len(images)


__all__ = ["FitResult", "LossFn", "error_rate", "fit"]
