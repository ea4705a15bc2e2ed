r"""The paper's networks as gated Pyro classifiers, and their training defaults.

* ``mnist-mlp``: the MLP 784-300-100-10 with a group gate on every layer's **input neurons**
  (Table 1; architecture strings such as ``784-300-100 -> 219-214-100`` count them).
* ``lenet5``: LeNet-5-Caffe, conv 20 and 50 maps (5×5, each followed by ReLU and 2×2 max
  pooling), then FC 800-500-10; gates on the convolutions' **output maps** and the FC layers'
  input neurons (``20-50-800-500``).
* ``wrn``: Wide-ResNet WRN-d-k (pre-activation basic blocks, widths 16k-32k-64k, d = 6n + 4)
  with a gate on every output map of each block's first 3×3 convolution (Table 2).

**WRN gate placement.** The paper gates the first convolution's output and then applies batch
norm, so a closed gate leaves the constant :math:`\mathrm{ReLU}(\beta)` in its channel: the
channel is not really removed. Here the gate multiplies the channel *after* the block's second
batch norm and ReLU, :math:`h_c = z_c\,\mathrm{ReLU}(\mathrm{BN}(W_c * x))`, so a closed gate
zeroes the channel exactly and the map, its batch-norm parameters and the second convolution's
input slice can all be deleted. The gate still controls the first convolution's filter
(:math:`S = C_\text{in}\cdot 3 \cdot 3` weights, the code cost a gate pays).

**WRN weight decay.** The gated convolutions carry the Gaussian slab of precision
``weight_precision``, scaled by :math:`P(z \ne 0)`; every other parameter (the stem, each
block's second convolution and shortcut, the batch norms and the head) gets the same Gaussian
prior unscaled (:attr:`L0Network.ungated_precision`), as the official code decays them all.

:data:`NETWORKS` maps each name to a :class:`NetworkSpec` with the paper's hyper-parameters
(``../shared/PAPER.md``): the models/ scripts and ``l0bayes train`` use them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from pyro.nn import PyroModule
from torch import nn

from l0bayes.nn.architecture import (
    Architecture,
    GateValues,
    architecture,
    dense_layer,
    expected_cost,
    keep_values,
)
from l0bayes.nn.layers import (
    L0Conv2d,
    L0Layer,
    L0Linear,
    L0Network,
    L0Sequential,
    LayerDraw,
    check_precision,
)


def _per_layer(value: float | Sequence[float], count: int, name: str) -> list[float]:
    """One value per gated layer from a scalar or a list of ``count`` values."""
    if isinstance(value, (int, float)):
        return [float(value)] * count
    values = [float(v) for v in value]
    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise ValueError(f"{name} needs 1 or {count} values (one per gated layer), got {values}")
    return values


def mnist_mlp(
    lam: float | Sequence[float] = 0.1,
    weight_precision: float = 5e-4,
    init_drop_rate: Sequence[float] = (0.2, 0.5, 0.5),
    hidden: Sequence[int] = (300, 100),
    num_classes: int = 10,
    **layer_kwargs,
) -> L0Sequential:
    """MLP ``784-300-100-10`` with input-neuron gates on every layer.

    :param lam: code cost per parameter (nats), one value or one per layer (the paper's
        ":math:`\\lambda = 0.1/N`" is ``0.1``).
    :param weight_precision: the slab precision :math:`\\lambda_2` in the per-data-set ELBO.
        The paper's weight decay 5e-4 is per data point, so it is :math:`N \\times 5\\cdot
        10^{-4}` here (30 on MNIST; ``l0bayes train`` passes that); the default 5e-4 is the
        official LeNet-5 script's unscaled value, almost no decay.
    :param init_drop_rate: initial drop rate per layer (0.2 for the input layer, 0.5 else).
    """
    sizes = [784, *hidden]
    lams = _per_layer(lam, len(sizes), "lam")
    drops = _per_layer(init_drop_rate, len(sizes), "init_drop_rate")
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes, [*sizes[1:], num_classes], strict=True)):
        layers.append(
            L0Linear(
                n_in,
                n_out,
                lam=lams[i],
                weight_precision=weight_precision,
                init_drop_rate=drops[i],
                **layer_kwargs,
            )
        )
        if i < len(sizes) - 1:
            layers.append(nn.ReLU())
    return L0Sequential(*layers)


def lenet5(
    lam: float | Sequence[float] = 0.1,
    weight_precision: float = 5e-4,
    init_drop_rate: float | Sequence[float] = 0.5,
    num_classes: int = 10,
    in_channels: int = 1,
    **layer_kwargs,
) -> L0Sequential:
    """LeNet-5-Caffe: conv(20, 5×5)-ReLU-maxpool-conv(50, 5×5)-ReLU-maxpool-FC 800-500-10, for
    28×28 inputs; gates on output maps (conv) and input neurons (FC). ``lam`` and
    ``init_drop_rate``: one value or four (the paper's "λ sep." row is ``(10, 0.5, 0.1, 0.1)``).
    """
    lams = _per_layer(lam, 4, "lam")
    drops = _per_layer(init_drop_rate, 4, "init_drop_rate")

    def kw(i: int) -> dict:
        return dict(
            lam=lams[i], weight_precision=weight_precision, init_drop_rate=drops[i], **layer_kwargs
        )

    return L0Sequential(
        L0Conv2d(in_channels, 20, 5, **kw(0)),
        nn.ReLU(),
        nn.MaxPool2d(2),
        L0Conv2d(20, 50, 5, **kw(1)),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        L0Linear(800, 500, **kw(2)),
        nn.ReLU(),
        L0Linear(500, num_classes, **kw(3)),
    )


class WideBlock(PyroModule):
    """Pre-activation basic block ``BN-ReLU-conv1-BN-ReLU-[gate]-conv2`` plus the shortcut
    (identity, or a 1×1 convolution of the first activation when the shape changes); the gate
    of ``conv1`` multiplies its maps after the second batch norm and ReLU (module docstring)."""

    def __init__(self, in_planes: int, planes: int, stride: int, **gate_kwargs) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = L0Conv2d(in_planes, planes, 3, stride, 1, bias=False, **gate_kwargs)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride, bias=False)

    def forward(self, x: torch.Tensor, draw: LayerDraw | None = None) -> torch.Tensor:
        if draw is None:
            draw = LayerDraw(self.conv1.deterministic_gates(), self.conv1.weight)
        a, skip = _pre_activation(self, x)
        conv = self.conv1
        h = F.conv2d(a, draw.weight, None, conv.stride, conv.padding)
        h = F.relu(self.bn2(h)) * draw.gates[..., None, None]
        return self.conv2(h) + skip


def _pre_activation(block: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A (gated or compacted) block's first activation ``ReLU(BN1(x))`` and its shortcut."""
    a = F.relu(block.bn1(x))
    return a, (x if block.shortcut is None else block.shortcut(a))


def _check_images(x: torch.Tensor) -> None:
    if x.dim() != 4 or x.shape[1:] != (3, 32, 32):
        raise ValueError(f"WideResNet expects (B, 3, 32, 32) images, got {tuple(x.shape)}")


def _classify(net: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """A (gated or compacted) WRN's head: BN, ReLU, global average pooling, classifier."""
    return net.fc(F.adaptive_avg_pool2d(F.relu(net.bn(h)), 1).flatten(1))


class CompactWideBlock(nn.Module):
    r"""A :class:`WideBlock` with its closed maps removed, in plain torch: ``conv1`` and ``bn2``
    keep the open maps, ``conv2`` reads only those, with each map's test-time gate
    :math:`\hat z_c` multiplied into its input slice (:math:`W_2 * (\hat z \odot h) =
    (W_2 \hat z) * h`). With every map closed the block is its shortcut alone."""

    def __init__(self, block: WideBlock) -> None:
        super().__init__()
        if block.conv1.gate_kind != "group":
            raise ValueError("WRN compaction needs map gates (gate='group') on conv1")
        z = block.conv1.deterministic_gates().detach()
        keep = torch.nonzero(z).flatten()
        self.bn1 = copy.deepcopy(block.bn1)
        self.shortcut = copy.deepcopy(block.shortcut)
        self.conv1 = self.bn2 = self.conv2 = None
        if len(keep):
            w1, w2 = block.conv1.weight.detach(), block.conv2.weight.detach()
            self.conv1 = dense_layer(block.conv1, w1[keep])
            self.bn2 = _sliced_batch_norm(block.bn2, keep)
            self.conv2 = dense_layer(block.conv2, w2[:, keep] * z[keep][:, None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, skip = _pre_activation(self, x)
        if self.conv1 is None:
            return skip
        return self.conv2(F.relu(self.bn2(self.conv1(a)))) + skip


def _sliced_batch_norm(bn: nn.BatchNorm2d, keep: torch.Tensor) -> nn.BatchNorm2d:
    """``bn`` restricted to the channels ``keep`` (affine parameters and running statistics)."""
    state = bn.state_dict()
    like = next(v for v in state.values() if v.is_floating_point())
    out = nn.BatchNorm2d(len(keep), bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    out.to(like.device, like.dtype).train(bn.training)
    out.load_state_dict({k: v if v.dim() == 0 else v[keep] for k, v in state.items()})
    return out


class CompactWideResNet(nn.Module):
    """A :class:`WideResNet` with its pruned maps removed (:meth:`WideResNet.compacted`)."""

    def __init__(self, net: WideResNet) -> None:
        super().__init__()
        self.conv = copy.deepcopy(net.conv)
        self.blocks = nn.ModuleList(CompactWideBlock(b) for b in net.blocks)
        self.bn = copy.deepcopy(net.bn)
        self.fc = copy.deepcopy(net.fc)
        self.train(net.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x)
        h = self.conv(x)
        for block in self.blocks:
            h = block(h)
        return _classify(self, h)


class WideResNet(L0Network):
    """WRN-``depth``-``width`` for 32×32 images with gated first convolutions (module
    docstring). ``depth = 6n + 4``; the paper's CIFAR network is WRN-28-10."""

    def __init__(
        self,
        depth: int = 28,
        width: int = 10,
        num_classes: int = 10,
        lam: float = 0.001,
        weight_precision: float = 5e-4,
        init_drop_rate: float = 0.3,
        **layer_kwargs,
    ) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(
                f"WRN depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, ...), got {depth}"
            )
        if width < 1:
            raise ValueError(f"WRN width must be a positive integer, got {width}")
        n = (depth - 4) // 6
        self.depth, self.width = depth, width
        widths = [16, 16 * width, 32 * width, 64 * width]
        gate = dict(
            lam=lam,
            weight_precision=weight_precision,
            init_drop_rate=init_drop_rate,
            **layer_kwargs,
        )
        self.conv = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        blocks = []
        for g in range(3):
            for b in range(n):
                stride = 2 if g > 0 and b == 0 else 1
                in_planes = widths[g] if b == 0 else widths[g + 1]
                blocks.append(WideBlock(in_planes, widths[g + 1], stride, **gate))
        self.blocks = PyroModule[nn.ModuleList](blocks)
        self.bn = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)
        self.ungated_precision = check_precision(weight_precision, "weight_precision")

    def _run(self, x: torch.Tensor, draws: dict[L0Layer, LayerDraw] | None) -> torch.Tensor:
        _check_images(x)
        h = self.conv(x)
        for block in self.blocks:
            h = block(h, None if draws is None else draws[block.conv1])
        return _classify(self, h)

    def compacted(self) -> CompactWideResNet:
        """The network with the maps of closed gates removed (plain torch, no Pyro), equal to
        the deterministic network's output; its multiply–accumulates are
        ``summary("deterministic")``'s FLOPs."""
        return CompactWideResNet(self)

    def summary(
        self, state: str, gates: GateValues = None
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Kept maps per block, multiply–accumulates and non-zero parameters (convolutions, the
        classifier and batch-norm affine parameters) for one 32×32 image under ``state``."""
        side = 32
        flops = torch.tensor(float(side * side * 3 * 9 * self.conv.out_channels))
        params = torch.tensor(float(self.conv.weight.numel()))
        units = []
        for block in self.blocks:
            conv = block.conv1
            kept = keep_values(conv, state, gates).sum()
            side = side // conv.stride[0]
            k = conv.kernel_size[0] * conv.kernel_size[1]
            weights = k * conv.in_channels * kept + 9 * kept * block.conv2.out_channels
            if block.shortcut is not None:
                weights = weights + block.shortcut.weight.numel()
            flops = flops + weights * side * side
            params = params + weights + 2 * (conv.in_channels + kept)  # bn1, bn2
            units.append(kept)
        fc = self.fc.weight.numel()
        return units, flops + fc, params + fc + self.fc.out_features + 2 * self.bn.num_features


def wide_resnet(
    lam: float | Sequence[float] = 0.001,
    weight_precision: float = 5e-4,
    init_drop_rate: float | Sequence[float] = 0.3,
    depth: int = 28,
    width: int = 10,
    num_classes: int = 10,
    **layer_kwargs,
) -> WideResNet:
    """:class:`WideResNet` with the paper's CIFAR defaults (λ = 0.001/N, drop rate 0.3)."""
    return WideResNet(
        depth,
        width,
        num_classes,
        lam=_per_layer(lam, 1, "lam")[0],
        weight_precision=weight_precision,
        init_drop_rate=_per_layer(init_drop_rate, 1, "init_drop_rate")[0],
        **layer_kwargs,
    )


# ----------------------------------------------------------------------------- analysis
def network_architecture(
    net: nn.Module, input_shape: tuple[int, ...], state: str, gates: GateValues = None
) -> Architecture:
    """:func:`~l0bayes.architecture.architecture` for chains, the network's own ``summary``
    for networks with skip connections (Wide-ResNet); ``gates`` as there."""
    if hasattr(net, "summary"):
        with torch.no_grad():
            units, flops, params = net.summary(state, gates)
        return Architecture(tuple(float(u) for u in units), float(flops), float(params))
    return architecture(net, input_shape, state, gates)


def network_expected_cost(net: nn.Module, input_shape: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    """Differentiable expected FLOPs and non-zero parameters under the guide."""
    if hasattr(net, "summary"):
        _, flops, params = net.summary("expected")
        return flops, params
    return expected_cost(net, input_shape)


# ----------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class NetworkSpec:
    """A named network: its builder, data set, input shape and the paper's training
    hyper-parameters (each a default of ``l0bayes train``)."""

    name: str
    build: Callable[..., L0Network]
    dataset: str
    input_shape: tuple[int, ...]
    num_classes: int
    lam: tuple[float, ...]
    init_drop_rate: tuple[float, ...]
    epochs: int = 200
    batch_size: int = 100
    lr: float = 1e-3
    optimizer: str = "adam"
    ema: float | None = None
    milestones: tuple[int, ...] = ()
    standardize: bool = False  # inputs in [0, 1] (the official MNIST code); True: per channel
    weight_init: str = "uniform"  # of the gated layers (l0bayes.nn.layers.WEIGHT_INITS)
    weight_decay: float = 5e-4  # per data point: the slab precision is N times it
    notes: dict = field(default_factory=dict)

    def make(self, **overrides) -> L0Network:
        """Build the network with the paper's λ, drop rates and weight initialisation unless
        overridden."""
        kwargs = dict(
            lam=self.lam, init_drop_rate=self.init_drop_rate, weight_init=self.weight_init
        )
        kwargs.update(overrides)
        return self.build(**kwargs)


NETWORKS: dict[str, NetworkSpec] = {
    "mnist-mlp": NetworkSpec(
        "mnist-mlp", mnist_mlp, "mnist", (784,), 10, (0.1,), (0.2, 0.5, 0.5), ema=0.999
    ),
    # The paper trains every MNIST network with temporal averaging (an EMA of the parameters
    # for evaluation); the official LeNet-5 script defines ``--beta_ema 0.999`` but never passes
    # it to its model, so it evaluates the last iterate (``--ema 0`` reproduces that).
    "lenet5": NetworkSpec("lenet5", lenet5, "mnist", (1, 28, 28), 10, (0.1,), (0.5,), ema=0.999),
    "wrn": NetworkSpec(
        "wrn",
        wide_resnet,
        "cifar10",
        (3, 32, 32),
        10,
        (0.001,),
        (0.3,),
        batch_size=128,
        lr=0.1,
        optimizer="sgd",
        ema=0.99,
        milestones=(60, 120, 160),
        standardize=True,
    ),
}


def get_network(name: str) -> NetworkSpec:
    """The :class:`NetworkSpec` called ``name``, with a clear error for unknown names."""
    try:
        return NETWORKS[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; choose one of {sorted(NETWORKS)}") from None


__all__ = [
    "NETWORKS",
    "NetworkSpec",
    "WideBlock",
    "WideResNet",
    "get_network",
    "lenet5",
    "mnist_mlp",
    "network_architecture",
    "network_expected_cost",
    "wide_resnet",
]
