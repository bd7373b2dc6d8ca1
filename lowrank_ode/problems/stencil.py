"""Matrix-free tridiagonal and diagonal operators, written with array-API slicing only."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._array_api import array_namespace

__all__ = ["tridiag_apply", "tridiag_dense"]


def tridiag_apply(X: Any, diag: float, off: float, periodic: bool = False) -> Any:
    """``T X`` for the n×n Toeplitz matrix T = tridiag(off, diag, off) (rows of X are the index).

    With ``periodic=True`` the corners T[0, n−1] = T[n−1, 0] = ``off`` are added.

    Parameters
    ----------
    X : array, shape (n, k)

    Notes
    -----
    NumPy arrays take a path that writes the neighbour sum X[i−1] + X[i+1] into one buffer
    (two n × k temporaries in all, the same operations in the same order, so the same numbers);
    other namespaces shift by concatenation (array-API slicing only).
    """
    if type(X) is np.ndarray and X.ndim == 2 and X.shape[0] > 1:
        return _tridiag_numpy(X, diag, off, periodic)
    xp = array_namespace(X)
    n = X.shape[0]
    out = diag * X
    if n == 1:
        return out
    zero = xp.zeros_like(X[:1, :])
    below = xp.concat([zero, X[:-1, :]], axis=0)  # X[i-1]
    above = xp.concat([X[1:, :], zero], axis=0)  # X[i+1]
    out = out + off * (below + above)
    if periodic and n > 2:
        corner_top = xp.concat([X[n - 1 :, :], xp.zeros_like(X[1:, :])], axis=0)
        corner_bot = xp.concat([xp.zeros_like(X[1:, :]), X[:1, :]], axis=0)
        out = out + off * (corner_top + corner_bot)
    return out


def tridiag_dense(n: int, diag: float, off: float, periodic: bool = False, *, xp: Any) -> Any:
    """The dense n×n matrix of :func:`tridiag_apply` (for references and tests)."""
    return tridiag_apply(xp.eye(n, dtype=xp.float64), diag, off, periodic)


def _tridiag_numpy(X: np.ndarray, diag: float, off: float, periodic: bool) -> np.ndarray:
    """:func:`tridiag_apply` for a NumPy ``X`` with n ≥ 2 rows, with two n × k temporaries."""
    n = X.shape[0]
    nb = np.empty_like(X)  # X[i-1] + X[i+1], the zero rows outside the grid left out
    nb[0] = X[1]
    nb[-1] = X[-2]
    np.add(X[:-2], X[2:], out=nb[1:-1])
    nb *= off
    out = diag * X
    out += nb
    if periodic and n > 2:
        out[0] += off * X[n - 1]
        out[n - 1] += off * X[0]
    return out
