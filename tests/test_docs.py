"""The API reference covers every public module (``make docs`` builds and checks the rest)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_module_has_an_api_entry():
    documented = set()
    for page in (ROOT / "docs" / "api").glob("*.rst"):
        documented |= set(re.findall(r"^\.\. automodule:: (\S+)", page.read_text(), re.M))
    modules = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in (ROOT / "l0bayes").rglob("*.py")
        if not path.name.startswith("_")
    }
    missing = sorted(modules - documented)
    assert not missing, f"add these modules to a page of docs/api/: {missing}"
