"""Sphinx configuration for the l0bayes documentation.

Build with ``make docs`` (warnings are errors). The tutorials in ``docs/tutorials/`` are run by
sphinx-gallery on every build, so a tutorial that no longer runs fails the build.
"""

import os
import re
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
