"""Rank selection from singular values — the one place where truncation is decided.

Definition (Ceruti–Kusch–Lubich 2022, Sec. 3, with the tolerance made explicit): given the
singular values σ₁ ≥ σ₂ ≥ … ≥ σ_k ≥ 0 of a core matrix, keep the smallest r such that

    tail(σ_{r+1}, …, σ_k) ≤ ϑ,      ϑ = max(atol, rtol · ‖σ‖₂),

then clamp r to ``[min_rank, max_rank]`` (and to ``k``; with ``max_rank_fraction`` = f and an
n × m matrix, also to ⌊f·min(n, m)⌋).  ``norm`` chooses the tail:

* ``"fro"`` (default): ``tail = (Σ_{j>r} σ_j²)^{1/2}``, the Frobenius error of the truncation;
* ``"nuc"``: ``tail = Σ_{j>r} σ_j`` (the ℓ¹ tail used in some reference codes);
* ``"max"``: ``tail = σ_{r+1}`` (pointwise: drop every singular value ≤ ϑ).

``rtol`` is DLRT's relative τ (ϑ = τ‖σ‖₂); ``atol`` the absolute ϑ of the DLRA papers.  The tail
includes σ_{r+1} — the public DLRT code skips it (and never returns the full rank): we don't.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Truncation", "select_rank"]

_NORMS = ("fro", "nuc", "max")


def _check_tol(name: str, value: float | None) -> None:
    if value is None:
        return
    if not isinstance(value, (int, float, np.floating, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a real number or None, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class Truncation:
    """Truncation rule: smallest rank with ``tail(σ_{r+1:}) ≤ max(atol, rtol‖σ‖₂)``, clamped.

    Parameters
    ----------
    rtol : float or None
        Relative tolerance (the τ of DLRT): ϑ = rtol·‖σ‖₂.
    atol : float or None
        Absolute tolerance ϑ.
    min_rank : int
        Never return a rank below this (default 1).
    max_rank : int or None
        Never return a rank above this.
    max_rank_fraction : float or None
        Never return a rank above ⌊max_rank_fraction · min(n, m)⌋ for an n × m matrix (the
        ``shape`` given to :meth:`rank`).  The official DLRT code caps every layer at half its
        full rank (0.5), so that the augmented basis [K | U] of 2r columns fits in min(n, m).
    norm : {"fro", "nuc", "max"}
        Which tail norm is compared with ϑ (see module docstring).

    Notes
    -----
    With neither ``rtol`` nor ``atol`` given, ϑ = 0: only exactly-zero singular values are
    dropped (the rank is then ``min(k, max_rank)`` for generic data).

    Examples
    --------
    The smallest rank whose discarded tail (Frobenius norm by default) is at most
    ``max(atol, rtol·‖σ‖₂)``, clamped to ``[min_rank, max_rank]``:

    >>> import numpy as np
    >>> from lowrank_ode import Truncation
    >>> sigma = np.array([1.0, 0.5, 0.05, 0.01])
    >>> Truncation(rtol=0.1).rank(sigma)
    2
    >>> Truncation(atol=1e-3).rank(sigma), Truncation(atol=1e-3, max_rank=2).rank(sigma)
    (4, 2)
    >>> Truncation(atol=0.02, norm="max").rank(sigma)  # keep while σ_{r+1} > 0.02
    3
    """

    rtol: float | None = None
    atol: float | None = None
    min_rank: int = 1
    max_rank: int | None = None
    norm: str = "fro"
    max_rank_fraction: float | None = None

    def __post_init__(self) -> None:
        _check_tol("rtol", self.rtol)
        _check_tol("atol", self.atol)
        if not isinstance(self.min_rank, (int, np.integer)) or self.min_rank < 1:
            raise ValueError(f"min_rank must be an integer >= 1, got {self.min_rank!r}")
        if self.max_rank is not None and (
            not isinstance(self.max_rank, (int, np.integer)) or self.max_rank < self.min_rank
        ):
            raise ValueError(
                f"max_rank must be an integer >= min_rank={self.min_rank}, got {self.max_rank!r}"
            )
        if self.norm not in _NORMS:
            raise ValueError(f"norm must be one of {_NORMS}, got {self.norm!r}")
        f = self.max_rank_fraction
        if f is not None and (
            isinstance(f, bool)
            or not isinstance(f, (int, float, np.floating, np.integer))
            or not 0 < f <= 1
        ):
            raise ValueError(f"max_rank_fraction must be a number in (0, 1] or None, got {f!r}")

    def cap(self, shape: tuple[int, int] | None = None) -> int | None:
        """The largest rank allowed for a matrix of ``shape`` (None: no cap)."""
        caps = [] if self.max_rank is None else [int(self.max_rank)]
        if self.max_rank_fraction is not None:
            if shape is None:
                raise ValueError("a Truncation with max_rank_fraction needs the matrix shape")
            caps.append(max(int(self.max_rank_fraction * min(shape)), self.min_rank))
        return min(caps) if caps else None

    def threshold(self, sigma: Sequence[float]) -> float:
        """The tolerance ϑ = max(atol, rtol·‖σ‖₂) for singular values ``sigma``."""
        s = np.asarray(sigma, dtype=float)
        theta = 0.0
        if self.atol is not None:
            theta = max(theta, float(self.atol))
        if self.rtol is not None:
            theta = max(theta, float(self.rtol) * _norm2(s))
        return theta

    def rank(self, sigma: Any, shape: tuple[int, int] | None = None) -> int:
        """The rank to keep for singular values ``sigma``.

        Parameters
        ----------
        sigma : array, shape (k,)
            Singular values in descending order (host or device array).
        shape : (n, m), optional
            Shape of the matrix; needed with ``max_rank_fraction``.

        Returns
        -------
        int
            The smallest rank whose discarded tail is within the tolerance, clamped to
            ``[min_rank, max_rank]``, to ``k`` and to the cap of ``max_rank_fraction``.

        Raises
        ------
        ValueError
            When ``sigma`` is not 1-D, holds NaN/inf or negative values, or is not descending.
        """
        s = np.asarray(_host(sigma), dtype=float)
        if s.ndim != 1:
            raise ValueError(f"sigma must be a 1-D array of singular values, got shape {s.shape}")
        if not np.all(np.isfinite(s)):
            raise ValueError(f"singular values must be finite, got sigma={s}")
        if s.size and (s[-1] < 0 or np.any(s[1:] > s[:-1])):
            raise ValueError(
                f"sigma must be non-negative and in descending order (as an SVD returns them), "
                f"got sigma={s}"
            )
        k = s.shape[0]
        theta = self.threshold(s)
        r = select_rank(s, theta, self.norm)
        cap = self.cap(shape)
        hi = k if cap is None else min(k, cap)
        return int(max(min(r, hi), min(self.min_rank, k)))


def select_rank(sigma: np.ndarray, theta: float, norm: str = "fro") -> int:
    """Smallest ``r`` with ``tail(σ_{r+1:}) ≤ theta`` for descending ``sigma`` (no clamping).

    ``tails[r]`` is the tail norm of ``σ[r:]`` (what is dropped when keeping ``r`` values), with
    ``tails[k] = 0`` so that the full rank ``k`` is always admissible.
    """
    s = np.asarray(sigma, dtype=float)
    if norm == "fro":
        if _safe_squares(s):
            tails = np.sqrt(np.append(np.cumsum((s**2)[::-1])[::-1], 0.0))
        else:  # σ² would overflow or underflow: each tail in units of its largest value,
            # σ_{r+1}·‖σ_{r+1:}/σ_{r+1}‖₂ (O(k²), only for such extreme spectra)
            with np.errstate(under="ignore"):
                tails = np.array(
                    [
                        t[0] * np.sqrt(np.sum((t / t[0]) ** 2)) if t[0] > 0 else 0.0
                        for t in (s[r:] for r in range(s.size))
                    ]
                    + [0.0]
                )
    elif norm == "nuc":
        top = float(s[0]) if s.size else 0.0
        if top > _BIG:  # compare in units of σ₁, so that the running sums cannot overflow
            tails = np.append(np.cumsum((s / top)[::-1])[::-1], 0.0)
            return int(np.argmax(tails <= theta / top))
        else:
            tails = np.append(np.cumsum(s[::-1])[::-1], 0.0)
    elif norm == "max":
        tails = np.append(s, 0.0)
    else:
        raise ValueError(f"norm must be one of {_NORMS}, got {norm!r}")
    return int(np.argmax(tails <= theta))


_BIG = 1e150  # σ above this: σ² may overflow
_TINY = 1e-150  # non-zero σ below this: σ² may underflow


def _safe_squares(s: np.ndarray) -> bool:
    """True when σ² neither overflows nor underflows for every σ (the plain formulas apply)."""
    if not s.size:
        return True
    nz = s[s > 0]
    return bool(s[0] <= _BIG and (not nz.size or nz[-1] >= _TINY))


def _norm2(s: np.ndarray) -> float:
    """‖σ‖₂ without overflow or underflow (the plain formula in the safe range)."""
    if _safe_squares(s):
        return float(np.sqrt(np.sum(s**2)))
    top = float(np.max(s))
    return top * float(np.sqrt(np.sum((s / top) ** 2))) if top > 0 else 0.0


def _host(a: Any) -> Any:
    from ._array_api import to_numpy

    return to_numpy(a) if not isinstance(a, (list, tuple, np.ndarray)) else a
