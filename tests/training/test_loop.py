"""The one minibatch loop: a baseline fit through it takes exactly the steps, in exactly the
data order, of a hand-written Adam loop; its loss record and errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from l0bayes.data.images import Images, epoch_order
from l0bayes.training.loop import LossTally, MinibatchLoop, fit


def _images(n: int = 130, d: int = 6, seed: int = 0) -> Images:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, d), dtype=torch.uint8, generator=g)
    y = (x[:, 0].int() > x[:, 1].int()).long()
    return Images(x.numpy(), y.numpy(), (d,), torch.device("cpu"))


def _net() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))


def _reference(net, train, epochs, batch_size, lr, seed, after_step):
    """The naive loop: Adam over epoch_order(seed, epoch), minibatch by minibatch."""
    optimizer = torch.optim.Adam(list(net.parameters()), lr=lr)
    steps = math.ceil(len(train) / batch_size)
    seen, means = [], []
    for epoch in range(epochs):
        order = epoch_order(seed, epoch, len(train))
        total = 0.0
        for s in range(steps):
            index = order[s * batch_size : (s + 1) * batch_size]
            seen.append((index.clone(), epoch + s / steps))
            x, y = train.batch(index)
            loss = F.cross_entropy(net(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            after_step()
            total += float(loss.detach())
        means.append(total / steps)
    return seen, means


def test_fit_takes_the_steps_and_data_order_of_a_hand_written_loop(one_thread):
    train, batch_size, seed = _images(), 32, 5  # 130 = 4 * 32 + 2: a short last minibatch
    net, ref = _net(), _net()
    calls = []

    def loss(x, y, progress):
        calls.append((x.clone(), progress))
        return F.cross_entropy(net(x), y)

    def shrink(module):  # an after-step hook that changes the parameters
        return lambda: module[0].weight.data.mul_(0.99)

    result = fit(
        loss,
        net.parameters(),
        train,
        2,
        batch_size=batch_size,
        lr=1e-2,
        seed=seed,
        after_step=shrink(net),
    )
    seen, means = _reference(ref, train, 2, batch_size, 1e-2, seed, shrink(ref))

    assert len(calls) == len(seen) == 2 * 5
    for (x, progress), (index, expected) in zip(calls, seen, strict=True):
        assert torch.equal(x, train.batch(index)[0])
        assert progress == expected
    for p, q in zip(net.parameters(), ref.parameters(), strict=True):
        assert torch.equal(p, q)
    assert result.epoch_loss == pytest.approx(means, rel=1e-6)
    assert result.train_seconds > 0


def test_the_loop_resumes_mid_epoch_where_it_stopped():
    loop = MinibatchLoop(10, 3, seed=1)
    whole = [index for _, index in loop.batches(0)]
    tail = [index for _, index in loop.batches(0, start=2)]
    assert [len(i) for i in whole] == [3, 3, 3, 1]
    assert torch.equal(torch.cat(whole), epoch_order(1, 0, 10))
    assert all(torch.equal(a, b) for a, b in zip(whole[2:], tail, strict=True))
    done = []
    loop.run_epoch(
        0,
        lambda index, p: torch.tensor(float(len(index))),
        start=1,
        after_step=lambda k, loss: done.append(k),
    )
    assert done == [2, 3, 4]
    assert loop.losses.read("here") == (7.0, 3)
    assert loop.losses.read("here") == (0.0, 0)


def test_a_non_finite_loss_is_a_clear_error():
    tally = LossTally()
    tally.add(torch.tensor(1.0))
    tally.add(torch.tensor(float("nan")))
    with pytest.raises(FloatingPointError, match="the loss became nan in epoch 1; lower lr"):
        tally.read("in epoch 1; lower lr")
    with pytest.raises(ValueError, match="epochs must be a non-negative integer"):
        fit(lambda x, y, p: x.sum(), [], _images(), -1)
