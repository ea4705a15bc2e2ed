r"""``AutoL0Guide``: an autoguide for models with :func:`~l0bayes.gates.gated` sites.

Every gate site gets the paper's hard concrete guide,
:math:`q(z_g) = \text{HardConcrete}(\log\alpha_g;\ \beta = 2/3,\ (\gamma, \zeta) = (-0.1, 1.1))`;
every gated value site gets :math:`q(\theta_k \mid z_{g(k)} \ne 0)`, a Gaussian in the slab's
unconstrained space (``values="normal"``) or a point mass (``values="delta"``), entering the
ELBO weighted by :math:`P_q(z_{g(k)} \ne 0)` (an excluded value's guide is the spike, equal to
its prior, and costs nothing). Every other latent site gets ``AutoNormal`` or ``AutoDelta``.

With ``pyro.infer.TraceMeanField_ELBO`` the gate KLs are analytic (the registered
``KL(HardConcrete, SpikeSlabGate)``), and so are the value KLs whenever torch knows
``KL(q(θ) ‖ slab)`` (a Normal or point-mass guide against a Normal or
:class:`~l0bayes.distributions.GaussianSlab` slab); other sites fall back to Monte Carlo.
"""

from __future__ import annotations

import math
import warnings
from contextlib import ExitStack

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.distributions.torch_distribution import MaskedDistribution
from pyro.infer.autoguide import AutoDelta, AutoGuide, AutoGuideList, AutoNormal
from pyro.infer.autoguide.utils import deep_setattr
from pyro.nn.module import PyroParam
from torch.distributions import Distribution, Independent, biject_to
from torch.distributions.transforms import ComposeTransform

from l0bayes.device import torch_threads
from l0bayes.distributions import (
    DEFAULT_STRETCH,
    DEFAULT_TEMPERATURE,
    HardConcrete,
    check_gate_hyperparameters,
    initial_log_alpha,
)
from l0bayes.gates.pairing import GatedValue, GuideGate, begin_draws, register_draw
from l0bayes.gates.posterior import GatePosterior, posterior_inclusion_probs
from l0bayes.gates.primitive import ROLE_KEY, is_gated_site, is_observed_data
from l0bayes.validation import check_choice, check_count, check_positive

VALUE_GUIDES = ("normal", "delta")
#: The start of Pyro's order-based mean-field warning (harmless for this guide: its parts
#: draw independently).
MEAN_FIELD_ORDER_WARNING = "Failed to verify mean field restriction"
#: The submodule of :class:`GateGuide` holding one flat parameter per ``gated`` name.
PACKED = "packed"


def hard_concrete_quantile(q: HardConcrete, level: torch.Tensor | float) -> torch.Tensor:
    r"""The quantile of a hard concrete gate: inverting the CDF of :math:`s`,
    :math:`z_q = \min(1, \max(0, \sigma((\mathrm{logit}\,q + \log\alpha)/\beta)(\zeta-\gamma)
    + \gamma))`.

    :param q: the gate distribution.
    :param level: the probability level in (0, 1).
    """
    level = torch.as_tensor(level, dtype=q.log_alpha.dtype, device=q.log_alpha.device)
    low, high = q.stretch
    s = torch.sigmoid((torch.logit(level) + q.log_alpha) / q.temperature)
    return (s * (high - low) + low).clamp(0.0, 1.0)


def _value_support(fn: Distribution):
    """The univariate support of a gated value site's slab (wrappers removed)."""
    while isinstance(fn, (Independent, MaskedDistribution)):
        fn = fn.base_dist
    return fn.support


class GateGuide(AutoGuide):
    r"""The part of :class:`AutoL0Guide` that guides the sites declared by ``gated``.

    **Parameters.** Each ``gated`` name keeps its variational parameters in *one* flat tensor
    (``packed.<name>``): the gates' :math:`\log\alpha`, the values' locations and, for
    ``values="normal"``, their log scales. The ELBO and Adam's steps are the same as with a
    tensor per role (Adam is elementwise; a test checks 25 steps to rel 1e-12), but
    ``pyro.optim`` keeps one optimiser per tensor, each with a fixed cost per step
    (``bench/optim_param_cost.py`` measures it). Read or set a role by name:
    ``guide.log_alpha.beta``, ``guide.loc.beta``, ``guide.scale.beta`` (or
    :meth:`unpacked` and :meth:`assign`).

    :param model: the Pyro model.
    :param values: ``"normal"`` or ``"delta"``.
    :param init_log_alpha: initial :math:`\log\alpha` of every gate.
    :param init_scale: initial scale of the Gaussian value guides.
    """

    def __init__(
        self,
        model,
        values="normal",
        init_log_alpha=0.0,
        init_scale=0.1,
        temperature=DEFAULT_TEMPERATURE,
        stretch=DEFAULT_STRETCH,
    ) -> None:
        super().__init__(model)
        self.values = values
        self.init_log_alpha = float(init_log_alpha)
        self.init_scale = float(init_scale)
        self.temperature = float(temperature)
        self.stretch = (float(stretch[0]), float(stretch[1]))
        self._gates: dict[str, dict] = {}
        self._fixed: dict[str, torch.Tensor] = {}
        self._holders: dict[tuple[str, str], tuple] = {}
        #: The model's observed sites when the guide was set up (the data it was fitted to).
        self.observed_sites: list[str] = []

    def _setup_prototype(self, *args, **kwargs) -> None:
        super()._setup_prototype(*args, **kwargs)
        full = poutine.block(poutine.trace(self.model).get_trace)(*args, **kwargs)
        observed = [
            (name, {f.name for f in site["cond_indep_stack"] if f.vectorized}, site["fn"])
            for name, site in full.nodes.items()
            if is_observed_data(site)
        ]
        self.observed_sites = [name for name, _, _ in observed]
        self._gates = {}
        self._fixed = {}
        self._holders = {}
        starts: dict[str, dict[str, torch.Tensor]] = {}
        for site_name, site in full.nodes.items():
            if site["type"] != "sample" or not is_gated_site(site):
                continue
            info = site["infer"][ROLE_KEY]
            if info["role"] == "enumerated":
                raise ValueError("AutoL0Guide cannot guide a model run inside enumerated_gates()")
            entry = self._gates.setdefault(info["name"], {"groups": info["groups"]})
            start = starts.setdefault(info["name"], {})
            frames = [f for f in site["cond_indep_stack"] if f.vectorized]
            entry[info["role"]] = {
                "site": site_name,
                "frames": frames,
                "event_dim": site["fn"].event_dim,
            }
            if info["role"] == "gate" and site["is_observed"]:
                # a conditioned gate: the values are guided given it, the gate is not guided
                value = torch.as_tensor(site["value"], dtype=site["fn"].mean.dtype)
                self._fixed[info["name"]] = value.expand(site["fn"].shape()).detach().clone()
            elif info["role"] == "gate":
                _check_not_per_observation(site_name, {f.name for f in frames}, observed)
                init = initial_log_alpha(self.init_log_alpha, site["value"].shape, site["value"])
                start["log_alpha"] = init
            else:
                entry["value"]["transform"] = biject_to(_value_support(site["fn"]))
                start["loc"] = torch.zeros_like(site["value"]).detach()  # 0, as AutoNormal
                if self.values == "normal":  # stored as log scale, as PyroParam(positive)
                    start["scale"] = torch.full_like(start["loc"], math.log(self.init_scale))
        for name, start in starts.items():
            self._register_packed(name, start)

    def _register_packed(self, name: str, start: dict[str, torch.Tensor]) -> None:
        """Make ``name``'s one flat parameter from its roles' initial values ``start``, under
        the attribute :func:`packed_attribute` of the ``packed`` submodule."""
        entry = self._gates[name]
        entry["layout"] = [(role, t.shape) for role, t in start.items()]
        entry["sizes"] = [t.numel() for t in start.values()]
        attribute = packed_attribute(name)
        clash = [o for o in self._gates if o != name and packed_attribute(o) == attribute]
        if clash:
            raise ValueError(
                f"the gated names {name!r} and {clash[0]!r} differ only in '.' against '/'; "
                "rename one of them"
            )
        flat = torch.cat([t.reshape(-1) for t in start.values()])
        deep_setattr(self, PACKED + "." + attribute, PyroParam(flat))
        stored = self._packed(name)
        if stored.shape != flat.shape:  # Pyro's parameter store keeps values by name
            raise ValueError(
                f"Pyro's parameter store already holds {tuple(stored.shape)} values for "
                f"the gated name {name!r} ({flat.numel()} expected), from another guide of "
                "this model; call pyro.clear_param_store() before making this one"
            )

    # ------------------------------------------------------------------ distributions
    def _packed(self, name: str, unconstrained: bool = False) -> torch.Tensor:
        """The flat parameter of ``name``, with the module that holds it looked up once (a
        guide reads every parameter at every step)."""
        holder = self._holders.get(name)
        if holder is None:
            holder = self._holders[name] = (getattr(self, PACKED), packed_attribute(name))
        module, attribute = holder
        return getattr(module, attribute + "_unconstrained" if unconstrained else attribute)

    def unpacked(self, name: str) -> dict[str, torch.Tensor]:
        r"""The variational parameters of the ``gated`` name ``name``, read from its one flat
        parameter tensor (one optimiser state per name, not one per role):
        ``"log_alpha"`` (the gates' :math:`\log\alpha`, absent for a conditioned gate),
        ``"loc"`` and, for ``values="normal"``, ``"scale"`` (stored as :math:`\log` scale).
        Also readable and writable as ``guide.log_alpha.<name>``, ``guide.loc.<name>``,
        ``guide.scale.<name>``.

        :param name: the name given to ``gated``.
        """
        out = _split(self._entry(name), self._packed(name))
        if "scale" in out:
            out["scale"] = out["scale"].exp()
        return out

    def packed_parameter(self, name: str) -> torch.Tensor:
        """The flat, unconstrained parameter tensor of ``name`` (the leaf that the optimiser
        updates): :meth:`split_packed` splits it, or its gradient, by role.

        :param name: the name given to ``gated``.
        """
        self._entry(name)
        return self._packed(name, unconstrained=True)

    def split_packed(self, name: str, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views of a flat tensor laid out as ``name``'s parameters (the parameter itself, its
        gradient, or an optimiser's state), by role, unconstrained (``"scale"`` holds log
        scales).

        :param name: the name given to ``gated``.
        :param flat: a 1-D tensor with as many elements as ``name``'s parameters.
        """
        return _split(self._entry(name), flat)

    def _entry(self, name: str) -> dict:
        entry = self._gates.get(name)
        if entry is None:
            self._check_ready()
            raise KeyError(f"no gated site named {name!r}; the gated names: {list(self._gates)}")
        return entry

    def assign(self, name: str, role: str, value: torch.Tensor) -> None:
        """Set the ``role`` (``"log_alpha"``, ``"loc"`` or ``"scale"``) parameters of
        ``name`` to ``value`` in place (a positive ``scale`` is stored as its log).

        :param name: the name given to ``gated``.
        :param role: which parameters.
        :param value: the new values, broadcastable to their shape.
        """
        with torch.no_grad():
            pieces = _split(self._entry(name), self._packed(name, unconstrained=True))
            if role not in pieces:
                raise KeyError(
                    f"the gated name {name!r} has no {role!r} parameters (it has {list(pieces)})"
                )
            value = torch.as_tensor(value)
            if role == "scale":
                if not bool((value > 0).all()):
                    raise ValueError(f"scale must be positive, got {value}")
                value = value.log()
            pieces[role].copy_(value.expand(pieces[role].shape))

    @property
    def gated_names(self) -> list[str]:
        """The names given to ``gated`` in the model, in the order of the model."""
        return list(self._gates)

    @property
    def log_alpha(self) -> RoleView:
        r"""The gates' :math:`\log\alpha` by name: ``guide.log_alpha.beta`` (read, or set)."""
        return RoleView(self, "log_alpha")

    @property
    def loc(self) -> RoleView:
        """The value guides' locations by name (unconstrained space), read or set."""
        return RoleView(self, "loc")

    @property
    def scale(self) -> RoleView:
        """The value guides' scales by name (unconstrained space), read or set."""
        return RoleView(self, "scale")

    def _gate_dist(self, name: str, params: dict | None = None) -> HardConcrete:
        params = self.unpacked(name) if params is None else params
        return GuideGate(params["log_alpha"], self.temperature, self.stretch)

    def _value_base(self, params: dict, transform) -> Distribution:
        loc = params["loc"]
        if self.values == "delta":
            return dist.Delta(transform(loc))
        base = dist.Normal(loc, params["scale"])
        if _is_identity(transform):  # real support: keeps KL(Normal, slab) analytic
            return base
        return dist.TransformedDistribution(base, [transform])

    def forward(self, *args, **kwargs) -> dict:
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        master = self.master and self.master()
        # inside AutoL0Guide the plates are its own, made once per call of the whole guide
        plates = master.plates if master is not None else self._create_plates(*args, **kwargs)
        begin_draws()
        result = {}
        for name, entry in self._gates.items():
            gate, value = entry["gate"], entry["value"]
            with ExitStack() as stack:
                for frame in gate["frames"]:  # usually none: gates are global
                    stack.enter_context(plates[frame.name])
                params = self.unpacked(name)
                if name in self._fixed:  # conditioned: z is data, P(z != 0) is 0 or 1
                    z = self._fixed[name]
                    weight = (z != 0).to(z.dtype)
                else:
                    q_gate = self._gate_dist(name, params)
                    z = pyro.sample(gate["site"], q_gate.to_event(gate["event_dim"]))
                    register_draw(z, q_gate)
                    weight = q_gate.prob_nonzero
                    result[gate["site"]] = z
                ids = entry["groups"]
                if ids is not None:
                    z, weight = z.index_select(-1, ids), weight.index_select(-1, ids)
                q_theta = GatedValue(self._value_base(params, value["transform"]), weight, z != 0)
                theta = pyro.sample(value["site"], q_theta.to_event(value["event_dim"]))
                register_draw(theta, q_theta)
                result[value["site"]] = theta
        return result

    # ------------------------------------------------------------------ summaries
    def _check_ready(self) -> None:
        if self.prototype_trace is None:
            raise ValueError("the guide has not been run yet: fit it (or call it once) first")

    def inclusion_probs(self) -> dict[str, torch.Tensor]:
        r""":math:`P_q(z_g \ne 0)` per gate, keyed by the ``gated`` name (0 or 1 for a
        conditioned gate)."""
        self._check_ready()
        return {
            name: (self._fixed[name] != 0).to(self._fixed[name].dtype)
            if name in self._fixed
            else self._gate_dist(name).prob_nonzero.detach()
            for name in self._gates
        }

    def sample_structures(self, num_samples: int) -> dict[str, torch.Tensor]:
        """Which gates are open in ``num_samples`` draws of the guide: bool ``(n, gates)``."""
        self._check_ready()
        n = check_count("num_samples", num_samples)
        with torch.no_grad():
            return {
                name: (
                    self._fixed[name].expand((n,) + self._fixed[name].shape)
                    if name in self._fixed
                    else self._gate_dist(name).sample((n,))
                )
                .ne(0)
                .reshape(n, -1)
                for name in self._gates
            }

    def quantiles(self, quantiles, *args, **kwargs) -> dict[str, torch.Tensor]:
        r"""Quantiles of every gate (closed form, :func:`hard_concrete_quantile`) and of every
        value's :math:`q(\theta \mid z \ne 0)`, shaped ``(len(quantiles),) + site shape``."""
        self._check_ready()
        out = {}
        for name, entry in self._gates.items():
            fixed = self._fixed.get(name)
            q_gate = None if fixed is not None else self._gate_dist(name)
            gate_q, value_q = [], []
            transform = entry["value"]["transform"]
            params = self.unpacked(name)
            loc = params["loc"]
            for level in quantiles:
                check_positive("quantile", level)
                if level >= 1:
                    raise ValueError(f"quantiles must lie in (0, 1), got {level}")
                gate_q.append(fixed if q_gate is None else hard_concrete_quantile(q_gate, level))
                if self.values == "delta":
                    value_q.append(transform(loc))
                else:
                    scale = params["scale"]
                    normal = torch.distributions.Normal(loc, scale)
                    value_q.append(transform(normal.icdf(torch.as_tensor(level).to(loc))))
            out[entry["gate"]["site"]] = torch.stack(gate_q).detach()
            out[entry["value"]["site"]] = torch.stack(value_q).detach()
        return out

    def median(self, *args, **kwargs) -> dict[str, torch.Tensor]:
        """The medians of the gates and of every value's ``q(θ | z ≠ 0)``."""
        return {k: v[0] for k, v in self.quantiles([0.5]).items()}


class RoleView:
    """One role of a :class:`GateGuide`'s parameters, by ``gated`` name:
    ``guide.log_alpha.beta`` reads :meth:`GateGuide.unpacked` ``("beta")["log_alpha"]`` and
    ``guide.log_alpha.beta = t`` calls :meth:`GateGuide.assign`.

    :param guide: the guide.
    :param role: ``"log_alpha"``, ``"loc"`` or ``"scale"``.
    """

    def __init__(self, guide: GateGuide, role: str) -> None:
        object.__setattr__(self, "_guide", guide)
        object.__setattr__(self, "_role", role)

    def __getattr__(self, name: str) -> torch.Tensor:
        try:
            return self._guide.unpacked(name)[self._role]
        except KeyError as err:
            raise AttributeError(f"no {self._role} parameters for the gated name {name!r}") from err

    def __setattr__(self, name: str, value: torch.Tensor) -> None:
        self._guide.assign(name, self._role, value)

    def __dir__(self) -> list[str]:
        return self._guide.gated_names


def _split(entry: dict, flat: torch.Tensor) -> dict[str, torch.Tensor]:
    """Views of a flat tensor by role, shaped by a gated name's ``layout`` and ``sizes``."""
    pieces = flat.split(entry["sizes"])
    layout = zip(entry["layout"], pieces, strict=True)
    return {role: piece.view(shape) for (role, shape), piece in layout}


def packed_attribute(name: str) -> str:
    """The attribute of :class:`GateGuide`'s ``packed`` submodule that holds the ``gated``
    name ``name``'s parameters: the name with every ``.`` written ``/`` (torch refuses dots in
    a parameter's name, and nesting by dots would make ``"a"`` and ``"a.b"`` collide).

    :param name: the name given to ``gated``.
    """
    return name.replace(".", "/")


def _check_not_per_observation(site: str, plates: set[str], observed: list) -> None:
    """Refuse a gate site with one gate per observation: one that sits in every plate of an
    observed site whose plate cells hold one observation each (no event dimension with more
    than one element; a gate per group of an event dimension's observations is fine)."""
    for obs, obs_plates, fn in observed:
        if plates and obs_plates <= plates and math.prod(fn.event_shape) <= 1:
            raise ValueError(
                f"the gate site {site!r} sits in every plate of the observed site {obs!r} (one "
                "gate per observation): gates are global latent variables; call gated() "
                "outside the data plate"
            )


def _is_identity(transform) -> bool:
    """Whether ``biject_to(support)`` is the identity (a real support)."""
    return isinstance(transform, ComposeTransform) and not transform.parts


class AutoL0Guide(AutoGuideList):
    r"""Autoguide for models that declare gates with :func:`~l0bayes.gates.gated`.

    Gate sites: :math:`q(z) = \text{HardConcrete}(\log\alpha)` with learnable
    :math:`\log\alpha` (temperature 2/3, stretch (−0.1, 1.1)). Gated value sites:
    :math:`q(\theta \mid z \ne 0)` Gaussian (``values="normal"``, in the slab's unconstrained
    space) or a point mass (``"delta"``). Every other latent site: ``AutoNormal`` or
    ``AutoDelta`` on the model with the gated sites blocked.

    The guide is mean-field by construction (its parts draw independently), but Pyro's
    ``TraceMeanField_ELBO`` checks that only by site order, and warns "Failed to verify mean
    field restriction" when the model samples other latents after a ``gated`` call (this
    guide draws them first). That warning is harmless here; :func:`fit_autol0` silences it
    (``warnings.filterwarnings("ignore", message=MEAN_FIELD_ORDER_WARNING)`` in a loop of
    your own).

    The gated sites' parameters are one tensor per ``gated`` name; read or set them as
    ``guide.gate_guide.log_alpha.<name>``, ``.loc.<name>``, ``.scale.<name>`` (see
    :class:`GateGuide`).

    :param model: a Pyro model calling ``gated``.
    :param values: ``"normal"`` or ``"delta"``.
    :param init_log_alpha: initial :math:`\log\alpha` of every gate (0: :math:`P(z \ne 0)
        \approx 0.83`).
    :param init_scale: initial scale of Gaussian guides.
    :param temperature: the gates' :math:`\beta`.
    :param stretch: the gates' :math:`(\gamma, \zeta)`.
    """

    def __init__(
        self,
        model,
        values: str = "normal",
        *,
        init_log_alpha: float = 0.0,
        init_scale: float = 0.1,
        temperature: float = DEFAULT_TEMPERATURE,
        stretch: tuple[float, float] = DEFAULT_STRETCH,
    ) -> None:
        check_choice("values", values, VALUE_GUIDES)
        check_positive("init_scale", init_scale)
        check_gate_hyperparameters(temperature, stretch)
        if not math.isfinite(float(init_log_alpha)):
            raise ValueError(f"init_log_alpha must be finite, got {init_log_alpha!r}")
        super().__init__(model)
        # the other latents first: hyperparameters (a slab's scale) usually precede the gates,
        # and TraceMeanField_ELBO's validation warns when guide and model orders differ
        rest = poutine.block(model, hide_fn=is_gated_site)
        if values == "normal":
            self.append(AutoNormal(rest, init_scale=init_scale))
        else:
            self.append(AutoDelta(rest))
        self.append(GateGuide(model, values, init_log_alpha, init_scale, temperature, stretch))

    def forward(self, *args, **kwargs) -> dict:
        """Run both parts (``AutoGuideList.forward``, each part's ``forward`` called inside
        this module's call, whose parameter context the parts share)."""
        if self.prototype_trace is None:
            self._setup_prototype(*args, **kwargs)
        self._create_plates(*args, **kwargs)
        result = {}
        for part in self:
            result.update(part.forward(*args, **kwargs))
        return result

    @property
    def observed_sites(self) -> list[str]:
        """The model's observed sites (``gated``'s gates aside) when the guide was set up."""
        return self.gate_guide.observed_sites

    @property
    def gate_guide(self) -> GateGuide:
        """The part that guides the gated sites."""
        return self[1]

    def inclusion_probs(self) -> dict[str, torch.Tensor]:
        r""":math:`P_q(z_g \ne 0)` per gate, keyed by the ``gated`` name."""
        return self.gate_guide.inclusion_probs()

    def sample_structures(self, num_samples: int) -> dict[str, torch.Tensor]:
        """Bool ``(num_samples, gates)`` per ``gated`` name: which gates are open in draws of
        the guide."""
        return self.gate_guide.sample_structures(num_samples)

    def posterior_inclusion_probs(self, model, *args, **kwargs) -> GatePosterior:
        r"""The posterior over the model's gate structures, by Laplace evidences over the
        model space (enumerated up to 16 gates, chains beyond):
        :func:`l0bayes.gates.posterior.posterior_inclusion_probs`, whose keyword options
        (``method``, ``num_chains``, ``num_iter``, ``seed``, ``progress``) it takes; other
        keywords go to the model. Read its ``inclusion_probs`` rather than the guide's own
        :meth:`inclusion_probs` unless ``pip_diagnostics["guide_gap"]`` is small.

        :param model: the model this guide was fitted to.
        :param args: the model's positional arguments (the data).
        """
        return posterior_inclusion_probs(model, self, *args, **kwargs)


def fit_autol0(
    model,
    *args,
    num_steps: int,
    lr: float = 0.05,
    seed: int = 0,
    values: str = "normal",
    init_log_alpha: float = 0.0,
    num_threads: int | None = None,
    **kwargs,
) -> AutoL0Guide:
    r"""Fit an :class:`AutoL0Guide` to ``model(*args, **kwargs)`` by SVI and return it.

    Maximises the ELBO with :class:`~pyro.infer.TraceMeanField_ELBO` (the gates' KLs in
    closed form) and Adam(``lr``) for ``num_steps`` steps, from a cleared parameter store and
    ``pyro.set_rng_seed(seed)``. The first step runs with Pyro's validation on (shapes and
    supports are checked once), the rest without it. Torch uses ``num_threads`` threads
    (default: :func:`l0bayes.device.default_threads`, one unless configured: a small model
    only pays for more).

    :param model: a Pyro model that calls :func:`~l0bayes.gates.gated`.
    :param args: the model's positional arguments.
    :param num_steps: SVI steps.
    :param lr: Adam's learning rate.
    :param seed: the random seed.
    :param values: the guide of the gated values and other latents (``"normal"``, ``"delta"``).
    :param init_log_alpha: initial :math:`\log\alpha` of every gate.
    :param num_threads: torch's CPU threads during the fit.
    :param kwargs: the model's keyword arguments.
    :returns: the fitted guide (its parameters live in Pyro's parameter store).
    """
    check_count("num_steps", num_steps)
    check_positive("lr", lr)
    pyro.set_rng_seed(seed)
    pyro.clear_param_store()
    guide = AutoL0Guide(model, values=values, init_log_alpha=init_log_alpha)
    optim = pyro.optim.Adam({"lr": lr})
    svi = pyro.infer.SVI(model, guide, optim, pyro.infer.TraceMeanField_ELBO())
    with torch_threads(num_threads):
        with warnings.catch_warnings():  # the guide's parts are independent: mean field holds
            warnings.filterwarnings("ignore", message=MEAN_FIELD_ORDER_WARNING)
            svi.step(*args, **kwargs)
        with pyro.validation_enabled(False):
            for _ in range(num_steps - 1):
                svi.step(*args, **kwargs)
    return guide


__all__ = [
    "fit_autol0",
    "AutoL0Guide",
    "GateGuide",
    "MEAN_FIELD_ORDER_WARNING",
    "PACKED",
    "RoleView",
    "packed_attribute",
    "VALUE_GUIDES",
    "hard_concrete_quantile",
]
