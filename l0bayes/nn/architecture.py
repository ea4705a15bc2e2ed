r"""The pruned architecture of a chain of gated layers: unit counts, FLOPs and compaction.

A chain is an :class:`~l0bayes.nn.layers.L0Sequential` or :class:`torch.nn.Sequential` of
:class:`~l0bayes.nn.layers.L0Linear`, :class:`~l0bayes.nn.layers.L0Conv2d`, ``nn.Linear``,
``nn.Conv2d``,
``nn.Flatten`` and zero-preserving maps (``f(0) = 0`` per unit: ReLU, Tanh, max/avg pooling,
dropout, identity). A unit (a neuron, or a feature map) between two weight layers is **kept**
when it can be non-zero (its own output gate is open, or its weights or bias are non-zero) and
is **needed** (some weight of the next layer reads it through an open gate). With the gates fixed
these are 0/1; under the guide they are probabilities, and for gates independent across layers

.. math::

    E[\text{FLOPs}_k] = \textstyle\sum_{i,j} P(\text{in}_i\ \text{kept})\,
        P(\text{out}_j\ \text{kept})\,P(w_{ji} \ne 0)\cdot H'_k W'_k,

counted as multiply–accumulates (one multiply and one add = 1 FLOP) for **every** weight layer,
with the units pruned upstream taken into account (the official code counts only gated layers).
:func:`compact` removes the pruned units physically and returns a plain ``torch.nn.Sequential``.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from l0bayes.nn.layers import L0Conv2d, L0Layer, L0Linear
from l0bayes.nn.runtime import TILE_BYTES, exact_rewrites, tiled

GATE_STATES = ("dense", "deterministic", "expected")
#: Maps applied per unit that send 0 to 0 (so a pruned unit stays zero through them).
ZERO_PRESERVING = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.Tanh,
    nn.ELU,
    nn.GELU,
    nn.Hardtanh,
    nn.Identity,
    nn.Dropout,
    nn.MaxPool2d,
    nn.AvgPool2d,
)
WEIGHT_LAYERS = (nn.Linear, nn.Conv2d, L0Linear, L0Conv2d)
#: Gate values by layer (e.g. a draw from the guide), overriding a state for those layers.
GateValues = Mapping[L0Layer, torch.Tensor] | None


@dataclass(frozen=True)
class Architecture:
    """Units per gated layer and FLOPs of a chain under one gate state.

    ``units``: per gated layer, the input neurons of a fully connected layer or the output maps
    of a convolution (the paper's architecture strings); ``flops``: multiply–accumulates per
    forward pass of one example; ``params``: non-zero weights and biases."""

    units: tuple[float, ...]
    flops: float
    params: float

    def __str__(self) -> str:
        return "-".join(f"{u:.0f}" for u in self.units)


class SelectInputs(nn.Module):
    """Keep the input features (or channels) ``index`` along dimension 1."""

    def __init__(self, index: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("index", index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(1, self.index)


def _layers(module: nn.Module) -> list[nn.Module]:
    layers = list(module.layers if hasattr(module, "layers") else module)
    for layer in layers:
        if not isinstance(layer, (*WEIGHT_LAYERS, nn.Flatten, SelectInputs, *ZERO_PRESERVING)):
            raise ValueError(
                f"{type(layer).__name__} is not supported in a prunable chain: use weight layers, "
                "nn.Flatten and zero-preserving maps (ReLU, Tanh, pooling, dropout)"
            )
    return layers


def _shapes(layers: list[nn.Module], input_shape: tuple[int, ...]) -> list[torch.Size]:
    """Output shape (without batch) of every layer, from one forward pass of zeros."""
    layer = next(m for m in layers if isinstance(m, WEIGHT_LAYERS))
    x = torch.zeros(1, *input_shape, dtype=layer.weight.dtype, device=layer.weight.device)
    shapes = []
    with torch.no_grad():
        for module in layers:
            x = module(x)
            shapes.append(x.shape[1:])
    return shapes


def keep_values(layer: L0Layer, state: str, gates: GateValues = None) -> torch.Tensor:
    """Per-gate keep value of a gated layer: 1 (``"dense"``), 1[ẑ ≠ 0] (``"deterministic"``)
    or P(z ≠ 0) (``"expected"``, differentiable in the gates' parameters); 1[z ≠ 0] of given
    gate values (a draw) for the layers in ``gates``."""
    if gates is not None and layer in gates:
        return (gates[layer] != 0).to(layer.weight.dtype)
    if state == "expected":
        return layer.inclusion_probs()
    if state not in GATE_STATES:
        raise ValueError(f"state must be one of {GATE_STATES}, got {state!r}")
    with torch.no_grad():
        if state == "dense":
            return torch.ones(layer.num_gates, dtype=layer.weight.dtype)
        return (layer.deterministic_gates() != 0).to(layer.weight.dtype)


def _gate_values(layer: nn.Module, state: str, gates: GateValues = None) -> torch.Tensor | None:
    """:func:`keep_values` for a gated layer, ``None`` for any other layer."""
    return keep_values(layer, state, gates) if isinstance(layer, L0Layer) else None


def _any(keep: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """P(at least one is kept) over ``dims`` for independent keep probabilities (``any`` for
    0/1 values)."""
    if not dims:
        return keep
    return 1 - torch.prod((1 - keep).flatten(dims[0], dims[-1]), dim=dims[0])


@dataclass
class _WeightLayer:
    """One weight layer of a chain under a gate state (keep values, ``(out, in)`` unit space)."""

    position: int
    keep_w: torch.Tensor  # (out, in, *kernel): keep value of each weight from its own gates
    read_in: torch.Tensor  # (in,): input unit read through an open gate
    alive_out: torch.Tensor  # (out,): output unit can be non-zero
    spatial: int  # output positions H'W' (1 for a fully connected layer)
    alive_in: torch.Tensor | None = None  # (in,): input unit can be non-zero (from upstream)
    needed_out: torch.Tensor | None = None  # (out,): output unit is read downstream
    produced_in: torch.Tensor | None = None  # (in,): input unit the compacted chain still feeds

    @property
    def kept_in(self) -> torch.Tensor:
        return self.alive_in * self.read_in

    @property
    def kept_out(self) -> torch.Tensor:
        return self.alive_out * self.needed_out


def _weight_layer(
    layer: nn.Module, position: int, state: str, out_shape, gates: GateValues = None
) -> _WeightLayer:
    w = layer.weight.detach()
    if isinstance(layer, L0Linear):
        w = w.t()  # stored (in, out); the unit space is (out, in) like nn.Linear
    one = torch.ones((), dtype=w.dtype, device=w.device)
    keep_w = one.expand(w.shape)
    read_in, alive_out = one.expand(w.shape[1]), one.expand(w.shape[0])
    gates = _gate_values(layer, state, gates)
    if gates is not None:
        gates = gates.to(w.device)
        if layer.gate_kind == "weight":
            stored = gates.reshape(layer.weight.shape)
            keep_w = stored.t() if isinstance(layer, L0Linear) else stored
            read_in = _any(keep_w.transpose(0, 1), tuple(range(1, w.dim())))
        elif isinstance(layer, L0Linear):
            keep_w, read_in = gates.expand(w.shape), gates
        else:
            keep_w, alive_out = gates.reshape(-1, *[1] * (w.dim() - 1)).expand(w.shape), gates
    spatial = math.prod(out_shape[1:]) if len(out_shape) == 3 else 1
    return _WeightLayer(position, keep_w, read_in, alive_out, spatial)


def _unit_maps(layers: list[nn.Module], shapes: list[torch.Size]) -> dict[int, tuple]:
    """The layers between weight layers that move units: ``nn.Flatten`` (a map's H·W
    features) and :class:`SelectInputs` (a subset of the features), by position."""
    maps = {}
    for i, layer in enumerate(layers):
        before = shapes[i - 1] if i else None
        if isinstance(layer, nn.Flatten):
            if before is None or len(before) != 3:
                raise ValueError("nn.Flatten must follow a (C, H, W) feature map in the chain")
            maps[i] = ("flatten", before[1] * before[2])
        elif isinstance(layer, SelectInputs) and i:
            maps[i] = ("select", layer.index, before[0])
    return maps


def _forward_through(units: torch.Tensor, maps: dict[int, tuple], start: int, stop: int):
    """Map per-unit values from the output of layer ``start - 1`` to the input of layer
    ``stop``: a Flatten repeats a feature map's value over its H·W features, a selection keeps
    its features."""
    for i in range(start, stop):
        if i in maps:
            kind, *arg = maps[i]
            units = units.repeat_interleave(arg[0]) if kind == "flatten" else units[arg[0]]
    return units


def _backward_through(units: torch.Tensor, maps: dict[int, tuple], start: int, stop: int):
    """The inverse direction: a feature map is read if any of its H·W features is; a feature
    a selection drops is not read."""
    for i in reversed(range(start, stop)):
        if i in maps:
            kind, *arg = maps[i]
            if kind == "flatten":
                units = _any(units.reshape(-1, arg[0]), (1,))
            else:
                units = units.new_zeros(arg[1]).index_copy(0, arg[0], units)
    return units


def _analyse(
    layers: list[nn.Module], input_shape: tuple[int, ...], state: str, gates: GateValues = None
) -> list[_WeightLayer]:
    """Keep values of every weight layer's units and weights under ``state``."""
    if state not in GATE_STATES:
        raise ValueError(f"state must be one of {GATE_STATES}, got {state!r}")
    shapes = _shapes(layers, tuple(input_shape))
    maps = _unit_maps(layers, shapes)
    wl = [
        _weight_layer(m, i, state, shapes[i], gates)
        for i, m in enumerate(layers)
        if isinstance(m, WEIGHT_LAYERS)
    ]
    pairs = list(itertools.pairwise(wl))
    wl[0].alive_in = torch.ones_like(wl[0].read_in)
    for prev, cur in pairs:  # forward: what can be non-zero
        cur.alive_in = _forward_through(prev.alive_out, maps, prev.position + 1, cur.position)
    wl[-1].needed_out = torch.ones_like(wl[-1].alive_out)
    for cur, nxt in reversed(pairs):  # backward: what is read
        cur.needed_out = _backward_through(nxt.read_in, maps, cur.position + 1, nxt.position)
    wl[0].produced_in = wl[0].kept_in
    for prev, cur in pairs:  # whole feature maps survive a Flatten
        cur.produced_in = _forward_through(prev.kept_out, maps, prev.position + 1, cur.position)
    return wl


def _summary(
    module: nn.Module, input_shape: tuple[int, ...], state: str, gates: GateValues = None
) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """Units per gated layer, FLOPs and non-zero parameters as tensors."""
    layers = _layers(module)
    units, flops, params = [], 0.0, 0.0
    for wl in _analyse(layers, input_shape, state, gates):
        layer = layers[wl.position]
        keep_w = wl.keep_w.flatten(2).sum(2) if wl.keep_w.dim() > 2 else wl.keep_w
        weights = (wl.needed_out[:, None] * keep_w * wl.alive_in[None, :]).sum()
        flops = flops + weights * wl.spatial
        params = params + weights
        if layer.bias is not None:
            params = params + wl.kept_out.sum()
        if isinstance(layer, L0Linear):
            units.append(wl.kept_in.sum())
        elif isinstance(layer, L0Conv2d):
            units.append(wl.kept_out.sum())
    return units, flops, params


def architecture(
    module: nn.Module,
    input_shape: tuple[int, ...],
    state: str = "deterministic",
    gates: GateValues = None,
) -> Architecture:
    """Units per gated layer, FLOPs and non-zero parameters of a chain.

    :param module: an :class:`~l0bayes.nn.layers.L0Sequential` or ``nn.Sequential`` chain.
    :param input_shape: one example's shape, e.g. ``(784,)`` or ``(1, 28, 28)``.
    :param state: ``"dense"`` (every gate open), ``"deterministic"`` (the paper's test-time
        gates, Eq. 13) or ``"expected"`` (under the guide: :math:`P(z \\ne 0)`).
    :param gates: gate values for some layers (e.g. one draw from the guide), used instead of
        ``state`` for those layers: the architecture of that draw.
    """
    with torch.no_grad():
        units, flops, params = _summary(module, input_shape, state, gates)
    return Architecture(tuple(float(u) for u in units), float(flops), float(params))


def expected_cost(module: nn.Module, input_shape: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    r"""Expected FLOPs and expected non-zero parameters under the guide, as differentiable
    tensors of the gates' parameters (for a sparsity or FLOPs constraint).

    With independent gates a weight is used with probability
    :math:`P(\text{its unit is read}) \cdot P(\text{its input is alive})`, each a product
    or an "any of" :math:`1 - \prod(1 - p)` of gate inclusion probabilities :math:`P(z \ne 0)`,
    so the expectations are exact for the independent mean-field guide.
    """
    _, flops, params = _summary(module, input_shape, "expected")
    return flops, params


def folded_chain(layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Weight in ``nn.Linear``/``nn.Conv2d`` layout and bias, with the deterministic gates
    multiplied in."""
    w = layer.weight.detach()
    b = None if layer.bias is None else layer.bias.detach()
    if not isinstance(layer, L0Layer):
        return w, b
    z = layer.deterministic_gates().detach()
    w = layer.gated_weight(z, w)
    if isinstance(layer, L0Conv2d) and layer.gate_kind == "group":
        b = None if b is None else b * z  # y_c = z_c (W_c * x + b_c)
    return (w.t() if isinstance(layer, L0Linear) else w), b


def _dense_copy(layer: nn.Module, keep_in: torch.Tensor, keep_out: torch.Tensor) -> nn.Module:
    w, b = folded_chain(layer)
    return dense_layer(layer, w[keep_out][:, keep_in], None if b is None else b[keep_out])


def dense_layer(layer: nn.Module, w: torch.Tensor, b: torch.Tensor | None = None) -> nn.Module:
    """A plain ``nn.Linear`` (``w`` of shape ``(out, in)``) or ``nn.Conv2d`` (``(out, in, kh,
    kw)``, with ``layer``'s stride and padding) holding ``w`` and ``b``, on their device and
    dtype."""
    if w.dim() == 2:
        new = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
    else:
        new = nn.Conv2d(
            w.shape[1],
            w.shape[0],
            w.shape[2:],
            stride=layer.stride,
            padding=layer.padding,
            bias=b is not None,
        )
    new = new.to(dtype=w.dtype, device=w.device)
    with torch.no_grad():
        new.weight.copy_(w)
        if b is not None:
            new.bias.copy_(b)
    return new


def _input_shape(layers: list[nn.Module]) -> tuple[int, ...]:
    first = layers[0]
    if isinstance(first, nn.Linear):
        return (first.in_features,)
    if isinstance(first, L0Linear):
        return (first.in_features,)
    raise ValueError(
        f"cannot infer the input shape of a chain that starts with {type(first).__name__}: "
        "give input_shape, e.g. (1, 28, 28) for MNIST images"
    )


def compact(
    module: nn.Module, input_shape: tuple[int, ...] | None = None, tile_bytes: int = TILE_BYTES
) -> nn.Module:
    """A plain ``torch.nn.Sequential`` (no Pyro at inference) with the pruned units removed.

    Uses the deterministic test-time gates: they are multiplied into the weights, units whose
    gate is 0 (and the units that only fed them) are dropped, and the next layer's inputs are
    sliced to match (through ``nn.Flatten`` by whole feature maps). Features that reach a fully
    connected layer (or the chain's input) but that no open gate reads are dropped by a
    :class:`SelectInputs` in front of it, so the compacted chain computes exactly the FLOPs
    that :func:`architecture` counts for the deterministic gates (group gates). The outputs
    equal ``module(x)`` up to float rounding. On a GPU, cuDNN's convolutions run in TF32 by
    default (``torch.backends.cudnn.allow_tf32``), rounding every product to a 10-bit
    mantissa, and the two networks round differently (their convolutions differ in shape, so
    cuDNN may pick other algorithms): they then agree to TF32's precision (about 1e-4
    relative; measured on an H100), and to float32's with TF32 off.

    For CPU speed the chain is then rewritten exactly (``ReLU → MaxPool2d`` as ``MaxPool2d →
    ReLU``, max-pools as :class:`~l0bayes.nn.runtime.StridedMaxPool2d`); a chain with a
    convolutional prefix is returned as a :class:`~l0bayes.nn.runtime.TiledSequential` (an
    ``nn.Sequential``) that runs that prefix on tiles of the batch (:mod:`l0bayes.nn.runtime`),
    any other (a fully connected network, or ``tile_bytes=0``) as a plain ``nn.Sequential``.

    :param input_shape: one example's shape; may be omitted when the chain starts with a fully
        connected layer (it is then ``(in_features,)``).
    :param tile_bytes: size of a tile's largest feature map; ``0`` runs whole batches.

    A network with skip connections compacts itself: its ``compacted()`` method is called
    (:meth:`~l0bayes.nn.networks.WideResNet.compacted`).
    """
    if callable(getattr(module, "compacted", None)):
        return module.compacted()
    layers = _layers(module)
    input_shape = _input_shape(layers) if input_shape is None else input_shape
    analysis = {wl.position: wl for wl in _analyse(layers, input_shape, "deterministic")}
    first = min(analysis)
    out: list[nn.Module] = []
    for i, layer in enumerate(layers):
        if i not in analysis:
            out.append(copy.deepcopy(layer))
            continue
        wl = analysis[i]
        produced = wl.produced_in.bool()
        keep_in = produced
        if i == first or isinstance(layer, (nn.Linear, L0Linear)):
            keep_in = wl.kept_in.bool() & produced
            arriving = torch.ones_like(produced) if i == first else produced
            if not bool((keep_in == arriving).all()):
                out.append(SelectInputs(torch.nonzero(keep_in[arriving]).flatten()))
        out.append(_dense_copy(layer, keep_in, wl.kept_out.bool()))
    out = exact_rewrites(out)
    itemsize = layers[first].weight.element_size()
    return tiled(out, _shapes(out, input_shape), itemsize, tile_bytes)


__all__ = [
    "Architecture",
    "GATE_STATES",
    "GateValues",
    "SelectInputs",
    "WEIGHT_LAYERS",
    "ZERO_PRESERVING",
    "architecture",
    "compact",
    "dense_layer",
    "expected_cost",
    "folded_chain",
    "keep_values",
]
