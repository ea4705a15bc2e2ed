"""Every public entry point (the neural-network modules and ``l0bayes train`` aside) meets bad
input with a ``ValueError`` / ``FileNotFoundError`` / one-line CLI error whose message names the
argument, never with a NaN result, a hang or a traceback from deep inside numpy or torch.

One table, ``CASES``: per entry point, (bad input, call, regex the message must match, and the
exception when it is not ``ValueError``). Each call takes ``tmp_path``; the data-file cases
build small synthetic files there, and nothing touches the network. Data that are awkward but
valid (constant columns, p > n) get their own tests below, which check that the results are
finite.
"""

from __future__ import annotations

import functools
import gzip
import math
import re
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from l0bayes import (
    GaussianSlab,
    HardConcrete,
    L0Regression,
    RegressionPrior,
    SpikeSlabGate,
    gate_kl,
    regression_guide,
    regression_model,
)
from l0bayes.cli import main
from l0bayes.data.files import (
    IDX_FILES,
    ChecksumError,
    ImageDataset,
    load_cifar,
    load_mnist,
    read_idx,
    to_tensors,
    verify_file,
)
from l0bayes.data.simulate import simulate_regression
from l0bayes.device import resolve_device
from l0bayes.distributions import code_cost, expected_gate_kl
from l0bayes.linear_model.exact import exact_posterior, log_marginal_likelihoods, score_supports
from l0bayes.linear_model.importance import psis_inclusion_probs
from l0bayes.linear_model.model_size import beta_from_model_size, check_prior_inclusion
from l0bayes.linear_model.selection import (
    best_subset,
    information_criteria,
    local_search,
    refit_coefficients,
)
from l0bayes.linear_model.svi import fit_svi

FAST = dict(n_steps=30, num_particles=2, progress=False)
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")

_RNG = np.random.default_rng(0)
X = _RNG.standard_normal((30, 4))
Y = 1.0 + X[:, 0] - 0.5 * X[:, 2] + 0.5 * _RNG.standard_normal(30)
YB = (Y > 1.0).astype(float)
SUPPORT = np.array([True, False, True, False])
XT, YT = torch.as_tensor(X), torch.as_tensor(Y)


def with_nan(a: np.ndarray, value: float = np.nan) -> np.ndarray:
    out = a.copy()
    out.flat[1] = value
    return out


def fit(X_=X, y=Y, **kwargs) -> L0Regression:
    return L0Regression(**{**FAST, **kwargs}).fit(X_, y)


@functools.cache
def fitted() -> L0Regression:
    return fit()


def svi(X_=XT, y=YT, prior=RegressionPrior(), **kwargs):
    settings = {"n_steps": 2, "lr": 0.01, **kwargs}
    return fit_svi(regression_model, regression_guide, (X_, y, prior), **settings)


# ----------------------------------------------------------------------------- data files
def idx_gz(array: np.ndarray, magic: bytes = b"\x00\x00\x08") -> bytes:
    """A gzip-compressed IDX file holding a uint8 array."""
    header = magic + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def mnist_dir(tmp: Path, corrupt: str | None = None) -> Path:
    """Four tiny MNIST-like files in ``tmp/mnist``; ``corrupt`` spoils the training images
    ("truncated" gzip stream, bad "magic" number) or the labels ("label" 10)."""
    folder = tmp / "mnist"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 4, dtype=np.uint8)
    if corrupt == "label":
        labels[2] = 10
    blobs = [idx_gz(images), idx_gz(labels), idx_gz(images), idx_gz(labels)]
    if corrupt == "truncated":
        blobs[0] = blobs[0][: len(blobs[0]) // 2]
    if corrupt == "magic":
        blobs[0] = idx_gz(images, magic=b"\x08\x03\x00")
    for name, blob in zip(IDX_FILES, blobs, strict=True):
        (folder / name).write_bytes(blob)
    return folder


def tiny_dataset() -> ImageDataset:
    x = np.zeros((2, 28, 28), dtype=np.uint8)
    y = np.zeros(2, dtype=np.int64)
    return ImageDataset(x, y, x, y, "mnist", 10)


# ----------------------------------------------------------------------------- the table
def rows(entry: str, *cases: tuple) -> list:
    """Table rows for one entry point: (bad input, call, regex[, exception][, mark])."""
    out = []
    for bad, call, match, *rest in cases:
        error = next((r for r in rest if isinstance(r, type)), ValueError)
        marks = [r for r in rest if isinstance(r, pytest.MarkDecorator)]
        out.append(pytest.param(entry, call, error, match, marks=marks, id=f"{entry}: {bad}"))
    return out


CASES = [
    *rows(
        "fit",
        ("NaN in X", lambda t: fit(with_nan(X)), r"X contains 1 NaN"),
        ("inf in y", lambda t: fit(y=with_nan(Y, np.inf)), r"y contains 1 NaN or inf"),
        ("X 1-D", lambda t: fit(X[:, 0]), r"X must be a 2-D array.*reshape\(-1, 1\)"),
        ("y 2-D", lambda t: fit(y=np.column_stack([Y, Y])), r"y must be 1-D"),
        ("rows differ", lambda t: fit(y=Y[:-1]), r"X has 30 rows but y has 29"),
        ("empty X", lambda t: fit(X[:0], Y[:0]), r"0 sample"),
        ("two rows", lambda t: fit(X[:2], Y[:2]), r"at least 3 samples.*n_samples = 2"),
        ("no columns", lambda t: fit(X[:, :0]), r"0 feature"),
        ("text in X", lambda t: fit(np.full((30, 4), "a")), r"X holds text"),
        ("text in y", lambda t: fit(y=np.full(30, "high")), r"y holds text"),
        ("X overflows", lambda t: fit(X * 1e200), r"X has values as large as .*rescale X"),
        ("constant y", lambda t: fit(y=np.ones(30)), r"y is constant"),
        ("all X constant", lambda t: fit(np.ones((30, 2))), r"every column of X is constant"),
        ("y not 0/1", lambda t: fit(y=2 * YB, family="bernoulli"), r"y must contain only 0 and 1"),
        (
            "one class",
            lambda t: fit(y=np.ones(30), family="bernoulli"),
            r"y contains only the class 1",
        ),
        ("penalty < 0", lambda t: fit(penalty=-1.0), r"penalty .* must be >= 0"),
        ("penalty NaN", lambda t: fit(penalty=math.nan), r"penalty must be .*finite"),
        ("unknown penalty", lambda t: fit(penalty="mdl"), r"penalty must be one of"),
        ("unknown family", lambda t: fit(family="gamma"), r"family must be one of"),
        ("unknown method", lambda t: fit(method="mcmc"), r"method must be one of"),
        ("temperature 0", lambda t: fit(temperature=0.0), r"temperature must be > 0"),
        ("temperature NaN", lambda t: fit(temperature=math.nan), r"temperature must be a finite"),
        (
            "pi = 1",
            lambda t: fit(penalty="bayes", prior_inclusion=1.0),
            r"prior_inclusion .*\(0, 1\)",
        ),
        (
            "pi = 0",
            lambda t: fit(penalty="bayes", prior_inclusion=0.0),
            r"prior_inclusion .*\(0, 1\)",
        ),
        (
            "pi NaN",
            lambda t: fit(penalty="bayes", prior_inclusion=math.nan),
            r"prior_inclusion .*\(0, 1\)",
        ),
        ("slab_scale < 0", lambda t: fit(penalty="bayes", slab_scale=-1.0), r"slab_scale must be"),
        (
            "slab_scale 1e-300",
            lambda t: fit(penalty="bayes", slab_scale=1e-300),
            r"slab_scale must lie in \[1e-08, 1e\+08\]",
        ),
        (
            "slab_scale 1e200",
            lambda t: fit(penalty="bayes", slab_scale=1e200),
            r"slab_scale must lie in \[1e-08, 1e\+08\]",
        ),
        ("penalty 1e308", lambda t: fit(penalty=1e308), r"penalty .* must be <= 1e\+15"),
        (
            "noise_scale 1e300",
            lambda t: fit(penalty="bayes", prior="raw", noise_scale=1e300),
            r"noise_scale=1e\+300 is too extreme",
        ),
        ("seed 1e20", lambda t: fit(seed=10**20), r"seed must be at most 4,294,967,295"),
        (
            "sparse X",
            lambda t: fit(__import__("scipy.sparse").sparse.csr_matrix(X)),
            r"X is a scipy sparse matrix .* pass X.toarray\(\)",
            TypeError,  # what scikit-learn's estimator checks expect
        ),
        (
            "mixed column names",
            lambda t: fit(__import__("pandas").DataFrame(X, columns=["a", 1, 2, 3])),
            r"column names mix types \['int', 'str'\]",
            TypeError,
        ),
        (
            "X x 1e-300",
            lambda t: fit(X * 1e-300),
            r"columns \[0, 1, 2, 3\] cannot be standardised",
        ),
        (
            "X x 1e200",
            lambda t: fit(X * 1e150),
            r"cannot be standardised in float64",
        ),
        (
            "noise_scale 0",
            lambda t: fit(penalty="bayes", prior="raw", noise_scale=0.0),
            r"noise_scale must be",
        ),
        ("n_steps 0", lambda t: fit(n_steps=0), r"n_steps must be a positive integer"),
        ("lr NaN", lambda t: fit(lr=math.nan), r"lr must be a finite number > 0"),
        ("batch_size 0", lambda t: fit(batch_size=0), r"batch_size must be a positive integer"),
        ("seed text", lambda t: fit(seed="a"), r"seed must be a non-negative integer"),
        (
            "M >= p",
            lambda t: fit(penalty="bayes", expected_model_size=4),
            r"expected_model_size must lie",
        ),
        ("unknown device", lambda t: fit(device="tpu"), r"device='tpu' is not a torch device"),
        (
            "cuda without CUDA",
            lambda t: fit(device="cuda"),
            r"device='cuda' but CUDA is not available",
            NO_CUDA,
        ),
    ),
    *rows(
        "predict",
        ("not fitted", lambda t: L0Regression().predict(X), r"not fitted", NotFittedError),
        ("NaN in X", lambda t: fitted().predict(with_nan(X)), r"X contains 1 NaN"),
        (
            "wrong p",
            lambda t: fitted().predict(X[:, :3]),
            r"X has 3 features, but L0Regression is expecting 4",
        ),
        ("X 1-D", lambda t: fitted().predict(X[0]), r"Expected 2D array"),
    ),
    *rows(
        "score",
        ("NaN in y", lambda t: fitted().score(X, with_nan(Y)), r"y contains 1 NaN"),
        ("rows differ", lambda t: fitted().score(X, Y[:-1]), r"X has 30 rows but y has 29"),
    ),
    *rows(
        "summary",
        (
            "names",
            lambda t: fitted().summary(names=["a"]),
            r"names has 1 entries for the 4 features",
        ),
    ),
    *rows(
        "information_criteria",
        ("NaN in X", lambda t: information_criteria(with_nan(X), Y, SUPPORT), r"X contains 1 NaN"),
        (
            "support of indices",
            lambda t: information_criteria(X, Y, [0, 2]),
            r"support must be a boolean mask",
        ),
        (
            "unknown family",
            lambda t: information_criteria(X, Y, SUPPORT, "gamma"),
            r"family must be one of",
        ),
        ("constant y", lambda t: information_criteria(X, np.ones(30), SUPPORT), r"y is constant"),
        (
            "k = n",
            lambda t: information_criteria(X[:3], Y[:3], SUPPORT),
            r"k = 3 mean parameters for n = 3",
        ),
        (
            "y not 0/1",
            lambda t: information_criteria(X, Y, SUPPORT, "bernoulli"),
            r"y must contain only 0 and 1",
        ),
    ),
    *rows(
        "best_subset",
        (
            "criterion < 0",
            lambda t: best_subset(X, Y, criterion=-1.0),
            r"criterion .* must be finite and >= 0",
        ),
        (
            "unknown criterion",
            lambda t: best_subset(X, Y, criterion="hqic"),
            r"criterion must be 'aic', 'bic'",
        ),
        ("criterion None", lambda t: best_subset(X, Y, criterion=None), r"criterion must be"),
        ("max_features < 0", lambda t: best_subset(X, Y, max_features=-1), r"max_features must be"),
    ),
    *rows(
        "local_search",
        ("max_iter < 0", lambda t: local_search(X, Y, SUPPORT, max_iter=-1), r"max_iter must be"),
        (
            "short start",
            lambda t: local_search(X, Y, SUPPORT[:3]),
            r"support must be a boolean mask of length p = 4",
        ),
    ),
    *rows(
        "refit_coefficients",
        (
            "rows differ",
            lambda t: refit_coefficients(X, Y[:5]),
            r"y must be 1-D with one entry per row of Xs",
        ),
        ("NaN in Xs", lambda t: refit_coefficients(with_nan(X), Y), r"Xs contains 1 NaN"),
        ("unknown family", lambda t: refit_coefficients(X, Y, "gamma"), r"family must be one of"),
        (
            "y not 0/1",
            lambda t: refit_coefficients(X, Y, "bernoulli"),
            r"y must contain only 0 and 1",
        ),
    ),
    *rows(
        "exact_posterior",
        ("noise_scale 0", lambda t: exact_posterior(X, Y, noise_scale=0.0), r"noise_scale must be"),
        (
            "noise_scale None",
            lambda t: exact_posterior(X, Y, noise_scale=None),
            r"noise_scale must be",
        ),
        (
            "noise_scale text",
            lambda t: exact_posterior(X, Y, noise_scale="1"),
            r"noise_scale must be",
        ),
        (
            "noise_scale underflows",
            lambda t: exact_posterior(X, Y, noise_scale=1e-200),
            r"noise_scale=1e-200 is too extreme",
        ),
        (
            "slab_scale NaN",
            lambda t: exact_posterior(X, Y, noise_scale=1.0, slab_scale=math.nan),
            r"slab_scale must be finite",
        ),
        (
            "pi = 1",
            lambda t: exact_posterior(X, Y, noise_scale=1.0, prior_inclusion=1.0),
            r"prior_inclusion .*\(0, 1\)",
        ),
        (
            "text in X",
            lambda t: exact_posterior(X.astype(str).astype(object) + "x", Y, noise_scale=1.0),
            r"X must be a numeric array",
        ),
        (
            "X overflows",
            lambda t: exact_posterior(X * 1e200, Y, noise_scale=1.0),
            r"X has values as large as",
        ),
        (
            "top < 0",
            lambda t: exact_posterior(X, Y, noise_scale=1.0, top=-1),
            r"top must be a non-negative integer",
        ),
        (
            "unknown device",
            lambda t: exact_posterior(X, Y, noise_scale=1.0, device="tpu"),
            r"device='tpu'",
        ),
        (
            "cuda without CUDA",
            lambda t: exact_posterior(X, Y, noise_scale=1.0, device="cuda"),
            r"device='cuda' but CUDA is not available",
            NO_CUDA,
        ),
    ),
    *rows(
        "log_marginal_likelihoods",
        ("noise_scale < 0", lambda t: log_marginal_likelihoods(X, Y, -1.0), r"noise_scale must be"),
    ),
    *rows(
        "score_supports",
        (
            "wrong width",
            lambda t: score_supports(X, Y, SUPPORT[None, :3], noise_scale=1.0),
            r"supports must be a boolean array \(S, p=4\)",
        ),
    ),
    *rows(
        "psis_inclusion_probs",
        (
            "num_samples 0",
            lambda t: psis_inclusion_probs(
                X,
                Y,
                np.full(4, 0.5),
                noise_scale=1.0,
                slab_scale=1.0,
                prior_inclusion=0.5,
                num_samples=0,
            ),
            r"num_samples must be a positive integer",
        ),
        (
            "NaN proposal",
            lambda t: psis_inclusion_probs(
                X, Y, np.full(4, np.nan), noise_scale=1.0, slab_scale=1.0, prior_inclusion=0.5
            ),
            r"proposal_probs must hold one probability",
        ),
        (
            "floor > 1/2",
            lambda t: psis_inclusion_probs(
                X,
                Y,
                np.full(4, 0.5),
                noise_scale=1.0,
                slab_scale=1.0,
                prior_inclusion=0.5,
                floor=0.7,
            ),
            r"floor must lie strictly between 0 and 0.5",
        ),
    ),
    *rows(
        "RegressionPrior",
        ("unknown kl_mode", lambda t: RegressionPrior(kl_mode="bic"), r"kl_mode must be one of"),
        ("unknown family", lambda t: RegressionPrior(family="gamma"), r"family must be one of"),
        (
            "unknown weight_guide",
            lambda t: RegressionPrior(weight_guide="laplace"),
            r"weight_guide must be one of",
        ),
        ("lambda < 0", lambda t: RegressionPrior(lam=-1.0), r"lam must be >= 0 with kl_mode='l0'"),
        ("lambda NaN", lambda t: RegressionPrior(lam=math.nan), r"lam must be finite"),
        ("temperature 0", lambda t: RegressionPrior(temperature=0.0), r"temperature must be > 0"),
        (
            "stretch",
            lambda t: RegressionPrior(stretch=(0.0, 1.0)),
            r"stretch=\(gamma, zeta\) must strictly contain \[0, 1\]",
        ),
        (
            "slab_precision < 0",
            lambda t: RegressionPrior(slab_precision=-1.0),
            r"slab_precision must be >= 0",
        ),
        ("noise_scale 0", lambda t: RegressionPrior(noise_scale=0.0), r"noise_scale must be"),
        (
            "subsample_size 0",
            lambda t: RegressionPrior(subsample_size=0),
            r"subsample_size must be",
        ),
        (
            "Beta a < 0",
            lambda t: RegressionPrior(inclusion_beta=(-1.0, 1.0)),
            r"inclusion_beta a must be",
        ),
    ),
    *rows(
        "regression_model",
        ("numpy X", lambda t: svi(X, Y), r"X must be a 2-D floating-point torch tensor"),
        ("integer X", lambda t: svi(XT.long()), r"X must be a 2-D floating-point torch tensor"),
        (
            "rows differ",
            lambda t: svi(y=YT[:5]),
            r"y must be a 1-D tensor with one entry per row of X \(n = 30\)",
        ),
        (
            "lam shape",
            lambda t: svi(prior=RegressionPrior(lam=torch.ones(5))),
            r"prior.lam must be a scalar or have shape \(p,\)",
        ),
        (
            "batch > n",
            lambda t: svi(prior=RegressionPrior(subsample_size=50)),
            r"subsample_size = 50 exceeds the n = 30 rows",
        ),
        ("NaN in X", lambda t: svi(torch.as_tensor(with_nan(X))), r"X contains NaN"),
        (
            "y not 0/1",
            lambda t: svi(prior=RegressionPrior(family="bernoulli")),
            r"y must contain only 0 and 1",
        ),
    ),
    *rows(
        "fit_svi",
        ("n_steps 0", lambda t: svi(n_steps=0), r"n_steps must be a positive integer"),
        ("lr < 0", lambda t: svi(lr=-1.0), r"lr must be a finite number > 0"),
        ("num_particles 0", lambda t: svi(num_particles=0), r"num_particles must be"),
    ),
    *rows(
        "resolve_device",
        ("unknown", lambda t: resolve_device("gpu0"), r"device='gpu0' is not a torch device"),
        (
            "cuda without CUDA",
            lambda t: resolve_device("cuda:0"),
            r"device='cuda:0' but CUDA is not available.*use device='cpu'",
            NO_CUDA,
        ),
    ),
    *rows(
        "HardConcrete",
        ("temperature 0", lambda t: HardConcrete(0.0, temperature=0.0), r"temperature must be > 0"),
        (
            "temperature < 0",
            lambda t: HardConcrete(0.0, temperature=-0.5),
            r"temperature must be > 0",
        ),
        (
            "temperature NaN",
            lambda t: HardConcrete(0.0, temperature=math.nan),
            r"temperature must be a finite",
        ),
        (
            "temperature tensor",
            lambda t: HardConcrete(0.0, temperature=torch.tensor(0.5)),
            r"temperature must be a number",
        ),
        (
            "stretch gamma > 0",
            lambda t: HardConcrete(0.0, stretch=(0.1, 1.1)),
            r"stretch=.* must strictly contain \[0, 1\]",
        ),
        (
            "stretch zeta < 1",
            lambda t: HardConcrete(0.0, stretch=(-0.1, 0.9)),
            r"stretch=.* must strictly contain \[0, 1\]",
        ),
        (
            "stretch = [0, 1]",
            lambda t: HardConcrete(0.0, stretch=(0.0, 1.0)),
            r"stretch=.* must strictly contain \[0, 1\]",
        ),
        (
            "integer log_alpha",
            lambda t: HardConcrete(torch.tensor([1, 2])),
            r"log_alpha must be a floating-point tensor",
        ),
        ("text log_alpha", lambda t: HardConcrete("a"), r"log_alpha must be a number or a tensor"),
        (
            "NaN log_alpha",
            lambda t: HardConcrete(torch.tensor([math.nan]), validate_args=True),
            r"log_alpha",
        ),
    ),
    *rows(
        "SpikeSlabGate",
        (
            "pi = 0",
            lambda t: SpikeSlabGate(prior_inclusion=0.0),
            r"prior_inclusion must lie strictly in \(0, 1\)",
        ),
        (
            "pi = 1",
            lambda t: SpikeSlabGate(prior_inclusion=1.0),
            r"prior_inclusion must lie strictly in \(0, 1\)",
        ),
        (
            "pi < 0",
            lambda t: SpikeSlabGate(prior_inclusion=-0.1),
            r"prior_inclusion must lie strictly in \(0, 1\)",
        ),
        (
            "pi NaN",
            lambda t: SpikeSlabGate(prior_inclusion=math.nan),
            r"prior_inclusion must lie strictly in \(0, 1\)",
        ),
        (
            "pi tensor with 1",
            lambda t: SpikeSlabGate(prior_inclusion=torch.tensor([0.5, 1.0])),
            r"prior_inclusion must lie strictly in \(0, 1\)",
        ),
        ("lambda inf", lambda t: SpikeSlabGate(lam=math.inf), r"lam must be finite"),
        (
            "pi and lambda",
            lambda t: SpikeSlabGate(prior_inclusion=0.5, lam=1.0),
            r"exactly one of prior_inclusion .* or lam",
        ),
        (
            "unknown kl_mode",
            lambda t: SpikeSlabGate(prior_inclusion=0.5, kl_mode="kl"),
            r"kl_mode must be one of",
        ),
    ),
    *rows(
        "GaussianSlab",
        ("precision < 0", lambda t: GaussianSlab(-1.0), r"precision must be finite and >= 0"),
        ("precision NaN", lambda t: GaussianSlab(math.nan), r"precision must be finite and >= 0"),
        (
            "precision inf",
            lambda t: GaussianSlab(math.inf, normalized=False),
            r"precision must be finite and >= 0",
        ),
        (
            "normalized, precision 0",
            lambda t: GaussianSlab(0.0),
            r"normalized Gaussian slab needs precision > 0",
        ),
    ),
    *rows(
        "gate_kl",
        (
            "lambda NaN",
            lambda t: gate_kl(HardConcrete(torch.zeros(2)), math.nan, "l0"),
            r"lam must be finite",
        ),
        (
            "unknown kl_mode",
            lambda t: gate_kl(HardConcrete(torch.zeros(2)), 1.0, "kl"),
            r"kl_mode must be one of",
        ),
    ),
    *rows(
        "expected_gate_kl",
        (
            "Beta a = 0",
            lambda t: expected_gate_kl(HardConcrete(torch.zeros(2)), 0.0, 1.0),
            r"Beta hyperprior's a must be finite and > 0",
        ),
    ),
    *rows(
        "code_cost",
        ("pi = 1", lambda t: code_cost(1.0), r"prior_inclusion must lie strictly in \(0, 1\)"),
    ),
    *rows(
        "check_prior_inclusion",
        (
            "Beta b < 0",
            lambda t: check_prior_inclusion(("beta", 1.0, -1.0)),
            r"\('beta', a, b\) with finite a > 0 and b > 0",
        ),
    ),
    *rows(
        "beta_from_model_size",
        (
            "M > p",
            lambda t: beta_from_model_size(5, 1.0, 3),
            r"expected_model_size must lie strictly between 0 and p = 3",
        ),
    ),
    *rows(
        "simulate_regression",
        ("n = 0", lambda t: simulate_regression(n=0), r"n must be a positive integer"),
        (
            "k > p",
            lambda t: simulate_regression(p=3, k=5),
            r"k \(the number of non-zero coefficients\) must be <= p = 3",
        ),
        ("snr 0", lambda t: simulate_regression(snr=0.0), r"snr must be a finite number > 0"),
        (
            "rho not a correlation",
            lambda t: simulate_regression(p=12, rho=-0.5),
            r"rho must lie in \[-1/\(p-1\), 1\]",
        ),
        (
            "unknown family",
            lambda t: simulate_regression(family="gamma"),
            r"family must be one of",
        ),
    ),
    *rows(
        "load_mnist",
        (
            "missing directory",
            lambda t: load_mnist(t / "nowhere"),
            r"(?s)MNIST files not found.*no such directory.*download=True",
            FileNotFoundError,
        ),
        (
            "wrong checksum",
            lambda t: load_mnist(mnist_dir(t)),
            r"checksum mismatch for .*train-images-idx3-ubyte\.gz.*Fix: delete it",
            ChecksumError,
        ),
        (
            "truncated gzip",
            lambda t: load_mnist(mnist_dir(t, "truncated"), verify=False),
            r"train-images-idx3-ubyte\.gz: not a valid gzip file",
        ),
        (
            "wrong IDX magic",
            lambda t: load_mnist(mnist_dir(t, "magic"), verify=False),
            r"train-images-idx3-ubyte\.gz: bad IDX magic number 08030003",
        ),
        (
            "label out of range",
            lambda t: load_mnist(mnist_dir(t, "label"), verify=False),
            r"train-labels-idx1-ubyte\.gz: label 10 outside 0\.\.9",
        ),
    ),
    *rows(
        "read_idx",
        ("missing file", lambda t: read_idx(t / "absent.gz"), r"absent\.gz", FileNotFoundError),
    ),
    *rows(
        "verify_file",
        (
            "malformed digest",
            lambda t: verify_file(mnist_dir(t) / IDX_FILES[1], "abc"),
            r"checksum 'abc' is neither an md5",
        ),
    ),
    *rows(
        "load_cifar",
        (
            "missing directory",
            lambda t: load_cifar(t / "nowhere"),
            r"(?s)CIFAR-10 files not found.*cs\.toronto\.edu",
            FileNotFoundError,
        ),
        (
            "unknown data set",
            lambda t: load_cifar(t, num_classes=7),
            r"num_classes must be 10 or 100",
        ),
    ),
    *rows(
        "to_tensors",
        (
            "integer dtype",
            lambda t: to_tensors(tiny_dataset(), dtype=torch.int64),
            r"dtype must be a floating point torch dtype",
        ),
        (
            "cuda without CUDA",
            lambda t: to_tensors(tiny_dataset(), device="cuda"),
            r"device='cuda' but CUDA is not available",
            NO_CUDA,
        ),
    ),
]


@pytest.mark.parametrize("entry, call, error, match", CASES)
def test_bad_input_gets_a_clear_error(tmp_path, entry, call, error, match):
    with pytest.raises(error, match=match):
        call(tmp_path)


# ----------------------------------------------------------------------------- the CLI
def write_csv(tmp: Path, text: str) -> str:
    path = tmp / "data.csv"
    path.write_text(text)
    return str(path)


GOOD = "a,b,y\n" + "".join(
    f"{a},{b},{a + 2 * b % 3}\n" for a, b in zip(range(12), range(5, 17), strict=True)
)
CLI_CASES = [
    ("missing csv", None, ["--target", "y"], r"cannot read the CSV file"),
    ("unknown target", GOOD, ["--target", "nope"], r"--target 'nope' is not a column"),
    ("unknown penalty", GOOD, ["--target", "y", "--penalty", "mdl"], r"penalty must be one of"),
    ("negative penalty", GOOD, ["--target", "y", "--penalty", "-2"], r"must be >= 0"),
    (
        "non-numeric cell",
        GOOD.replace("3,8,", "3,eight,"),
        ["--target", "y"],
        r"column .*: 'eight' is not a number",
    ),  # fmt: skip
    ("constant target", "a,y\n1,2\n2,2\n3,2\n4,2\n", ["--target", "y"], r"y is constant"),
    ("target not 0/1", GOOD, ["--target", "y", "--family", "bernoulli"], r"only 0 and 1"),
    (
        "pi > 1",
        GOOD,
        ["--target", "y", "--penalty", "bayes", "--prior-inclusion", "2"],
        r"\(0, 1\)",
    ),
    ("steps 1e12", GOOD, ["--target", "y", "--steps", "1000000000000"], r"at most 100,000,000"),
    ("threads 100000", GOOD, ["--target", "y", "--threads", "100000"], r"at most 1024"),
    (
        "missing value",
        GOOD.replace("3,8,", "3,NA,"),
        ["--target", "y"],
        r"line 5, column 'b': a missing value \('NA'\); pass --drop-missing",
    ),
    (
        "text column",
        GOOD.replace("3,8,", "3,x,"),
        ["--target", "y"],
        r"'x' is not a number; a text column must be one-hot encoded",
    ),
    (
        "zero steps",
        GOOD,
        ["--target", "y", "--steps", "0"],
        r"(n_steps|--steps) must be a positive integer",
    ),
]


@pytest.mark.parametrize(
    "csv, options, match", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES]
)
def test_cli_error_is_one_line_with_exit_code_2(tmp_path, capsys, csv, options, match):
    path = str(tmp_path / "missing.csv") if csv is None else write_csv(tmp_path, csv)
    assert main(["select", path, *options]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("l0bayes select: error: ")
    assert re.search(match, err), err
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        main(["--debug", "select", path, *options])


def test_cli_unknown_family_is_an_argparse_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["select", write_csv(tmp_path, GOOD), "--target", "y", "--family", "gamma"])
    assert info.value.code == 2
    assert "invalid choice: 'gamma'" in capsys.readouterr().err


def test_cli_empty_csv_is_a_one_line_error(tmp_path, capsys):
    assert main(["select", write_csv(tmp_path, ""), "--target", "y"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


# ------------------------------------------------------ degenerate data that must still work
def test_constant_column_is_left_out_with_a_warning():
    """A constant column carries nothing the intercept does not: the fit warns, fixes its
    coefficient and inclusion probability at 0, and is otherwise the fit without it."""
    Xc = np.column_stack([X[:, :2], np.full(30, 7.0), X[:, 2:]])
    for kwargs in (dict(), dict(penalty="bayes", method="svi", importance_samples=256)):
        with pytest.warns(UserWarning, match=r"constant columns \[2\].*coefficient 0"):
            est = fit(Xc, **kwargs)
        ref = fit(**kwargs)
        assert est.coef_[2] == 0.0 and est.inclusion_probs_[2] == 0.0 and not est.selected_[2]
        keep = [0, 1, 3, 4]
        np.testing.assert_allclose(est.inclusion_probs_[keep], ref.inclusion_probs_, atol=1e-9)
        np.testing.assert_allclose(est.coef_[keep], ref.coef_, rtol=1e-7, atol=1e-10)
        assert est.intercept_ == pytest.approx(ref.intercept_, rel=1e-7)
        np.testing.assert_allclose(est.predict(Xc), ref.predict(X), rtol=1e-7)
    assert est.model_size_probs_.shape == (6,) and est.model_size_probs_[5] == 0.0
    draws = est.to_inference_data(Xc, Y, num_samples=20).posterior["coef"].values
    assert np.isfinite(draws).all() and (draws[..., 2] == 0).all()


def test_constant_column_with_exact_enumeration():
    Xc = np.column_stack([X, np.zeros(30)])
    kwargs = dict(method="exact", penalty="bayes", prior="raw", noise_scale=0.5)
    with pytest.warns(UserWarning, match=r"constant columns \[4\]"):
        est = L0Regression(**kwargs).fit(Xc, Y)
    ref = L0Regression(**kwargs).fit(X, Y)
    np.testing.assert_allclose(est.inclusion_probs_, np.r_[ref.inclusion_probs_, 0.0])
    assert all(support.shape == (5,) and not support[4] for support, _ in est.top_models_)


def test_more_features_than_samples():
    """p > n: an L0 method selects, so it must work; the reported model has k < n parameters
    and finite criteria (models with k >= n fit exactly and are left out of the search)."""
    rng = np.random.default_rng(3)
    n, p = 20, 40
    Xw = rng.standard_normal((n, p))
    yw = 3.0 * Xw[:, 0] - 2.0 * Xw[:, 1] + 0.5 * rng.standard_normal(n)
    for penalty in ("bic", "aic"):
        with pytest.warns(UserWarning, match="p = 40 features and only n = 20 observations"):
            est = L0Regression(penalty=penalty, n_steps=200, progress=False).fit(Xw, yw)
        crit = est.information_criteria()
        assert crit.k < n and all(map(math.isfinite, (crit.log_likelihood, crit.aic, crit.bic)))
        assert np.isfinite(est.coef_).all() and np.isfinite(est.predict(Xw)).all()
        assert est.selected_[:2].all()
    with warnings.catch_warnings(record=True) as caught:  # p > n: chains may well disagree
        warnings.simplefilter("always")
        bayes = L0Regression(penalty="bayes", n_steps=200, chain_iterations=5000, progress=False)
        bayes.fit(Xw, yw)
    assert np.isfinite(bayes.inclusion_probs_).all() and bayes.selected_[:2].all()
    for w in caught:  # a warning, if any, names the diagnostic that fired
        assert re.search(r"may be wrong: (pip_spread|pip_se|rhat|ess)", str(w.message)), w.message
    assert len(caught) == len(bayes.pip_diagnostics_["warnings"])


def test_selection_functions_skip_saturated_supports():
    rng = np.random.default_rng(4)
    Xw, yw = rng.standard_normal((8, 12)), rng.standard_normal(8)
    best = best_subset(Xw, yw, criterion="aic")
    assert best.criteria.k < 8 and math.isfinite(best.criteria.aic)
    everything = np.ones(12, dtype=bool)  # k = 8 = n: an exact fit, no finite likelihood
    found = local_search(Xw, yw, everything, criterion="aic")
    assert found.criteria.k < 8 and found.criteria.aic >= best.criteria.aic - 1e-9
    post = exact_posterior(Xw, yw, noise_scale=1.0)
    assert np.isfinite(post.inclusion_probs).all()
    assert ((post.inclusion_probs >= 0) & (post.inclusion_probs <= 1)).all()


def test_cli_drop_missing_leaves_out_the_rows_with_a_note(tmp_path, capsys):
    """Issue 27: missing values got no remedy; --drop-missing fits the complete rows."""
    path = write_csv(tmp_path, GOOD.replace("3,8,", "3,,").replace("5,10,", "5,NaN,"))
    assert main(["select", path, "--target", "y", "--no-progress", "--drop-missing"]) == 0
    err = capsys.readouterr().err
    assert "left out 2 rows with a missing value (lines 5, 7); 10 rows remain" in err
