"""Weight initialisation (host-side NumPy, seeded by :class:`numpy.random.Generator`).

All functions return NumPy arrays; move them to another array namespace with
``layer.map_params(xp.asarray)``.  Nothing here touches the global ``np.random`` state.

Conventions: a weight matrix has shape ``(n_out, n_in)``; for a convolution ``n_in`` is the fan-in
``c_in * kh * kw`` (the matricised kernel).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from .base import as_rng

__all__ = [
    "he_normal",
    "glorot_uniform",
    "dense_init",
    "decaying_singular_values",
    "lowrank_init",
    "check_rank",
]

_INITS = ("he", "glorot")


def he_normal(
    n_in: int,
    n_out: int,
    rng: np.random.Generator | int | None = None,
    dtype: DTypeLike = np.float64,
) -> np.ndarray:
    """He (Kaiming) normal initialisation, ``W_ij ~ N(0, 2 / n_in)``.

    Parameters
    ----------
    n_in, n_out : int
        Fan-in and fan-out.
    rng : numpy.random.Generator or int or None
    dtype : numpy dtype, default float64

    Returns
    -------
    W : ndarray, shape (n_out, n_in)
    """
    rng = as_rng(rng)
    return (rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / n_in)).astype(dtype)


def glorot_uniform(
    n_in: int,
    n_out: int,
    rng: np.random.Generator | int | None = None,
    dtype: DTypeLike = np.float64,
) -> np.ndarray:
    """Glorot (Xavier) uniform initialisation, ``W_ij ~ U(-a, a)``, ``a = √(6 / (n_in + n_out))``.

    Returns
    -------
    W : ndarray, shape (n_out, n_in)
    """
    rng = as_rng(rng)
    a = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-a, a, size=(n_out, n_in)).astype(dtype)


def dense_init(
    n_in: int,
    n_out: int,
    rng: np.random.Generator | int | None = None,
    dtype: DTypeLike = np.float64,
    init: str = "he",
) -> np.ndarray:
    """Dense weight by name: ``init`` is ``"he"`` (ReLU nets) or ``"glorot"`` (tanh nets).

    Returns
    -------
    W : ndarray, shape (n_out, n_in)
    """
    if init == "he":
        return he_normal(n_in, n_out, rng, dtype)
    if init == "glorot":
        return glorot_uniform(n_in, n_out, rng, dtype)
    raise ValueError(f"init must be one of {_INITS}, got {init!r}")


def decaying_singular_values(
    rank: int,
    decay: float,
    rng: np.random.Generator | int | None = None,
    dtype: DTypeLike = np.float64,
) -> np.ndarray:
    """Prescribed spectrum ``σ_k = |N(0,1)|_(k) · decay**(-k)``, ``k = 0 … rank-1``.

    ``|N(0,1)|_(k)`` are ``rank`` absolute standard normal samples sorted in descending order, so
    ``σ`` is descending and ``σ_0`` is an ``|N(0,1)|`` sample (the DLRT robustness experiment;
    ``decay = 1`` gives no decay).

    Returns
    -------
    sigma : ndarray, shape (rank,)
    """
    if decay <= 0:
        raise ValueError(f"decay must be positive, got {decay}")
    rng = as_rng(rng)
    s = np.sort(np.abs(rng.standard_normal(rank)))[::-1]
    return (s * float(decay) ** (-np.arange(rank, dtype=np.float64))).astype(dtype)


def check_rank(rank: int, n_in: int, n_out: int, who: str = "rank") -> int:
    """Validate ``1 <= rank <= min(n_in, n_out)``; return it as ``int``."""
    if isinstance(rank, bool) or int(rank) != rank:
        raise ValueError(f"{who} must be an integer, got {rank!r}")
    rank = int(rank)
    if not 1 <= rank <= min(n_in, n_out):
        raise ValueError(
            f"{who} must satisfy 1 <= rank <= min(n_in, n_out) = min({n_in}, {n_out}) = "
            f"{min(n_in, n_out)}, got {rank}"
        )
    return rank


def lowrank_init(
    n_in: int,
    n_out: int,
    rank: int,
    rng: np.random.Generator | int | None = None,
    dtype: DTypeLike = np.float64,
    init: str = "he",
    singular_values: np.ndarray | None = None,
    decay: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Low-rank factors ``W ≈ U S Vᵀ`` from the truncated SVD of a dense initialisation.

    ``W0 = dense_init(n_in, n_out, rng, init=init)`` is drawn, its thin SVD
    ``W0 = P diag(σ) Qᵀ`` is truncated to ``rank``: ``U = P[:, :r]``, ``V = Q[:, :r]``,
    ``S = diag(σ[:r])``.  With ``singular_values`` (or ``decay``, which draws them with
    :func:`decaying_singular_values`) the spectrum is replaced: ``S = diag(singular_values)``,
    keeping the singular vectors of ``W0``.

    Parameters
    ----------
    n_in, n_out, rank : int
    rng : numpy.random.Generator or int or None
    dtype : numpy dtype, default float64
    init : {"he", "glorot"}
    singular_values : ndarray, shape (rank,), optional
    decay : float, optional
        Mutually exclusive with ``singular_values``.

    Returns
    -------
    U : ndarray, shape (n_out, rank), orthonormal columns
    S : ndarray, shape (rank, rank), diagonal
    V : ndarray, shape (n_in, rank), orthonormal columns
    """
    rank = check_rank(rank, n_in, n_out)
    rng = as_rng(rng)
    if singular_values is not None and decay is not None:
        raise ValueError("give at most one of singular_values and decay")
    W0 = dense_init(n_in, n_out, rng, np.float64, init)
    P, sigma, Qt = np.linalg.svd(W0, full_matrices=False)
    if decay is not None:
        sigma_r = decaying_singular_values(rank, decay, rng)
    elif singular_values is not None:
        sigma_r = np.asarray(singular_values, dtype=np.float64)
        if sigma_r.shape != (rank,):
            raise ValueError(
                f"singular_values: expected shape ({rank},), got {tuple(sigma_r.shape)}"
            )
    else:
        sigma_r = sigma[:rank]
    U = P[:, :rank].astype(dtype)
    V = Qt[:rank, :].T.astype(dtype)
    S = np.diag(sigma_r).astype(dtype)
    return np.ascontiguousarray(U), S, np.ascontiguousarray(V)
