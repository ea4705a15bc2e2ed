"""Tables for studies: tidy CSV rows, ``mean ± sd`` cells, Markdown and LaTeX.

A *tidy* table has one row per observation (one fit of one method to one data set with one
seed) and one column per variable. Summaries give ``mean ± sd`` over the finite values of a
group (the sample sd, ``ddof=1``), and say how many NaN/inf values they left out.
"""

from __future__ import annotations

import csv
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

Table = tuple[list[str], list[list[str]]]  # (header, body rows), all cells formatted


def write_csv(rows: Sequence[dict], path: str | Path) -> Path:
    """Write dict rows (the keys of the first row are the columns) to ``path``."""
    path = Path(path)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def indices(mask: np.ndarray) -> str:
    """The positions of the true entries of a boolean mask, space-separated (``"0 2 5"``)."""
    return " ".join(map(str, np.flatnonzero(mask)))


def finite(values: Sequence[float]) -> list[float]:
    """The finite entries of ``values`` (None counts as NaN)."""
    return [float(v) for v in values if v is not None and np.isfinite(v)]


def nonfinite_count(values: Sequence[float]) -> str:
    """``excl. 1 nan, 2 inf`` for the values left out of a mean; empty if none."""
    vals = [np.nan if v is None else float(v) for v in values]
    counts = {"nan": sum(np.isnan(v) for v in vals), "inf": sum(np.isinf(v) for v in vals)}
    parts = [f"{c} {name}" for name, c in counts.items() if c]
    return f"excl. {', '.join(parts)}" if parts else ""


def nonfinite_note(values: Sequence[float]) -> str:
    """`` (excl. 1 nan, 2 inf)``, or empty if every value is finite."""
    count = nonfinite_count(values)
    return f" ({count})" if count else ""


def mean_sd(values: Sequence[float], fmt: str, pm: str = " ± ", note: bool = True) -> str:
    """``mean ± sd`` over the finite values (the mean alone for one value, ``n/a`` for none),
    noting how many non-finite values were left out unless ``note`` is false."""
    ok = finite(values)
    extra = nonfinite_note(values) if note else ""
    if not ok:
        return "n/a" + extra
    mean = format(float(np.mean(ok)), fmt)
    sd = f"{pm}{format(float(np.std(ok, ddof=1)), fmt)}" if len(ok) > 1 else ""
    return mean + sd + extra


def to_markdown(table: Table, numeric_from: int = 1) -> str:
    """A GitHub Markdown table; columns from ``numeric_from`` on are right-aligned."""
    header, body = table
    align = ["---"] * numeric_from + ["---:"] * (len(header) - numeric_from)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def tex_escape(text: str) -> str:
    """Escape LaTeX's special characters; ±, ×, ≤ and the other math symbols of the reports
    (≠, →, Σ, λ, β) become math."""
    for old, new in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_")):
        text = text.replace(old, new)
    for old, new in (("#", r"\#"), ("±", r"$\pm$"), ("×", r"$\times$"), ("≤", r"$\le$")):
        text = text.replace(old, new)
    for old, new in (("≠", r"$\ne$"), ("→", r"$\to$"), ("Σ", r"$\Sigma$"), ("λ", r"$\lambda$")):
        text = text.replace(old, new)
    return text.replace("β", r"$\beta$")


def to_latex(table: Table, numeric_from: int = 1) -> str:
    """A ``tabular`` (booktabs-free, so it compiles anywhere) with the same cells."""
    header, body = table
    spec = "l" * numeric_from + "r" * (len(header) - numeric_from)
    lines = [rf"\begin{{tabular}}{{{spec}}}", r"\hline"]
    lines += [" & ".join(tex_escape(h) for h in header) + r" \\", r"\hline"]
    lines += [" & ".join(tex_escape(cell) for cell in row) + r" \\" for row in body]
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def command_line(script: str | Path, argv: Sequence[str]) -> str:
    """The shell command that reruns ``script`` with ``argv`` (paths relative to the working
    directory where possible)."""
    script, exe = Path(script).resolve(), Path(sys.executable)
    try:
        script = script.relative_to(Path.cwd())
        exe = exe.relative_to(Path.cwd())
    except ValueError:
        pass
    return shlex.join([str(exe), str(script), *argv])


__all__ = [
    "Table",
    "command_line",
    "finite",
    "indices",
    "mean_sd",
    "nonfinite_count",
    "nonfinite_note",
    "tex_escape",
    "to_latex",
    "to_markdown",
    "write_csv",
]
