"""Sphinx configuration of the lowrank_ode documentation.

Build (warnings are errors)::

    .venv/bin/sphinx-build -W -b html docs docs/_build/html

The tutorials and their solutions (``docs/tutorials/**/*.md``) are Jupyter notebooks kept as
MyST markdown; MyST-NB executes them during the build (single-threaded BLAS), caching the outputs
in ``docs/_generated/jupyter_cache/<hash of the package sources>`` while neither the notebook's
code nor the package changes (set ``LOWRANK_DOCS_RERUN=1`` to execute every notebook).  The
method guide's comparison table and the CLI page's tables are generated at build time by
``_ext/method_guide.py`` and ``_ext/cli_tables.py``.  MathJax is served from the build's own
``_static`` folder (``sphinx-mathjax-offline``), so the pages work without a network.
"""

from __future__ import annotations

import hashlib
import os
import shutil
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
    "sphinx-mathjax-offline",  # MathJax 3 copied into _static: formulas render offline
    "numpydoc",
    "myst_nb",  # MyST markdown and notebooks (includes myst_parser)
    "method_guide",  # _ext: the comparison table of the method guide
    "cli_tables",  # _ext: option tables and --help texts of the CLI page
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "_generated/*.md",
    "_generated/jupyter_cache",
    "Thumbs.db",
    ".DS_Store",
]
templates_path = ["_templates"]

# -- MyST ---------------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# -- autodoc / autosummary / numpydoc -----------------------------------------------------------
autosummary_generate = True
# autosummary never deletes the pages of objects that no longer exist, and Sphinx -W then fails
# on them ("not included in any toctree"): start every build from a clean API folder.
shutil.rmtree(HERE / "_generated" / "api", ignore_errors=True)
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

# -- notebooks (MyST-NB) ------------------------------------------------------------------------
# the kernels inherit the environment: one BLAS thread, no GUI backend
os.environ.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
os.environ.update(MPLBACKEND="module://matplotlib_inline.backend_inline", PYTHONHASHSEED="0")
nb_execution_mode = (
    "force" if os.environ.get("LOWRANK_DOCS_RERUN", "") not in ("", "0") else "cache"
)


def _package_digest() -> str:
    """Hash of the package's sources: a change of the library invalidates the cached outputs."""
    h = hashlib.sha256()
    for f in sorted((ROOT / "lowrank_ode").rglob("*.py")):
        h.update(f.relative_to(ROOT).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


_CACHES = HERE / "_generated" / "jupyter_cache"
nb_execution_cache_path = str(_CACHES / _package_digest())
for _old in _CACHES.glob("*") if _CACHES.is_dir() else []:
    if _old.name != Path(nb_execution_cache_path).name:
        shutil.rmtree(_old, ignore_errors=True)  # outputs of an older version of the package
nb_execution_timeout = 300
nb_execution_raise_on_error = True  # a failing cell fails the build
nb_execution_show_tb = True
nb_merge_streams = True

# -- HTML ---------------------------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"lowrank_ode {release}"
html_static_path: list[str] = []
html_theme_options = {"description": "Dynamical low-rank approximation and training in NumPy"}

# autosummary cuts a summary at the first ". "; these abbreviations of the citations in the
# integrators' first lines ("Alg. 1", "Sec. 3", "SIAM J. Sci. Comput.") do not end a sentence
import sphinx.ext.autosummary as _autosummary  # noqa: E402

_autosummary.WELL_KNOWN_ABBREVIATIONS = (
    *_autosummary.WELL_KNOWN_ABBREVIATIONS,
    *(f" {a}." for a in ("Alg", "Sec", "Prop", "Thm", "Fig", "eq", "eqs", "Eq", "vs")),
    *(f" {a}." for a in ("J", "Sci", "Comput", "Numer", "Anal", "Appl", "Math", "Matrix")),
)

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
