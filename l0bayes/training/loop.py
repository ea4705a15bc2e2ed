r"""The one minibatch loop: L0 networks (:class:`~l0bayes.training.trainer.Trainer`) and the
baselines (Sparse VD, fine-tuning after pruning, through :func:`fit`) step through it alike.

Epoch :math:`e` visits the :math:`N` training examples in the order
:func:`~l0bayes.data.images.epoch_order` of ``(seed, e)``, in :math:`\lceil N/B\rceil`
minibatches of :math:`B` (the last one smaller when :math:`B \nmid N`). One step descends the
minibatch loss :math:`L`:

.. math::

    \nabla \leftarrow \partial L / \partial\theta, \qquad
    \theta \leftarrow \text{optimiser}(\theta, \nabla),

then runs the after-step hooks (a log α clamp, an average, a dual ascent, a pruning mask). The
losses are summed on the device and read back only when asked (:class:`LossTally`): a read is a
device synchronisation, and every read checks that the sum is finite.

* :class:`MinibatchLoop`: the data order, the minibatches and the step iteration of one epoch,
  from any step (a resumed run starts mid-epoch).
* :func:`descend`: ``zero_grad``, ``backward``, an optional gradient reduction, ``step``, hooks.
* :func:`fit`: Adam over whole epochs, the baselines' thin entry point; nothing is written.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from l0bayes.data.images import Images, epoch_order

#: ``loss(x, y, progress)``: the minibatch loss to descend; ``progress`` is the number of epochs
#: done so far, fractional within an epoch (for warm-up schedules).
LossFn = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
#: ``step(index, progress)``: one optimiser step on the examples ``index``; returns the detached
#: loss to tally (``progress`` as in :data:`LossFn`).
StepFn = Callable[[torch.Tensor, float], torch.Tensor]
#: ``after(steps_done, loss)``: called after every step of :meth:`MinibatchLoop.run_epoch` with
#: the number of steps of the epoch done so far and the step's loss.
AfterStep = Callable[[int, torch.Tensor], None]


class TrainingInterrupted(RuntimeError):
    """Raised after SIGINT once a checkpoint is written; the message says how to resume."""


class LossTally:
    """The sum of the step losses since the last :meth:`read`, kept on ``device``.

    The sum is kept in float64: :math:`n` float32 losses whose magnitudes span a ratio below
    :math:`2^{29}/n` add up *exactly* (every partial sum fits float64's 53 bits), so an
    epoch's mean loss does not depend on where its sum was read (every 50 steps, at a
    checkpoint, at an interrupt): a resumed run writes the same ``train_loss`` as an
    uninterrupted one.

    :param device: where the losses live (adding there costs no synchronisation).
    """

    def __init__(self, device: torch.device | str | None = None) -> None:
        self._sum = torch.zeros((), device=device, dtype=torch.float64)
        self.pending = 0  #: steps added since the last read

    def add(self, loss: torch.Tensor) -> None:
        """Add one step's (detached, scalar) loss."""
        self._sum += loss.to(torch.float64)
        self.pending += 1

    def read(self, where: str) -> tuple[float, int]:
        """The sum :math:`\\sum_s L_s` of the pending losses and their number, then reset to
        zero; ``(0.0, 0)`` without a synchronisation when none is pending.

        :param where: ends the error message (where it happened and what to do).
        :raises FloatingPointError: the sum is NaN or infinite.
        """
        count, self.pending = self.pending, 0
        if count == 0:
            return 0.0, 0
        value = float(self._sum)
        self._sum.zero_()
        if not math.isfinite(value):
            raise FloatingPointError(f"the loss became {value} {where}")
        return value, count


class MinibatchLoop:
    r"""Epochs of :math:`\lceil N/B\rceil` minibatches in the order
    :func:`~l0bayes.data.images.epoch_order` of ``(seed, epoch)``, the order of every
    l0bayes training run; the step losses are summed in :attr:`losses`.

    :param num_data: :math:`N`, the number of training examples.
    :param batch_size: :math:`B`, the minibatch size.
    :param seed: the seed of the data order (the caller seeds the model's random numbers).
    :param device: where the index tensors (and the loss sum) live.

    Example::

        loop = MinibatchLoop(len(train), 100, seed=0)
        for epoch in range(epochs):
            loop.run_epoch(epoch, step)      # step(index, progress) -> detached loss
            total, steps = loop.losses.read(f"in epoch {epoch + 1}")
    """

    def __init__(
        self,
        num_data: int,
        batch_size: int,
        seed: int,
        device: torch.device | str | None = None,
    ) -> None:
        self.num_data, self.batch_size, self.seed = num_data, batch_size, seed
        self.device = device
        self.steps = math.ceil(num_data / batch_size)  #: minibatches per epoch
        self.losses = LossTally(device)

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[int, torch.Tensor]]:
        """``(step, index)`` for the steps ``start, ..., steps - 1`` of ``epoch``; ``index``
        holds the minibatch's example numbers, shape ``(B,)`` (the last may be shorter)."""
        order = epoch_order(self.seed, epoch, self.num_data).to(self.device)
        b = self.batch_size
        for step in range(start, self.steps):
            yield step, order[step * b : (step + 1) * b]

    def run_epoch(
        self,
        epoch: int,
        step: StepFn,
        *,
        start: int = 0,
        after_step: AfterStep | None = None,
    ) -> None:
        """Run ``step`` on every minibatch of ``epoch`` from step ``start`` on, with progress
        :math:`e + s/\\lceil N/B\\rceil`, tally its loss, then call ``after_step``."""
        for s, index in self.batches(epoch, start):
            loss = step(index, epoch + s / self.steps)
            self.losses.add(loss)
            if after_step is not None:
                after_step(s + 1, loss)


def descend(
    optimizer: torch.optim.Optimizer,
    loss: torch.Tensor,
    *,
    reduce: Callable[[], None] | None = None,
    after_step: Callable[[], None] | None = None,
) -> None:
    """One optimiser step on ``loss``: clear the gradients, backpropagate, ``reduce`` (e.g. sum
    the gradients over processes), step, then ``after_step`` (e.g. re-apply a mask).

    :param optimizer: holds the parameters to descend.
    :param loss: the scalar to minimise.
    :param reduce: called between ``backward`` and the step.
    :param after_step: called after the step.
    """
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if reduce is not None:
        reduce()
    optimizer.step()
    if after_step is not None:
        after_step()


@dataclass
class FitResult:
    """Mean training loss per epoch and the training time in seconds (no evaluation); for a
    network trained stacked with others, ``train_seconds`` is the whole stack's, of
    ``networks`` networks."""

    epoch_loss: list[float] = field(default_factory=list)
    train_seconds: float = 0.0
    networks: int = 1


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
    """Adam on ``loss`` over ``epochs`` passes of ``train`` in minibatches of ``batch_size``
    (:class:`MinibatchLoop`); the record holds each epoch's mean loss
    :math:`\\frac{1}{\\lceil N/B\\rceil}\\sum_s L_s`.

    The data order of every epoch is :func:`~l0bayes.data.images.epoch_order` of ``(seed,
    epoch)``, the order ``l0bayes train`` uses; the caller seeds the random numbers of the loss
    itself.

    :param loss: the minibatch loss, ``loss(x, y, progress)`` (:data:`LossFn`).
    :param params: the parameters to train.
    :param train: the training images.
    :param epochs: the number of passes (0: nothing is trained).
    :param batch_size: :math:`B`, the minibatch size.
    :param lr: Adam's learning rate.
    :param seed: the seed of the data order.
    :param after_step: called after every optimiser step (e.g. to re-apply a pruning mask).
    :raises FloatingPointError: the loss became NaN or infinite.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    optimizer = torch.optim.Adam(list(params), lr=lr)
    loop = MinibatchLoop(len(train), batch_size, seed, train.y.device)

    def step(index: torch.Tensor, progress: float) -> torch.Tensor:
        x, y = train.batch(index)
        value = loss(x, y, progress)
        descend(optimizer, value, after_step=after_step)
        return value.detach()

    result = FitResult()
    for epoch in range(epochs):
        tic = time.perf_counter()
        loop.run_epoch(epoch, step)
        total, _ = loop.losses.read(f"in epoch {epoch + 1}; lower lr")
        result.epoch_loss.append(total / loop.steps)
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


@contextlib.contextmanager
def stop_on_sigint(request_stop: Callable[[], bool]) -> Iterator[None]:
    """For the block, make SIGINT (Ctrl-C) call ``request_stop()``, which asks the loop to
    checkpoint and stop at the next step boundary and returns whether a stop had already been
    asked for; a second SIGINT then interrupts at once (``KeyboardInterrupt``). Outside the
    main thread SIGINT is left alone."""

    def handler(signum, frame):
        if request_stop():
            raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


__all__ = [
    "stop_on_sigint",
    "AfterStep",
    "FitResult",
    "LossFn",
    "LossTally",
    "MinibatchLoop",
    "StepFn",
    "TrainingInterrupted",
    "descend",
    "error_rate",
    "fit",
]
