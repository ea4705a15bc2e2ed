r"""The base of the Bayesian classifiers whose layers hold global latent variables: L0 gates
(:class:`~l0bayes.nn.layers.L0Network`) and Sparse VD weights
(:class:`~l0bayes.baselines.sparse_vd.SVDNetwork`).

Both are one Pyro program: every latent layer draws its variables :math:`w_\ell` once per
minibatch (global, outside the data plate), then the labels of the minibatch of :math:`B` of
the :math:`N` examples are categorical,

.. math::

    w_\ell \sim p(w_\ell), \qquad
    y_i \mid x_i, w \sim \text{Categorical}(\text{logits} = f(x_i; w)), \quad i \in \text{batch},

in ``pyro.plate("data", N, subsample=...)``, which scales the likelihood by :math:`N/B`. The
closed-form negative ELBO for one draw from the guide (:meth:`BayesianClassifier.
differentiable_loss`) is

.. math::

    -\text{ELBO} = \frac{N}{B}\sum_{i \in \text{batch}} -\log p(y_i \mid x_i, w)
        + \beta\sum_\ell \mathrm{KL}(q(w_\ell)\,\|\,p(w_\ell))
        - \log p(\theta_\text{point}),

with :math:`\beta = 1` the ELBO, and :math:`\log p(\theta_\text{point}) = -\tfrac{\lambda_2}{2}
\sum_j\theta_j^2` the Gaussian prior of the point-estimated parameters outside the latent layers
(:attr:`BayesianClassifier.ungated_precision` :math:`\lambda_2`; 0, the default, leaves them
flat).

A latent layer has ``model(batch_size)``, ``guide(batch_size)`` and ``sample(batch_size)``
(each returns a draw), ``kl_divergence()`` and ``forward_with(x, draw)`` (its map under a
draw); ``forward(x)`` is its test-time map.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.nn import PyroModule
from pyro.nn.module import pyro_method, to_pyro_module_
from torch import nn

#: ``{layer: draw}``: one draw of each latent layer's variables (a layer may be left out where
#: it draws its own, e.g. by the local reparameterisation).
Draws = dict[nn.Module, Any]


class BayesianClassifier(PyroModule):
    """Base class of a classifier with latent layers: ``model``, ``guide``, the closed-form
    :meth:`differentiable_loss`, draws and the deterministic ``forward`` (module docstring).

    Subclasses set :attr:`layer_type` and define :meth:`_run`, the network's logits given one
    draw per latent layer (or ``None`` for the test-time network); :meth:`_loss_draws` (and,
    to share work between the draws and the KL, :meth:`_loss_posteriors`) say how
    :meth:`differentiable_loss` draws.
    """

    #: The class of the latent layers (every submodule of it is one); set by each subclass.
    layer_type: ClassVar[type[nn.Module]]
    #: :math:`\lambda_2`, the precision of the Gaussian prior of the parameters outside the
    #: latent layers (0: flat).
    ungated_precision: float = 0.0

    def latent_layers(self) -> list[nn.Module]:
        """The latent layers in definition order (found once: the structure is fixed)."""
        cache = self.__dict__.get("_latent_cache")
        if cache is None:
            found = [m for m in self.modules() if isinstance(m, self.layer_type)]
            cache = self.__dict__["_latent_cache"] = found
        return cache

    def _run(self, x: torch.Tensor, draws: Draws | None) -> torch.Tensor:
        """Logits given ``draws`` (``None``: the test-time network)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ point estimates
    def ungated_parameters(self) -> list[nn.Parameter]:
        """The parameters that belong to no latent layer."""
        latent = {id(p) for layer in self.latent_layers() for p in layer.parameters()}
        return [p for p in self.parameters() if id(p) not in latent]

    def ungated_log_prior(self) -> torch.Tensor:
        r""":math:`-\tfrac{\lambda_2}{2}\sum_j \theta_j^2` over :meth:`ungated_parameters`,
        the log density of their Gaussian prior up to its constant."""
        squares = [p.square().sum() for p in self.ungated_parameters()]
        if not squares:
            return torch.zeros(())
        return -0.5 * self.ungated_precision * torch.stack(squares).sum()

    # ------------------------------------------------------------------ model and guide
    @staticmethod
    def _num_data(x: torch.Tensor, num_data: int | None) -> int:
        """:math:`N`: ``num_data``, or the batch size when not given; never below it."""
        batch = x.shape[0]
        num_data = batch if num_data is None else num_data
        if num_data < batch:
            raise ValueError(f"num_data ({num_data}) is smaller than the batch ({batch})")
        return num_data

    def _draws(self, method: str, batch_size: int) -> Draws:
        """Every latent layer's ``model``, ``guide`` or ``sample`` draw, in definition order."""
        return {layer: getattr(layer, method)(batch_size) for layer in self.latent_layers()}

    @pyro_method
    def model(
        self, x: torch.Tensor, y: torch.Tensor | None = None, num_data: int | None = None
    ) -> torch.Tensor:
        """The latent layers' priors, then ``y ~ Categorical(logits=net(x))`` for the minibatch
        ``x`` in ``pyro.plate("data", num_data, subsample=...)``.

        :param x: the minibatch's inputs, ``(B, ...)``.
        :param y: the labels, ``(B,)``; ``None`` samples them.
        :param num_data: :math:`N`, the size of the data set (default: :math:`B`).
        """
        num_data = self._num_data(x, num_data)
        logits = self._run(x, self._draws("model", x.shape[0]))
        if self.ungated_precision:
            pyro.factor("ungated_prior", self.ungated_log_prior())
        subsample = torch.arange(x.shape[0], device=x.device)
        with pyro.plate("data", num_data, subsample=subsample):
            pyro.sample("obs", dist.Categorical(logits=logits), obs=y)
        return logits

    @pyro_method
    def guide(
        self, x: torch.Tensor, y: torch.Tensor | None = None, num_data: int | None = None
    ) -> None:
        """Every latent layer's guide (arguments as :meth:`model`)."""
        self._draws("guide", x.shape[0])

    # ------------------------------------------------------------------ the loss
    def kl_divergence(self, posteriors: dict | None = None) -> torch.Tensor:
        r""":math:`\sum_\ell \mathrm{KL}(q(w_\ell)\,\|\,p(w_\ell))`, the latent layers'
        closed-form KL terms.

        :param posteriors: ``{layer: q}`` from :meth:`_loss_posteriors`, passed on to each
            layer's ``kl_divergence`` (``None``: the layers build their own).
        """
        if posteriors is None:
            return sum(layer.kl_divergence() for layer in self.latent_layers())
        return sum(layer.kl_divergence(q) for layer, q in posteriors.items())

    def _loss_posteriors(self) -> dict | None:
        """What :meth:`_loss_draws` and :meth:`kl_divergence` share (``None``: nothing)."""
        return None

    def _loss_draws(self, batch_size: int, posteriors: dict | None) -> Draws:
        """The draws of :meth:`differentiable_loss`: the guide's random numbers in the guide's
        order, without Pyro's bookkeeping."""
        return self._draws("sample", batch_size)

    def differentiable_loss(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        num_data: int | None = None,
        kl_scale: float = 1.0,
    ) -> torch.Tensor:
        r"""The negative ELBO for one draw from the guide (module docstring),

        .. math::

            \frac{N}{B}\sum_{i \in \text{batch}} -\log p(y_i \mid x_i, w)
            + \beta\sum_\ell \mathrm{KL}_\ell - \log p(\theta_\text{point}),

        computed from the layers rather than by tracing :meth:`model` and :meth:`guide`. Divide
        by ``num_data`` for the per-data-point objective.

        :param x: the minibatch's inputs, ``(B, ...)``.
        :param y: its labels, ``(B,)``.
        :param num_data: :math:`N` (default: :math:`B`).
        :param kl_scale: :math:`\beta`, the weight of the KL: 1 is the ELBO; smaller values
            during a warm-up.
        """
        num_data = self._num_data(x, num_data)
        batch = x.shape[0]
        posteriors = self._loss_posteriors()
        logits = self._run(x, self._loss_draws(batch, posteriors))
        nll = F.cross_entropy(logits, y, reduction="sum") * (num_data / batch)
        kl = self.kl_divergence(posteriors)
        loss = nll + (kl if kl_scale == 1.0 else kl_scale * kl)
        return loss - self.ungated_log_prior() if self.ungated_precision else loss

    # ------------------------------------------------------------------ forward
    @pyro_method
    def sample_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits with every latent layer drawn from the guide (one draw per call)."""
        return self._run(x, self._draws("sample", x.shape[0]))

    def forward_with(self, x: torch.Tensor, draws: Draws) -> torch.Tensor:
        """Logits with given draws of the latent layers (e.g. from their ``sample``)."""
        return self._run(x, draws)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the test-time network (no noise)."""
        return self._run(x, None)


class SequentialClassifier(BayesianClassifier):
    """A chain of layers (latent or not) as a :class:`BayesianClassifier`; ungated modules with
    parameters become :class:`PyroModule` s (point estimates).

    :param layers: the chain, applied in order.
    """

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__()
        if not layers:
            raise ValueError(f"{type(self).__name__} needs at least one layer")
        for layer in layers:
            if not isinstance(layer, PyroModule) and any(True for _ in layer.parameters()):
                to_pyro_module_(layer)
        self.layers = PyroModule[nn.ModuleList](layers)

    def _run(self, x: torch.Tensor, draws: Draws | None) -> torch.Tensor:
        for layer in self.layers:
            if draws is None or not isinstance(layer, self.layer_type):
                x = layer(x)
            else:
                x = layer.forward_with(x, draws.get(layer))
        return x


__all__ = ["BayesianClassifier", "Draws", "SequentialClassifier"]
