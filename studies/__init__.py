"""Studies that regenerate the classical DLRA figures and the theorem-validation plots.

Each study is a module with ``run(quick=False, out=None, progress=True) -> dict``,
``plot(results, out)`` and ``table(results) -> str``; :data:`STUDIES` is the registry and
:func:`reproduce` runs a selection of them (the ``lowrank-ode reproduce`` command).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from lowrank_ode._io import write_text_atomic
from lowrank_ode._threads import with_threads

from . import (
    approximation,
    descent,
    klw_robustness,
    midpoint_order,
    mnist_dlrt,
    mnist_robustness,
    schrodinger_adaptive,
    timing,
)
from ._common import Timer

__all__ = ["STUDIES", "reproduce"]

STUDIES: dict[str, ModuleType] = {
    "klw_robustness": klw_robustness,
    "schrodinger_adaptive": schrodinger_adaptive,
    "midpoint_order": midpoint_order,
    "approximation": approximation,
    "descent": descent,
    "mnist_dlrt": mnist_dlrt,
    "mnist_robustness": mnist_robustness,
    "timing": timing,
}


@with_threads
def reproduce(
    names: Sequence[str] | str | None = None,
    quick: bool = False,
    out: str | Path = "studies/results",
    progress: bool = True,
    verbose: bool = True,
    workers: int | None = None,
    scheduler: str | None = None,
) -> dict[str, dict]:
    """Run studies, save their JSON, figures (PNG + PDF) and tables under ``out``.

    Parameters
    ----------
    names : str or sequence of str, optional
        Studies to run (keys of :data:`STUDIES`); all of them when ``None``.
    quick : bool
        Small sizes and few step sizes; each study then asserts its qualitative claims
        (raises ``AssertionError`` with a message when a claim fails).
    out : str or Path
        Output folder.  A full run resumes from the configurations already saved there.
    progress : bool
        tqdm bars over the configurations.
    verbose : bool
        Print each study's table and wall time.
    workers : int, optional
        Run the independent training runs of the grid studies (``mnist_dlrt``,
        ``mnist_robustness``) on a local Dask cluster of this many single-threaded worker
        processes (the ``distributed`` extra); the other studies run as usual.
    scheduler : str, optional
        Send those runs to a running Dask scheduler at this address instead.
    threads : "auto" or int, keyword-only
        BLAS thread policy (:mod:`lowrank_ode._threads`); every saved JSON records it.

    Returns
    -------
    dict
        ``{name: results}``; each results dict also records ``wall_time_s``.  A grid study
        whose grid is not finished has ``results["_grid"]["state"] == "partial"``.
    """
    if names is None:
        names = list(STUDIES)
    elif isinstance(names, str):
        names = [names]
    unknown = [n for n in names if n not in STUDIES]
    if unknown:
        raise ValueError(f"unknown studies {unknown}; choose from {sorted(STUDIES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for name in names:
        mod = STUDIES[name]
        with Timer() as tm:
            kw = {}
            if (workers is not None or scheduler is not None) and _takes_cluster(mod):
                kw = {"workers": workers, "scheduler": scheduler}
            elif workers is not None or scheduler is not None:
                print(f"{name}: no grid of independent runs, run in this process", file=sys.stderr)
            res = mod.run(quick=quick, out=out, progress=progress, **kw)
            mod.plot(res, out)
            text = mod.table(res)
        res["wall_time_s"] = tm.elapsed
        write_text_atomic(out / f"{name}_table.md", text + "\n")
        results[name] = res
        if verbose:
            grid = res.get("_grid", {})
            state = (
                f", grid {grid['state']} ({grid['finished']}/{grid['total']} runs)" if grid else ""
            )
            print(f"== {name} ({'quick' if quick else 'full'}): {tm.elapsed:.1f} s{state}")
            print(text)
    return results


def _takes_cluster(mod: ModuleType) -> bool:
    """The study's ``run`` accepts ``workers`` and ``scheduler`` (a grid of training runs)."""
    params = inspect.signature(mod.run).parameters
    return "workers" in params and "scheduler" in params
