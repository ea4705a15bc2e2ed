r"""Test-time networks as plain chains, their sparse architecture, and magnitude pruning.

**Test-time chains.** :func:`plain_chain` turns a trained chain (an
:class:`~l0bayes.nn.layers.L0Sequential` with its deterministic Eq. 13 gates folded into the
weights,
an :class:`~l0bayes.baselines.sparse_vd.SVDSequential` with its :math:`\log\alpha > 3` weights set
to
zero, or a plain ``nn.Sequential``) into a ``torch.nn.Sequential`` of ``nn.Linear`` and
``nn.Conv2d`` layers holding the test-time weights: the same function, no Pyro, and every
method's sparsity in one form.

**Architecture of a sparse chain.** :func:`masked_architecture` counts what such a chain
computes, by :func:`l0bayes.architecture.architecture`: each weight layer is copied into a
per-weight-gated :class:`~l0bayes.nn.layers.L0Linear`/:class:`~l0bayes.nn.layers.L0Conv2d` whose
gates are
``weight != 0``. Hence FLOPs are multiply–accumulates of the non-zero weights whose input
unit can be non-zero and whose output unit is read, for every weight layer (one example's
forward pass); an input neuron or feature map none of whose outgoing weights survives is
removed with the work of the weights that produce it. Before that, :func:`live_chain` zeroes
the outgoing weights of a unit that is identically zero (all its incoming weights and its bias
zero, e.g. a feature map closed by an L0 gate), so they are not counted either (nor the
weights and bias of a unit nothing reads, which the analysis drops anyway). Parameters are the
counted weights plus the biases of the kept units; units (the architecture string) count the
input neurons of fully connected layers and the output maps of convolutions, as the paper does.
For an L0 chain this equals ``architecture(net, input_shape, "deterministic")`` (tested).

**Magnitude pruning.** :func:`magnitude_prune` keeps the ``num_weights`` largest weights in
absolute value over all weight layers together (global pruning; biases are kept), and
:func:`fine_tune` retrains the survivors with the pruned weights held at zero.
:func:`gradual_magnitude_prune` prunes while training, to the cubic schedule of Zhu & Gupta
(2017) (:func:`cubic_sparsity`), within one training budget.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from l0bayes.baselines.stacking import PlainStack, fit_stacked
from l0bayes.data.images import Images
from l0bayes.nn.architecture import Architecture, architecture, folded_chain
from l0bayes.nn.layers import L0Conv2d, L0Layer, L0Linear
from l0bayes.training.engine import StackedImages
from l0bayes.training.loop import FitResult

PLAIN = (nn.Linear, nn.Conv2d)


def _chain(module: nn.Module) -> list[nn.Module]:
    return list(module.layers if hasattr(module, "layers") else module)


def _plain_copy(layer: nn.Module, weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Module:
    """``nn.Linear``/``nn.Conv2d`` with ``weight`` (in that layout) and ``bias``."""
    if weight.dim() == 2:
        new = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    else:
        new = nn.Conv2d(
            weight.shape[1],
            weight.shape[0],
            tuple(weight.shape[2:]),
            stride=layer.stride,
            padding=layer.padding,
            bias=bias is not None,
        )
    new = new.to(dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        new.weight.copy_(weight)
        if bias is not None:
            new.bias.copy_(bias)
    return new


@torch.no_grad()
def plain_chain(net: nn.Module, gates: str = "deterministic") -> nn.Sequential:
    """The test-time network of a chain as a plain ``nn.Sequential`` (module docstring): weight
    layers become ``nn.Linear``/``nn.Conv2d`` with the test-time weights; other modules are
    copied. Its outputs equal ``net(x)`` up to float rounding.

    :param gates: ``"deterministic"`` (Eq. 13's gates folded into the weights) or ``"open"``
        (every gate 1: the dense network with the chain's raw weights, e.g. a freshly
        initialised network to train without gates).
    :raises ValueError: a layer with skip connections or a weight layer of unknown kind.
    """
    if gates not in ("deterministic", "open"):
        raise ValueError(f"gates must be 'deterministic' or 'open', got {gates!r}")
    out: list[nn.Module] = []
    for layer in _chain(net):
        if hasattr(layer, "test_time_parameters"):  # Sparse VD layers
            weight, bias = layer.test_time_parameters()
        elif isinstance(layer, L0Linear) and gates == "open":
            weight, bias = layer.weight.t(), layer.bias
        elif isinstance(layer, (L0Linear, L0Conv2d, *PLAIN)) and gates == "open":
            weight, bias = layer.weight, layer.bias
        elif isinstance(layer, (L0Linear, L0Conv2d, *PLAIN)):
            weight, bias = folded_chain(layer)
        elif any(True for _ in layer.parameters()):
            raise ValueError(f"cannot make a test-time chain with a {type(layer).__name__}")
        else:
            out.append(copy.deepcopy(layer))
            continue
        out.append(_plain_copy(layer, weight.detach(), None if bias is None else bias.detach()))
    return nn.Sequential(*out)


def weight_layers(chain: nn.Module) -> list[nn.Module]:
    """The ``nn.Linear``/``nn.Conv2d`` layers of a plain chain, in order."""
    return [m for m in _chain(chain) if isinstance(m, PLAIN)]


def nonzero_weights(chain: nn.Module) -> int:
    """The number of non-zero weights (biases not counted) of a plain chain."""
    return sum(int((m.weight != 0).sum()) for m in weight_layers(chain))


@torch.no_grad()
def live_chain(chain: nn.Sequential, input_shape: tuple[int, ...]) -> nn.Sequential:
    """A copy of the plain chain with the weights that do no work set to zero: those reading a
    unit that is zero whatever the input (all its incoming weights from live units and its bias
    zero; ReLU and pooling preserve zeros, ``nn.Flatten`` makes a zero map H·W zero features),
    and the weights and bias of a unit that no non-zero weight downstream reads (the outputs
    are read). The function is unchanged; :func:`nonzero_weights` of the copy counts the
    weights that are used."""
    chain = copy.deepcopy(chain)
    first = weight_layers(chain)[0]
    x = torch.zeros(1, *input_shape, dtype=first.weight.dtype, device=first.weight.device)
    alive: torch.Tensor | None = None  # (units,) of the current activation; None: all
    maps: dict[int, tuple[int, int]] = {}  # position of a Flatten -> (C, H·W)
    for i, module in enumerate(chain):  # forward: what can be non-zero
        if isinstance(module, PLAIN):
            if alive is not None:
                module.weight[:, ~alive] = 0
            alive = (module.weight != 0).flatten(1).any(1)
            if module.bias is not None:
                alive = alive | (module.bias != 0)
        elif isinstance(module, nn.Flatten) and x.dim() == 4:
            maps[i] = (x.shape[1], x.shape[2] * x.shape[3])
            alive = None if alive is None else alive.repeat_interleave(maps[i][1])
        x = module(x)
    read: torch.Tensor | None = None  # (units,) read downstream; None: all (the outputs)
    for i in reversed(range(len(chain))):  # backward: what is read
        module = chain[i]
        if isinstance(module, PLAIN):
            if read is not None:
                module.weight[~read] = 0
                if module.bias is not None:
                    module.bias[~read] = 0
            read = (module.weight != 0).transpose(0, 1).flatten(1).any(1)
        elif i in maps and read is not None:
            read = read.reshape(maps[i]).any(1)
    return chain


def _weight_gated(layer: nn.Module) -> L0Layer:
    """An ``L0Linear``/``L0Conv2d`` with one gate per weight and ``layer``'s weights."""
    bias = layer.bias is not None
    if isinstance(layer, nn.Linear):
        gated = L0Linear(layer.in_features, layer.out_features, bias, gate="weight")
        weight = layer.weight.t()  # L0Linear stores (in, out)
    else:
        gated = L0Conv2d(
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,
            layer.stride,
            layer.padding,
            bias,
            gate="weight",
        )
        weight = layer.weight
    gated = gated.to(dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        gated.weight.copy_(weight)
        if bias:
            gated.bias.copy_(layer.bias)
    return gated


def masked_architecture(chain: nn.Sequential, input_shape: tuple[int, ...]) -> Architecture:
    """Units, FLOPs (multiply–accumulates) and non-zero parameters of the sparse plain chain
    ``chain`` for one example of shape ``input_shape`` (module docstring)."""
    live = live_chain(chain, tuple(input_shape))
    modules, gates = [], {}
    for module in live:
        if isinstance(module, PLAIN):
            module = _weight_gated(module)
            gates[module] = (module.weight != 0).flatten()
        modules.append(module)
    return architecture(nn.Sequential(*modules), input_shape, "dense", gates)


def sparse_architecture(net: nn.Module, input_shape: tuple[int, ...]) -> Architecture:
    """:func:`masked_architecture` of :func:`plain_chain`: the architecture of any
    supported chain (L0, Sparse VD, plain) at test time."""
    return masked_architecture(plain_chain(net), input_shape)


# ----------------------------------------------------------------------------- pruning
@torch.no_grad()
def magnitude_prune(chain: nn.Module, num_weights: int) -> nn.Sequential:
    """A copy of the plain chain with all but the ``num_weights`` largest weights in absolute
    value (over all weight layers together) set to zero; biases are kept. Ties at the
    threshold are broken by position (``torch.topk``), so exactly ``min(num_weights,
    non-zero weights)`` weights stay non-zero."""
    if isinstance(num_weights, bool) or not isinstance(num_weights, int) or num_weights < 0:
        raise ValueError(f"num_weights must be a non-negative integer, got {num_weights!r}")
    pruned = copy.deepcopy(chain if isinstance(chain, nn.Sequential) else plain_chain(chain))
    layers = weight_layers(pruned)
    flat = torch.cat([m.weight.abs().flatten() for m in layers])
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep[torch.topk(flat, min(num_weights, flat.numel())).indices] = True
    keep &= flat != 0
    start = 0
    for m in layers:
        n = m.weight.numel()
        m.weight.mul_(keep[start : start + n].reshape(m.weight.shape))
        start += n
    return pruned


def _train_masked(
    chains: Sequence[nn.Sequential],
    trains: Sequence[Images],
    epochs: int,
    *,
    counts: Callable[[int], Sequence[int] | None] | None = None,
    batch_size: int,
    lr: float,
    seeds: Sequence[int],
    graph: bool = True,
) -> list[FitResult]:
    """Cross-entropy training (Adam) of the plain chains in place, stacked
    (:class:`~l0bayes.baselines.stacking.PlainStack`), every weight whose mask is 0 held at
    zero: its gradient is masked and the masks are re-applied after each step. The masks start
    as the weights' non-zero pattern, or, with a schedule ``counts``, at 1; ``counts(t)``, when
    it returns counts, keeps each network's that many largest weights before step ``t``
    (counted from 0)."""
    if len({len(chains), len(trains), len(seeds)}) != 1:
        raise ValueError("give one training set and one seed per chain")
    stack = PlainStack(chains)
    if counts is not None:
        for mask in stack.masks.values():
            mask.fill_(1.0)
    data = StackedImages(trains)
    optimizer = _adam(stack, lr)
    loss_sum = torch.zeros(stack.K, dtype=torch.float64, device=stack.device)

    def step(index: torch.Tensor) -> None:
        x, y = data.batch(index)
        losses = F.cross_entropy(stack.logits(x).flatten(0, 1), y.flatten(), reduction="none")
        losses = losses.view(y.shape).mean(-1)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        stack.mask_gradients()
        optimizer.step()
        stack.apply_masks()
        loss_sum.add_(losses.detach().double())

    def prune(t: int) -> None:
        wanted = None if counts is None else counts(t)
        if wanted is not None:
            stack.keep_largest(wanted)

    for chain in chains:
        chain.train()
    try:
        prune(0)
        stack.apply_masks()
        return fit_stacked(step, loss_sum, data, seeds, epochs, batch_size=batch_size,
                           graph=graph, after_step=prune)  # fmt: skip
    finally:
        for chain in chains:
            chain.eval()


def _adam(stack, lr: float) -> torch.optim.Adam:
    """Adam on a stack's parameters, capturable on CUDA."""
    return torch.optim.Adam(
        stack.params.values(), lr=lr, foreach=True, capturable=stack.device.type == "cuda"
    )


def fine_tune(
    chain: nn.Sequential,
    train: Images,
    epochs: int,
    *,
    batch_size: int = 100,
    lr: float = 1e-3,
    seed: int = 0,
) -> FitResult:
    """Retrain the plain chain in place by cross-entropy (Adam), every pruned (zero) weight held
    at zero: its gradient is masked and the mask is re-applied after every step
    (:func:`fine_tune_many` of one chain)."""
    return fine_tune_many([chain], [train], epochs, batch_size=batch_size, lr=lr, seeds=[seed])[0]


def fine_tune_many(
    chains: Sequence[nn.Sequential],
    trains: Sequence[Images],
    epochs: int,
    *,
    seeds: Sequence[int],
    batch_size: int = 100,
    lr: float = 1e-3,
    graph: bool = True,
) -> list[FitResult]:
    """:func:`fine_tune` of several chains of one architecture at once, stacked (each on its
    own training set, in the data order of its seed); ``graph``: capture the step on CUDA."""
    return _train_masked(
        chains, trains, epochs, batch_size=batch_size, lr=lr, seeds=seeds, graph=graph
    )


def cubic_sparsity(step: int, begin: int, end: int, final: float, initial: float = 0.0) -> float:
    r"""The gradual pruning schedule of Zhu & Gupta (2017, Eq. 1): the sparsity at ``step``

    .. math::

        s_t = s_f + (s_i - s_f)\Bigl(1 - \frac{t - t_0}{t_1 - t_0}\Bigr)^3,
        \qquad t_0 \le t \le t_1,

    :math:`s_i` before :math:`t_0` (``begin``) and :math:`s_f` (``final``) from :math:`t_1`
    (``end``) on: pruning fast while many redundant weights remain, slowly at the end."""
    if not 0.0 <= initial <= final <= 1.0:
        raise ValueError(f"need 0 <= initial <= final <= 1, got {initial!r}, {final!r}")
    if step <= begin:
        return initial
    if step >= end:
        return final
    return final + (initial - final) * (1.0 - (step - begin) / (end - begin)) ** 3


def gradual_magnitude_prune(
    chain: nn.Sequential,
    train: Images,
    epochs: int,
    num_weights: int,
    *,
    begin: float = 0.1,
    end: float = 0.6,
    prune_every: int | None = None,
    batch_size: int = 100,
    lr: float = 1e-3,
    seed: int = 0,
) -> FitResult:
    r"""Train the plain chain in place while pruning it gradually to ``num_weights`` non-zero
    weights (Zhu & Gupta 2017), within the training budget of ``epochs``.

    With :math:`T` steps in all, every ``prune_every`` steps between :math:`t_0 = \lfloor
    \text{begin}\cdot T\rfloor` and :math:`t_1 = \lfloor \text{end}\cdot T\rfloor` the
    smallest-magnitude weights (globally over the weight layers; biases kept) are masked to
    the sparsity :func:`cubic_sparsity` of that step, :math:`s_f = 1 - \text{num\_weights} /
    W` of the :math:`W` weights; a masked weight gets no gradient and stays zero. After
    :math:`t_1` the survivors keep training with the final mask (the fine-tuning is inside the
    budget, not added to it). :func:`gradual_magnitude_prune_many` of one chain.

    :param prune_every: steps between two mask updates (``None``: :math:`\max(1, T/100)`).
    """
    return gradual_magnitude_prune_many(
        [chain], [train], epochs, [num_weights], begin=begin, end=end, prune_every=prune_every,
        batch_size=batch_size, lr=lr, seeds=[seed],
    )[0]  # fmt: skip


def gradual_magnitude_prune_many(
    chains: Sequence[nn.Sequential],
    trains: Sequence[Images],
    epochs: int,
    num_weights: Sequence[int],
    *,
    seeds: Sequence[int],
    begin: float = 0.1,
    end: float = 0.6,
    prune_every: int | None = None,
    batch_size: int = 100,
    lr: float = 1e-3,
    graph: bool = True,
) -> list[FitResult]:
    """:func:`gradual_magnitude_prune` of several chains of one architecture at once,
    stacked, each to its own ``num_weights[k]`` on its own schedule's counts (the same steps);
    ``graph``: capture the step on CUDA (the mask updates run between the replays)."""
    for count in num_weights:
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"num_weights must be non-negative integers, got {count!r}")
    if not 0.0 <= begin <= end <= 1.0:
        raise ValueError(f"need 0 <= begin <= end <= 1, got begin={begin!r}, end={end!r}")
    total = sum(m.weight.numel() for m in weight_layers(chains[0]))
    finals = [1.0 - min(count, total) / total for count in num_weights]
    steps = epochs * math.ceil(len(trains[0]) / batch_size)
    t0, t1 = int(begin * steps), int(end * steps)
    every = prune_every or max(1, steps // 100)

    def counts(t: int) -> list[int] | None:
        if t < t0 or t > t1 or ((t - t0) % every and t != t1):
            return None
        return [total - round(cubic_sparsity(t, t0, t1, final) * total) for final in finals]

    return _train_masked(
        chains, trains, epochs, counts=counts, batch_size=batch_size, lr=lr, seeds=seeds,
        graph=graph,
    )  # fmt: skip


__all__ = [
    "cubic_sparsity",
    "fine_tune",
    "fine_tune_many",
    "gradual_magnitude_prune",
    "gradual_magnitude_prune_many",
    "live_chain",
    "magnitude_prune",
    "masked_architecture",
    "nonzero_weights",
    "sparse_architecture",
    "plain_chain",
    "weight_layers",
]
