"""Generic checks run over a table of l0bayes distributions.

The checks follow Pyro's own suite (``tests/distributions/test_distributions.py``): support
and its shape, ``sample``/``rsample``/``log_prob`` shapes, ``expand`` (its Pyro default
:class:`~pyro.distributions.torch_distribution.ExpandedDistribution` and each class's own),
shape errors, sample validation, ``infer_shapes``; plus Monte-Carlo moments against the
``mean``/``variance`` properties and pickling / ``copy.deepcopy``.

Checks of Pyro's suite that are left out on purpose:

* ``test_gof`` (goodness of fit of samples against ``exp(log_prob)`` as a Lebesgue density)
  and ``test_batch_log_prob`` against a scipy density: ``HardConcrete`` and ``SpikeSlabGate``
  have atoms at 0 and 1, and their ``log_prob`` is a density w.r.t. δ0 + Lebesgue + δ1, which
  no Lebesgue goodness-of-fit test or scipy distribution understands.
  ``test_hard_concrete.py`` runs a KS test on the interior and a chi-square test with the
  atoms instead.
* ``test_cdf_icdf`` (``cdf(icdf(u)) == u``): the CDF jumps at the atoms, so no ``icdf``
  can invert it there; neither class defines ``icdf``.
* ``enumerate_support`` and the discrete-support checks: nothing here is discrete.
* ``test_batch_entropy_shape``: no class here implements ``entropy``.

False-failure rate: each Monte-Carlo moment is accepted within 5 standard errors (estimated
from the same n = 200_000 draws). A two-sided normal tail beyond 5 SE has probability 5.7e-7;
``test_mean_variance_monte_carlo`` makes 58 such comparisons in all (29 batch entries, mean
and variance), so a correct implementation fails it on a random seed with probability
≤ 58 · 5.7e-7 ≈ 3.3e-5. The seed is fixed (``tests/conftest.py``), so runs are reproducible.
"""

from __future__ import annotations

import copy
import math
import pickle
from dataclasses import dataclass, field
from typing import Any

import pyro
import pytest
import torch
from pyro.distributions import TorchDistribution
from pyro.distributions.torch_distribution import ExpandedDistribution

from l0bayes.distributions import GaussianSlab, HardConcrete, SpikeSlabGate

#: Constructor arguments given as (nested) lists or floats and turned into tensors.
TENSOR_ARGS = ("log_alpha", "prior_inclusion", "lam", "precision")
#: Per class: tensor attributes that must be expanded, and plain attributes that must survive.
ATTRIBUTES = {
    HardConcrete: (("log_alpha",), ("temperature", "stretch")),
    SpikeSlabGate: (("lam",), ("kl_mode",)),
    GaussianSlab: (("precision",), ("normalized",)),
}
MC_SAMPLES = 200_000
MC_STANDARD_ERRORS = 5.0


@dataclass
class Fixture:
    """A distribution class and a list of constructor-argument dicts to test it with.

    Argument values are floats / nested lists (turned into tensors for :data:`TENSOR_ARGS`),
    plain values, or zero-argument callables (called at construction, e.g. for ``slab``).
    """

    dist_class: type[TorchDistribution]
    examples: list[dict[str, Any]]
    #: values inside the support, used as test data
    values: tuple[float, ...]
    #: values outside the support
    invalid_values: tuple[float, ...]
    #: indices of examples that cannot be sampled (improper distributions)
    unsamplable: frozenset[int] = field(default_factory=frozenset)

    def params(self, idx: int, requires_grad: bool = False) -> dict[str, Any]:
        out = {}
        for name, value in self.examples[idx].items():
            if callable(value):
                value = value()
            elif name in TENSOR_ARGS:
                value = torch.tensor(value, requires_grad=requires_grad)
            out[name] = value
        return out

    def make(self, idx: int, **kwargs) -> TorchDistribution:
        return self.dist_class(**self.params(idx), **kwargs)

    def can_sample(self, idx: int) -> bool:
        return idx not in self.unsamplable

    def data(self, shape: torch.Size) -> torch.Tensor:
        """A tensor of the given shape filled (cyclically) with in-support values."""
        values = torch.tensor(self.values)
        n = math.prod(shape)
        return values[torch.arange(n) % len(values)].reshape(shape)

    def draw(self, d: TorchDistribution, idx: int) -> torch.Tensor:
        """A sample of ``d`` if it can be sampled, else in-support data of its shape."""
        return d.sample() if self.can_sample(idx) else self.data(d.batch_shape)


UNIT_VALUES = (0.0, 0.25, 0.6, 1.0)
UNIT_INVALID = (-0.1, 1.1, math.nan)

FIXTURES = [
    Fixture(
        HardConcrete,
        [
            {"log_alpha": 0.3},
            {"log_alpha": [-1.0, 0.5, 2.0], "temperature": 0.5},
            {
                "log_alpha": [[-2.0, 0.0, 1.0], [3.0, -0.5, 0.2]],
                "temperature": 1.2,
                "stretch": (-0.2, 1.3),
            },
            {"log_alpha": [[0.5], [-1.0]], "temperature": 0.3, "stretch": (-0.05, 1.02)},
        ],
        UNIT_VALUES,
        UNIT_INVALID,
    ),
    Fixture(
        SpikeSlabGate,
        [
            {"prior_inclusion": 0.3},
            {"lam": [0.0, 1.5, -1.0], "kl_mode": "l0"},
            {
                "prior_inclusion": [[0.2], [0.7]],
                "slab": lambda: HardConcrete(torch.tensor([0.5, -1.0, 2.0]), temperature=0.5),
            },
            {
                "lam": 2.0,
                "kl_mode": "l0",
                "slab": lambda: HardConcrete(torch.tensor([[1.0], [-0.5]]), stretch=(-0.2, 1.3)),
            },
        ],
        UNIT_VALUES,
        UNIT_INVALID,
    ),
    Fixture(
        GaussianSlab,
        [
            {"precision": 2.0},
            {"precision": [0.5, 4.0], "normalized": False},
            {"precision": [[1.0], [3.0]]},
            {"precision": [0.0, 1.5], "normalized": False},
        ],
        (-1.5, 0.0, 0.3, 2.0),
        (math.nan,),
        unsamplable=frozenset({3}),
    ),
]

CASES = [
    pytest.param(fix, idx, id=f"{fix.dist_class.__name__}-{idx}")
    for fix in FIXTURES
    for idx in range(len(fix.examples))
]


def _cases_where(predicate) -> list:
    """The cases whose (fixture, index) satisfy ``predicate``."""
    return [case for case in CASES if predicate(*case.values)]


def _batch_shape(fix: Fixture, idx: int) -> torch.Size:
    return fix.make(idx, validate_args=False).batch_shape


SAMPLABLE_CASES = _cases_where(lambda fix, idx: fix.can_sample(idx))
RSAMPLE_CASES = _cases_where(lambda fix, idx: fix.can_sample(idx) and fix.dist_class.has_rsample)
#: cases with a non-empty batch shape (some data shapes do not broadcast against it)
BATCHED_CASES = _cases_where(lambda fix, idx: len(_batch_shape(fix, idx)) > 0)
#: cases with a size-1 batch dimension
SINGLETON_CASES = _cases_where(lambda fix, idx: 1 in _batch_shape(fix, idx))


def _assert_expanded(small: TorchDistribution, large: TorchDistribution) -> None:
    """``large`` is ``small`` expanded to ``large.batch_shape``: same class, same plain
    attributes, tensor attributes (and a slab) expanded, validation flag kept."""
    assert type(large) is type(small)
    assert large._validate_args == small._validate_args
    tensors, plain = ATTRIBUTES[type(small)]
    for name in tensors:
        expected = getattr(small, name).expand(large.batch_shape)
        actual = getattr(large, name)
        assert actual.shape == large.batch_shape
        assert actual.dtype == expected.dtype
        assert torch.equal(actual, expected), name
    for name in plain:
        assert getattr(large, name) == getattr(small, name), name
    if isinstance(small, SpikeSlabGate):
        assert (large.slab is None) == (small.slab is None)
        if small.slab is not None:
            assert large.slab.batch_shape == large.batch_shape
            _assert_expanded(small.slab, large.slab)


def _check_sample_shapes(
    fix: Fixture, idx: int, small: TorchDistribution, large: TorchDistribution
) -> None:
    """Pyro's ``check_sample_shapes`` plus shape checks on the expanded distribution."""
    x = fix.draw(small, idx)
    torch.testing.assert_close(small.log_prob(x).expand(large.batch_shape), large.log_prob(x))
    x = fix.draw(large, idx)
    assert x.shape == large.batch_shape
    torch.testing.assert_close(small.log_prob(x), large.log_prob(x))
    if fix.can_sample(idx):
        xs = large.sample((3,))
        assert xs.shape == (3,) + large.batch_shape
        assert large.log_prob(xs).shape == (3,) + large.batch_shape
        assert large.support.check(xs).all()
    mean = small.mean.expand(large.batch_shape)
    torch.testing.assert_close(large.mean, mean)
    torch.testing.assert_close(large.variance, small.variance.expand(large.batch_shape))


def _expand(d: TorchDistribution, shape, default: bool) -> TorchDistribution:
    if default:
        large = TorchDistribution.expand(d, shape)
        assert isinstance(large, ExpandedDistribution)
        return large
    large = d.expand(shape)
    _assert_expanded(d, large)
    return large


# --------------------------------------------------------------------------- support
@pytest.mark.parametrize("fix, idx", CASES)
def test_support_shape(fix, idx):
    d = fix.make(idx)
    assert d.support.event_dim == d.event_dim == 0
    assert d.event_shape == torch.Size()
    assert not d.support.is_discrete
    x = fix.data((4,) + d.batch_shape)
    ok = d.support.check(x)
    assert ok.shape == torch.broadcast_shapes(d.batch_shape, x.shape)
    assert ok.all()
    if fix.can_sample(idx):
        x = d.sample((50,))
        assert d.support.check(x).all()
    assert not d.support.check(torch.tensor(fix.invalid_values)).any()


@pytest.mark.parametrize("fix, idx", CASES)
def test_infer_shapes(fix, idx):
    params = fix.params(idx)

    def arg_shape(value):
        if isinstance(value, torch.Tensor):
            return value.shape
        if isinstance(value, TorchDistribution):  # the slab broadcasts like a tensor argument
            return value.batch_shape
        return torch.Size()

    batch_shape, event_shape = fix.dist_class.infer_shapes(
        **{name: arg_shape(value) for name, value in params.items()}
    )
    d = fix.dist_class(**params)
    assert d.batch_shape == batch_shape
    assert d.event_shape == event_shape == torch.Size()


# --------------------------------------------------------------------------- sampling
@pytest.mark.parametrize("sample_shape", [(), (4,), (2, 3)])
@pytest.mark.parametrize("fix, idx", CASES)
def test_sample_shape(fix, idx, sample_shape):
    d = fix.make(idx)
    if not fix.can_sample(idx):
        with pytest.raises(ValueError, match="improper"):
            d.sample(sample_shape)
        return
    x = d.sample(sample_shape)
    assert x.shape == sample_shape + d.batch_shape
    assert x.dtype == torch.get_default_dtype()
    assert not x.requires_grad
    assert d.support.check(x).all()
    if d.has_rsample:
        assert d.rsample(sample_shape).shape == sample_shape + d.batch_shape
    else:
        with pytest.raises(NotImplementedError):
            d.rsample(sample_shape)


@pytest.mark.parametrize("fix, idx", RSAMPLE_CASES)
def test_rsample_is_differentiable(fix, idx):
    params = fix.params(idx, requires_grad=True)
    d = fix.dist_class(**params)
    assert d.has_rsample
    x = d.rsample((100,))
    assert x.requires_grad
    x.sum().backward()
    leaves = [v for v in params.values() if isinstance(v, torch.Tensor)]
    assert leaves
    for leaf in leaves:
        assert leaf.grad is not None
        assert torch.isfinite(leaf.grad).all()
        assert (leaf.grad != 0).any()


# --------------------------------------------------------------------------- log_prob
@pytest.mark.parametrize("fix, idx", CASES)
def test_batch_log_prob_shape(fix, idx):
    d = fix.make(idx)
    x = fix.data((4,) + d.batch_shape)
    log_p = d.log_prob(x)
    assert log_p.shape == torch.broadcast_shapes(d.shape(), x.shape)
    assert not torch.isnan(log_p).any()
    assert (log_p < math.inf).all()
    # a scalar broadcasts against the batch
    assert d.log_prob(torch.tensor(fix.values[1])).shape == d.batch_shape
    # a (5, 1, ..., 1) tensor broadcasts to (5,) + batch_shape
    x = fix.data((5,) + (1,) * len(d.batch_shape))
    assert d.log_prob(x).shape == (5,) + d.batch_shape
    if fix.can_sample(idx):
        x = d.sample((6,))
        log_p = d.log_prob(x)
        assert log_p.shape == (6,) + d.batch_shape
        assert torch.isfinite(log_p).all()


@pytest.mark.parametrize("validate_args", [True, False])
@pytest.mark.parametrize("fix, idx", BATCHED_CASES)
def test_score_errors_non_broadcastable_data_shape(fix, idx, validate_args):
    d = fix.make(idx, validate_args=validate_args)
    shape = (d.batch_shape[0] + 1,) + d.batch_shape[1:]
    with pytest.raises((ValueError, RuntimeError)):
        d.log_prob(fix.data(shape))


@pytest.mark.parametrize("fix, idx", CASES)
def test_validate_sample_rejects_out_of_support(fix, idx):
    d = fix.make(idx, validate_args=True)
    for v in fix.invalid_values:
        with pytest.raises(ValueError, match="support"):
            d.log_prob(torch.full(d.batch_shape, v))
    # also after expanding: the flag must survive
    large = d.expand((2,) + d.batch_shape)
    with pytest.raises(ValueError, match="support"):
        large.log_prob(torch.full(large.batch_shape, fix.invalid_values[0]))
    # in-support values pass
    assert d.log_prob(fix.data(d.batch_shape)).shape == d.batch_shape


@pytest.mark.parametrize("fix, idx", CASES)
def test_no_validation_no_error(fix, idx):
    d = fix.make(idx, validate_args=False)
    assert not d._validate_args
    x = torch.full(d.batch_shape, fix.invalid_values[0])
    log_p = d.log_prob(x)
    assert log_p.shape == d.batch_shape
    if isinstance(d, HardConcrete):  # outside [0, 1] the density is zero
        assert (log_p == -math.inf).all()


def test_validation_toggle():
    """Port of Pyro's ``test_distribution_validate_args`` for a NaN location."""
    with pyro.validation_enabled(True), pytest.raises(ValueError, match="log_alpha"):
        HardConcrete(torch.tensor([0.0, math.nan]))
    with pyro.validation_enabled(False):
        assert HardConcrete(torch.tensor([0.0, math.nan])).batch_shape == (2,)
    # GaussianSlab and SpikeSlabGate check their arguments whether or not validation is on
    for enabled in (True, False):
        with pyro.validation_enabled(enabled):
            with pytest.raises(ValueError):
                GaussianSlab(-1.0)
            with pytest.raises(ValueError):
                SpikeSlabGate(lam=math.nan)


# --------------------------------------------------------------------------- expand
@pytest.mark.parametrize("sample_shape", [(), (2,), (2, 3)])
@pytest.mark.parametrize("shape_type", [torch.Size, tuple, list])
@pytest.mark.parametrize("fix, idx", CASES)
def test_expand_by(fix, idx, sample_shape, shape_type):
    small = fix.make(idx)
    large = small.expand_by(shape_type(sample_shape))
    assert large.batch_shape == sample_shape + small.batch_shape
    _check_sample_shapes(fix, idx, small, large)


@pytest.mark.parametrize("default", [False, True])
@pytest.mark.parametrize("sample_shape", [(), (2,), (2, 3)])
@pytest.mark.parametrize("shape_type", [torch.Size, tuple, list])
@pytest.mark.parametrize("fix, idx", CASES)
def test_expand_new_dim(fix, idx, shape_type, sample_shape, default):
    small = fix.make(idx)
    large = _expand(small, shape_type(sample_shape + tuple(small.batch_shape)), default)
    assert large.batch_shape == sample_shape + small.batch_shape
    _check_sample_shapes(fix, idx, small, large)


@pytest.mark.parametrize("default", [False, True])
@pytest.mark.parametrize("shape_type", [torch.Size, tuple, list])
@pytest.mark.parametrize("fix, idx", SINGLETON_CASES)
def test_expand_existing_dim(fix, idx, shape_type, default):
    small = fix.make(idx)
    singleton_dims = [dim for dim, size in enumerate(small.batch_shape) if size == 1]
    assert singleton_dims
    for dim in singleton_dims:
        batch_shape = list(small.batch_shape)
        batch_shape[dim] = 5
        large = _expand(small, shape_type(batch_shape), default)
        assert large.batch_shape == torch.Size(batch_shape)
        _check_sample_shapes(fix, idx, small, large)


@pytest.mark.parametrize("default", [False, True])
@pytest.mark.parametrize("sample_shapes", [[(2, 1), (2, 3)], [(2, 1, 1), (2, 1, 3), (2, 5, 3)]])
@pytest.mark.parametrize("fix, idx", CASES)
def test_subsequent_expands_ok(fix, idx, sample_shapes, default):
    d = fix.make(idx)
    original_batch_shape = d.batch_shape
    for shape in sample_shapes:
        proposed = torch.Size(shape) + original_batch_shape
        n = _expand(d, proposed, default)
        assert n.batch_shape == proposed
        _check_sample_shapes(fix, idx, d, n)
        d = n


@pytest.mark.parametrize("default", [False, True])
@pytest.mark.parametrize(
    "initial_shape, proposed_shape", [[(2, 1), (4, 3)], [(2, 4), (2, 2, 1)], [(1, 2, 1), (2, 1)]]
)
@pytest.mark.parametrize("fix, idx", CASES)
def test_expand_error(fix, idx, initial_shape, proposed_shape, default):
    small = fix.make(idx)
    large = _expand(small, torch.Size(initial_shape) + small.batch_shape, default)
    with pytest.raises((RuntimeError, ValueError)):
        large.expand(torch.Size(proposed_shape) + small.batch_shape)


@pytest.mark.parametrize("fix, idx", BATCHED_CASES)
def test_expand_incompatible_batch_shape(fix, idx):
    small = fix.make(idx)
    wrong = (small.batch_shape[0] + 1,) + small.batch_shape[1:]
    for default in (False, True):
        with pytest.raises((RuntimeError, ValueError)):
            _expand(small, wrong, default)


# --------------------------------------------------------------------------- moments
@pytest.mark.parametrize("fix, idx", SAMPLABLE_CASES)
def test_mean_variance_monte_carlo(fix, idx):
    d = fix.make(idx)
    assert d.mean.shape == d.variance.shape == d.batch_shape
    x = d.sample((MC_SAMPLES,)).double()
    mean = x.mean(0)
    centred = x - mean
    var = centred.pow(2).mean(0)
    fourth = centred.pow(4).mean(0)
    se_mean = (var / MC_SAMPLES).sqrt()
    se_var = ((fourth - var.pow(2)) / MC_SAMPLES).sqrt()
    assert (se_mean > 0).all() and (se_var > 0).all()
    assert ((mean - d.mean.double()).abs() <= MC_STANDARD_ERRORS * se_mean).all(), (mean, d.mean)
    assert ((var - d.variance.double()).abs() <= MC_STANDARD_ERRORS * se_var).all(), (
        var,
        d.variance,
    )


# --------------------------------------------------------------------------- copying
@pytest.mark.parametrize("fix, idx", CASES)
def test_pickle_and_deepcopy(fix, idx):
    d = fix.make(idx, validate_args=True)
    x = fix.data((4,) + d.batch_shape)
    for clone in (pickle.loads(pickle.dumps(d)), copy.deepcopy(d)):
        assert clone is not d
        assert clone.batch_shape == d.batch_shape
        _assert_expanded(d, clone)
        torch.testing.assert_close(clone.log_prob(x), d.log_prob(x), rtol=0, atol=0)
        torch.testing.assert_close(clone.mean, d.mean, rtol=0, atol=0)
        if fix.can_sample(idx):
            torch.manual_seed(1)
            expected = d.sample((3,))
            torch.manual_seed(1)
            assert torch.equal(clone.sample((3,)), expected)
        with pytest.raises(ValueError, match="support"):
            clone.log_prob(torch.full(d.batch_shape, fix.invalid_values[0]))
