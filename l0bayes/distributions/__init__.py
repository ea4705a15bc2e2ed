"""Pyro distributions for L0 gates (the hard concrete guide and the spike-and-slab prior) and
the log-uniform prior of the Sparse Variational Dropout baseline."""

from l0bayes.distributions.counter_noise import (
    CounterStream,
    counter_noise,
    counter_normal,
    counter_uniform,
)
from l0bayes.distributions.gate_sites import GATE_ROLE, VALUE_ROLE, initial_log_alpha, site_name
from l0bayes.distributions.hard_concrete import (
    DEFAULT_STRETCH,
    DEFAULT_TEMPERATURE,
    HardConcrete,
    check_gate_hyperparameters,
)
from l0bayes.distributions.log_uniform import LogUniform
from l0bayes.distributions.spike_slab import (
    KL_MODES,
    GaussianSlab,
    SpikeSlabGate,
    code_cost,
    expected_gate_kl,
    gate_kl,
)

__all__ = [
    "CounterStream",
    "counter_noise",
    "counter_normal",
    "counter_uniform",
    "DEFAULT_STRETCH",
    "GATE_ROLE",
    "VALUE_ROLE",
    "DEFAULT_TEMPERATURE",
    "KL_MODES",
    "GaussianSlab",
    "HardConcrete",
    "LogUniform",
    "SpikeSlabGate",
    "check_gate_hyperparameters",
    "code_cost",
    "expected_gate_kl",
    "gate_kl",
    "initial_log_alpha",
    "site_name",
]
