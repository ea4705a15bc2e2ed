r"""CPU execution of compacted chains: exact rewrites and batch tiling.

FLOPs count the multiply–accumulates of weight layers; on a CPU other things cost time in a
convolutional chain, and pruning removes none of them from an unpruned first layer:

* **Max-pooling kernels.** ``nn.MaxPool2d`` also tracks the arg-max; when the windows tile the
  input (stride = kernel, no padding or dilation) the pool is the element-wise maximum of its
  :math:`k_h k_w` strided slices, :math:`y_{ij} = \max_{a<k_h,\,b<k_w} x_{k_h i + a,\,k_w j + b}`,
  several times faster and bit-for-bit equal (:class:`StridedMaxPool2d`).
* **Activations before pooling.** A ReLU commutes with a max,
  :math:`\max_a \operatorname{relu}(x_a) = \operatorname{relu}(\max_a x_a)` (ReLU is monotone),
  so ``ReLU → MaxPool`` runs as ``MaxPool → ReLU`` on :math:`k_h k_w` times fewer values; exact.
* **Memory traffic.** The first convolution's output (LeNet-5: 20×24×24 floats, 46 KB per
  image) at batch 1024 is 47 MB, written and read again by every map after it; run on tiles of a
  few dozen images, the feature maps stay in cache. :class:`TiledSequential` runs a chain's
  convolutional prefix (the layers whose outputs are feature maps) tile by tile and the rest on
  the whole batch. Per example the arithmetic is unchanged; only the batch a kernel sees
  differs, so outputs agree with the untiled chain to float rounding.
* **Memory layout.** oneDNN's CPU convolutions run faster on channels-last (NHWC) maps; the
  prefix takes its input in that layout, with its weights converted once. A different
  convolution algorithm sums in a different order: outputs agree to float rounding.

None of this changes what the chain computes, and :func:`~l0bayes.nn.architecture.compact` applies
it to dense and pruned chains alike, so a dense-vs-compact timing compares the same engine.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.utils import _pair

#: Default size in bytes of a tile's largest feature map (per-example size × tile): a few MiB,
#: so that a tile's maps stay in the shared last-level cache while each convolution still sees
#: dozens of images. ``bench/compaction_speed.py --tile-bytes`` sweeps it (README: on LeNet-5
#: tiles of 1 to 16 MiB all beat whole batches clearly, the default by a little).
TILE_BYTES = 4 << 20


class StridedMaxPool2d(nn.MaxPool2d):
    r"""``nn.MaxPool2d`` that, when its windows tile the input (stride = kernel size, no padding,
    dilation 1, floor mode, no indices), computes the pool on CPU as the running maximum of the
    :math:`k_h k_w` strided slices ``x[..., a::k_h, b::k_w]``. The result is exactly
    ``nn.MaxPool2d``'s (a maximum is exact; a NaN in a window propagates as there). With
    gradients required (its gradient routes ties to one element), on other devices, under
    ``torch.jit.trace`` or ONNX export (which have a max-pool operator) and for other settings
    it is ``nn.MaxPool2d``."""

    def _window(self) -> tuple[int, int] | None:
        kernel = _pair(self.kernel_size)
        stride = _pair(self.stride if self.stride else self.kernel_size)
        tiles = (
            kernel == stride
            and _pair(self.padding) == (0, 0)
            and _pair(self.dilation) == (1, 1)
            and not self.ceil_mode
            and not self.return_indices
            and kernel != (1, 1)
        )
        return kernel if tiles else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        window = self._window()
        fast = (
            not torch.jit.is_tracing()
            and x.device.type == "cpu"
            and x.dim() in (3, 4)
            and not x.requires_grad
        )
        if window is None or not fast or x.shape[-2] < window[0] or x.shape[-1] < window[1]:
            return super().forward(x)
        kh, kw = window
        h, w = x.shape[-2] // kh * kh, x.shape[-1] // kw * kw
        slices = [x[..., a:h:kh, b:w:kw] for a in range(kh) for b in range(kw)]
        out = torch.maximum(slices[0], slices[1])
        for s in slices[2:]:
            torch.maximum(out, s, out=out)
        return out

    @classmethod
    def like(cls, pool: nn.MaxPool2d) -> StridedMaxPool2d:
        """The same pool as a :class:`StridedMaxPool2d`."""
        return cls(
            pool.kernel_size,
            pool.stride,
            pool.padding,
            pool.dilation,
            pool.return_indices,
            pool.ceil_mode,
        )


class TiledSequential(nn.Sequential):
    """``nn.Sequential`` that, on CPU, runs its first ``depth`` layers on tiles of ``tile``
    examples (concatenated along the batch) and the remaining layers on the whole batch; with
    ``channels_last`` it first puts a 4-D CPU input in channels-last (NHWC) layout, in which
    oneDNN's convolutions run faster (the maps flow on in that layout; ``nn.Flatten`` still
    flattens in (C, H, W) order).

    ``depth = 0`` or ``tile = 0`` is a plain ``nn.Sequential``; so is a batch no larger than
    ``tile`` and any tensor on another device (GPUs want whole batches), and so is a forward
    pass traced by ``torch.jit.trace`` or an ONNX export (a trace would fix the batch's
    split). Iteration, indexing, ``state_dict`` and :func:`~l0bayes.architecture.architecture`
    see the flat layer list, and the ``state_dict`` loads into an ``nn.Sequential`` of the same
    layers."""

    def __init__(
        self, *layers: nn.Module, depth: int = 0, tile: int = 0, channels_last: bool = False
    ) -> None:
        super().__init__(*layers)
        if depth < 0 or tile < 0:
            raise ValueError(f"depth and tile must be >= 0, got depth={depth}, tile={tile}")
        self.depth, self.tile, self.channels_last = depth, tile, channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers = list(self._modules.values())
        head, tail = layers[: self.depth], layers[self.depth :]
        tiled = (
            not torch.jit.is_tracing()
            and self.tile
            and x.device.type == "cpu"
            and x.dim() > 1
            and x.shape[0] > self.tile
        )
        if head and self.channels_last and x.dim() == 4 and x.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        if head and tiled:
            x = torch.cat([_chain(head, part) for part in x.split(self.tile)])
        else:
            x = _chain(head, x)
        return _chain(tail, x)

    def extra_repr(self) -> str:
        return f"depth={self.depth}, tile={self.tile}, channels_last={self.channels_last}"


def _chain(layers: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    for layer in layers:
        x = layer(x)
    return x


def exact_rewrites(layers: list[nn.Module]) -> list[nn.Module]:
    """``ReLU → MaxPool2d`` becomes ``MaxPool2d → ReLU`` and every ``nn.MaxPool2d`` a
    :class:`StridedMaxPool2d` (module docstring); the chain's output is unchanged."""
    out = list(layers)
    for i in range(len(out) - 1):
        if type(out[i]) is nn.ReLU and isinstance(out[i + 1], nn.MaxPool2d):
            out[i], out[i + 1] = out[i + 1], out[i]
    return [StridedMaxPool2d.like(m) if type(m) is nn.MaxPool2d else m for m in out]


def tiled(
    layers: list[nn.Module], shapes: list[torch.Size], itemsize: int, tile_bytes: int = TILE_BYTES
) -> nn.Sequential:
    """Layers as a :class:`TiledSequential` whose tiled prefix is the leading run of layers with
    feature-map outputs (``shapes[i]``: layer ``i``'s output shape without the batch), run in
    channels-last layout (its weights converted in place), and whose tile holds ``tile_bytes``
    of the largest of those maps (at least one example). ``tile_bytes = 0``, or a chain that
    starts with a fully connected layer, has nothing to tile: it is a plain ``nn.Sequential``
    (what it prints as, too)."""
    if isinstance(tile_bytes, bool) or not isinstance(tile_bytes, int) or tile_bytes < 0:
        raise ValueError(f"tile_bytes must be an integer >= 0, got {tile_bytes!r}")
    depth = 0
    while depth < len(shapes) and len(shapes[depth]) == 3:
        depth += 1
    if not depth or not tile_bytes:
        return nn.Sequential(*layers)
    largest = max(s.numel() for s in shapes[:depth]) * itemsize
    for layer in layers[:depth]:
        layer.to(memory_format=torch.channels_last)
    tile = max(1, tile_bytes // largest)
    return TiledSequential(*layers, depth=depth, tile=tile, channels_last=True)


__all__ = [
    "StridedMaxPool2d",
    "TILE_BYTES",
    "TiledSequential",
    "exact_rewrites",
    "tiled",
]
