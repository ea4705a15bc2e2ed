"""Before/after speed of a change: the same benchmark commands on two source trees, in one run.

Each command runs as a child process, from the current directory (the same benchmark scripts
for both trees), with ``PYTHONPATH`` set to one tree (so ``import l0bayes`` takes that tree's
package, whatever is installed), alternating the trees (A B A B ...) so that
load on a shared machine falls on both alike. The table gives, per command and tree, the least
CPU seconds (user + system of the child) and wall seconds over the repeats, and the ratio
after/before of the CPU seconds. Each child's own output is kept in ``--log``.

Reproduce (the refactor of issue 29, from a checkout of the commit before it in /work/before)::

    git worktree add --detach /work/before <commit>
    OMP_NUM_THREADS=1 .venv/bin/python bench/trees_speed.py --before /work/before --after .
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

#: The regression half's benchmarks, at sizes that take seconds to a minute each on one core.
DEFAULT_COMMANDS = (
    "bench/subset_speed.py --n 10000 --p 20 100",
    "bench/chain_speed.py --quick",
    "bench/exact_speed.py --p 12 16",
    "bench/regression_speed.py --n 10000 --n-chunked 200000",
)


def _run(tree: Path, command: str, log) -> tuple[float, float]:
    """CPU and wall seconds of ``python command`` run with ``tree`` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    argv = [sys.executable, *shlex.split(command)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    log.write(f"### {tree} :: {command} (exit {done.returncode})\n{done.stdout}{done.stderr}\n")
    if done.returncode != 0:
        raise SystemExit(f"{command!r} failed in {tree} (exit {done.returncode}); see the log")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="source tree before")
    parser.add_argument("--after", type=Path, required=True, help="source tree after")
    parser.add_argument("--commands", nargs="+", default=list(DEFAULT_COMMANDS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--log", type=Path, default=Path("trees_speed.log"))
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    for name, tree in trees.items():
        if not (tree / "l0bayes" / "__init__.py").is_file():
            parser.error(f"--{name} {tree} holds no l0bayes package")
    best: dict[tuple[str, str], tuple[float, float]] = {}
    with args.log.open("w") as log:
        for command in args.commands:
            for _ in range(args.repeats):
                for name, tree in trees.items():
                    cpu, wall = _run(tree, command, log)
                    old = best.get((command, name), (float("inf"), float("inf")))
                    best[(command, name)] = (min(old[0], cpu), min(old[1], wall))
                    print(f"{name:6s} {cpu:8.2f} CPU s {wall:8.2f} s  {command}", flush=True)
    header = ("command", "before CPU s", "after CPU s", "after/before", "before s", "after s")
    print("\n| " + " | ".join(header) + " |")
    print("|---|---:|---:|---:|---:|---:|")
    for command in args.commands:
        (cb, wb), (ca, wa) = best[(command, "before")], best[(command, "after")]
        print(f"| `{command}` | {cb:.2f} | {ca:.2f} | {ca / cb:.2f} | {wb:.2f} | {wa:.2f} |")
    print(f"\nleast of {args.repeats} runs per tree, trees alternated; outputs in {args.log}")


if __name__ == "__main__":
    main()
