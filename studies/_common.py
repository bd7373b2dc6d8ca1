"""Shared plumbing of the studies: resumable JSON store, slope checks, figures, tables.

Every study saves *every plotted number* to ``out/<name>.json``.  Long runs save each
configuration's result as soon as it finishes (:class:`Store`) and, when started again with the
same parameters, resume from what is saved.  Non-finite numbers (a method that broke down is
recorded as ``inf``) are written as the strings ``"inf"``, ``"-inf"``, ``"nan"`` so that the files
are strict JSON, and read back as floats.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lowrank_ode._io import atomic_open
from lowrank_ode._threads import thread_info
from lowrank_ode.testing import empirical_order

__all__ = [
    "Store",
    "to_jsonable",
    "from_jsonable",
    "load_results",
    "fit_slope",
    "assert_slope",
    "assert_true",
    "savefig",
    "slope_guide",
    "progress_iter",
    "markdown_table",
    "fmt",
    "Timer",
    "study_main",
    "code_version",
]


def code_version() -> str:
    """The commit of the library that produced a result (``+dirty`` with uncommitted changes
    under ``lowrank_ode/``), or ``lowrank_ode.__version__`` outside a git checkout."""
    import subprocess

    import lowrank_ode

    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        run = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=10
        )
        return run.stdout.strip()

    try:
        head = git("rev-parse", "--short=7", "HEAD")
        dirty = git("status", "--porcelain", "--", "lowrank_ode")
    except (OSError, subprocess.SubprocessError):
        return f"lowrank_ode {lowrank_ode.__version__}"
    return head + ("+dirty" if dirty else "")


# ----------------------------------------------------------------------------- JSON
def to_jsonable(obj: Any) -> Any:
    """Convert NumPy scalars/arrays, tuples and non-finite floats into strict-JSON values."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        if math.isfinite(x):
            return x
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(obj, Path):
        return str(obj)
    return obj


_NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def from_jsonable(obj: Any) -> Any:
    """Inverse of :func:`to_jsonable` for the non-finite markers."""
    if isinstance(obj, dict):
        return {k: from_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_jsonable(v) for v in obj]
    if isinstance(obj, str) and obj in _NONFINITE:
        return _NONFINITE[obj]
    return obj


def _write_json(path: Path, data: Any) -> None:
    with atomic_open(path, "w") as fh:
        json.dump(to_jsonable(data), fh, indent=1, allow_nan=False)


def load_results(path: str | Path) -> dict:
    """Read a study's JSON file (non-finite markers restored)."""
    with open(path) as fh:
        return from_jsonable(json.load(fh))


class Store:
    """Resumable result store for one study: ``out/<name>.json``.

    Parameters
    ----------
    out : Path or None
        Output folder; ``None`` keeps everything in memory (nothing is written).
    name : str
        Study name (file ``<name>.json``).
    meta : dict
        Parameters of the run.  A saved file is reused only when its ``meta`` is identical,
        so a quick run never resumes from a full one and vice versa.

    Notes
    -----
    The file holds ``{"meta": ..., "configs": {key: result}, "complete": bool, ...}``.  Each
    :meth:`put` rewrites it atomically, so an interrupted run loses at most the configuration
    that was being computed.
    """

    def __init__(self, out: Path | None, name: str, meta: dict) -> None:
        self.path = None if out is None else Path(out) / f"{name}.json"
        self.meta = from_jsonable(to_jsonable(meta))
        self.data: dict[str, Any] = {"meta": self.meta, "configs": {}, "complete": False}
        self.data["threads"] = thread_info()  # BLAS thread policy and pools of this run
        self.resumed = 0
        if self.path is not None and self.path.exists():
            try:
                old = load_results(self.path)
            except (OSError, ValueError):
                old = None
            if old is not None and _same(old.get("meta"), self.meta):
                self.data["configs"] = old.get("configs", {})
                self.resumed = len(self.data["configs"])

    def __contains__(self, key: str) -> bool:
        return key in self.data["configs"]

    def get(self, key: str) -> Any:
        """The saved result of configuration ``key`` (KeyError if absent)."""
        return self.data["configs"][key]

    def put(self, key: str, value: Any) -> None:
        """Record configuration ``key`` and save the file."""
        self.data["configs"][key] = from_jsonable(to_jsonable(value))
        self.save()

    def save(self) -> None:
        """Write the file (no-op without an output folder)."""
        if self.path is not None:
            _write_json(self.path, self.data)

    def finish(self, **extra: Any) -> dict:
        """Attach derived results, mark the run complete, save, and return the results dict."""
        self.data.update(from_jsonable(to_jsonable(extra)))
        self.data["complete"] = True
        self.save()
        return self.data


def _same(a: Any, b: Any) -> bool:
    return json.dumps(to_jsonable(a), sort_keys=True) == json.dumps(to_jsonable(b), sort_keys=True)


# ----------------------------------------------------------------------------- configs
#: The TrainConfig defaults under which the stored MNIST runs were made (before the defaults
#: became the paper's recipe: float32, product start, fine-tuning).  The studies build their
#: configurations on top of these, so that every stored run keeps its configuration, and
#: resuming or extending a study never retrains a finished run with other settings.
STUDY_DEFAULTS: dict[str, Any] = {
    "tau": 0.11,
    "rank": 100,
    "epochs": 1,
    "batch_size": 256,
    "lr": 1e-3,
    "optimizer": "adam",
    "finetune_epochs": 0,
    "init_core": "svd",
    "min_rank": 1,
    "max_rank_fraction": 1.0,  # no cap (the LeNet-5 τ grid at the official budget sets 0.5)
    "dtype": "float64",
}


def study_config(**kw: Any) -> Any:
    """A :class:`~lowrank_ode.dlrt.TrainConfig` of ``kw`` over :data:`STUDY_DEFAULTS`."""
    from lowrank_ode.dlrt import TrainConfig

    return TrainConfig(**{**STUDY_DEFAULTS, **kw})


# ----------------------------------------------------------------------------- checks
def fit_slope(hs: Sequence[float], errors: Sequence[float]) -> float:
    """Least-squares slope of log(error) against log(h); ``nan`` if any error is not finite > 0."""
    e = np.asarray(errors, float)
    if e.size < 2 or np.any(~np.isfinite(e)) or np.any(e <= 0):
        return math.nan
    return empirical_order(hs, e)


def assert_slope(
    hs: Sequence[float], errors: Sequence[float], expected: float, tol: float, what: str
) -> float:
    """Assert ``|slope − expected| ≤ tol`` for the log–log fit of ``errors`` against ``hs``.

    Raises
    ------
    AssertionError
        With the measured slope, the expectation and the data.
    """
    p = fit_slope(hs, errors)
    if not abs(p - expected) <= tol:
        pairs = ", ".join(f"h={h:.3g}: {e:.3e}" for h, e in zip(hs, errors, strict=False))
        raise AssertionError(
            f"{what}: empirical order {p:.2f}, expected {expected} ± {tol} ({pairs})"
        )
    return p


def assert_true(cond: bool, message: str) -> None:
    """``assert`` that survives ``python -O``."""
    if not cond:
        raise AssertionError(message)


# ----------------------------------------------------------------------------- figures
def savefig(fig: Any, out: Path, name: str) -> list[Path]:
    """Save ``fig`` as ``out/<name>.png`` (110 dpi) and ``out/<name>.pdf``; closes it."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    for ax in fig.axes:  # minor-tick labels of log axes overlap: keep the decades only
        if ax.get_xscale() == "log":
            ax.xaxis.set_minor_formatter(NullFormatter())
        if ax.get_yscale() == "log":
            ax.yaxis.set_minor_formatter(NullFormatter())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=110, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths


def slope_guide(
    ax: Any,
    x: Sequence[float],
    y_anchor: float,
    p: float,
    label: str | None = None,
    **kw: Any,
) -> None:
    """Draw ``y = y_anchor (x / x[0])^p`` over the range of ``x`` (a slope-``p`` guide)."""
    x = np.asarray(sorted(x, reverse=True), float)
    style = {"color": "0.4", "ls": ":", "lw": 1.2}
    style.update(kw)
    ax.plot(x, y_anchor * (x / x[0]) ** p, label=label or f"slope {p:g}", **style)


def progress_iter(items: Iterable[Any], progress: bool, desc: str) -> Iterable[Any]:
    """Wrap ``items`` in a tqdm bar when ``progress`` (configurations of a study)."""
    if not progress:
        return items
    from tqdm.auto import tqdm

    items = list(items)
    return tqdm(items, desc=desc, unit="cfg", leave=False)


# ----------------------------------------------------------------------------- tables
def fmt(x: Any, digits: int = 2) -> str:
    """Short scientific formatting; ``—`` for None, ``fail`` for inf/nan."""
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    x = float(x)
    if not math.isfinite(x):
        return "fail (inf)"
    return f"{x:.{digits}e}"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


class Timer:
    """Context manager measuring wall time in seconds (``.elapsed``)."""

    def __enter__(self) -> Timer:
        self.t0 = time.perf_counter()
        self.elapsed = 0.0
        return self

    def __exit__(self, *exc: Any) -> None:
        self.elapsed = time.perf_counter() - self.t0


def study_main(module: Any, doc: str | None) -> None:
    """``python -m studies.<name> [--quick] [--out DIR]``: run, print the table, plot."""
    import argparse

    p = argparse.ArgumentParser(description=doc)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="studies/results")
    a = p.parse_args()
    res = module.run(a.quick, a.out)
    print(module.table(res))
    module.plot(res, a.out)
