"""Single indirection for the matrix products of :mod:`lowrank_ode.nn`.

Every GEMM of the layers goes through :func:`matmul`, so that a benchmark or a profiler can time
(or count) the matrix products by replacing ``lowrank_ode.nn._ops.matmul`` with a wrapper.  The
layers call it as ``_ops.matmul(a, b)`` (attribute look-up at call time), so the replacement is
seen everywhere without re-importing anything.
"""

from __future__ import annotations

from typing import Any

__all__ = ["matmul"]


def matmul(a: Any, b: Any) -> Any:
    """Matrix product ``a @ b`` of two array-API arrays (2-D, same namespace)."""
    return a @ b
