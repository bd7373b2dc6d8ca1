"""Problems with a prescribed solution A(t) and F(t, Y) = Ȧ(t): the KLW test matrix and friends."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from .._array_api import array_namespace
from ..lowrank import LowRank
from .affine import SylvesterProblem
from .base import MatrixODE

__all__ = ["ExplicitProblem", "KLWProblem", "random_skew"]


class ExplicitProblem(MatrixODE):
    """F(t, Y) = Ȧ(t), independent of Y: the setting of the exactness theorems.

    Lubich–Oseledets 2014 (Thm. 4.1) and Ceruti–Lubich 2022 (Thm. 4): when A(t) has rank r,
    projector splitting and BUG reproduce A(tₙ) exactly (up to the sub-step solver).

    Parameters
    ----------
    A : callable t -> array (n, m)
        The solution.
    Adot : callable t -> array (n, m)
        Its derivative.
    """

    def __init__(self, A: Callable[[float], Any], Adot: Callable[[float], Any]) -> None:
        self._A, self._Adot = A, Adot
        self.shape = tuple(int(s) for s in A(0.0).shape)

    def dense(self, t: float, Y: Any) -> Any:
        return self._Adot(t)

    def exact(self, t: float) -> Any:
        """A(t)."""
        return self._A(t)

    def initial(self, rank: int) -> LowRank:
        """Best rank-``rank`` approximation of A(0)."""
        return LowRank.from_dense(self._A(0.0), rank=rank)


#: A(t) and Ȧ(t) kept per KLW problem: one step asks for at most a handful of distinct times
#: (RK4 stages t, t + h/2, t + h; K-, L- and S-steps share them), each for A and Ȧ, so 16
#: entries hold a whole step and the next one's start without growing with the run.
_CACHE_SIZE = 16


def random_skew(n: int, rng: np.random.Generator, norm: float = 1.0) -> np.ndarray:
    """A random real skew-symmetric matrix scaled to spectral norm ``norm``."""
    G = rng.standard_normal((n, n))
    W = G - G.T
    return W * (norm / np.linalg.norm(W, 2))


class KLWProblem(ExplicitProblem):
    r"""Kieri–Lubich–Walach (2016) test matrix A(t) = e^{tW₁} eᵗ (D + εE) e^{tW₂}ᵀ, F = Ȧ(t).

    Parameters
    ----------
    n : int
        Size (A is n × n).
    singular_values : array_like, optional
        Diagonal of D, length ≤ n (padded with zeros); default ``2⁻ʲ``, j = 1 … n.
    eps : float
        Size of a full-rank perturbation E (random, ‖E‖₂ = 1): the rank-r approximation error
        is then of order ε.
    w_norm : float
        Spectral norm of the random skew-symmetric W₁, W₂ (default 1; the constants of the
        error plots scale with it).
    seed : int or numpy.random.Generator
        Seed of the random W₁, W₂ (and E).
    xp : namespace, optional
        Namespace of the arrays returned (computed in NumPy, moved once per call).

    Notes
    -----
    Equivalently Ẏ = W₁Y + Y + YW₂ᵀ from A(0) (Ceruti–Lubich 2022, Sec. 5.1).  Here F = Ȧ(t)
    is given explicitly (independent of Y), the form in which the error bounds of
    Kieri–Lubich–Walach 2016 hold with constants independent of the small singular values.

    Examples
    --------
    >>> import numpy as np
    >>> import lowrank_ode as lo
    >>> from lowrank_ode.problems import KLWProblem
    >>> P = KLWProblem(20, seed=0)
    >>> Y0 = P.initial(rank=4)  # best rank-4 approximation of A(0) = D
    >>> sol = lo.solve(P, Y0, (0.0, 0.5), h=0.05, method="ksl")
    >>> best = np.linalg.svd(P.exact(0.5), compute_uv=False)[4:]
    >>> error = np.linalg.norm(sol.y[-1].to_dense() - P.exact(0.5))
    >>> bool(error < 1.5 * np.linalg.norm(best))  # close to the best rank-4 error
    True
    """

    def __init__(
        self,
        n: int = 100,
        singular_values: Any = None,
        eps: float = 0.0,
        w_norm: float = 1.0,
        seed: Any = 0,
        *,
        xp: Any = None,
    ) -> None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        for name, v in (("eps", eps), ("w_norm", w_norm)):
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise TypeError(f"{name} must be a real number, got {v!r}")
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        rng = np.random.default_rng(seed)
        d = np.zeros(n)
        sv = (
            2.0 ** -np.arange(1, n + 1)
            if singular_values is None
            else np.asarray(singular_values, dtype=float)
        )
        if sv.ndim != 1 or sv.shape[0] > n:
            raise ValueError(
                f"singular_values must be 1-D with at most n={n} entries, got shape {sv.shape}"
            )
        if not np.all(np.isfinite(sv)):
            raise ValueError(f"singular_values must be finite, got {sv}")
        d[: sv.shape[0]] = sv
        self.D = np.diag(d)
        if eps:
            E = rng.standard_normal((n, n))
            self.D = self.D + eps * E / np.linalg.norm(E, 2)
        self.W1 = random_skew(n, rng, w_norm)
        self.W2 = random_skew(n, rng, w_norm)
        # e^{tW} = Q e^{−iΛt} Qᴴ from the Hermitian iW = QΛQᴴ: two products per time instead of
        # a Padé expm; the last few A(t) are cached (RK stages and K/L-steps share times)
        self._eig = [np.linalg.eigh(1j * W) for W in (self.W1, self.W2)]
        self._cache: dict[Any, np.ndarray] = {}
        self.eps = float(eps)
        self.xp = xp if xp is not None else array_namespace(np.zeros(1))
        self.shape = (int(n), int(n))

    def _expW(self, k: int, t: float) -> np.ndarray:
        lam, Q = self._eig[k]
        return ((Q * np.exp(-1j * lam * t)) @ Q.conj().T).real

    def _exact_np(self, t: float) -> np.ndarray:
        t = float(t)
        if t not in self._cache:
            while len(self._cache) >= _CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
            A = self._expW(0, t) @ (np.exp(t) * self.D) @ self._expW(1, t).T
            A.flags.writeable = False  # cached and shared: callers must not modify it
            self._cache[t] = A
        return self._cache[t]

    def exact(self, t: float) -> Any:
        """A(t) = e^{tW₁} eᵗ D e^{tW₂}ᵀ."""
        return self.xp.asarray(self._exact_np(t))

    def dense(self, t: float, Y: Any) -> Any:
        """Ȧ(t) = W₁A(t) + A(t) + A(t)W₂ᵀ (independent of Y)."""
        key = ("dot", float(t))
        if key not in self._cache:
            A = self._exact_np(t)
            Ad = self.W1 @ A + A + A @ self.W2.T
            Ad.flags.writeable = False
            self._cache[key] = Ad
        Ad = self._cache[key]
        return array_namespace(Y).asarray(Ad) if Y is not None else self.xp.asarray(Ad)

    def initial(self, rank: int) -> LowRank:
        """Best rank-``rank`` approximation of A(0) = D."""
        return LowRank.from_dense(self.exact(0.0), rank=rank)

    def linear_form(self) -> SylvesterProblem:
        """The same flow as a linear problem, Ẏ = W₁Y + Y + YW₂ᵀ (A = W₁ + I, B = W₂).

        Its solution from A(0) is :meth:`exact`; unlike this problem (F = Ȧ(t), independent
        of Y) it is affine in Y, so the integrators take its reduced sub-problems.

        Examples
        --------
        >>> import numpy as np
        >>> from lowrank_ode.problems import KLWProblem
        >>> P = KLWProblem(10, seed=0)
        >>> L = P.linear_form()
        >>> bool(np.allclose(L.dense(0.3, P.exact(0.3)), P.dense(0.3, None)))
        True
        """
        xp = self.xp
        n = self.shape[0]
        A = xp.asarray(self.W1 + np.eye(n))
        return SylvesterProblem(A, xp.asarray(self.W2))
