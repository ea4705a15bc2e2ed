"""The package's shape: no import cycle between its modules, no private name imported across
modules, an ``__all__`` in every subpackage, and the old flat module paths still importable
with a ``DeprecationWarning``. (The layering itself is ``make lint``'s import-linter contract.)"""

from __future__ import annotations

import ast
import importlib
import sys
import warnings
from pathlib import Path

import pytest

import l0bayes
from l0bayes._compat import MOVED

PACKAGE = Path(l0bayes.__file__).parent


def test_no_import_cycle_between_modules():
    grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (the dev extra)")
    graph = grimp.build_graph("l0bayes", exclude_type_checking_imports=True)
    cycles = []
    for importer in sorted(graph.modules):
        if importer == "l0bayes":  # the root re-exports the public API from everything
            continue
        for imported in graph.find_modules_directly_imported_by(importer):
            if imported != "l0bayes" and graph.chain_exists(imported=importer, importer=imported):
                cycles.append(f"{importer} <-> {imported}")
    assert not cycles, cycles


def _from_imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("l0bayes"):
            yield node


def test_no_private_name_is_imported_across_modules():
    private = [
        f"{path.relative_to(PACKAGE)}:{node.lineno} {node.module}.{alias.name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for node in _from_imports(path)
        for alias in node.names
        if alias.name.startswith("_") and alias.name != "__version__"
    ]
    assert not private, private


def test_at_most_eight_modules_at_the_top_and_an_all_in_every_subpackage():
    top = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= 8, top
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        module = importlib.import_module(f"l0bayes.{init.parent.name}")
        assert module.__all__, init
        assert all(hasattr(module, name) for name in module.__all__), init


#: Old module paths that are subpackages now: kept, not deprecated.
KEPT = {"l0bayes.data", "l0bayes.linear_model", "l0bayes.nn"}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_path_warns_and_keeps_its_names(old):
    if old not in KEPT:
        sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    deprecated = any(issubclass(w.category, DeprecationWarning) for w in caught)
    assert deprecated == (old not in KEPT), old
    for home, names in MOVED[old].items():
        new = importlib.import_module(home)
        if old in KEPT:  # a subpackage now: its own modules' public API (their __all__)
            if not home.startswith(f"{old}."):
                continue
            names = [name for name in names if name in getattr(new, "__all__", ())]
        for name in names:
            assert getattr(module, name) is getattr(new, name), f"{old}.{name}"
