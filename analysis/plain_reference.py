"""The paper's L0 MLP in plain PyTorch, many independent seeds in one process: a reference
for the reproduction table that shares no model code with l0bayes.

Every replicate is the official code's ``L0MLP`` (784-300-100-10, input-neuron gates), written
from ``shared/PAPER.md``: per minibatch one hard concrete gate vector per layer,

.. math::

    z = \\min(1, \\max(0, \\sigma((\\log u - \\log(1-u) + \\log\\alpha)/\\beta)(\\zeta-\\gamma)
        + \\gamma)), \\quad u \\sim U(0, 1),

and the mean objective

.. math::

    \\frac1B\\sum_{i} \\mathrm{CE}_i + \\frac1N\\Big[\\sum_j P(z_j \\ne 0)
    \\big(\\lambda S_j + \\tfrac{\\lambda_2}{2}\\lVert\\theta_j\\rVert^2\\big)
    + \\tfrac{\\lambda_2}{2}\\lVert b\\rVert^2\\Big],

with :math:`P(z_j \\ne 0) = \\sigma(\\log\\alpha_j - \\beta\\log(-\\gamma/\\zeta))`, the code cost
:math:`\\lambda` per weight (:math:`S_j` = the gate's fan-out), :math:`\\lambda_2 = N \\cdot`
``--weight-decay`` (the official MLP's scaling; the ``-unscaled`` variants take the official
LeNet-5 script's :math:`\\lambda_2` = ``--weight-decay``) and, as the official layers, an
ungated decay on the biases (the ``library`` variants drop it, as l0bayes's layers do).
Adam (lr 1e-3), the clamp of :math:`\\log\\alpha` to [log 0.01, log 100] after every step,
and a bias-corrected EMA of all parameters (β = 0.999; l0bayes's ``ParameterEMA``, the official
rule) used for evaluation with the paper's Eq. 13 gates
:math:`\\hat z = \\min(1, \\max(0, \\sigma(\\log\\alpha)(\\zeta-\\gamma)+\\gamma))`.

The replicates are stacked along a leading dimension and trained with batched matrix products;
Adam and the EMA act elementwise, so this is exactly ``--replicates`` separate trainings per
entry of ``--variants`` (``VARIANTS``: where the paper is silent, the official code's choices or
l0bayes's), each with its own initialisation, minibatch order and gate draws. Writes into ``--out``:
``config.json``, ``history.csv`` (one row per epoch and replicate: test error, units entering
each layer, compacted multiply–accumulates), ``results.csv`` (last epoch and best over epochs
per replicate) and ``summary.md`` (mean ± sd over replicates), rewritten after every epoch so
that an interrupted run keeps what it finished.

    .venv/bin/python analysis/plain_reference.py --data-dir ../shared/data --out runs/plain-ref
    .venv/bin/python analysis/plain_reference.py --dataset synthetic --epochs 2 --out /tmp/p
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from l0bayes.data.files import load_mnist
from l0bayes.data.images import synthetic_images
from l0bayes.training.averaging import ParameterEMA
from l0bayes.viz.tables import write_csv

BETA, GAMMA, ZETA = 2.0 / 3.0, -0.1, 1.1
#: :math:`\beta \log(-\gamma/\zeta)`: :math:`P(z \ne 0) = \sigma(\log\alpha - \text{this})`.
LOG_RATIO = BETA * math.log(-GAMMA / ZETA)
SIZES = (784, 300, 100, 10)
DROP_RATES = (0.2, 0.5, 0.5)


@dataclass(frozen=True)
class Variant:
    """How a replicate departs from the paper's text where the paper is silent."""

    init: str  # "he": N(0, 2/fan-in) weights (the official layers); "uniform": torch's bound
    scaled: bool  # slab precision N · weight decay (official MLP) or the decay itself
    bias_decay: bool  # the official layers' ungated L2 on biases (l0bayes's have none)


#: The official code's MLP, l0bayes's defaults, and each with the unscaled decay.
VARIANTS = {
    "official": Variant("he", True, True),
    "library": Variant("uniform", True, False),
    "official-unscaled": Variant("he", False, True),
    "library-unscaled": Variant("uniform", False, False),
}


@dataclass(frozen=True)
class Settings:
    """One study's hyper-parameters (the paper's MNIST MLP by default): ``replicates``
    networks for each of ``variants``, trained together."""

    variants: tuple[str, ...] = ("official",)
    replicates: int = 8
    seed: int = 0
    epochs: int = 200
    batch_size: int = 100
    lr: float = 1e-3
    lam: float = 0.1
    weight_decay: float = 5e-4
    ema: float = 0.999
    dataset: str = "mnist"
    train_size: int | None = None
    test_size: int | None = None

    def __post_init__(self) -> None:
        for name in ("replicates", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        if self.lr <= 0 or self.lam < 0 or self.weight_decay < 0:
            raise ValueError("--lr must be positive, --lam and --weight-decay non-negative")
        unknown = sorted(set(self.variants) - set(VARIANTS))
        if unknown or not self.variants:
            raise ValueError(f"--variants must name some of {sorted(VARIANTS)}, got {unknown}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"--ema must lie in [0, 1), got {self.ema}")

    @property
    def labels(self) -> list[str]:
        """The variant of each stacked network, ``replicates`` in a row per variant."""
        return [v for v in self.variants for _ in range(self.replicates)]

    def precisions(self, num_data: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Each network's slab precision λ₂ per data set and its biases' precision."""
        chosen = [VARIANTS[v] for v in self.labels]
        weight = torch.tensor([self.weight_decay * (num_data if v.scaled else 1) for v in chosen])
        return weight, weight * torch.tensor([float(v.bias_decay) for v in chosen])


class StackedL0MLP(nn.Module):
    """``R`` independent L0 MLPs as stacked tensors: weights ``(R, in, out)``, biases
    ``(R, out)``, gate locations ``(R, in)``; ``inits`` gives each network's weight scheme."""

    def __init__(self, inits: Sequence[str], generator: torch.Generator) -> None:
        super().__init__()
        he = torch.tensor([i == "he" for i in inits])[:, None, None]
        replicates = len(inits)
        self.weights, self.biases, self.log_alpha = (nn.ParameterList() for _ in range(3))
        for n_in, n_out, rate in zip(SIZES[:-1], SIZES[1:], DROP_RATES, strict=True):
            shape = (replicates, n_in, n_out)
            normal = torch.randn(shape, generator=generator) * math.sqrt(2.0 / n_in)
            uniform = (torch.rand(shape, generator=generator) * 2 - 1) / math.sqrt(n_in)
            loc = math.log((1 - rate) / rate)
            self.weights.append(nn.Parameter(torch.where(he, normal, uniform)))
            self.biases.append(nn.Parameter(torch.zeros(replicates, n_out)))
            noise = torch.randn(replicates, n_in, generator=generator)
            self.log_alpha.append(nn.Parameter(loc + 0.01 * noise))

    def gates(self, sample: bool, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """One gate vector per replicate and layer: a hard concrete draw, or Eq. 13's."""
        out = []
        for la in self.log_alpha:
            if sample:
                u = torch.rand(la.shape, device=la.device, generator=generator)
                u = u.clamp(1e-6, 1 - 1e-6)
                s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + la) / BETA)
            else:
                s = torch.sigmoid(la)
            out.append((s * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0))
        return out

    def forward(self, x: torch.Tensor, gates: Sequence[torch.Tensor]) -> torch.Tensor:
        """Logits ``(R, B, classes)`` of inputs ``(R, B, 784)`` (or ``(B, 784)``, shared)."""
        h = x
        last = len(self.weights) - 1
        for i, (w, b, z) in enumerate(zip(self.weights, self.biases, gates, strict=True)):
            h = torch.baddbmm(b[:, None, :], h * z[:, None, :], w)
            if i < last:
                h = F.relu(h)
        return h

    def penalty(self, lam: float, precision: torch.Tensor, bias_precision: torch.Tensor):
        """Each network's regularizer per data set, ``(R,)`` (the bracket of the module
        docstring), for precisions ``(R,)``."""
        total = 0.0
        for w, b, la in zip(self.weights, self.biases, self.log_alpha, strict=True):
            p_open = torch.sigmoid(la - LOG_RATIO)
            per_gate = lam * w.shape[-1] + 0.5 * precision[:, None] * w.pow(2).sum(-1)
            total = total + (p_open * per_gate).sum(-1) + 0.5 * bias_precision * b.pow(2).sum(-1)
        return total

    @torch.no_grad()
    def architecture(self) -> tuple[np.ndarray, np.ndarray]:
        """Units entering each layer under Eq. 13's gates, ``(R, layers)``, and the compacted
        network's multiply–accumulates per example, ``(R,)`` (a hidden unit counts where the
        next layer's gate keeps it)."""
        units = torch.stack([(z > 0).sum(-1) for z in self.gates(sample=False)], -1)
        units = units.cpu().numpy()
        widths = np.concatenate([units, np.full((len(units), 1), SIZES[-1])], axis=1)
        return units, (widths[:, :-1] * widths[:, 1:]).sum(1)


def load_data(s: Settings, data_dir: str | None, device: torch.device):
    """Train and test tensors: images as ``float32`` rows in [0, 1], labels ``int64``."""
    if s.dataset == "mnist":
        ds = load_mnist(data_dir)
    elif s.dataset == "synthetic":
        ds = synthetic_images((1, 28, 28), 10, s.train_size or 2000, s.test_size or 500, s.seed)
    else:
        raise ValueError(f"--dataset must be 'mnist' or 'synthetic', got {s.dataset!r}")

    def rows(x: np.ndarray, y: np.ndarray, size: int | None):
        x, y = x[:size], y[:size]
        flat = torch.as_tensor(x.reshape(len(x), -1), dtype=torch.float32) / 255.0
        return flat.to(device), torch.as_tensor(y, dtype=torch.int64).to(device)

    return rows(ds.x_train, ds.y_train, s.train_size), rows(ds.x_test, ds.y_test, s.test_size)


@torch.no_grad()
def test_errors(net: StackedL0MLP, x: torch.Tensor, y: torch.Tensor, chunk: int = 2000):
    """Each replicate's test error with Eq. 13's gates, ``(R,)``."""
    gates = net.gates(sample=False)
    wrong = torch.zeros(len(net.log_alpha[0]), device=x.device)
    for i in range(0, len(x), chunk):
        pred = net(x[i : i + chunk][None], gates).argmax(-1)
        wrong += (pred != y[i : i + chunk]).sum(-1)
    return (wrong / len(x)).cpu().numpy()


def train(s: Settings, data_dir: str | None, device: str, out: Path, progress: bool = True):
    """Train the replicates and write the module docstring's files; returns the results rows."""
    dev = torch.device(device)
    (x, y), (x_test, y_test) = load_data(s, data_dir, dev)
    n, b = len(x), s.batch_size
    if b > n:
        raise ValueError(f"--batch-size {b} exceeds the {n} training examples")
    gen = torch.Generator().manual_seed(s.seed)
    labels = s.labels
    net = StackedL0MLP([VARIANTS[v].init for v in labels], gen).to(dev)
    dev_gen = torch.Generator(device=dev).manual_seed(s.seed + 1)
    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    ema = ParameterEMA(net, s.ema) if s.ema else None  # l0bayes's, the official code's rule
    lo, hi = math.log(1e-2), math.log(1e2)
    precision, bias_precision = (t.to(dev) for t in s.precisions(n))
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({**asdict(s), "device": str(dev)}, indent=2))
    history: list[dict] = []
    seconds = 0.0
    bar = tqdm(range(1, s.epochs + 1), desc="plain L0 MLP", disable=not progress)
    for epoch in bar:
        start = time.perf_counter()
        order = torch.rand(len(labels), n, device=dev, generator=dev_gen).argsort(-1)
        for i in range(0, n - b + 1, b):
            idx = order[:, i : i + b]
            logits = net(x[idx], net.gates(sample=True, generator=dev_gen))
            ce = F.cross_entropy(logits.flatten(0, 1), y[idx].flatten(), reduction="none")
            penalty = net.penalty(s.lam, precision, bias_precision)
            loss = (ce.view(len(labels), b).mean(-1) + penalty / n).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                torch._foreach_clamp_min_(list(net.log_alpha), lo)
                torch._foreach_clamp_max_(list(net.log_alpha), hi)
            if ema is not None:
                ema.update(net)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the loss became {loss.item()} in epoch {epoch}")
        if dev.type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - start
        with ema.applied(net) if ema else contextlib.nullcontext():
            errors, (units, macs) = test_errors(net, x_test, y_test), net.architecture()
        history += [
            {
                "epoch": epoch,
                "variant": v,
                "replicate": r,
                "test_error": float(errors[r]),
                "architecture": "-".join(map(str, units[r])),
                "compact_macs": int(macs[r]),
                "train_seconds": seconds,
            }  # fmt: skip
            for r, v in enumerate(labels)
        ]
        rows = write_outputs(out, history)
        bar.set_postfix(error=f"{errors.mean():.4f}", macs=f"{macs.mean():.0f}")
    return rows


def write_outputs(out: Path, history: list[dict]) -> list[dict]:
    """``history.csv``, ``results.csv`` and ``summary.md`` from the rows so far."""
    write_csv(history, out / "history.csv")
    last = max(h["epoch"] for h in history)
    rows = []
    for h in (h for h in history if h["epoch"] == last):
        mine = [g for g in history if g["replicate"] == h["replicate"]]
        best = min(mine, key=lambda g: g["test_error"])
        rows.append({**h, "best_error": best["test_error"], "best_epoch": best["epoch"]})
    write_csv(rows, out / "results.csv")
    (out / "summary.md").write_text(summary(rows))
    return rows


def summary(rows: list[dict]) -> str:
    """Per variant, in order: :func:`variant_summary`."""
    variants = dict.fromkeys(r["variant"] for r in rows)
    return "\n".join(variant_summary([r for r in rows if r["variant"] == v]) for v in variants)


def variant_summary(rows: list[dict]) -> str:
    """Mean ± sd over replicates of the last-epoch and best errors and of the compacted size."""
    err = np.array([r["test_error"] for r in rows]) * 100
    best = np.array([r["best_error"] for r in rows]) * 100
    macs = np.array([r["compact_macs"] for r in rows])
    sd = (lambda a: a.std(ddof=1)) if len(rows) > 1 else (lambda a: 0.0)
    lines = [
        f"{rows[0]['variant']} ({VARIANTS[rows[0]['variant']]}): {len(rows)} replicates, "
        f"epoch {rows[0]['epoch']} (Eq. 13 gates, EMA parameters)",
        "",
        f"- last-epoch test error: {err.mean():.3f} ± {sd(err):.3f}% "
        f"(min {err.min():.2f}%, max {err.max():.2f}%); "
        f"{int((err <= 1.4 + 1e-9).sum())} of {len(rows)} at or below 1.4%",
        f"- best over epochs: {best.mean():.3f} ± {sd(best):.3f}%",
        f"- compacted multiply-accumulates: {macs.mean():.0f} ± {sd(macs):.0f}",
        "- architectures: " + ", ".join(r["architecture"] for r in rows),
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = Settings()
    for name in ("replicates", "seed", "epochs", "batch_size", "train_size", "test_size"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    for name in ("lr", "lam", "weight_decay", "ema"):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(defaults, name))
    p.add_argument(
        "--variants", nargs="+", default=list(defaults.variants), choices=sorted(VARIANTS),
        help="trained side by side, --replicates networks each: " + "; ".join(
            f"{k}: {v}" for k, v in VARIANTS.items()),
    )  # fmt: skip
    p.add_argument("--dataset", default=defaults.dataset, choices=("mnist", "synthetic"))
    p.add_argument("--data-dir", default=None, help="MNIST folder (default: $L0BAYES_DATA)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    fields = Settings.__dataclass_fields__
    chosen = {k: v for k, v in vars(args).items() if k in fields}
    settings = Settings(**{**chosen, "variants": tuple(args.variants)})
    rows = train(settings, args.data_dir, args.device, args.out, args.progress)
    print(summary(rows), end="")
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
