"""
Variable selection: PIPs, AIC and BIC on the diabetes data
==========================================================

Every coefficient :math:`\\beta_j` of a linear regression gets a gate :math:`z_j \\in [0, 1]`,
a latent variable with a hard concrete guide and a spike-and-slab prior. Fitting
:class:`~l0bayes.linear_model.estimator.L0Regression` maximises the ELBO, whose gate term is
the L0 penalty :math:`\\lambda\\,\\mathbb E\\|z\\|_0`, with :math:`\\lambda` in nats of
log-likelihood per coefficient:

* ``penalty="aic"`` is :math:`\\lambda = 1`, ``penalty="bic"`` is
  :math:`\\lambda = \\tfrac12 \\log n`, a float is any other :math:`\\lambda`;
* ``penalty="bayes"`` is the full spike-and-slab model with prior inclusion probability
  :math:`\\pi`, and its posterior inclusion probabilities (PIPs) :math:`P(z_j \\ne 0 \\mid y)`.

We use scikit-learn's diabetes data (n = 442, p = 10; shipped with scikit-learn, nothing is
downloaded).
"""

# %%
# The data
# --------
# Ten baseline measurements (age, sex, body-mass index, blood pressure, six blood serum
# measurements) and a measure of disease progression one year later.

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_diabetes

from l0bayes import L0Regression

data = load_diabetes()
X, y = data.data, data.target.astype(float)
names = list(data.feature_names)
print(X.shape, names)

# %%
# AIC and BIC
# -----------
# With an information-criterion penalty the coefficients are maximum likelihood, the noise
# scale is estimated, and an exact local search (add, drop or swap one feature) polishes the
# relaxed solution. ``information_criteria()`` refits the selected model by OLS with an
# intercept and reports k, the log-likelihood, AIC and BIC as ``statsmodels`` would.

fits = {}
for penalty in ("aic", "bic"):
    fits[penalty] = L0Regression(penalty=penalty, n_steps=300, progress=False).fit(X, y)
    selected = [names[j] for j in np.flatnonzero(fits[penalty].selected_)]
    print(f"{penalty}: {selected}")
    print("   ", fits[penalty].information_criteria())

# %%
# BIC is the stronger penalty (:math:`\tfrac12\log 442 \approx 3.05` nats per coefficient
# against AIC's 1), so it keeps fewer features.
#
# The Bayesian spike-and-slab
# ---------------------------
# ``penalty="bayes"`` fits the spike-and-slab model with prior inclusion probability
# :math:`\pi` (``prior_inclusion``, here 0.5: every model equally likely a priori). For the
# Gaussian family the guide's inclusion probabilities are then corrected with the exact
# conjugate marginal likelihoods of the models; ``variational_inclusion_probs_`` keeps the
# guide's own. With p ≤ 16 the default (``method="auto"``) skips the guide, whose PIPs would
# be replaced anyway, and enumerates the models at once; ``method="svi"`` fits it too, as
# here, to compare. ``summary()`` is a table of PIP, coefficient and selection (the
# median-probability model: PIP > 0.5).

bayes = L0Regression(
    penalty="bayes", prior_inclusion=0.5, method="svi", n_steps=500, progress=False
)
bayes.fit(X, y)
print(bayes.summary(names))

# %%
# With p = 10 the posterior can also be computed without SVI, by enumerating all
# :math:`2^{10}` models (``method="exact"``) under the same prior.

exact = L0Regression(penalty="bayes", prior_inclusion=0.5, method="exact", progress=False)
exact.fit(X, y)
for label, pips in [
    ("SVI, corrected", bayes.inclusion_probs_),
    ("SVI, raw guide", bayes.variational_inclusion_probs_),
]:
    err = np.abs(pips - exact.inclusion_probs_).mean()
    print(f"{label:>15}: mean absolute PIP error against enumeration {err:.3f}")

# %%
# The raw mean-field guide, after a few hundred SVI steps, can be far from the posterior,
# above all on correlated features (``s1``, ``s2`` and ``s3`` here), between which it cannot
# split the probability. The corrected PIPs are the ones to report.
#
# The PIPs side by side
# ---------------------

pips = {
    "SVI, corrected": bayes.inclusion_probs_,
    "SVI, raw guide": bayes.variational_inclusion_probs_,
    "exact": exact.inclusion_probs_,
}
fig, ax = plt.subplots(figsize=(7, 3.5))
width = 0.8 / len(pips)
for i, (label, p) in enumerate(pips.items()):
    ax.bar(np.arange(len(names)) + (i - 1) * width, p, width, label=label)
ax.axhline(0.5, color="k", lw=0.8, ls="--")
ax.set_xticks(np.arange(len(names)), names)
ax.set_ylabel("P(z ≠ 0 | y)")
ax.set_title("Diabetes: posterior inclusion probabilities")
ax.legend(fontsize="small")
fig.tight_layout()
