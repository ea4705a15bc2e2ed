"""The ``l0bayes`` command line."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from l0bayes._version import __version__
from l0bayes.device import THREADS_HELP

DESCRIPTION = """\
l0bayes: L0 regularization (Louizos, Welling & Kingma 2018) as a Bayesian model in Pyro.

Penalties are in log-likelihood units per included parameter: lambda = 1 is AIC,
lambda = log(n)/2 is BIC.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="l0bayes", description=DESCRIPTION, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"l0bayes {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo",
        help="variable selection on the diabetes data: PIP and AIC/BIC tables, PIP plot",
        description="Fit L0Regression with AIC, BIC and the Bayesian spike-and-slab prior on "
        "scikit-learn's diabetes data (shipped with scikit-learn, no download), compare with "
        "the exact posterior and the exhaustive best subsets, print the tables, save a plot.",
    )
    demo.add_argument("--out", default="demo_output", help="folder for the figure")
    demo.add_argument("--steps", type=int, default=1500, help="SVI steps per fit")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")

    select = sub.add_parser(
        "select",
        help="variable selection on a CSV file (prints the selection and AIC/BIC summary)",
        description="Fit L0Regression to a CSV file with a header row; all columns but the "
        "target are features. Prints one row per feature: with --penalty bayes its posterior "
        "inclusion probability (pip), with aic/bic/aicc/a number its criterion weight "
        "(ic_weight: the Akaike or BIC weight of the subsets holding it), and its coefficient "
        "and selection; then the selected model's k, log-likelihood, AIC and BIC and whether "
        "the subset is certified optimal.",
    )
    select.add_argument("csv", help="CSV file with a header row")
    select.add_argument("--target", required=True, help="name of the response column")
    select.add_argument(
        "--family",
        choices=["gaussian", "bernoulli", "poisson", "negative_binomial"],
        default="gaussian",
    )
    select.add_argument(
        "--penalty",
        default="bic",
        help="'aic', 'bic', 'aicc', 'bayes', or a number lambda >= 0 (nats per coefficient); "
        "aic/bic/aicc return the certified best subset of the Gaussian family",
    )
    select.add_argument(
        "--prior",
        choices=["slab", "g", "hyper-g", "hyper-g/n", "raw"],
        help="the slab of --penalty bayes (default slab): slab = N(0, (slab-scale * sigma)^2) on "
        "standardised columns, g = Zellner's g-prior (g = n), hyper-g(/n) = g integrated out "
        "(Liang et al. 2008); all three integrate sigma out and give the same PIPs in any "
        "units. raw = N(0, slab-scale^2) on the columns as given (depends on their units)",
    )
    select.add_argument(
        "--slab-scale", type=float, help="prior sd of a coefficient (--prior slab or raw)"
    )
    select.add_argument("--noise-scale", type=float, help="known noise sd (--prior raw only)")
    select.add_argument("--prior-inclusion", type=float, default=None, help="pi for 'bayes'")
    select.add_argument(
        "--expected-model-size",
        type=float,
        help="prior mean number of features in the model (pi = M / p), for 'bayes'",
    )
    select.add_argument("--steps", type=int, default=1500, help="SVI steps")
    select.add_argument("--seed", type=int, default=0)
    select.add_argument(
        "--drop-missing",
        action="store_true",
        help="leave out the rows with a missing cell (empty, NA, NaN, null), with a note of how "
        "many; without it such a row is an error naming its line and column",
    )
    select.add_argument(
        "--output",
        metavar="PATH",
        help="also write the summary table to PATH: .csv (one row per feature) or .json "
        "(the rows, the penalty, the selected model's k, log-likelihood, AIC, BIC and "
        "intercept, and the certificate or how the PIPs were computed)",
    )
    select.add_argument(
        "--quiet", action="store_true", help="print nothing but errors (no table, no progress)"
    )
    select.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    select.add_argument("--threads", type=int, dest="num_threads", metavar="N", help=THREADS_HELP)
    _add_sweep_parser(sub, _add_train_parser(sub))
    from l0bayes.reporting.report import add_report_parser

    add_report_parser(sub)
    return parser


TRAIN_HELP = """\
Train one of the paper's networks by Pyro SVI (the ELBO's KL is the paper's L0 penalty).

lambda is given PER DATA POINT as in the paper: the paper's "lambda = 0.1/N" is --lam 0.1.
Equivalently, --lam is the code cost in nats per parameter in the total log-likelihood: a gate
that controls S weights pays lam*S, --lam 1 is AIC and --lam log(N)/2 is BIC. Worked example:
MNIST has N = 60000, so --lam 0.1 adds 0.1/60000 per parameter to the mean training loss, and a
hidden neuron of the 784-300-100 MLP's second layer (100 outgoing weights) costs 10 nats.

--weight-decay is also per data point (an optimizer's weight decay; the paper's 5e-4): the
Gaussian slab on the weights has precision N * 5e-4 = 30 on MNIST, and a weight w of an open
gate costs 15 * w^2 nats. --weight-precision gives that precision directly instead.

Test error and architecture use the paper's deterministic test-time gates (Eq. 13); metrics.json
reports the last epoch's error (test_error) and the best over epochs (best_test_error).
Writes RUN/config.json, RUN/checkpoint.pt (every epoch), RUN/history.csv and, when finished,
RUN/metrics.json. Ctrl-C saves a checkpoint; continue with --resume.
"""


QUICK_HELP = (
    "a smoke run, not a result: a few epochs on a few thousand images with Adam's rate at "
    "0.01 and no EMA, so that the gates visibly move (mnist-mlp: --epochs 5 --train-size 10000 "
    "--test-size 2000 --lr 0.01 --ema 0; lenet5: 3 epochs on 5000; wrn: 2 epochs on 2000), "
    'unless those are given; recorded as "quick": true in config.json; not with --resume'
)

DATA_DIR_HELP = (
    "data folder (default: $L0BAYES_DATA, then $XDG_CACHE_HOME/l0bayes, i.e. "
    "~/.cache/l0bayes). The command line never downloads: fetch MNIST or Fashion-MNIST from "
    "Python with l0bayes.data.load_mnist(download=True) (or load_fashion_mnist), or place the "
    "files there by hand (MNIST's four IDX .gz files in mnist/, CIFAR's extracted "
    "cifar-10-batches-py/); --dataset synthetic needs no files"
)


def _add_train_parser(sub) -> argparse.ArgumentParser:
    from l0bayes.data.images import SYNTHETIC_SIZES
    from l0bayes.nn.networks import NETWORKS

    train = sub.add_parser(
        "train",
        help="train the paper's MLP, LeNet-5 or Wide-ResNet with L0 gates (SVI)",
        description=TRAIN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("network", choices=sorted(NETWORKS), help="which network")
    train.add_argument("--out", required=True, help="run directory (RUN)")
    train.add_argument("--epochs", type=int, help="default: 200 (the paper)")
    train.add_argument("--batch-size", type=int, help="default: 100 (MNIST), 128 (WRN)")
    train.add_argument(
        "--lam",
        type=float,
        nargs="+",
        help="lambda per data point x N (= nats per parameter); one value or one per gated "
        "layer, e.g. --lam 10 0.5 0.1 0.1 for LeNet-5's 'lambda sep.' row (default: 0.1 for "
        "MNIST, 0.001 for WRN)",
    )
    train.add_argument("--lr", type=float, help="learning rate (default: Adam 1e-3; WRN SGD 0.1)")
    train.add_argument("--optimizer", choices=["adam", "sgd"])
    decay = train.add_mutually_exclusive_group()
    decay.add_argument(
        "--weight-decay",
        type=float,
        help="weight decay PER DATA POINT, as an optimizer's and the paper's (default 5e-4): "
        "the mean objective pays decay/2 * P(z != 0) * w^2 per weight, so the Gaussian slab's "
        "precision is N * decay (30 on MNIST)",
    )
    decay.add_argument(
        "--weight-precision",
        type=float,
        help="the Gaussian slab's precision per data set instead (the prior's 1/variance); "
        "--weight-precision 5e-4 is the official LeNet-5 script's unscaled decay",
    )
    train.add_argument("--init-drop-rate", type=float, nargs="+", help="initial gate drop rate(s)")
    train.add_argument("--kl-mode", choices=["l0", "bayes"], default="l0")
    train.add_argument(
        "--local-rep", action="store_true", help="one gate draw per example (default: per batch)"
    )
    train.add_argument(
        "--weight-init",
        choices=["uniform", "he"],
        help="gated layers' weights: uniform U(±1/sqrt(fan-in)) as torch's layers, or he: "
        "N(0, 2/fan-in) weights as the paper's official code, with N(0, 0.01²) biases (its "
        "gated layers start theirs at zero) (default: the network's; uniform for all three)",
    )
    train.add_argument(
        "--ema",
        type=float,
        help="decay β of the parameters' EMA used for evaluation (the paper's temporal "
        "averaging); 0 = off, the last iterate (default: the network's; 0.999 for the MNIST "
        "networks, 0.99 for the WRN)",
    )
    train.add_argument("--no-clamp", action="store_true", help="do not clamp log alpha")
    train.add_argument("--elbo", choices=["analytic", "trace"], default="analytic")
    train.add_argument("--target", choices=["params", "flops"], help="constrain sparsity")
    train.add_argument("--target-fraction", type=float, help="expected fraction kept (0, 1]")
    train.add_argument("--target-scope", choices=["global", "layer"], default="global")
    train.add_argument("--lagrange-lr", type=float, default=0.01)
    train.add_argument(
        "--dataset", choices=["mnist", "fashion-mnist", "cifar10", "cifar100", "synthetic"]
    )
    train.add_argument("--data-dir", help=DATA_DIR_HELP)
    train.add_argument(
        "--standardize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="standardise the inputs per channel (default: MNIST networks take pixels in "
        "[0, 1] as the official code does, the WRN standardised CIFAR images)",
    )
    train.add_argument(
        "--train-size",
        type=int,
        help=f"use the first N training examples (synthetic: N drawn if over {SYNTHETIC_SIZES[0]})",
    )
    train.add_argument(
        "--test-size",
        type=int,
        help=f"use the first N test examples (synthetic: N drawn if over {SYNTHETIC_SIZES[1]})",
    )
    train.add_argument("--depth", type=int, default=28, help="WRN depth (6n + 4)")
    train.add_argument("--width", type=int, default=10, help="WRN width factor")
    train.add_argument("--device", default="cpu", help="cpu or cuda")
    train.add_argument(
        "--no-graph",
        action="store_true",
        help="on CUDA, launch each training step's kernels one by one instead of replaying "
        "the step as one captured CUDA graph (the same arithmetic; for debugging)",
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--checkpoint-every", type=int, default=0, help="also checkpoint every K steps"
    )
    train.add_argument("--threads", type=int, dest="num_threads", metavar="N", help=THREADS_HELP)
    train.add_argument(
        "--nproc",
        type=int,
        help="data-parallel processes on this machine (gloo on CPU, NCCL on GPU); for several "
        "nodes launch with torchrun instead (see the README)",
    )
    train.add_argument(
        "--lam-warmup",
        type=float,
        metavar="K",
        help="raise lambda linearly from 0 over the first K epochs (with --target: lower the "
        "kept fraction from 1 to the target instead); default 0, off",
    )
    train.add_argument(
        "--finetune-epochs",
        type=int,
        metavar="K",
        help="after --epochs, K more epochs that train the weights only, the gates frozen at "
        "their Eq. 13 test-time values (default 0, off)",
    )
    train.add_argument(
        "--bma-samples",
        type=int,
        metavar="S",
        help="also report in metrics.json the test error, NLL and ECE of the Bayesian model "
        "average over S gate draws, beside Eq. 13's deterministic gates (default 0, off)",
    )
    train.add_argument("--quick", action="store_true", help=QUICK_HELP)
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return train


SWEEP_HELP = """\
Train every (lambda, seed) network of a study in ONE process, stacked: the networks' parameters
are slices of stacked tensors and take one batched forward/backward pass and one optimiser
step per minibatch (on CUDA one captured graph). Each network trains exactly as `l0bayes train`
would with the same settings (its seed's initialisation, data order and counter-based gate
draws): on the CPU bitwise, on CUDA to float rounding (one grouped convolution for all).

Writes OUT/lam-<lambda>_seed-<s>/ per network (OUT/lam-<lambda>_target-<t>_seed-<s>/ with
several --target-fraction values), each a run directory as `l0bayes train`
writes (config.json, history.csv, checkpoint.pt, metrics.json) that `l0bayes report` reads.
The networks' checkpoints are written as one commit. Ctrl-C (or a kill) stops the sweep;
continue with the same command and --resume.
Stacks mnist-mlp and lenet5 (train the WRN with `l0bayes train`).
"""

#: ``train`` options a sweep does not take (it sets them per network, or cannot stack them).
_NOT_SWEPT = {"network", "out", "lam", "seed", "nproc", "help", "resume", "elbo", "target_fraction"}


def _add_sweep_parser(sub, train: argparse.ArgumentParser) -> None:
    from l0bayes.nn.networks import NETWORKS

    sweep = sub.add_parser(
        "sweep",
        help="train a (lambda, seed) grid of networks in one process, stacked",
        description=SWEEP_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("network", choices=sorted(NETWORKS), help="which network")
    sweep.add_argument(
        "--lam", type=float, nargs="+", required=True, help="the lambda values (nats per parameter)"
    )
    sweep.add_argument("--seeds", type=int, nargs="+", required=True, help="the seeds")
    sweep.add_argument(
        "--target-fraction", type=float, nargs="+", default=None,
        help="with --target: one network per kept fraction (each its own Lagrange multiplier)",
    )  # fmt: skip
    sweep.add_argument("--out", required=True, help="folder of the sweep's run directories")
    sweep.add_argument("--resume", action="store_true", help="continue every network of --out")
    for action in train._actions:
        if action.dest not in _NOT_SWEPT:
            sweep._add_action(action)


def _penalty(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def _cmd_demo(args) -> None:
    from l0bayes.demo import run_demo

    run_demo(out=args.out, n_steps=args.steps, progress=not args.no_progress)


#: Cells that a CSV file uses for a missing value (compared case-insensitively).
MISSING_CELLS = frozenset({"", "na", "nan", "n/a", "null", "none", "-"})


def read_csv_table(path: str, drop_missing: bool = False) -> tuple[list[str], Any, list[int]]:
    """Header, float matrix and the lines left out of a CSV file, with an error that names the
    file, line and column of anything that is not a rectangular table of finite numbers with
    distinct column names. ``drop_missing`` leaves out the rows with a missing cell
    (:data:`MISSING_CELLS`) instead of refusing them; their line numbers are returned."""
    import csv
    import io

    import numpy as np

    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # a BOM is not in the name
            text = f.read()
    except OSError as err:
        raise FileNotFoundError(f"cannot read the CSV file {path!r}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text CSV file (it is not UTF-8 text)") from None
    if "\x00" in text:
        raise ValueError(f"{path} is not a readable CSV file: it holds NUL bytes (binary data)")
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as err:
        raise ValueError(f"{path} is not a readable CSV file: {err}") from None
    if len(rows) < 2:
        raise ValueError(f"{path}: needs a header row and at least one data row")
    header = [name.strip() for name in rows[0]]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ValueError(f"{path}: the header names these columns more than once: {repeated}")
    values, dropped = [], []
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"{path}, line {i}: {len(row)} fields, the header has {len(header)}")
        missing = [j for j, cell in enumerate(row) if cell.strip().lower() in MISSING_CELLS]
        if missing and drop_missing:
            dropped.append(i)
            continue
        if missing:
            raise ValueError(
                f"{path}, line {i}, column {header[missing[0]]!r}: a missing value "
                f"({row[missing[0]]!r}); pass --drop-missing to leave out the rows with one, "
                "or impute them first"
            )
        values.append([_csv_number(path, i, header[j], cell) for j, cell in enumerate(row)])
    if not values:
        raise ValueError(f"{path}: every data row has a missing value (--drop-missing left none)")
    return header, np.array(values, dtype=float), dropped


def _csv_number(path: str, line: int, column: str, cell: str) -> float:
    """``float(cell)``, or an error naming the file, line and column (with the remedy for a
    text column, and for an infinite value)."""
    import math

    try:
        value = float(cell)
    except ValueError:
        raise ValueError(
            f"{path}, line {line}, column {column!r}: {cell!r} is not a number; a text column "
            f"must be one-hot encoded first (e.g. pandas.get_dummies(frame, columns=[{column!r}], "
            "drop_first=True)) or dropped"
        ) from None
    if not math.isfinite(value):
        raise ValueError(f"{path}, line {line}, column {column!r}: {cell!r} is not finite")
    return value


OUTPUT_FORMATS = (".csv", ".json")


def _output_format(path: str | None) -> str | None:
    """``".csv"`` or ``".json"`` for ``--output PATH`` (``None`` without it), checked before
    the fit so a bad name fails at once."""
    if path is None:
        return None
    from pathlib import Path

    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise ValueError(
            f"--output {path!r}: the file name must end in .csv or .json (the format), "
            f"not {suffix or 'nothing'!r}"
        )
    if Path(path).is_dir():
        raise ValueError(f"--output {path!r} is a folder; give a file name ending .csv or .json")
    return suffix


def format_summary(table: Any) -> str:
    """The summary table as text with every row and column (pandas would cut a long table to
    its first and last rows)."""
    return table if isinstance(table, str) else table.to_string()


def summary_rows(est: Any, names: list[str]) -> list[dict[str, Any]]:
    """The rows of ``est.summary(names)`` (one per feature: ``pip`` or ``ic_weight`` when the
    fit has them, ``coef``, ``selected``) as plain Python values, the same numbers the
    printed table shows."""
    import numpy as np

    table = est.summary(names=names)
    return [
        {"feature": str(name)}
        | {k: bool(v) if isinstance(v, (bool, np.bool_)) else float(v) for k, v in row.items()}
        for name, row in table.iterrows()
    ]


def selection_record(est: Any, names: list[str]) -> dict[str, Any]:
    """What ``select --output x.json`` writes: the penalty, the rows, the selected model
    (k, log-likelihood, AIC, BIC, intercept and noise sd) and how far the answer is proven
    (``certificate``: the criterion searched, ``optimal``, ``criterion_gap``) or how the PIPs
    were computed (``pips``: method and warnings); ``ic_weight`` says what that column is."""
    import numpy as np

    criteria = est.criteria_
    if criteria is None:  # a Bayesian answer with no maximum-likelihood refit
        model = {"k": int(est.selected_.sum()) + 1, "undefined": est.criteria_error_}
    else:
        model = {
            "k": int(criteria.k),
            "log_likelihood": float(criteria.log_likelihood),
            "aic": float(criteria.aic),
            "bic": float(criteria.bic),
        }
    model["intercept"] = float(est.intercept_)
    if hasattr(est, "noise_scale_"):
        model["noise_scale"] = float(est.noise_scale_)
    record: dict[str, Any] = {"penalty": est.penalty, "family": est.family}
    record |= {"features": summary_rows(est, names), "selected_model": model}
    if hasattr(est, "optimal_"):
        gap = float(est.criterion_gap_)
        search = getattr(est, "search_", None)
        record["certificate"] = {
            "optimal": bool(est.optimal_),
            "criterion_gap": gap if np.isfinite(gap) else None,
            "nodes": None if search is None else int(search.nodes),
        }
    if hasattr(est, "ic_weights_"):
        record["ic_weight"] = est.ic_weights_.describe()
    diag = getattr(est, "pip_diagnostics_", None)
    if est.penalty == "bayes":
        record["pips"] = {
            "method": "variational guide" if diag is None else diag["method"],
            "warnings": [] if diag is None else list(diag["warnings"]),
        }
    return record


def write_summary(est: Any, names: list[str], path: str) -> None:
    """Write the fitted ``est``'s summary table to ``path``: CSV (the rows of
    :func:`summary_rows`), or JSON (:func:`selection_record`). The file is written atomically
    (a temporary file renamed onto ``path``), so a kill leaves the old file or the new one."""
    import io
    import json
    from pathlib import Path

    from l0bayes.training.safe_files import write_atomically

    if Path(path).suffix.lower() == ".csv":
        import csv

        rows = summary_rows(est, names)
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        body = text.getvalue()
    else:
        body = json.dumps(selection_record(est, names), indent=2) + "\n"
    write_atomically(path, lambda f: f.write(body.encode("utf-8")))


def _cmd_select(args) -> None:
    import warnings

    import pandas as pd

    from l0bayes.device import torch_threads
    from l0bayes.linear_model.estimator import L0Regression

    _output_format(args.output)
    prior = {
        key: getattr(args, key)
        for key in ("prior", "slab_scale", "noise_scale", "prior_inclusion", "expected_model_size")
        if getattr(args, key) is not None
    }
    if prior and args.penalty != "bayes":
        flag = "--" + next(iter(prior)).replace("_", "-")
        raise ValueError(
            f"{flag} sets the prior of --penalty bayes; with --penalty {args.penalty} it would "
            "be ignored (drop it, or use --penalty bayes)"
        )
    columns, table, dropped = read_csv_table(args.csv, drop_missing=args.drop_missing)
    if dropped and not args.quiet:
        lines = ", ".join(map(str, dropped[:5])) + (", ..." if len(dropped) > 5 else "")
        print(
            f"l0bayes select: note: left out {len(dropped)} rows with a missing value "
            f"(lines {lines}); {len(table)} rows remain",
            file=sys.stderr,
        )
    if args.target not in columns:
        raise ValueError(f"--target {args.target!r} is not a column of {args.csv}: {columns}")
    target = columns.index(args.target)
    features = [c for c in columns if c != args.target]
    X = table[:, [j for j in range(len(columns)) if j != target]]
    est = L0Regression(
        family=args.family,
        penalty=_penalty(args.penalty),
        n_steps=args.steps,
        **prior,
        seed=args.seed,
        progress=not (args.quiet or args.no_progress),
    )
    with warnings.catch_warnings(record=True) as caught, torch_threads(args.num_threads):
        warnings.simplefilter("always")
        est.fit(pd.DataFrame(X, columns=features), table[:, target])
    if not args.quiet:
        for warning in caught:
            text = cli_wording(_one_line(warning.message), "select")
            print(f"l0bayes select: warning: {text}", file=sys.stderr)
    summary = est.summary(names=features)
    c = est.criteria_
    if args.output is not None:
        write_summary(est, features, args.output)
    if args.quiet:
        return
    print(format_summary(summary))
    if "ic_weight" in summary.attrs:
        print(f"ic_weight = {summary.attrs['ic_weight']}")
    if c is None:  # a Bayesian answer with no maximum-likelihood refit
        print(f"\nselected model: AIC and BIC undefined ({est.criteria_error_})")
    else:
        print(
            f"\nselected model: k={c.k} loglik={c.log_likelihood:.3f} AIC={c.aic:.3f} "
            f"BIC={c.bic:.3f} intercept={est.intercept_:.6g}"
        )
    print(_selection_note(est))
    if args.output is not None:
        print(f"summary written to {args.output}")


def _selection_note(est) -> str:
    """How far the printed answer can be trusted: the search's certificate, or how the PIPs
    were computed and whether a diagnostic fired."""
    if hasattr(est, "optimal_"):
        if est.optimal_:
            return "the selected subset is the certified minimiser of the criterion"
        gap = est.criterion_gap_
        bound = "no bound" if gap != gap else f"within {gap:.3g} nats of the optimum"
        return f"the selected subset is NOT certified optimal ({bound})"
    diag = getattr(est, "pip_diagnostics_", None)
    if diag is None:
        return "inclusion probabilities: the variational guide's (no correction)"
    method = {"enumerate": "exact enumeration", "mc3": "MC3 chains", "psis": "PSIS"}
    note = f"inclusion probabilities by {method[diag['method']]}"
    if diag["warnings"]:
        note += "; WARNING, they may be wrong: " + "; ".join(diag["warnings"])
    return note


def _given_train_options(argv: list[str], command: str = "train") -> dict[str, Any]:
    """The ``train`` (or ``sweep``) options typed on the command line (not argparse's
    defaults), as :class:`~l0bayes.training.config.TrainConfig` fields."""
    parser = build_parser()
    for action in _subcommand(parser, command)._actions:
        action.default = argparse.SUPPRESS
    given = vars(parser.parse_args(argv))
    if "no_clamp" in given:
        given["clamp_log_alpha"] = not given.pop("no_clamp")
    if "no_progress" in given:
        given["progress"] = not given.pop("no_progress")
    if "no_graph" in given:
        given["graph"] = not given.pop("no_graph")
    for key in ("command", "debug", "resume", "network", "out", "help", "quick"):
        given.pop(key, None)
    if command == "sweep":  # each network's own lambda and seed come from its folder
        for key in ("lam", "seeds"):
            given.pop(key, None)
        fractions = given.pop("target_fraction", None)
        if fractions is not None and len(fractions) == 1:  # one: shared, checked as in train
            given["target_fraction"] = fractions[0]  # several: swept, named by the folders
    return given


def _subcommand(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise KeyError(name)


def _cmd_train(args) -> None:
    import json

    from l0bayes.training.config import TrainConfig, quick_settings
    from l0bayes.training.trainer import TrainingInterrupted, train

    progress = not args.no_progress
    if args.quick and args.resume:
        raise ValueError(
            "--quick starts a new smoke run; it cannot be combined with --resume (a resumed "
            "run keeps its own settings)"
        )
    if args.quick:
        for name, value in quick_settings(args.network).items():
            if getattr(args, name) is None:
                setattr(args, name, value)
    if args.resume:
        given = _given_train_options(args.argv)
        given.setdefault("progress", progress)
        cfg = TrainConfig.for_resume(args.out, network=args.network, **given)
    else:
        names = set(TrainConfig.__dataclass_fields__) - {"network", "out", "progress", "extra"}
        values = {k: v for k, v in vars(args).items() if k in names and v is not None}
        values["clamp_log_alpha"] = not args.no_clamp
        values["graph"] = not args.no_graph
        cfg = TrainConfig(network=args.network, out=args.out, progress=progress, **values)
    try:
        metrics = train(cfg, resume=args.resume)
    except TrainingInterrupted as stop:
        print(f"l0bayes train: {stop}", file=sys.stderr)
        raise SystemExit(130) from None
    keys = (
        "test_error",
        "best_test_error",
        "architecture_string",
        "compact_flops",
        "train_seconds",
    )
    shown = {k: metrics[k] for k in keys}
    if cfg.quick:
        shown["quick"] = "a smoke run (--quick), not a result"
    print(json.dumps(shown, indent=2))


def _swept_fractions(args) -> list[float] | None:
    """The target fractions a sweep varies (two or more ``--target-fraction`` values, each in
    its own ``lam-<λ>_target-<t>_seed-<s>`` folder), else None (one is a shared setting)."""
    fractions = args.target_fraction
    return list(fractions) if fractions is not None and len(fractions) > 1 else None


def _resumed_sweep(args, given: dict[str, Any]) -> list | None:
    """The configurations of the sweep in ``--out`` for ``--resume``, each checked against
    the options given (as ``train --resume``). A network whose folder the sweep had not
    written yet when it stopped (nothing of it committed) takes its neighbours' settings;
    ``None`` when the sweep made its folders but wrote no configuration (killed at its start:
    it starts anew from the command's options)."""
    from dataclasses import replace
    from pathlib import Path

    from l0bayes.training.config import TrainConfig
    from l0bayes.training.sweep import run_name

    fractions = _swept_fractions(args)
    wanted = [
        (lam, fraction, seed, Path(args.out) / run_name([lam], seed, fraction))
        for lam in args.lam
        for fraction in fractions or [None]
        for seed in args.seeds
    ]
    saved = {out: (out / "config.json").is_file() for *_, out in wanted}
    if not any(saved.values()) and any(out.is_dir() for *_, out in wanted):
        return None  # stopped before it wrote a configuration: nothing of it is committed
    if not any(saved.values()):
        raise ValueError(
            f"--resume: no network of a sweep with these --lam, --seeds and --target-fraction "
            f"values in {args.out}; give the values it was started with, or start it anew "
            "without --resume"
        )
    cfgs = {}
    for *_, out in wanted:
        if saved[out]:
            cfgs[out] = TrainConfig.for_resume(out, network=args.network, **given)
    model = next(iter(cfgs.values()))
    for lam, fraction, seed, out in wanted:
        if out not in cfgs:
            swept = dict(lam=[float(lam)], seed=seed, out=str(out))
            if fraction is not None:
                swept["target_fraction"] = fraction
            cfgs[out] = replace(model, **swept)
    return [cfgs[out] for *_, out in wanted]


def _cmd_sweep(args) -> None:
    import json
    from pathlib import Path

    from l0bayes.training.config import TrainConfig, quick_settings
    from l0bayes.training.sweep import sweep, sweep_configs
    from l0bayes.training.trainer import TrainingInterrupted

    progress = not args.no_progress
    if args.quick and args.resume:
        raise ValueError("--quick starts a new smoke sweep; it cannot be combined with --resume")
    if args.resume:
        given = _given_train_options(args.argv, "sweep")
        given.setdefault("progress", progress)
        if args.target_fraction is not None and _swept_fractions(args) is None:
            given["target_fraction"] = args.target_fraction[0]  # shared: checked like train's
        cfgs = _resumed_sweep(args, given)
    if not args.resume or cfgs is None:
        if args.quick:
            for name, value in quick_settings(args.network).items():
                if getattr(args, name) is None:
                    setattr(args, name, value)
        names = set(TrainConfig.__dataclass_fields__) - {"network", "out", "progress", "extra"}
        names -= {"lam", "seed", "target_fraction"}
        values = {k: v for k, v in vars(args).items() if k in names and v is not None}
        values["clamp_log_alpha"] = not args.no_clamp
        values["graph"] = not args.no_graph
        if args.target_fraction is not None and _swept_fractions(args) is None:
            values["target_fraction"] = args.target_fraction[0]  # one: shared, as in train
        base = TrainConfig(network=args.network, out=args.out, progress=progress, **values)
        cfgs = sweep_configs(base, args.lam, args.seeds, args.out, _swept_fractions(args))
    try:
        metrics = sweep(cfgs, resume=args.resume)
    except TrainingInterrupted as stop:
        print(f"l0bayes sweep: {stop}", file=sys.stderr)
        raise SystemExit(130) from None
    rows = {
        Path(cfg.out).name: {
            k: m[k]
            for k in ("test_error", "best_test_error", "architecture_string", "compact_flops")
        }
        for cfg, m in zip(cfgs, metrics, strict=True)
    }
    print(json.dumps({"runs": rows, "train_seconds": metrics[0]["train_seconds"]}, indent=2))


def _cmd_report(args) -> None:
    from l0bayes.reporting.report import run_report_command

    run_report_command(args)


COMMANDS = {
    "demo": _cmd_demo,
    "select": _cmd_select,
    "train": _cmd_train,
    "sweep": _cmd_sweep,
    "report": _cmd_report,
}


def main(argv: list[str] | None = None) -> int:
    from l0bayes.training.distributed import DistributedError

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        COMMANDS[args.command](args)
    except (ValueError, OSError, FloatingPointError, DistributedError) as err:
        if args.debug:
            raise
        message = cli_wording(_one_line(err), args.command)
        print(f"l0bayes {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"l0bayes {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


#: Python-API names whose flag has another name.
API_FLAGS = {"n_steps": "--steps"}


def cli_wording(text: str, command: str) -> str:
    """A message of the Python API in the command line's words: a parameter name
    (``slab_scale``, ``data_dir=``) becomes the flag of ``command`` that sets it
    (``--slab-scale``, ``--data-dir=``), and "call load_mnist(..., download=True)" becomes how
    to do that from Python (the command line never downloads). A name inside a path
    (``/tmp/data_dir/x``) is left alone."""
    flags = dict(API_FLAGS)
    for action in _subcommand(build_parser(), command)._actions:
        if action.option_strings and "_" in action.dest:
            flags[action.dest] = max(action.option_strings, key=len)
    text = re.sub(
        r"(?<![\w/\\.-])(" + "|".join(map(re.escape, flags)) + r")(?![\w/\\(-])",
        lambda m: flags[m.group(1)],
        text,
    )
    return re.sub(
        r"call (\w+)\(\.\.\., download=True\) to fetch them",
        r"fetch them from Python with l0bayes.data.\1(download=True) (the command line never "
        "downloads)",
        text,
    )


def _one_line(err: BaseException) -> str:
    """The error as one line; an ``OSError`` from the system names its file."""
    if isinstance(err, OSError) and err.strerror and not isinstance(err, FileNotFoundError):
        where = f" {err.filename}" if err.filename else ""
        return f"cannot write or read{where}: {err.strerror}"
    text = str(err) or type(err).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


if __name__ == "__main__":
    sys.exit(main())
