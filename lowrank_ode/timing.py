"""Timing helpers shared by the benchmarks and the timing study.

* :func:`median_time` — median wall-clock seconds of a call over repeats, after warm-up calls;
* :func:`matmul_share` — the share of that time spent in the layers' matrix products;
* :func:`measure_mlp` — seconds per DLRT training step and per prediction pass of a wide MLP.

Numbers are machine- and load-dependent: measure on a quiet machine, with BLAS threads fixed
before NumPy is imported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["median_time", "matmul_share", "measure_mlp"]


def median_time(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls, after ``warmup`` untimed calls.

    Parameters
    ----------
    fn : callable
        Called without arguments.
    repeats : int
        Timed calls (≥ 1).
    warmup : int
        Untimed calls first (first-touch allocations, LAPACK workspace queries, caches).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats!r}, {warmup!r}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def matmul_share(fn: Callable[[], Any], repeats: int) -> float:
    """Fraction of the time of ``fn()`` spent in :func:`lowrank_ode.nn._ops.matmul`.

    The layers' matrix products go through that one function; it is wrapped with a timer for
    the duration of the measurement (one warm-up call, then ``repeats`` timed calls).
    """
    from .nn import _ops

    acc = [0.0]
    orig = _ops.matmul

    def timed(a: Any, b: Any) -> Any:
        t0 = time.perf_counter()
        out = orig(a, b)
        acc[0] += time.perf_counter() - t0
        return out

    _ops.matmul = timed
    try:
        fn()
        acc[0] = 0.0
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        total = time.perf_counter() - t0
    finally:
        _ops.matmul = orig
    return acc[0] / total


def measure_mlp(width: int, rank: int | None, repeats: int, dtype: str = "float32") -> dict:
    """Seconds per training step and per prediction pass of a 5 × ``width`` MLP, batch 500.

    ``rank=None``: the dense network; otherwise fixed-rank DLRT (SGD) at ``rank``.  Returns
    ``{"train_s": …, "predict_s": …}`` (medians, see :func:`median_time`).
    """
    from .dlrt import TrainConfig, Trainer

    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, width)).astype(dtype)
    y = rng.integers(0, 10, 500)
    cfg = TrainConfig(
        method="dense" if rank is None else "dlrt",
        rank=rank or 1,
        widths=(width,) * 5 + (10,),
        optimizer="sgd",
        lr=1e-3,
        dtype=dtype,
        batch_size=500,
        # the start does not change the operations timed (build_model still computes the SVD
        # start first and then replaces it: a known waste at n = 4096, see docs/design.md)
        init_core="product",
    )
    tr = Trainer(cfg, (x, y, x[:10], y[:10]))
    return {
        "train_s": median_time(lambda: tr.step(x, y), repeats),
        "predict_s": median_time(lambda: tr.model.forward(x), repeats),
    }
