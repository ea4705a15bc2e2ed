r"""Sparse Variational Dropout (Molchanov, Ashukha & Vetrov, ICML 2017) as a Pyro model.

Every weight :math:`w` of a fully connected or convolutional layer has the improper
log-uniform prior and a Gaussian guide with its own dropout rate :math:`\alpha`:

.. math::

    p(\lvert w\rvert) \propto \frac{1}{\lvert w\rvert}, \qquad
    q(w) = \mathcal N(\theta, \sigma^2) = \mathcal N(\theta, \alpha\theta^2), \qquad
    \log\alpha = \log\sigma^2 - \log\theta^2 .

The guide's parameters are :math:`\theta` (``weight``) and :math:`\log\sigma^2`
(``log_sigma2``) rather than :math:`\alpha`: the **additive noise reparameterisation**
:math:`w = \theta + \sigma\varepsilon` keeps the gradient in :math:`\theta` free of the
multiplicative noise :math:`\theta\sqrt\alpha\,\varepsilon`, which is what lets
:math:`\alpha` grow without bound. The KL per weight is the paper's fit
(:mod:`l0bayes.distributions.log_uniform`), registered for Pyro, so that with
:class:`pyro.infer.TraceMeanField_ELBO` the negative ELBO of :meth:`SVDNetwork.model` and
:meth:`SVDNetwork.guide` is

.. math::

    -\text{ELBO} = \frac{N}{B}\sum_{i \in \text{batch}} -\log p(y_i \mid x_i, w)
        - \sum_\text{weights}\Big(k_1\sigma(k_2 + k_3\log\alpha)
        - \tfrac12\log(1 + \alpha^{-1}) - k_1\Big).

The bias is a point estimate without a prior (as in the paper's code).

**Two estimators of the likelihood term.** The Pyro program draws one weight tensor per
minibatch (the weights are global latent variables). :meth:`SVDNetwork.differentiable_loss`
computes the same negative ELBO in closed form (no tracing) and, for layers with
``local_rep=False``, draws the same random numbers in the same order, so it equals Pyro's value
and gradients under the same RNG (tested). With ``local_rep=True`` (the default; [1] trains
with it) a layer uses the **local reparameterisation trick** [2] instead: it draws its
pre-activations from their Gaussian distribution given the input,

.. math::

    b = x\theta + b_0 + \sqrt{x^2\sigma^2}\,\varepsilon \qquad
    (\text{convolutions: } b = \theta * x + b_0 + \sqrt{\sigma^2 * x^2}\,\varepsilon),

independently for every example. For fully connected layers this is exactly the distribution
of :math:`x w` for a weight drawn per example, so it estimates the same expected
log-likelihood (tested), without the covariance that one shared weight draw induces between
the examples of a minibatch (the reason [2] gives for its lower-variance gradients). For a
convolution it also treats every output position independently, ignoring that they share
weights: the common practice for Sparse VD, but an approximation; ``local_rep=False`` keeps
the exact ELBO.

**Test time.** ``forward(x)`` uses :math:`\theta` with the weights of
:math:`\log\alpha > 3` (:data:`LOG_ALPHA_THRESHOLD`, dropout rate
:math:`\alpha/(1+\alpha) > 0.95`) set to zero, and no noise. Their number of non-zero
weights and FLOPs, with whole units removed where every weight reading them is pruned, is
:func:`l0bayes.baselines.pruning.sparse_architecture`.

The paper reports 1.92% test error with 68× fewer weights for LeNet-300-100 and 0.75% with
280× fewer for LeNet-5-Caffe (its Table 1). :func:`fit_sparse_vd` trains with Adam and an
optional linear warm-up of the KL weight over ``kl_warmup_epochs`` (a KL weight below 1 is not
the ELBO; with few epochs and a small data set the full KL prunes nearly everything early).

**References**

[1] D. Molchanov, A. Ashukha, D. Vetrov. Variational Dropout Sparsifies Deep Neural Networks.
    ICML 2017, arXiv:1701.05369.

[2] D. P. Kingma, T. Salimans, M. Welling. Variational Dropout and the Local
    Reparameterization Trick. NeurIPS 2015, arXiv:1506.02557.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.nn import PyroModule
from pyro.nn.module import pyro_method
from torch import nn

from l0bayes.baselines.stacking import SVDStack, fit_stacked, test_errors
from l0bayes.data.files import ImageDataset
from l0bayes.data.images import image_splits
from l0bayes.distributions.counter_noise import step_keys
from l0bayes.distributions.log_uniform import LogUniform, log_alpha_of, sparse_vd_kl
from l0bayes.nn.base import BayesianClassifier, SequentialClassifier
from l0bayes.nn.layers import check_conv_input, init_conv, init_weights
from l0bayes.training.engine import StackedImages
from l0bayes.training.loop import FitResult
from l0bayes.validation import check_count

#: Weights with :math:`\log\alpha` above this are pruned at test time [1].
LOG_ALPHA_THRESHOLD = 3.0
#: Initial :math:`\log\sigma^2` of every weight (the authors' code: :math:`\log\sigma = -5`).
INIT_LOG_SIGMA2 = -10.0
#: Added to the local reparameterisation's variance (a pre-activation with no noise).
VAR_EPS = 1e-8


class SVDLayer(PyroModule):
    r"""Base class of the Sparse VD layers: the weight site, prior, guide and KL.

    Subclasses create ``weight`` (:math:`\theta`, in ``torch.nn.Linear``/``Conv2d`` layout),
    ``bias`` and call :meth:`_init_noise`; they implement :meth:`_map` (the layer's map for given
    weights), from which :meth:`local_forward` draws the local reparameterisation. The sample
    site is
    ``"<name>.w"``; the parameters are ``"<name>.weight"`` (the guide's location),
    ``"<name>.log_sigma2"`` and ``"<name>.bias"``.

    :param local_rep: draw pre-activations by the local reparameterisation trick in
        :meth:`SVDNetwork.differentiable_loss` (``True``) or one weight tensor per minibatch.
    :param init_log_sigma2: initial :math:`\log\sigma^2` of every weight.
    """

    def __init__(self, local_rep: bool = True, init_log_sigma2: float = INIT_LOG_SIGMA2) -> None:
        super().__init__()
        if not math.isfinite(init_log_sigma2):
            raise ValueError(f"init_log_sigma2 must be finite, got {init_log_sigma2}")
        self.local_rep = bool(local_rep)
        self.init_log_sigma2 = float(init_log_sigma2)

    def _init_noise(self) -> None:
        self.log_sigma2 = nn.Parameter(torch.full_like(self.weight.detach(), self.init_log_sigma2))

    def _site(self, name: str) -> str:
        return self._pyro_get_fullname(name)

    # ------------------------------------------------------------------ distributions
    def prior(self) -> dist.Distribution:
        """The log-uniform prior on every weight, event shape the weight's shape."""
        return LogUniform().expand(self.weight.shape).to_event(self.weight.dim())

    def posterior(self) -> dist.Distribution:
        r"""The guide :math:`\mathcal N(\theta, \sigma^2)` per weight, event shape the weight's."""
        scale = torch.exp(0.5 * self.log_sigma2)
        return dist.Normal(self.weight, scale).to_event(self.weight.dim())

    def log_alpha(self) -> torch.Tensor:
        r""":math:`\log\alpha = \log\sigma^2 - \log\theta^2` per weight (clamped to
        :data:`~l0bayes.distributions.log_uniform.LOG_ALPHA_RANGE`)."""
        return log_alpha_of(self.weight, self.log_sigma2)

    def keep_mask(self, threshold: float = LOG_ALPHA_THRESHOLD) -> torch.Tensor:
        r"""The weights kept at test time: :math:`\log\alpha \le` ``threshold``."""
        return self.log_alpha() <= threshold

    def kl_divergence(self) -> torch.Tensor:
        """The layer's KL term in closed form, by the function registered for Pyro's
        ``kl_divergence(Normal, LogUniform)`` (tested equal)."""
        return sparse_vd_kl(self.weight, self.log_sigma2).sum()

    # ------------------------------------------------------------------ model and guide
    # ``batch_size`` (the minibatch's) is unused below: one weight tensor per minibatch; the
    # per-example draws are the local reparameterisation's (:meth:`local_forward`).
    @pyro_method
    def model(self, batch_size: int | None = None) -> torch.Tensor:
        """The weights from the log-uniform prior (replayed from the guide in SVI)."""
        return pyro.sample(self._site("w"), self.prior())

    @pyro_method
    def guide(self, batch_size: int | None = None) -> torch.Tensor:
        """The weights from the Gaussian guide (additive noise: ``theta + sigma * eps``)."""
        return pyro.sample(self._site("w"), self.posterior())

    def sample(self, batch_size: int | None = None) -> torch.Tensor:
        """A draw of the weights from the guide without Pyro's bookkeeping (same numbers as
        :meth:`guide` under the same RNG)."""
        return self.posterior().rsample()

    # ------------------------------------------------------------------ maps
    def test_time_parameters(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Weight (pruned weights set to zero) and bias of the test-time layer, in
        ``torch.nn.Linear``/``Conv2d`` layout (what :func:`l0bayes.baselines.pruning.plain_chain`
        reads)."""
        return self.weight * self.keep_mask(), self.bias

    def forward(self, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """The layer with the given ``weight`` (a draw), or the test-time pruned weights."""
        if weight is None:
            weight = self.test_time_parameters()[0]
        return self._map(x, weight, self.bias)

    def forward_with(self, x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        """The layer under a ``weight`` draw, or (``None``) with pre-activations drawn by the
        local reparameterisation (:meth:`local_forward`)."""
        if weight is None:
            return self.local_forward(x)
        return self._map(x, weight, self.bias)

    def local_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The pre-activations drawn by the local reparameterisation trick (module docstring)."""
        mean = self._map(x, self.weight, self.bias)
        var = self._map(x.square(), torch.exp(self.log_sigma2), None)
        return mean + torch.sqrt(var + VAR_EPS) * torch.randn_like(mean)

    def _map(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        raise NotImplementedError


class SVDLinear(SVDLayer):
    r"""Fully connected Sparse VD layer :math:`y = x w^\top + b` (weight ``(out, in)`` as in
    ``torch.nn.Linear``). Keyword arguments: see :class:`SVDLayer`.

    Example::

        layer = SVDLinear(784, 300)
        h = layer.local_forward(x)    # training: (B, 300), local reparameterisation
        h = layer(x)                  # test time: weights with log alpha > 3 pruned
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        check_count("in_features", in_features)
        check_count("out_features", out_features)
        self.in_features, self.out_features = in_features, out_features
        init_weights(self, (out_features, in_features), in_features, bias)
        self._init_noise()

    def _map(self, x, weight, bias):
        if x.shape[-1] != self.in_features:
            raise ValueError(f"expected {self.in_features} input features, got {x.shape[-1]}")
        return F.linear(x, weight, bias)


class SVDConv2d(SVDLayer):
    """2-d convolution with Sparse VD weights (weight ``(out, in, kh, kw)``). Keyword
    arguments: see :class:`SVDLayer`."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        init_conv(self, in_channels, out_channels, kernel_size, stride, padding, bias)
        self._init_noise()

    def _map(self, x, weight, bias):
        check_conv_input(self, x)
        return F.conv2d(x, weight, bias, self.stride, self.padding)


# ----------------------------------------------------------------------------- networks
class SVDNetwork(BayesianClassifier):
    r"""Base class of a Sparse VD classifier: a :class:`~l0bayes.nn.base.BayesianClassifier`
    whose latent layers are the :class:`SVDLayer` s among its submodules (``model``,
    ``guide``, the closed-form :meth:`differentiable_loss` and the deterministic test-time
    ``forward``, :math:`\log\alpha > 3` pruned).

    Subclasses define :meth:`_run`, the network's map given a weight draw per layer: a layer
    in the draws uses its draw, a layer left out the local reparameterisation, and ``None``
    the test-time pruned weights. ``model(x, y, num_data)`` samples every layer's weights
    (global, outside the data plate), then ``y ~ Categorical(logits)`` in
    ``pyro.plate("data", num_data, subsample=...)``.

    In :meth:`differentiable_loss`, layers with ``local_rep=False`` draw their weights first,
    in the guide's order, so with none using the local reparameterisation it equals
    ``TraceMeanField_ELBO().differentiable_loss(net.model, net.guide, x, y, num_data)`` under
    the same RNG (value and gradients; tested). Its ``kl_scale`` :math:`\beta < 1` weakens
    the KL during a warm-up (the paper anneals it).
    """

    layer_type = SVDLayer

    def svd_layers(self) -> list[SVDLayer]:
        """The Sparse VD layers in definition order (:meth:`latent_layers`)."""
        return self.latent_layers()

    def _loss_draws(self, batch_size: int, posteriors: None) -> dict[SVDLayer, torch.Tensor]:
        return {layer: layer.sample() for layer in self.svd_layers() if not layer.local_rep}


class SVDSequential(SequentialClassifier, SVDNetwork):
    """A chain of layers (Sparse VD or not) as a Pyro classifier (see :class:`SVDNetwork`).

    :param layers: the chain, applied in order.

    Example::

        net = SVDSequential(SVDLinear(784, 300), nn.ReLU(), SVDLinear(300, 10))
        loss = net.differentiable_loss(x, y, num_data=60000) / 60000
        logits = net(x_test)        # log alpha > 3 pruned
    """


def svd_mnist_mlp(
    hidden: Sequence[int] = (300, 100), num_classes: int = 10, **layer_kwargs
) -> SVDSequential:
    """The MLP 784-300-100-10 (LeNet-300-100) with Sparse VD on every layer."""
    sizes = [784, *hidden, num_classes]
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(SVDLinear(n_in, n_out, **layer_kwargs))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return SVDSequential(*layers)


def svd_lenet5(num_classes: int = 10, in_channels: int = 1, **layer_kwargs) -> SVDSequential:
    """LeNet-5-Caffe (conv 20 and 50 maps 5×5, each with ReLU and 2×2 max pooling, FC
    800-500-10) with Sparse VD on every layer, as :func:`l0bayes.nn.networks.lenet5`."""
    return SVDSequential(
        SVDConv2d(in_channels, 20, 5, **layer_kwargs),
        nn.ReLU(),
        nn.MaxPool2d(2),
        SVDConv2d(20, 50, 5, **layer_kwargs),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        SVDLinear(800, 500, **layer_kwargs),
        nn.ReLU(),
        SVDLinear(500, num_classes, **layer_kwargs),
    )


#: Sparse VD builders by the names of :data:`l0bayes.nn.networks.NETWORKS`.
SVD_NETWORKS = {"mnist-mlp": svd_mnist_mlp, "lenet5": svd_lenet5}


def svd_network(name: str, **layer_kwargs) -> SVDSequential:
    """The Sparse VD version of the network ``name`` (``"mnist-mlp"`` or ``"lenet5"``)."""
    try:
        build = SVD_NETWORKS[name]
    except KeyError:
        choices = sorted(SVD_NETWORKS)
        raise ValueError(f"no Sparse VD network {name!r}; choose one of {choices}") from None
    return build(**layer_kwargs)


# ----------------------------------------------------------------------------- training
def fit_sparse_vd(
    net: SVDNetwork,
    data: ImageDataset,
    input_shape: tuple[int, ...],
    epochs: int,
    *,
    batch_size: int = 100,
    lr: float = 1e-3,
    kl_warmup_epochs: float = 0.0,
    standardize: bool = False,
    seed: int = 0,
) -> tuple[FitResult, float]:
    r"""Train ``net`` on ``data`` by Adam on the per-data-point negative ELBO (the local
    reparameterisation, its noise the counter normals of ``(seed, step)``); return the fit
    record and the test error of the test-time network (:func:`fit_sparse_vd_many` of one).

    :param kl_warmup_epochs: the KL weight rises linearly from 0 to 1 over this many epochs
        (0: the ELBO throughout).
    :param standardize: standardise the images by channel (as ``l0bayes train
        --standardize``) instead of scaling the pixels to [0, 1].
    :param seed: seeds the noise and the data order.
    """
    return fit_sparse_vd_many(
        [net], [data], input_shape, epochs, seeds=[seed], batch_size=batch_size, lr=lr,
        kl_warmup_epochs=kl_warmup_epochs, standardize=standardize,
    )[0]  # fmt: skip


def fit_sparse_vd_many(
    nets: Sequence[SVDNetwork],
    datas: Sequence[ImageDataset],
    input_shape: tuple[int, ...],
    epochs: int,
    *,
    seeds: Sequence[int],
    batch_size: int = 100,
    lr: float = 1e-3,
    kl_warmup_epochs: float = 0.0,
    standardize: bool = False,
    graph: bool = True,
) -> list[tuple[FitResult, float]]:
    r""":func:`fit_sparse_vd` of several networks of one architecture at once, stacked
    (:class:`~l0bayes.baselines.stacking.SVDStack`): network :math:`k` on ``datas[k]`` with
    seed ``seeds[k]``, on the device of its parameters; ``graph``: capture the step on CUDA.
    One step descends :math:`\sum_k \frac{1}{N}[\frac NB\sum_i -\log p(y_i \mid x_i, w^{(k)})
    + \beta_t\,\mathrm{KL}^{(k)}]` with :math:`\beta_t = \min(1, t / (S K_w))` after
    :math:`t` steps of :math:`S` per epoch."""
    if kl_warmup_epochs < 0 or not math.isfinite(kl_warmup_epochs):
        raise ValueError(f"kl_warmup_epochs must be finite and >= 0, got {kl_warmup_epochs}")
    if len({len(nets), len(datas), len(seeds)}) != 1:
        raise ValueError("give one data set and one seed per network")
    device = next(nets[0].parameters()).device
    splits: dict[int, tuple] = {}
    for data in datas:
        if id(data) not in splits:
            splits[id(data)] = image_splits(data, input_shape, standardize, device)
    train = StackedImages([splits[id(d)][0] for d in datas])
    test = StackedImages([splits[id(d)][1] for d in datas])
    stack = SVDStack(nets, seeds, LOG_ALPHA_THRESHOLD, VAR_EPS)
    optimizer = torch.optim.Adam(
        stack.params.values(), lr=lr, foreach=True, capturable=device.type == "cuda"
    )
    n, steps = len(train), math.ceil(len(train) / batch_size)
    step_count = torch.zeros((), dtype=torch.int64, device=device)
    loss_sum = torch.zeros(stack.K, dtype=torch.float64, device=device)

    def step(index: torch.Tensor) -> None:
        x, y = train.batch(index)
        logits = stack.logits(x, step_keys(stack.streams, step_count))
        nll = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
        kl = stack.kl()
        if kl_warmup_epochs:
            kl = kl * (step_count.double() / (steps * kl_warmup_epochs)).clamp(max=1.0).to(kl)
        losses = (nll.view(y.shape).sum(-1) * (n / y.shape[1]) + kl) / n
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()
        loss_sum.add_(losses.detach().double())
        step_count.add_(1)

    for net in nets:
        net.train()
    with pyro.validation_enabled(False):
        fits = fit_stacked(step, loss_sum, train, seeds, epochs, batch_size=batch_size, graph=graph)
    errors = test_errors(stack.logits, test)
    return list(zip(fits, errors, strict=True))


__all__ = [
    "INIT_LOG_SIGMA2",
    "LOG_ALPHA_THRESHOLD",
    "SVDConv2d",
    "SVDLayer",
    "SVDLinear",
    "SVDNetwork",
    "SVDSequential",
    "SVD_NETWORKS",
    "fit_sparse_vd",
    "fit_sparse_vd_many",
    "svd_lenet5",
    "svd_mnist_mlp",
    "svd_network",
]
