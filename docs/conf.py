"""Sphinx configuration for the l0bayes documentation.

Build with ``make docs`` (warnings are errors). The tutorials in ``docs/tutorials/`` are run by
sphinx-gallery on every build, so a tutorial that no longer runs fails the build.

The math is typeset in the browser by MathJax 3, served from the built site itself
(``_static/mathjax/``, copied at build time from the ``django-static-mathjax`` package of the
``docs`` extra, which ships MathJax's files), so the pages render their formulas offline; no
page loads anything from the network.
"""

import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

from l0bayes import __version__  # noqa: E402

project = "l0bayes"
author = "the l0bayes maintainers"
copyright = "2026, the l0bayes maintainers"
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_gallery.gen_gallery",
]

# No network: intersphinx is enabled for explicit ``:external:`` roles only, with no mappings,
# so nothing is ever downloaded.
intersphinx_mapping: dict = {}
intersphinx_disabled_reftypes = ["*"]

# MathJax from the built site (module docstring): the component that reads TeX and writes
# HTML with CSS, and the parts it loads on demand (fonts, TeX extensions, its menu).
mathjax_path = "mathjax/tex-chtml.js"
MATHJAX_PARTS = ("tex-chtml.js", "output/chtml", "input/tex", "ui", "a11y")


def mathjax_source() -> Path:
    """MathJax's ``es5`` folder in the installed ``django-static-mathjax`` package."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "the docs need MathJax's files: install the docs extra (pip install -e '.[docs]', "
            "which make docs does)"
        )
    return Path(spec.origin).parent / "static" / "mathjax" / "es5"


def _copy_mathjax(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    source, target = mathjax_source(), Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, target / part, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / part, target / part)


autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_mock_imports: list[str] = []

exclude_patterns = ["_build", "tutorials/README.rst", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []
html_theme = "alabaster"
html_static_path: list[str] = []
html_theme_options = {"description": "L0 regularisation as a Bayesian model in Pyro"}

sphinx_gallery_conf = {
    "examples_dirs": ["tutorials"],
    "gallery_dirs": ["auto_tutorials"],
    "filename_pattern": r"/plot_",  # every tutorial is executed
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "reset_modules": ("matplotlib",),
    "show_memory": False,
    "plot_gallery": "True",
    # its execution-times pages load DataTables and Bootstrap from CDNs (module docstring)
    "write_computation_times": False,
}


# --- targeted work-arounds -------------------------------------------------------------------
# scikit-learn generates ``set_*_request`` methods (metadata routing) on every estimator; their
# docstrings cross-reference sklearn's own glossary, which does not exist here.
_SKLEARN_GENERATED = re.compile(r"^set_\w+_request$")


def _skip_member(app, what, name, obj, skip, options):
    if _SKLEARN_GENERATED.match(name):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("build-finished", _copy_mathjax)
