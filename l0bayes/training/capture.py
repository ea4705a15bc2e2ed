r"""A training step replayed as one CUDA graph.

A step of small networks is bound by the launch of its hundreds of kernels, not by their
arithmetic. :class:`CapturedStep` runs a step function of tensor inputs either eagerly (the CPU,
or ``graph=False``) or, on CUDA, records it once into a CUDA graph
(:class:`torch.cuda.CUDAGraph`) and then replays the recording, the inputs copied into the
graph's own buffers first. The function must be *capturable*: no host synchronisation
(``.item()``, ``float(tensor)``, a tensor built from Python numbers), no shape that changes
between calls of the same input shapes, every persistent state updated in place (parameters,
optimiser moments with ``torch.optim.Adam(capturable=True)``, counters held as device
tensors).

The first ``warmup`` calls of each input shape run eagerly on a side stream (they are real
steps: cuBLAS and the autograd engine set themselves up on them, as the capture needs); the
next call records the graph (recording runs nothing) and replays it at once. A replay runs the
recorded kernels on the same data, so its results equal the eager step's (tested on a GPU).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

#: Eager calls of each input shape before its graph is recorded.
WARMUP_CALLS = 3


class CapturedStep:
    """``step(*inputs)``: ``fn(*inputs)`` eagerly, or replayed from a CUDA graph (module
    docstring).

    :param fn: the step; its return value is ignored (it updates state in place).
    :param device: where the inputs and the state live.
    :param graph: capture on CUDA (``False``: always eager; ignored on the CPU).
    :param warmup: eager calls of each input shape before capturing it.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        device: torch.device,
        graph: bool = True,
        warmup: int = WARMUP_CALLS,
    ) -> None:
        self.fn, self.device, self.warmup = fn, torch.device(device), warmup
        self.enabled = bool(graph) and self.device.type == "cuda"
        self._graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, list[torch.Tensor]]] = {}
        self._calls: dict[tuple, int] = {}

    @property
    def captured(self) -> int:
        """The number of graphs recorded so far (one per input shape)."""
        return len(self._graphs)

    def __call__(self, *inputs: torch.Tensor) -> None:
        if not self.enabled:
            self.fn(*inputs)
            return
        key = tuple((tuple(t.shape), t.dtype) for t in inputs)
        entry = self._graphs.get(key)
        if entry is None:
            calls = self._calls[key] = self._calls.get(key, 0) + 1
            if calls <= self.warmup:
                self._on_side_stream(lambda: self.fn(*inputs))
                return
            entry = self._capture(key, inputs)
        graph, static = entry
        for buffer, value in zip(static, inputs, strict=True):
            buffer.copy_(value)
        graph.replay()

    def _on_side_stream(self, work: Callable[[], Any]) -> None:
        main = torch.cuda.current_stream(self.device)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(main)
        with torch.cuda.stream(side):
            work()
        main.wait_stream(side)

    def _capture(self, key: tuple, inputs: tuple[torch.Tensor, ...]):
        static = [t.clone() for t in inputs]
        graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize(self.device)
        with torch.cuda.graph(graph):
            self.fn(*static)
        self._graphs[key] = (graph, static)
        return self._graphs[key]


__all__ = ["WARMUP_CALLS", "CapturedStep"]
