"""
How sure is a pruned network of its architecture?
=================================================

A gated network has one gate per input neuron (or feature map). After training, the paper's
deterministic test-time gates (its Eq. 13) give *one* pruned architecture. Because the gates are
latent variables with a hard concrete guide, l0bayes also gives a *posterior* over
architectures: draw gate vectors from the guide and count the units, FLOPs and non-zero
parameters of each draw.

We train the paper's 784-300-100 MLP for two epochs on the synthetic image set (a small
learnable MNIST-shaped data set built in memory; nothing is downloaded), then look at

* :func:`~l0bayes.nn.posterior.sample_architectures` and
  :func:`~l0bayes.nn.posterior.architecture_summary`: units per layer with credible intervals;
* :func:`~l0bayes.reporting.report.make_report`: the report ``l0bayes report RUN`` writes.

Two epochs on 400 images is a smoke run, not a result: the numbers below show what the tools
report, not how sparse a well-trained network gets (see ``analysis/RESULTS.md``).
"""

# %%
# Training
# --------
# :class:`~l0bayes.training.config.TrainConfig` holds everything that defines a run, the same
# settings as ``l0bayes train``'s options; :func:`~l0bayes.training.trainer.train` writes the
# run directory (``config.json``, ``checkpoint.pt``, ``history.csv``, ``metrics.json``) and
# returns the metrics. λ keeps the paper's default (0.1 nats per parameter).

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from l0bayes.nn.posterior import architecture_summary, inclusion_probabilities, sample_architectures
from l0bayes.reporting.report import make_report
from l0bayes.training import TrainConfig, load_network, train

run = Path(tempfile.mkdtemp()) / "mlp"
cfg = TrainConfig(
    network="mnist-mlp",
    dataset="synthetic",
    train_size=400,
    test_size=200,
    epochs=2,
    batch_size=20,  # 20 steps an epoch
    lr=3e-3,
    ema=0.0,  # evaluate the last iterate: an average over 40 steps is mostly the start
    out=str(run),
    progress=False,
)
metrics = train(cfg)
print("test error:", metrics["test_error"])
print("architecture (Eq. 13 gates):", metrics["architecture_string"])

# %%
# The posterior over architectures
# --------------------------------
# :func:`~l0bayes.training.trainer.load_network` reads the trained network back (with the
# averaged parameters the metrics were computed with). Each of 200 draws from the guide is one
# architecture; the summary gives, per gated layer and for FLOPs and non-zero parameters, the
# dense and test-time values, the closed-form expectation, and the posterior mean with a 90%
# interval.

_, net = load_network(run)
posterior = sample_architectures(net, (784,), num_samples=200, seed=0)
header = f"{'quantity':>20} {'dense':>9} {'Eq. 13':>9} {'mean':>9}   90% interval"
print(header)
for row in architecture_summary(posterior, level=0.9):
    print(
        f"{row['quantity']:>20} {row['dense']:9.0f} {row['deterministic']:9.0f} "
        f"{row['posterior_mean']:9.1f}   [{row['lower']:.0f}, {row['upper']:.0f}]"
    )

# %%
# After 40 steps the test-time gates (Eq. 13) still keep every unit, while the guide already
# puts a fifth of the units' gates at zero in a typical draw: the deterministic architecture
# is one point, and the intervals say how far from it the guide's draws lie. (Much of this
# spread is still the initial drop rate of 0.2; trained for the paper's 200 epochs on MNIST,
# the gates settle near 0 or 1.)
#
# The posterior inclusion probability of every gate, :math:`P(z_g \ne 0)`, in closed form
# from the guide. A gate near 0 or 1 is settled; a gate near 0.5 is a unit the data have not
# yet decided about.

pips = inclusion_probabilities(net)
fig, axes = plt.subplots(1, len(pips), figsize=(9, 2.8))
for ax, (name, p) in zip(axes, pips.items(), strict=True):
    ax.hist(p, bins=np.linspace(0, 1, 21))
    ax.set_title(f"{name}: {p.size} gates", fontsize="small")
    ax.set_xlabel("P(z ≠ 0)")
axes[0].set_ylabel("gates")
fig.tight_layout()

# %%
# The report
# ----------
# :func:`~l0bayes.reporting.report.make_report` is what ``l0bayes report RUN`` runs: it reads
# the run directory (never re-trains) and writes ``RUN/report/`` with ``report.md``, figures
# and tables, including the Bayesian model average against the pruned network.

report = make_report(run, num_samples=50)
print(sorted(p.name for p in report.iterdir()))
print((report / "report.md").read_text()[:1500])
