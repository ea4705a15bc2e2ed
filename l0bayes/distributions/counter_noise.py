r"""Counter-based uniforms: random numbers that are a pure function of where they are used.

The gates of a training step are drawn from uniforms :math:`u \in (0, 1)` that depend only on
the run's seed, the step, the draw (the gated layer) and the element, not on a generator's
state. So a step can be captured in a CUDA graph (no host-side generator advances), a stacked
sweep draws for :math:`K` networks at once exactly what each would draw alone, and a resumed
run needs no saved generator state.

**The definition.** With SplitMix64's finaliser (Steele, Lea & Flood 2014)

.. math::

    \operatorname{mix}(x) = x_3, \quad x_1 = (x \oplus (x \gg 30))\,M_1, \quad
    x_2 = (x_1 \oplus (x_1 \gg 27))\,M_2, \quad x_3 = x_2 \oplus (x_2 \gg 31)

(all arithmetic modulo :math:`2^{64}`, :math:`\gg` a logical shift, :math:`M_1 =`
``0xBF58476D1CE4E5B9``, :math:`M_2 =` ``0x94D049BB133111EB``) and the golden-ratio increment
:math:`\gamma =` ``0x9E3779B97F4A7C15``:

.. math::

    s &= \operatorname{mix}(\text{seed} + \gamma) &&\text{(the run's stream)}\\
    k &= \operatorname{mix}(s + (t + 1)\gamma) &&\text{(step } t\text{'s key)}\\
    w_{j,e} &= \operatorname{mix}(k + (2^{32} j + e + 1)\gamma)
        &&\text{(draw } j\text{, element } e\text{: SplitMix64 seeded with } k)\\
    u_{j,e} &= \big(\lfloor w_{j,e} / 2^{41} \rfloor + \tfrac12\big) / 2^{23}.

Elements are counted in row-major order of the draw's shape. :math:`u` lies on a grid of
:math:`2^{23}` points in :math:`[2^{-24}, 1 - 2^{-24}]`, symmetric about 1/2 and exact in
``float32``, so :math:`\log u` and :math:`\log(1-u)` are always finite. A Gaussian draw takes two
such uniforms from the two halves of one word (:func:`counter_normal`).

The words are computed with ``torch.int64`` tensor arithmetic (multiplication wraps modulo
:math:`2^{64}` in two's complement, the shifts are masked to be logical), identical on the CPU
and CUDA and tested against the plain-Python definition (:func:`reference_uniform`).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from collections.abc import Iterator, Sequence

import torch

#: SplitMix64's increment (the golden ratio times :math:`2^{64}`) and multipliers.
GAMMA = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
_MASK64 = (1 << 64) - 1
#: Bits of a word kept for one uniform, and the largest number of elements of one draw.
UNIFORM_BITS = 23
MAX_ELEMENTS = 1 << 32


def _signed(value: int) -> int:
    """The int64 with the bits of the 64-bit word ``value``."""
    value &= _MASK64
    return value - (1 << 64) if value >> 63 else value


def mix(x: int) -> int:
    """SplitMix64's finaliser of a 64-bit word (plain Python, exact)."""
    x &= _MASK64
    x = ((x ^ (x >> 30)) * MIX1) & _MASK64
    x = ((x ^ (x >> 27)) * MIX2) & _MASK64
    return x ^ (x >> 31)


def seed_stream(seed: int) -> int:
    """:math:`s = \\operatorname{mix}(\\text{seed} + \\gamma)`, the stream of a run's seed."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"the seed of a counter stream must be an integer >= 0, got {seed!r}")
    return mix(seed + GAMMA)


def seed_streams(seeds: Sequence[int], device=None) -> torch.Tensor:
    """:func:`seed_stream` of every seed, as an int64 tensor (the argument of
    :func:`step_keys`)."""
    return torch.tensor([_signed(seed_stream(int(s))) for s in seeds], device=device)


def step_key(seed: int, step: int) -> int:
    """:math:`k = \\operatorname{mix}(s + (t + 1)\\gamma)`, the key of step ``step``."""
    return mix(seed_stream(seed) + (step + 1) * GAMMA)


def _lsr(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 words (``>>`` is arithmetic on signed integers)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def mix_tensor(x: torch.Tensor) -> torch.Tensor:
    """:func:`mix` of every int64 word of ``x``."""
    x = (x ^ _lsr(x, 30)) * _signed(MIX1)
    x = (x ^ _lsr(x, 27)) * _signed(MIX2)
    return x ^ _lsr(x, 31)


def step_keys(streams: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """:func:`step_key` on the device: the keys of step ``step`` (an int64 scalar tensor) for
    the streams ``streams`` (int64, one per run, from :func:`seed_stream`), without a host
    synchronisation (a captured step advances ``step`` itself)."""
    return mix_tensor(streams + (step + 1) * _signed(GAMMA))


def positions(draw: int, count: int, device=None) -> torch.Tensor:
    """The increments :math:`(2^{32} j + e + 1)\\gamma` of elements ``e = 0..count-1`` of draw
    ``j``, int64 (a constant a step adds to its keys)."""
    if not 0 <= draw < (1 << 31) or not 0 <= count <= MAX_ELEMENTS:
        raise ValueError(f"a counter draw has 0 <= draw < 2**31 and <= 2**32 elements, got "
                         f"draw {draw}, {count} elements")  # fmt: skip
    e = torch.arange(count, dtype=torch.int64, device=device)
    return (e + ((draw << 32) + 1)) * _signed(GAMMA)


def words_to_uniform(words: torch.Tensor, dtype: torch.dtype, shift: int = 64 - UNIFORM_BITS):
    r""":math:`(\lfloor w / 2^{\text{shift}}\rfloor \bmod 2^{23} + \tfrac12)/2^{23}` in
    ``dtype``: 23 bits of each word as a uniform on the grid of the module docstring."""
    bits = (words >> shift) & ((1 << UNIFORM_BITS) - 1)
    scale = 2.0**-UNIFORM_BITS
    return bits.to(dtype).mul_(scale).add_(0.5 * scale)


def counter_uniform(
    keys: torch.Tensor, offsets: torch.Tensor, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Uniforms :math:`u` for the keys ``keys`` (int64, any shape ``S``) at the positions
    ``offsets`` (from :func:`positions`, shape ``P``), shape ``S + P``."""
    words = mix_tensor(keys.reshape(*keys.shape, *[1] * offsets.dim()) + offsets)
    return words_to_uniform(words, dtype)


def counter_normal(
    keys: torch.Tensor, offsets: torch.Tensor, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    r"""Standard normal draws by the Box–Muller transform
    :math:`\sqrt{-2\log u_1}\cos(2\pi u_2)` of two uniforms from one word (its top 23 bits
    and the 23 below them); arguments as :func:`counter_uniform`."""
    words = mix_tensor(keys.reshape(*keys.shape, *[1] * offsets.dim()) + offsets)
    u1 = words_to_uniform(words, dtype)
    u2 = words_to_uniform(words, dtype, shift=64 - 2 * UNIFORM_BITS)
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2.0 * math.pi) * u2)


def reference_uniform(seed: int, step: int, draw: int, count: int) -> list[float]:
    """The first ``count`` uniforms of a draw by the module docstring's definition, in plain
    Python (the tests' reference)."""
    key = step_key(seed, step)
    out = []
    for e in range(count):
        word = mix(key + ((draw << 32) + e + 1) * GAMMA)
        out.append(((word >> (64 - UNIFORM_BITS)) + 0.5) / 2**UNIFORM_BITS)
    return out


class CounterStream:
    """The counter uniforms of one step of one run: draw ``j`` is the ``j``-th call of
    :meth:`uniform` (a network's gated layers draw in definition order)."""

    def __init__(self, seed: int, step: int) -> None:
        self.key = _signed(step_key(seed, step))
        self.draws = 0

    def uniform(self, shape: Sequence[int], dtype: torch.dtype, device=None) -> torch.Tensor:
        """The next draw's uniforms, of ``shape``."""
        shape = tuple(shape)
        offsets = _cached_positions(self.draws, math.prod(shape), torch.device(device or "cpu"))
        self.draws += 1
        words = mix_tensor(offsets.reshape(shape) + self.key)
        return words_to_uniform(words, dtype)


@functools.lru_cache(maxsize=64)
def _cached_positions(draw: int, count: int, device: torch.device) -> torch.Tensor:
    """:func:`positions`, kept: a network's layers draw the same shapes at every step."""
    return positions(draw, count, device)


_STREAM: contextvars.ContextVar[CounterStream | None] = contextvars.ContextVar(
    "l0bayes_counter_stream", default=None
)


@contextlib.contextmanager
def counter_noise(seed: int, step: int) -> Iterator[CounterStream]:
    """For the block, gate draws (:meth:`~l0bayes.distributions.HardConcrete.rsample`) take
    their uniforms from the counter stream of ``(seed, step)`` instead of torch's generator."""
    token = _STREAM.set(CounterStream(seed, step))
    try:
        yield _STREAM.get()
    finally:
        _STREAM.reset(token)


def uniform_noise(shape: Sequence[int], dtype: torch.dtype, device=None) -> torch.Tensor:
    """Uniforms in :math:`(0, 1)` of ``shape``: the next draw of the active counter stream
    (:func:`counter_noise`), else torch's generator clamped to :math:`[\\text{tiny}, 1 -
    \\varepsilon]` so that both logs of :math:`u` stay finite."""
    stream = _STREAM.get()
    if stream is not None:
        return stream.uniform(shape, dtype, device)
    finfo = torch.finfo(dtype)
    return torch.rand(tuple(shape), dtype=dtype, device=device).clamp(finfo.tiny, 1.0 - finfo.eps)


__all__ = [
    "GAMMA",
    "MAX_ELEMENTS",
    "UNIFORM_BITS",
    "CounterStream",
    "counter_noise",
    "counter_normal",
    "counter_uniform",
    "mix",
    "mix_tensor",
    "positions",
    "reference_uniform",
    "seed_stream",
    "seed_streams",
    "step_key",
    "step_keys",
    "uniform_noise",
    "words_to_uniform",
]
