"""The Sphinx documentation builds with warnings as errors, notebooks executed, offline.

``sphinx-build -W -b html docs <tmp>`` executes the tutorial notebooks and their solutions
(MyST-NB; outputs cached in ``docs/_generated/jupyter_cache`` while a notebook's code is
unchanged), generates the method guide's table and the CLI tables, the API reference, and
renders every page.  Skipped when the documentation tools (the ``docs`` extra) are not installed.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
TOOLS = ("sphinx", "numpydoc", "myst_nb", "ipykernel", "sphinx-mathjax-offline")
MISSING = [m for m in TOOLS if importlib.util.find_spec(m) is None]


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    if MISSING:
        pytest.skip(
            f"documentation tools not installed ({', '.join(MISSING)}); "
            "install the 'docs' or 'test' extra: pip install -e '.[test]'"
        )
    tmp = tmp_path_factory.mktemp("docs")
    out = tmp / "html"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q"]
    cmd += ["-d", str(tmp / "doctrees"), str(DOCS), str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    log = f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    assert proc.returncode == 0, f"sphinx-build failed (exit {proc.returncode}):\n{log}"
    return out


def _page(html: Path, name: str) -> str:
    path = html / f"{name}.html"
    assert path.is_file(), f"{name}.html was not written"
    return path.read_text(encoding="utf-8")


@pytest.mark.slow
def test_every_page_is_written(html):
    pages = ["index", "notation", "theory", "method_guide", "cli", "api", "studies", "design"]
    pages += ["references", "tutorials/index"]
    for name in pages:
        _page(html, name)
    api = html / "_generated" / "api"
    for name in ("lowrank_ode.testing.check_robustness", "lowrank_ode.integrators.BUG"):
        assert (api / f"{name}.html").is_file(), f"no API page for {name}"


@pytest.mark.slow
def test_notebooks_ran_with_outputs_and_figures(html):
    for name in ("heat_equation", "klw_robustness", "mnist_dlrt", "test_your_integrator"):
        page = _page(html, f"tutorials/{name}")
        assert "cell_output" in page, f"tutorial {name} shows no output"
        assert "Exercises" in page and f"solutions/{name}_solutions.html" in page
        _page(html, f"tutorials/solutions/{name}_solutions")
    for name in ("heat_equation", "klw_robustness", "mnist_dlrt", "test_your_integrator"):
        page = _page(html, f"tutorials/{name}")
        assert re.search(r'<img[^>]+src="[^"]+\.png"', page), f"tutorial {name} has no figure"
    page = _page(html, "tutorials/test_your_integrator")
    assert "check_robustness: max/min error ratio" in page
    assert "is not robust to small singular values" in page  # the direct method's failure
    assert "empirical order 1." in page  # the wrong Strang's failure
    page = _page(html, "tutorials/mnist_dlrt")
    assert "dlrt-adaptive" in page and "passes/batch" in page


@pytest.mark.slow
def test_math_renders_offline(html):
    """MathJax comes with the pages: no script is loaded from another host."""
    page = _page(html, "theory")
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', page)
    assert any("mathjax" in s.lower() for s in scripts), scripts
    remote = [s for s in scripts if re.match(r"(https?:)?//", s)]
    assert not remote, f"scripts loaded over the network: {remote}"
    mathjax = [s for s in scripts if "mathjax" in s.lower()][0]
    assert (html / mathjax.split("?")[0]).is_file(), f"{mathjax} is not in the build"


@pytest.mark.slow
def test_generated_tables(html):
    guide = _page(html, "method_guide")
    for name in ("RankAdaptiveBUG", "ParallelBUG", "MidpointBUG", "Direct"):
        assert name in guide
    cli = _page(html, "cli")
    assert "init_core" in cli and "--finetune-epochs" in cli
    api = html / "_generated" / "api"
    text = _page(html, "api")
    assert "dlrt-single-pass" in text, "the table of training methods is not rendered"
    text = (api / "lowrank_ode.integrators.base.html").read_text(encoding="utf-8")
    rendered = "The stepping contract" in text and "_step_impl" in text
    assert rendered, "the subclassing contract is not rendered"
    text = (api / "lowrank_ode.integrators.html").read_text(encoding="utf-8")
    assert "Alg. 1." in text, "an integrator summary is cut at an abbreviation"
