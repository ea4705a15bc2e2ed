r"""The baselines of a comparison stacked: :math:`K` plain or Sparse VD chains of one
architecture trained in lockstep, each step one capturable program.

As the L0 engine (:mod:`l0bayes.training.engine`), the :math:`K` networks' parameters become
slices ``[k]`` of stacked tensors (each network's own parameters views of them), a fully
connected layer is one batched matrix product and a convolution one grouped convolution on
CUDA (one per network on the CPU: a stack then computes exactly what each network computes
alone), and a step is replayed from a CUDA graph (:class:`~l0bayes.training.capture.
CapturedStep`). Each network keeps its own data order (:func:`~l0bayes.data.images.epoch_order`
of its seed) and, for Sparse VD, its own noise: the counter normals of ``(seed, step)``
(:mod:`l0bayes.distributions.counter_noise`, draw :math:`j` the :math:`j`-th weight layer,
element the output's position in ``(B, out, ...)``), so network :math:`k` of a stack equals its
run alone: bitwise for the plain chains on the CPU, to float rounding for Sparse VD (whose
``exp``/``log`` over the stacked weights may round the last element of a network's row
differently when the next network's follow it; tested).

* :class:`PlainStack`: ``nn.Linear``/``nn.Conv2d`` chains with a 0/1 mask per weight (the
  magnitude-pruning baselines; :mod:`l0bayes.baselines.pruning`);
* :class:`SVDStack`: Sparse VD chains, the local reparameterisation's pre-activations
  :math:`\mu + \sqrt{x^2\sigma^2}\,\varepsilon` (:mod:`l0bayes.baselines.sparse_vd`);
* :func:`fit_stacked`: the epochs of a step program; :func:`test_errors`: every network's test
  error counted on the device and read back once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

from l0bayes.data.images import epoch_order
from l0bayes.distributions.counter_noise import counter_normal, positions, seed_streams
from l0bayes.distributions.log_uniform import log_alpha_of, sparse_vd_kl
from l0bayes.training.capture import CapturedStep
from l0bayes.training.engine import StackedImages
from l0bayes.training.loop import FitResult
from l0bayes.training.stacked import PLAIN, conv, forward_chain, grouped_layout, linear

#: The parameters a stacked chain's weight layer may hold.
_NAMES = ("weight", "log_sigma2", "bias")


class _Stack:
    """:math:`K` chains of one architecture with stacked parameters (module docstring)."""

    def __init__(self, chains: Sequence[nn.Module], grouped_conv: bool | None = None) -> None:
        self.chains, self.K = list(chains), len(chains)
        self.layers = list(_modules(self.chains[0]))
        for layer in self.layers:
            if getattr(layer, "weight", None) is None and not isinstance(layer, PLAIN):
                raise ValueError(f"a stacked chain cannot hold a {type(layer).__name__}")
        self.weighted = [i for i, m in enumerate(self.layers) if hasattr(m, "weight")]
        self.params: dict[str, nn.Parameter] = {}
        for i in self.weighted:
            for name in _NAMES:
                parts = [getattr(_modules(c)[i], name, None) for c in self.chains]
                if parts[0] is None:
                    continue
                stacked = nn.Parameter(torch.stack([p.detach() for p in parts]))
                for k, p in enumerate(parts):
                    p.data = stacked.data[k]
                self.params[f"{i}.{name}"] = stacked
        device = next(iter(self.params.values())).device
        self.grouped_conv = device.type == "cuda" if grouped_conv is None else grouped_conv
        self.device = device

    def weight_layer(self, i: int, h: torch.Tensor, weight: torch.Tensor, bias) -> torch.Tensor:
        """Layer ``i``'s map with stacked ``weight`` in the layer's own layout."""
        layer = self.layers[i]
        if hasattr(layer, "kernel_size"):
            return conv(h, weight, bias, layer, self.grouped_conv)
        return linear(h, weight.transpose(1, 2), bias)  # nn.Linear's layout is (out, in)


def _modules(chain: nn.Module) -> list[nn.Module]:
    return list(chain.layers if hasattr(chain, "layers") else chain)


class PlainStack(_Stack):
    """:math:`K` plain chains (``nn.Linear``, ``nn.Conv2d``, ReLU, max pooling, Flatten) with
    a mask per weight (1: trained; 0: pruned, held at zero).

    :param chains: the chains; their parameters become views of the stack.
    :param masks: every weight's initial mask (default: its weights' non-zero pattern).
    """

    def __init__(self, chains: Sequence[nn.Module], grouped_conv: bool | None = None) -> None:
        super().__init__(chains, grouped_conv)
        self.masks = {
            i: (self.params[f"{i}.weight"] != 0).to(self.params[f"{i}.weight"].dtype)
            for i in self.weighted
        }

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(K, B, C)`` of ``x`` ``(K, B, ...)``."""

        def layer(i: int, _, h: torch.Tensor) -> torch.Tensor:
            return self.weight_layer(i, h, self.params[f"{i}.weight"], self.params.get(f"{i}.bias"))

        return forward_chain(self.layers, x, layer, self.grouped_conv)

    @torch.no_grad()
    def apply_masks(self) -> None:
        """Pruned weights to zero."""
        for i, mask in self.masks.items():
            self.params[f"{i}.weight"].mul_(mask)

    @torch.no_grad()
    def mask_gradients(self) -> None:
        """A pruned weight takes no gradient."""
        for i, mask in self.masks.items():
            grad = self.params[f"{i}.weight"].grad
            if grad is not None:
                grad.mul_(mask)

    @torch.no_grad()
    def keep_largest(self, counts: Sequence[int]) -> None:
        """Each network's masks keep its ``counts[k]`` largest weights in absolute value over
        all its weight layers (global magnitude pruning; ties by position), its other weights
        set to zero."""
        weights = [self.params[f"{i}.weight"] * self.masks[i] for i in self.weighted]
        flat = torch.cat([w.abs().flatten(1) for w in weights], dim=1)
        order = flat.argsort(dim=1, descending=True, stable=True)
        ranks = torch.arange(flat.shape[1], device=flat.device)
        keep = ranks[None] < torch.tensor(list(counts), device=flat.device)[:, None]
        kept = torch.zeros_like(flat).scatter_(1, order, keep.to(flat.dtype))
        for i, part in zip(self.weighted, kept.split([w[0].numel() for w in weights], 1),
                           strict=True):  # fmt: skip
            self.masks[i].copy_(part.reshape(self.masks[i].shape))
        self.apply_masks()


class SVDStack(_Stack):
    """:math:`K` Sparse VD chains (layers with ``weight`` :math:`\\theta`, ``log_sigma2`` and
    ``bias``; ReLU, max pooling, Flatten) drawing their pre-activations by the local
    reparameterisation from counter normals.

    :param nets: the networks (every weight layer with ``local_rep=True``).
    :param seeds: each network's seed (its noise).
    :param threshold: test time prunes the weights of :math:`\\log\\alpha` above it.
    :param var_eps: added to the pre-activations' variance.
    """

    def __init__(
        self,
        nets: Sequence[nn.Module],
        seeds: Sequence[int],
        threshold: float,
        var_eps: float,
        grouped_conv: bool | None = None,
    ) -> None:
        super().__init__(nets, grouped_conv)
        if not all(getattr(self.layers[i], "local_rep", False) for i in self.weighted):
            raise ValueError("a stack of Sparse VD networks draws by the local reparameterisation")
        self.streams = seed_streams(seeds, self.device)
        self.threshold, self.var_eps = threshold, var_eps
        self._positions: dict[tuple, torch.Tensor] = {}

    def logits(self, x: torch.Tensor, keys: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(K, B, C)``: pre-activations drawn with the counter keys ``keys`` ``(K,)``
        of a step, or (``None``) the test-time network, :math:`\\log\\alpha >` the threshold
        pruned, no noise."""
        draws = iter(range(len(self.weighted)))

        def layer(i: int, _, h: torch.Tensor) -> torch.Tensor:
            theta, bias = self.params[f"{i}.weight"], self.params.get(f"{i}.bias")
            log_sigma2 = self.params[f"{i}.log_sigma2"]
            if keys is None:
                keep = log_alpha_of(theta, log_sigma2) <= self.threshold
                return self.weight_layer(i, h, theta * keep, bias)
            mean = self.weight_layer(i, h, theta, bias)
            var = self.weight_layer(i, h.square(), torch.exp(log_sigma2), None)
            return mean + torch.sqrt(var + self.var_eps) * self._normal(keys, next(draws), mean)

        return forward_chain(self.layers, x, layer, self.grouped_conv)

    def _normal(self, keys: torch.Tensor, draw: int, like: torch.Tensor) -> torch.Tensor:
        """Counter normals of draw ``draw`` for pre-activations laid out as ``like``: element
        ``e`` of a network's ``(B, out, ...)`` in row-major order, whatever the layout."""
        grouped = like.dim() == 4 and self.grouped_conv
        if grouped:  # (B, K·C, H, W)
            shape = (like.shape[0], like.shape[1] // self.K, *like.shape[2:])
        else:  # (K, B, ...)
            shape = tuple(like.shape[1:])
        key = (draw, shape)
        if key not in self._positions:
            self._positions[key] = positions(draw, math.prod(shape), self.device).reshape(shape)
        eps = counter_normal(keys, self._positions[key], like.dtype)  # (K, B, out, ...)
        return grouped_layout(eps) if grouped else eps

    def kl(self) -> torch.Tensor:
        """Each network's :math:`\\sum` over its weights of the Sparse VD KL, ``(K,)``."""
        total = 0
        for i in self.weighted:
            kl = sparse_vd_kl(self.params[f"{i}.weight"], self.params[f"{i}.log_sigma2"])
            total = total + kl.flatten(1).sum(-1)
        return total


def fit_stacked(
    step: Callable[[torch.Tensor], None],
    loss_sum: torch.Tensor,
    train: StackedImages,
    seeds: Sequence[int],
    epochs: int,
    *,
    batch_size: int,
    graph: bool = True,
    after_step: Callable[[int], None] | None = None,
) -> list[FitResult]:
    """Run the step program ``step(index)`` over ``epochs`` passes of every network's data
    (minibatches of ``batch_size`` in :func:`~l0bayes.data.images.epoch_order` of its seed);
    ``step`` adds each network's loss to ``loss_sum`` ``(K,)``, which is read once per epoch.
    ``after_step(t)`` runs eagerly after step ``t`` (counted from 1), e.g. a pruning schedule.
    Returns one record per network (``train_seconds`` is the stack's, ``networks`` its size).

    :raises FloatingPointError: a network's loss became NaN or infinite.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    device = loss_sum.device
    K, n = len(seeds), len(train)
    steps = math.ceil(n / batch_size)
    program = CapturedStep(step, device, graph)
    results = [FitResult(networks=K) for _ in range(K)]
    done = 0
    for epoch in range(epochs):
        tic = time.perf_counter()
        order = torch.stack([epoch_order(s, epoch, n) for s in seeds]).to(device)
        loss_sum.zero_()
        for s in range(steps):
            program(order[:, s * batch_size : (s + 1) * batch_size])
            done += 1
            if after_step is not None:
                after_step(done)
        sums = loss_sum.tolist()  # the epoch's one synchronisation
        seconds = time.perf_counter() - tic
        for k, (result, value) in enumerate(zip(results, sums, strict=True)):
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"the loss of network {k} became {value} in epoch {epoch + 1}; lower lr"
                )
            result.epoch_loss.append(value / steps)
            result.train_seconds += seconds
    return results


@torch.no_grad()
def test_errors(
    logits: Callable[[torch.Tensor], torch.Tensor], test: StackedImages, chunk: int = 1000
) -> list[float]:
    """Every network's test error under ``logits(x)`` (``(K, B, ...) -> (K, B, C)``), counted
    on the device and read back once."""
    n, K = len(test), len(test.ids)
    device = test.y.device
    wrong = torch.zeros(K, dtype=torch.int64, device=device)
    for start in range(0, n, chunk):
        index = torch.arange(start, min(start + chunk, n), device=device).expand(K, -1)
        x, y = test.batch(index)
        wrong += (logits(x).argmax(-1) != y).sum(-1)
    return [w / n for w in wrong.tolist()]


__all__ = ["PlainStack", "SVDStack", "fit_stacked", "test_errors"]
