"""The README's code runs as pasted.

Every ```python block of ``README.md`` is executed on its own, in a fresh namespace, in a
temporary working directory. The tour's ``l0bayes train``/``l0bayes report`` commands are run
as subprocesses (``python -m l0bayes.cli``, the console script's entry point; marked ``slow``).
"""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
MAX_LINES = 250


def code_blocks(language: str) -> list[tuple[int, str]]:
    """``(first line number, source)`` of every fenced block of ``language``."""
    text = README.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, m.start()) + 2, m.group(2))
        for m in FENCE.finditer(text)
        if m.group(1) == language
    ]


def commands(block: str) -> list[list[str]]:
    """The shell commands of a bash block: continuation lines joined, comments dropped."""
    joined = block.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines() if line.strip()]


PYTHON = code_blocks("python")
TOUR = [block for _, block in code_blocks("bash") if "l0bayes report" in block]


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"README.md has {lines} lines, more than {MAX_LINES}"


def test_readme_has_code():
    assert len(PYTHON) >= 2 and len(TOUR) == 1


@pytest.mark.parametrize("source", [b for _, b in PYTHON], ids=[f"line{n}" for n, _ in PYTHON])
def test_python_block_runs(source, tmp_path, monkeypatch, one_thread):
    monkeypatch.chdir(tmp_path)
    code = compile(source, f"README.md python block in {tmp_path}", "exec")
    exec(code, {"__name__": "__main__"})


@pytest.mark.slow  # about 20 s: two interpreters, a training run and a report
def test_tour_commands_run(tmp_path):
    (block,) = TOUR
    steps = commands(block)
    assert [argv[:2] for argv in steps] == [
        [".venv/bin/l0bayes", "train"],
        [".venv/bin/l0bayes", "report"],
    ]
    for argv in steps:
        cli = [sys.executable, "-m", "l0bayes.cli", *argv[1:]]
        done = subprocess.run(cli, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{shlex.join(argv)} failed:\n{done.stderr[-3000:]}"
    assert (tmp_path / "RUN" / "metrics.json").is_file()
    assert (tmp_path / "RUN" / "report" / "report.md").is_file()
