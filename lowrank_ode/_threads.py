"""BLAS thread pools: one policy for every entry point, applied with threadpoolctl.

NumPy and SciPy wheels each bundle their own OpenBLAS, each with a pool of one thread per core.
The library's GEMMs run in NumPy's pool and its QR/SVD (LAPACK through SciPy) in SciPy's. When
both pools are multithreaded their spinning workers fight over the same cores: on a 2-core
machine a fixed-rank DLRT step of the MNIST MLP took 3× longer than with either pool on one
thread (``docs/design.md``, "BLAS threads").

The policy (``threads``):

``"auto"`` (default)
    NumPy's BLAS keeps its own thread count (all cores: it runs the wide GEMMs of the dense
    layers); SciPy's bundled BLAS (which only factors thin and small matrices here) runs on one
    thread, so the two pools never oversubscribe the cores.
``N`` (int ≥ 1)
    NumPy's BLAS on ``N`` threads, SciPy's on one.

Where NumPy and SciPy share one BLAS library (conda's MKL or OpenBLAS, a distribution's), only
that library is set and nothing is restricted under ``"auto"``.  The pools of other packages
loaded in the same process (a deep-learning framework, say) are left alone.  threadpoolctl (the
library scikit-learn uses for the same purpose) finds the pools at run time whatever BLAS the
wheels bring.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["blas_threads", "check_threads", "thread_info", "with_threads"]

Threads = int | str
#: the policy of the innermost :func:`blas_threads` block (None outside any)
_IN_FORCE: ContextVar[Threads | None] = ContextVar("lowrank_ode_threads", default=None)


def check_threads(threads: Any) -> Threads:
    """Validate a ``threads`` argument: ``"auto"`` or an integer ≥ 1.

    Examples
    --------
    >>> check_threads("auto"), check_threads(2)
    ('auto', 2)
    """
    if isinstance(threads, str):
        if threads == "auto":
            return threads
        if threads.isdigit() and int(threads) >= 1:
            return int(threads)
    elif isinstance(threads, (int, np.integer)) and not isinstance(threads, bool):
        if threads >= 1:
            return int(threads)
    raise ValueError(f"threads must be 'auto' or an integer >= 1, got {threads!r}")


def _controller() -> Any:
    # SciPy's BLAS is loaded lazily (at the first QR/SVD); load it now so that the policy sees
    # and sets its pool before it first runs.
    import scipy.linalg  # noqa: F401
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _belongs_to(lib: Any, package: str) -> bool:
    """Whether a threadpoolctl library controller is a library bundled with ``package``."""
    module = __import__(package)
    root = Path(module.__file__).resolve().parent
    path = Path(lib.filepath).resolve()
    # wheels: site-packages/<pkg>.libs/ (Linux), <pkg>/.dylibs (macOS), <pkg>.libs or <pkg>/ (Win)
    return root in path.parents or (root.parent / f"{package}.libs") in path.parents


def _is_numpys(lib: Any) -> bool:
    """Whether a threadpoolctl library controller is the BLAS that NumPy links."""
    return _belongs_to(lib, "numpy")


def _plan(threads: Threads) -> list[tuple[Any, int]]:
    """The (library controller, thread count) pairs that ``threads`` asks for."""
    blas = [lib for lib in _controller().lib_controllers if lib.user_api == "blas"]
    numpys = [lib for lib in blas if _is_numpys(lib)]
    # SciPy's own BLAS when its wheel bundles one; the pools of other packages (a framework
    # loaded beside us) are theirs and left alone
    scipys = [lib for lib in blas if _belongs_to(lib, "scipy") and lib not in numpys]
    if not numpys and len(blas) == 1:  # one shared system BLAS (conda, a distribution)
        numpys = blas
    plan = [(lib, 1) for lib in scipys]
    if threads != "auto":
        plan += [(lib, int(threads)) for lib in numpys]
    return plan


@contextmanager
def blas_threads(threads: Any = "auto") -> Iterator[dict[str, Any]]:
    """Apply the thread policy (see the module docstring) inside a ``with`` block.

    Yields :func:`thread_info` as in force inside the block; the previous thread counts are
    restored on exit.

    Examples
    --------
    >>> import numpy as np
    >>> with blas_threads(1) as info:
    ...     _ = np.ones((50, 50)) @ np.ones((50, 50))
    >>> info["threads"]
    1
    """
    threads = check_threads(threads)
    saved = []
    token = _IN_FORCE.set(threads)
    try:
        for lib, n in _plan(threads):
            saved.append((lib, lib.num_threads))
            lib.set_num_threads(n)
        yield thread_info()
    finally:
        for lib, n in reversed(saved):
            lib.set_num_threads(n)
        _IN_FORCE.reset(token)


def thread_info() -> dict[str, Any]:
    """The policy in force and the thread count of every BLAS pool loaded (stored in results).

    ``threads`` is the policy of the innermost :func:`blas_threads` block, ``None`` outside any
    (the BLAS libraries' own defaults).

    Examples
    --------
    >>> with blas_threads("auto"):
    ...     info = thread_info()
    >>> info["threads"], sorted(info)
    ('auto', ['blas', 'cpu_count', 'threads'])
    """
    pools = [
        {
            "library": "numpy" if _is_numpys(lib) else Path(lib.filepath).name,
            "internal_api": lib.internal_api,
            "num_threads": lib.num_threads,
        }
        for lib in _controller().lib_controllers
        if lib.user_api == "blas"
    ]
    return {"threads": _IN_FORCE.get(), "cpu_count": os.cpu_count(), "blas": pools}


def with_threads(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Give ``fn`` a keyword argument ``threads="auto"`` that runs it under :func:`blas_threads`.

    Examples
    --------
    >>> @with_threads
    ... def work(n):
    ...     return n
    >>> work(3, threads=1)
    3
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, threads: Any = "auto", **kwargs: Any) -> Any:
        with blas_threads(threads):
            return fn(*args, **kwargs)

    sig = inspect.signature(fn)
    param = inspect.Parameter("threads", inspect.Parameter.KEYWORD_ONLY, default="auto")
    wrapper.__signature__ = sig.replace(parameters=[*sig.parameters.values(), param])
    return wrapper
