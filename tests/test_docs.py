"""The API reference covers every public module (``make docs`` builds and checks the rest)."""

import re
import runpy
import sys
from pathlib import Path

import pytest

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


def test_no_api_page_repeats_its_packages_description():
    """Issue 28: each page wrote a description and then the package docstring said it again;
    a page's title is followed directly by the package's docstring."""
    for page in (ROOT / "docs" / "api").glob("*.rst"):
        if page.name in ("index.rst", "toplevel.rst"):
            continue
        text = page.read_text()
        head = re.match(r"``[^`]+``\n=+\n\n(.*?)\.\. automodule:: ", text, re.S)
        assert head is not None and head.group(1).strip() == "", page.name


def test_the_docs_math_is_served_from_the_site_itself(monkeypatch):
    """Issue 28: MathJax came from a CDN, so offline the pages showed raw TeX."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # conf.py adds the repository
    monkeypatch.setenv("MPLBACKEND", "Agg")  # and sets this
    conf = runpy.run_path(str(ROOT / "docs" / "conf.py"))
    assert not conf["mathjax_path"].startswith(("http:", "https:", "//"))
    assert conf["sphinx_gallery_conf"]["write_computation_times"] is False  # CDN pages
    try:
        source = conf["mathjax_source"]()
    except RuntimeError:
        pytest.skip("the docs extra (MathJax's files) is not installed")
    script = conf["mathjax_path"].removeprefix("mathjax/")
    assert script in conf["MATHJAX_PARTS"] and (source / script).is_file()
    assert all((source / part).exists() for part in conf["MATHJAX_PARTS"])
