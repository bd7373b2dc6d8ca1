"""The Sphinx documentation builds with warnings as errors, tutorials included.

``sphinx-build -W -b html docs <tmp>`` executes the tutorial scripts (``docs/tutorials/*.py``,
cached in ``docs/_generated`` while the scripts and the package are unchanged), generates the API
reference and renders every page.  Skipped when the documentation tools (the ``docs`` extra:
sphinx, numpydoc, myst-parser) are not installed.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
MISSING = [m for m in ("sphinx", "numpydoc", "myst_parser") if importlib.util.find_spec(m) is None]


@pytest.mark.slow
@pytest.mark.skipif(
    bool(MISSING),
    reason=f"documentation tools not installed ({', '.join(MISSING)}); "
    "install the 'docs' or 'test' extra: pip install -e '.[test]'",
)
def test_sphinx_build_with_warnings_as_errors(tmp_path):
    out = tmp_path / "html"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q"]
    cmd += ["-d", str(tmp_path / "doctrees"), str(DOCS), str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    log = f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    assert proc.returncode == 0, f"sphinx-build failed (exit {proc.returncode}):\n{log}"
    for page in ("index", "theory", "api", "studies", "design", "tutorials/index"):
        assert (out / f"{page}.html").is_file(), f"{page}.html was not written"
    api = out / "_generated" / "api"
    for name in ("lowrank_ode.testing.check_robustness", "lowrank_ode.integrators.BUG"):
        assert (api / f"{name}.html").is_file(), f"no API page for {name}"
    # the tutorials ran and their output is on the pages
    generated = DOCS / "_generated"
    text = (generated / "test_your_integrator.txt").read_text(encoding="utf-8")
    assert "check_robustness: max/min error ratio" in text
    assert "is not robust to small singular values" in text  # the direct method's failure
    assert "empirical order 1." in text  # the wrong Strang's failure
    for fig in ("heat_equation.png", "klw_robustness.png"):
        assert (generated / fig).stat().st_size > 10_000
    html = (out / "tutorials" / "test_your_integrator.html").read_text(encoding="utf-8")
    assert "is not robust to small singular values" in html
