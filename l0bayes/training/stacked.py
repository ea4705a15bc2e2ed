r""":math:`K` chains of gated layers as one: stacked parameters, gates, forward pass, KL and
expected cost.

:math:`K` networks of one architecture (``mnist-mlp``, ``lenet5``: chains of group-gated
layers with point-mass weights) keep their parameters as the slices ``[k]`` of stacked tensors
``(K, ...)``; every network's own ``nn.Parameter`` becomes a view of its slice, so its
``state_dict``, its trainer's checkpoint and everything that reads a network still work as
alone. The :math:`\log\alpha` of all gated layers are one tensor ``(K, G)`` (:math:`G` the
gates of all layers, layer by layer), so a step draws and transforms every gate of every
network with one set of elementwise operations:

* **gates** :math:`z = \min(1, \max(0, \sigma((\log u - \log(1-u) + \log\alpha)/\beta)
  (\zeta-\gamma)+\gamma))` for the counter uniforms :math:`u` of each network's
  ``(seed, step)`` (:mod:`l0bayes.distributions.counter_noise`; the draw :math:`j` is the
  gated layer, the element its gate, or ``b·G_j + g`` with one draw per example), which are
  exactly what the network draws alone;
* **fully connected layers** as batched matrix products, :math:`h^{(k)} \mapsto (h^{(k)} \odot
  z^{(k)}) W^{(k)} + b^{(k)}` (``torch.baddbmm``);
* **convolutions** as one grouped convolution: the activations are laid out ``(B, K·C, H,
  W)`` and network :math:`k`'s filters are group :math:`k` (``groups=K``), the gates scale its
  output maps;
* **the KL** :math:`\sum_g \mathrm{KL}(q(z_g)\|p(z_g)) + \sum_g P(z_g \ne 0)
  \tfrac{\lambda_2}{2}\lVert\tilde\theta_g\rVert^2` per network
  (:func:`~l0bayes.distributions.gate_kl`, :func:`~l0bayes.distributions.spike_slab.point_mass_kl`);
* **the expected cost** :math:`E[\text{FLOPs}]` and :math:`E[\text{params}]` of every network
  under its guide (for a sparsity target), the analysis of :mod:`l0bayes.nn.architecture`
  written for group gates on stacked probabilities (tested equal to
  :func:`~l0bayes.nn.networks.network_expected_cost`).

Everything here is tensor arithmetic without host synchronisation, so a training step built on
it can be captured in a CUDA graph (:mod:`l0bayes.training.engine`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from l0bayes.distributions import HardConcrete, gate_kl
from l0bayes.distributions.counter_noise import positions, seed_streams
from l0bayes.distributions.spike_slab import point_mass_kl
from l0bayes.nn.layers import L0Conv2d, L0Layer, L0Linear, L0Sequential
from l0bayes.nn.networks import network_architecture

#: Ungated modules a stacked chain may hold (applied to the stacked activations).
PLAIN = (nn.ReLU, nn.MaxPool2d, nn.Flatten)
#: The key of the stacked :math:`\log\alpha` of all gated layers.
GATES = "log_alpha"
#: The stacked gates' rows are padded to a multiple of this many numbers (64 bytes in float32).
ROW_ALIGN = 16


def check_chain(net: nn.Module) -> None:
    """Raise ``ValueError`` (one line) unless ``net`` is a chain that can be stacked: an
    :class:`~l0bayes.nn.layers.L0Sequential` of group-gated ``L0Linear``/``L0Conv2d`` layers
    with point-mass weights, one temperature and stretch, and ReLU, max pooling and Flatten."""
    if not isinstance(net, L0Sequential):
        raise ValueError(f"only chains of gated layers stack, not a {type(net).__name__}")
    gated = [m for m in net.layers if isinstance(m, L0Layer)]
    for layer in net.layers:
        if isinstance(layer, (L0Linear, L0Conv2d)):
            if layer.gate_kind != "group" or layer.weight_guide != "delta":
                raise ValueError("stacking needs group gates with point-mass weights")
        elif not isinstance(layer, PLAIN):
            raise ValueError(f"a stacked chain cannot hold a {type(layer).__name__}")
    if len({(m.temperature, m.stretch, m.kl_mode) for m in gated}) != 1:
        raise ValueError("the gated layers of a stacked chain share temperature, stretch, kl_mode")


class StackedChain:
    """``K`` chains (:func:`check_chain`) with stacked parameters (module docstring).

    :param nets: the networks, of one architecture; their parameters become views.
    :param input_shape: one example's shape.
    :param seeds: each network's seed (its counter stream).
    :param grouped_conv: convolutions of all networks as one grouped convolution (the default
        on CUDA, where a step is bound by its kernel launches), else network by network (the
        default on the CPU: the arithmetic of a single run, so a stack equals its runs
        bitwise; the two agree to float rounding, tested).
    """

    def __init__(
        self,
        nets: Sequence[L0Sequential],
        input_shape: tuple[int, ...],
        seeds: Sequence[int],
        grouped_conv: bool | None = None,
    ) -> None:
        for net in nets:
            check_chain(net)
        self.nets, self.K = list(nets), len(nets)
        self.template = nets[0]
        self.input_shape = tuple(input_shape)
        self.layers = list(self.template.layers)
        self.gated = [i for i, m in enumerate(self.layers) if isinstance(m, L0Layer)]
        self.slices: list[slice] = []
        start = 0
        for i in self.gated:
            self.slices.append(slice(start, start + self.layers[i].num_gates))
            start += self.layers[i].num_gates
        self.num_gates = start
        #: the stacked gates' row length, whole 64-byte lines: the CPU's vectorised ``log``,
        #: ``sigmoid``, ... differ in the last bit from their scalar tails, so every network's
        #: row must fall on the vector lanes a single run's does (the columns past
        #: :attr:`num_gates` are computed and never read).
        self.row = -(-start // ROW_ALIGN) * ROW_ALIGN
        first = self.layers[self.gated[0]]
        self.temperature, self.stretch, self.kl_mode = (
            first.temperature,
            first.stretch,
            first.kl_mode,
        )
        self._layout()
        device = self.params[GATES].device
        self.grouped_conv = device.type == "cuda" if grouped_conv is None else grouped_conv
        self.streams = seed_streams(seeds, device)
        self.base_costs = self.gate_costs([[m.gate_cost() for m in self._gated(n)] for n in nets])
        self._shapes = self._output_shapes()
        self.dense = network_architecture(self.template, self.input_shape, "dense")

    # ------------------------------------------------------------------ layout
    def _gated(self, net: L0Sequential) -> list[L0Layer]:
        return [net.layers[i] for i in self.gated]

    def _layout(self) -> None:
        """``entries``: (network parameter name, stacked key, columns or ``None``); then stack
        the parameters and make every network's parameters views of them."""
        self.entries: list[tuple[str, str, slice | None]] = []
        gate_names = {
            f"layers.{i}.log_alpha": sl for i, sl in zip(self.gated, self.slices, strict=True)
        }
        for name, _ in self.template.named_parameters():
            if name in gate_names:
                self.entries.append((name, GATES, gate_names[name]))
            else:
                self.entries.append((name, name, None))
        named = [dict(net.named_parameters()) for net in self.nets]
        stacked = self.stack([{n: p.detach() for n, p in d.items()} for d in named])
        self.params = {key: nn.Parameter(value) for key, value in stacked.items()}
        self.bind()

    def keys(self) -> list[str]:
        """The stacked tensors' keys, in the networks' parameter order."""
        return list(dict.fromkeys(key for _, key, _ in self.entries))

    def stack(self, per_net: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """New stacked tensors ``(K, ...)`` from one mapping per network (by parameter name:
        parameters, their averages, their optimiser moments)."""
        parts: dict[str, list] = {key: [] for key in self.keys()}
        for name, key, _ in self.entries:
            parts[key].append(name)
        out = {}
        for key, names in parts.items():
            rows = [torch.cat([d[n].reshape(-1) for n in names]) for d in per_net]
            if key == GATES:
                out[key] = F.pad(torch.stack(rows), (0, self.row - self.num_gates))
            else:
                out[key] = torch.stack(rows).reshape(len(per_net), *per_net[0][names[0]].shape)
        return out

    def views(self, stacked: Mapping[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
        """Network ``k``'s tensors (by parameter name) as views of ``stacked``."""
        return {
            name: stacked[key][k] if cols is None else stacked[key][k, cols]
            for name, key, cols in self.entries
        }

    def bind(self) -> None:
        """Point every network's parameters at their slices of :attr:`params`."""
        for k, net in enumerate(self.nets):
            named = dict(net.named_parameters())
            for name, view in self.views(self.params, k).items():
                named[name].data = view.detach()

    def gate_costs(self, costs: Sequence[Sequence[float]]) -> torch.Tensor:
        """``(K, row)``: each gate's code cost from one value per network and gated layer (0
        in the padding)."""
        like = self.params[GATES]
        out = torch.zeros(self.K, self.row, dtype=like.dtype, device=like.device)
        for k, row in enumerate(costs):
            for sl, cost in zip(self.slices, row, strict=True):
                out[k, sl] = cost
        return out

    # ------------------------------------------------------------------ noise
    def noise_positions(self, batch: int | None) -> torch.Tensor:
        """The counter positions of the gates' uniforms: ``(row,)`` for one draw per
        minibatch, ``(batch, row)`` for one per example (element ``b·G_j + g`` of layer ``j``'s
        draw; the padding draws as one more layer)."""
        device = self.params[GATES].device
        parts = []
        widths = [sl.stop - sl.start for sl in self.slices] + [self.row - self.num_gates]
        for j, width in enumerate(widths):
            if batch is None:
                parts.append(positions(j, width, device))
            else:
                parts.append(positions(j, batch * width, device).reshape(batch, width))
        return torch.cat(parts, dim=-1)

    # ------------------------------------------------------------------ the model
    def posterior(self, log_alpha: torch.Tensor | None = None) -> HardConcrete:
        """The guide's gates of every network, batch shape ``(K, row)`` (the gates of layer
        ``j`` are the columns :attr:`slices` ``[j]``; the padding's are never read)."""
        la = self.params[GATES] if log_alpha is None else log_alpha
        return HardConcrete(la, self.temperature, self.stretch, validate_args=False)

    def real(self, stacked: torch.Tensor) -> torch.Tensor:
        """The columns of the gates ``(K, ..., G)`` of a tensor ``(K, ..., row)``."""
        return stacked[..., : self.num_gates]

    def logits(
        self,
        x: torch.Tensor,
        gates: torch.Tensor | None,
        params: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Logits ``(K, B, C)`` of the stacked inputs ``x`` ``(K, B, ...)`` under the gates
        ``gates`` (``(K, G)`` or ``(K, B, G)``), or Eq. 13's test-time gates (``None``),
        with the stacked ``params`` (default :attr:`params`, e.g. their averages)."""
        params = self.params if params is None else params
        if gates is None:
            gates = self.posterior(params[GATES]).deterministic_gate()
        slices = dict(zip(self.gated, self.slices, strict=True))

        def gated(i: int, layer: nn.Module, h: torch.Tensor) -> torch.Tensor:
            z = gates[..., slices[i]]
            weight, bias = params[f"layers.{i}.weight"], params.get(f"layers.{i}.bias")
            if isinstance(layer, L0Linear):
                return linear(h * (z if z.dim() == 3 else z[:, None, :]), weight, bias)
            return scale_maps(conv(h, weight, bias, layer, self.grouped_conv), z, self.grouped_conv)

        return forward_chain(self.layers, x, gated, self.grouped_conv)

    def kl(self, q: HardConcrete, costs: torch.Tensor) -> torch.Tensor:
        r"""Each network's :math:`\sum_\ell \mathrm{KL}_\ell`, ``(K,)``: the gates' term with
        code costs ``costs`` ``(K, row)`` plus the :math:`P(z \ne 0)`-scaled weight decay."""
        decays = []
        for i in self.gated:
            layer = self.layers[i]
            grouped = self.params[f"layers.{i}.weight"].reshape(self.K, layer.num_gates, -1)
            decays.append(point_mass_kl(grouped, layer.weight_prior(), event_dim=1))
        gate = self.real(gate_kl(q, costs, self.kl_mode))
        return gate.sum(-1) + (self.real(q.prob_nonzero) * torch.cat(decays, -1)).sum(-1)

    # ------------------------------------------------------------------ expected cost
    def _output_shapes(self) -> list[torch.Size]:
        x = torch.zeros(1, *self.input_shape, device=self.params[GATES].device)
        shapes = []
        with torch.no_grad():
            for layer in self.layers:
                x = layer(x)
                shapes.append(x.shape[1:])
        return shapes

    def expected_cost(self, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Expected FLOPs and non-zero parameters ``(K,)`` of every network for the gate
        inclusion probabilities ``probs`` ``(K, row)``: the weight :math:`w_{ji}` of a layer
        counts :math:`P(\text{out}_j\text{ read}) P(w_{ji}\text{'s gate open})
        P(\text{in}_i\text{ alive})` (times its output positions for FLOPs), a bias
        :math:`P(\text{out}_j\text{ alive and read})` (as :func:`l0bayes.nn.architecture.
        expected_cost`, for group gates: FC layers gate inputs, convolutions outputs)."""
        K = probs.shape[0]
        ones = lambda n: probs.new_ones(K, n)  # noqa: E731
        rows = []  # (position, layer, gate probs, read_in, alive_out)
        for i, sl in zip(self.gated, self.slices, strict=True):
            layer, p = self.layers[i], probs[:, sl]
            if isinstance(layer, L0Linear):
                rows.append((i, layer, p, p, ones(layer.out_features)))
            else:
                rows.append((i, layer, p, ones(layer.in_channels), p))
        alive = [ones(rows[0][3].shape[1])]
        for (i0, *_, out), (i1, *_) in zip(rows[:-1], rows[1:], strict=True):  # can be non-zero
            alive.append(self._through(out, i0, i1, forward=True))
        needed = [ones(rows[-1][4].shape[1])]
        pairs = zip(reversed(rows[:-1]), reversed(rows[1:]), strict=True)
        for (i0, *_), (i1, _, _, read, _) in pairs:  # what is read
            needed.insert(0, self._through(read, i0, i1, forward=False))
        flops = params = probs.new_zeros(K)
        for (i, layer, p, _, out), a, n in zip(rows, alive, needed, strict=True):
            if isinstance(layer, L0Linear):
                weights = n.sum(-1) * (p * a).sum(-1)
                spatial = 1
            else:
                kernel = layer.kernel_size[0] * layer.kernel_size[1]
                weights = kernel * (n * p).sum(-1) * a.sum(-1)
                spatial = self._shapes[i][1] * self._shapes[i][2]
            flops = flops + weights * spatial
            params = params + weights
            if layer.bias is not None:
                params = params + (out * n).sum(-1)
        return flops, params

    def _through(self, units: torch.Tensor, start: int, stop: int, forward: bool) -> torch.Tensor:
        """Per-unit values ``(K, n)`` from the output of layer ``start`` to the input of layer
        ``stop`` (``forward``), or back: a Flatten repeats a map's value over its H·W
        features; back, a map is read if any of its features is."""
        for i in range(start + 1, stop):
            if isinstance(self.layers[i], nn.Flatten):
                before = self._shapes[i - 1]
                hw = before[1] * before[2]
                if forward:
                    units = units.repeat_interleave(hw, dim=-1)
                else:
                    units = 1 - torch.prod(1 - units.reshape(units.shape[0], -1, hw), dim=-1)
        return units

    def expected_fractions(self, probs: torch.Tensor, kind: str, scope: str) -> torch.Tensor:
        """The fractions a sparsity target holds, ``(K, 1)`` (``scope="global"``: expected
        FLOPs or parameters over the dense network's) or ``(K, layers)`` (``"layer"``: the mean
        inclusion probability of each gated layer), as
        :meth:`~l0bayes.training.averaging.Lagrangian.fractions`."""
        if scope == "layer":
            return torch.stack([probs[:, sl].mean(-1) for sl in self.slices], dim=-1)
        flops, params = self.expected_cost(probs)
        cost = flops / self.dense.flops if kind == "flops" else params / self.dense.params
        return cost[:, None]


# ---------------------------------------------------------------------- stacked layers
def forward_chain(
    layers: Sequence[nn.Module],
    x: torch.Tensor,
    weight_layer: Callable[[int, nn.Module, torch.Tensor], torch.Tensor],
    grouped_conv: bool,
) -> torch.Tensor:
    """The stacked forward pass of a chain on ``x`` ``(K, B, ...)``: every layer with a
    ``weight`` is ``weight_layer(position, layer, h)``; ReLU, max pooling and Flatten act on
    the activations as they are laid out: ``(K, B, ...)``, or, from a convolution on when
    ``grouped_conv``, ``(B, K·C, H, W)`` (network :math:`k`'s maps are group :math:`k`)."""
    K, B = x.shape[:2]
    h, grouped = x, False
    for i, layer in enumerate(layers):
        if isinstance(layer, nn.Flatten):
            h = h.reshape(B, K, -1).transpose(0, 1) if grouped else h.flatten(2)
            grouped = False
        elif isinstance(layer, nn.MaxPool2d) and not grouped:
            h = layer(h.flatten(0, 1)).unflatten(0, (K, B))
        elif getattr(layer, "weight", None) is None:
            h = layer(h)
        else:
            if grouped_conv and not grouped and hasattr(layer, "kernel_size"):
                h, grouped = grouped_layout(h), True
            h = weight_layer(i, layer, h)
    return h


def grouped_layout(h: torch.Tensor) -> torch.Tensor:
    """Activations ``(K, B, C, H, W)`` laid out ``(B, K·C, H, W)``."""
    return h.transpose(0, 1).reshape(h.shape[1], -1, *h.shape[3:])


def linear(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """:math:`h^{(k)} W^{(k)} + b^{(k)}` for ``h`` ``(K, B, in)``, ``weight`` ``(K, in,
    out)``: one batched matrix product."""
    return h @ weight if bias is None else torch.baddbmm(bias[:, None], h, weight)


def conv(
    h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, layer, grouped: bool
) -> torch.Tensor:
    """Every network's convolution (``layer``'s stride and padding) with its filters
    ``weight[k]``: one grouped convolution of ``h`` ``(B, K·C, H, W)`` (``grouped``), else one
    convolution per network of ``h[k]`` ``(B, C, H, W)``: exactly a single run's arithmetic."""
    args = (layer.stride, layer.padding)
    if grouped:
        b = None if bias is None else bias.reshape(-1)
        return F.conv2d(h, weight.reshape(-1, *weight.shape[2:]), b, *args, groups=len(weight))
    return torch.stack([
        F.conv2d(h[k], weight[k], None if bias is None else bias[k], *args)
        for k in range(len(weight))
    ])  # fmt: skip


def scale_maps(h: torch.Tensor, z: torch.Tensor, grouped: bool) -> torch.Tensor:
    """Convolution outputs times per-map factors ``z`` ``(K, C)`` (or ``(K, B, C)``), in
    either layout of :func:`conv`."""
    if grouped:
        z = z.reshape(1, -1) if z.dim() == 2 else z.transpose(0, 1).reshape(h.shape[0], -1)
    else:
        z = z if z.dim() == 3 else z[:, None, :]
    return h * z[..., None, None]


__all__ = [
    "GATES",
    "PLAIN",
    "StackedChain",
    "check_chain",
    "conv",
    "forward_chain",
    "grouped_layout",
    "linear",
    "scale_maps",
]
