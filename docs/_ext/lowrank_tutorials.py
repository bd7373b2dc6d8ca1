"""Sphinx extension: execute the tutorial scripts ``docs/tutorials/*.py`` at build time.

Each script runs in a fresh Python process (the interpreter running Sphinx) with single-threaded
BLAS, the Agg matplotlib backend and ``LOWRANK_DOCS_OUT`` pointing at ``docs/_generated``; its
standard output is written to ``_generated/<script>.txt`` and the figures it saves land next to
it.  The pages include them with ``literalinclude`` and ``image``.

A script whose source, and the sources of ``lowrank_ode``, are unchanged since its last
successful run is not run again (a hash is stored in ``_generated/<script>.stamp``); set
``LOWRANK_DOCS_RERUN=1`` to force every run.  A failing script fails the build with its
standard error.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _digest(script: Path, package: Path) -> str:
    h = hashlib.sha256(script.read_bytes())
    for f in sorted(package.rglob("*.py")):
        h.update(str(f.relative_to(package)).encode())
        h.update(f.read_bytes())
    h.update(sys.version.encode())
    return h.hexdigest()


def run_tutorials(app: Any) -> None:
    src = Path(app.srcdir)
    out = src / app.config.tutorials_output
    out.mkdir(parents=True, exist_ok=True)
    package = src.parent / "lowrank_ode"
    env = dict(os.environ)
    env.update(
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        MPLBACKEND="Agg",
        LOWRANK_DOCS_OUT=str(out),
        PYTHONHASHSEED="0",
    )
    force = os.environ.get("LOWRANK_DOCS_RERUN", "") not in ("", "0")
    for script in sorted((src / app.config.tutorials_dir).glob("*.py")):
        stamp = out / f"{script.stem}.stamp"
        txt = out / f"{script.stem}.txt"
        digest = _digest(script, package)
        if not force and txt.exists() and stamp.exists() and stamp.read_text() == digest:
            logger.info(f"tutorial {script.name}: unchanged, not re-run")
            continue
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(script)],
            cwd=out,
            env=env,
            capture_output=True,
            text=True,
            timeout=app.config.tutorials_timeout,
        )
        if proc.returncode != 0:
            raise ExtensionError(
                f"tutorial {script.name} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
            )
        txt.write_text(proc.stdout)
        stamp.write_text(digest)
        logger.info(f"tutorial {script.name}: ran in {time.perf_counter() - t0:.1f} s")


def setup(app: Any) -> dict[str, Any]:
    app.add_config_value("tutorials_dir", "tutorials", "env")
    app.add_config_value("tutorials_output", "_generated", "env")
    app.add_config_value("tutorials_timeout", 300, "env")
    app.connect("builder-inited", run_tutorials)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
