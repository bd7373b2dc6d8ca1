"""Sphinx configuration of the lowrank_ode documentation.

Build (warnings are errors)::

    .venv/bin/sphinx-build -W -b html docs docs/_build/html

The tutorials (``docs/tutorials/*.py``) are executed during the build by the local extension
``_ext/lowrank_tutorials.py``; their output and figures go to ``docs/_generated`` (not tracked),
together with the autosummary pages of the API reference.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(ROOT))  # the package, when it is not installed

import lowrank_ode  # noqa: E402

project = "lowrank_ode"
author = "the lowrank_ode developers"
copyright = "the lowrank_ode developers, BSD-3-Clause"
version = release = lowrank_ode.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "lowrank_tutorials",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_generated/*.md", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# -- MyST ---------------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# -- autodoc / autosummary / numpydoc -----------------------------------------------------------
autosummary_generate = True
autosummary_ignore_module_all = False  # document what each module exports in __all__
autosummary_imported_members = True
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpydoc sections carry the types; signatures stay readable
autodoc_default_options = {"show-inheritance": True}
autoclass_content = "class"

numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = True

# no network access during the build
intersphinx_mapping: dict[str, tuple[str, None]] = {}

# -- tutorials (local extension) ----------------------------------------------------------------
tutorials_dir = "tutorials"
tutorials_output = "_generated"
tutorials_timeout = 300

# -- HTML ---------------------------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"lowrank_ode {release}"
html_static_path: list[str] = []
html_theme_options = {"description": "Dynamical low-rank approximation and training in NumPy"}

# "lowrank_ode.Truncation" and the module "lowrank_ode.truncation" would differ only in case
autosummary_filename_map = {"lowrank_ode.Truncation": "lowrank_ode.Truncation-class"}


# -- studies page: figures and tables in studies/results that studies.md does not name ----------
def _write_more_studies(app: object) -> None:
    results = ROOT / "studies" / "results"
    named = (HERE / "studies.md").read_text(encoding="utf-8")
    lines: list[str] = []
    for path in sorted(results.rglob("*")):
        rel = path.relative_to(ROOT).as_posix()
        if path.suffix not in (".png", ".md") or rel in named:
            continue
        lines += [f"**`{rel}`**", ""]
        if path.suffix == ".png":
            lines += [f"```{{image}} ../{rel}", f":alt: {path.stem}", ":width: 100%", "```", ""]
        else:
            lines += [f"```{{include}} ../{rel}", "```", ""]
    if not lines:
        lines = ["None at the moment: every result in `studies/results` is shown above.", ""]
    out = HERE / "_generated"
    out.mkdir(exist_ok=True)
    target = out / "studies_more.md"
    text = "\n".join(lines)
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


# -- hooks -------------------------------------------------------------------------------------
def setup(app: object) -> None:
    app.connect("builder-inited", _write_more_studies)  # type: ignore[attr-defined]
