"""Heat equation in Lyapunov form: dY/dt = A Y + Y Bᵀ + C with discrete Laplacians."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from .._array_api import array_namespace, ct
from ..lowrank import LowRank
from .affine import AffineMatrixODE, Operator
from .stencil import tridiag_apply

__all__ = ["LyapunovProblem", "sine_basis"]


def sine_basis(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of T = tridiag(1, −2, 1) (Dirichlet): ``T Q = Q diag(λ)``, Q symmetric orthogonal.

    Q[j, k] = √(2/(n+1)) sin(π(j+1)(k+1)/(n+1)),  λ_k = −4 sin²(π(k+1)/(2(n+1))).
    """
    j = np.arange(1, n + 1)
    Q = np.sqrt(2.0 / (n + 1)) * np.sin(np.pi * np.outer(j, j) / (n + 1))
    lam = -4.0 * np.sin(np.pi * j / (2 * (n + 1))) ** 2
    return Q, lam


class LyapunovProblem(AffineMatrixODE):
    r"""dY/dt = ν_x Δ_n Y + ν_y Y Δ_mᵀ + C₁C₂ᴴ: the 2-D heat equation on a grid, factored.

    Δ = tridiag(1, −2, 1) is the (unscaled) Dirichlet second-difference matrix, so the
    eigenvalues of the operator Y ↦ ν_x Δ Y + ν_y Y Δ lie in (−4(ν_x + ν_y), 0); ν = κ/Δx²
    gives the physical heat equation with diffusivity κ.  The forcing C = C₁C₂ᴴ is low-rank.
    All products cost O((n + m)(r² + r c)) and never form an n × m matrix, so n = m = 10⁴ is
    cheap.  The sub-problems of the integrators are handed over reduced
    (:meth:`~lowrank_ode.problems.AffineMatrixODE.reduced`): a K-step stage is one stencil
    application to K plus r × r products, an S-step stage is r × r only.

    Parameters
    ----------
    n, m : int
        Grid sizes.
    nu_x, nu_y : float
        Diffusion coefficients (default 1).
    C1, C2 : array, shape (n, c) and (m, c), optional
        Forcing factors; default: a rank-1 bump ``C₁ = c(x), C₂ = c(y)``; pass zeros for none.
    xp : namespace, optional
        Array namespace of the problem data (default NumPy).

    Notes
    -----
    The exact solution (:meth:`exact`) diagonalizes T with the discrete sine transform:
    in that basis Ŷ_jk(t) = e^{Λ_jk t} Ŷ_jk(0) + (e^{Λ_jk t} − 1)/Λ_jk · Ĉ_jk.
    Linear and autonomous, so :class:`~lowrank_ode.substep.Exact` applies; the projector-splitting
    and BUG sub-problems are linear too.

    Examples
    --------
    >>> import numpy as np
    >>> import lowrank_ode as lo
    >>> from lowrank_ode.problems import LyapunovProblem
    >>> P = LyapunovProblem(50, 40)
    >>> Y0 = P.initial(rank=3)
    >>> P.shape, Y0.rank
    ((50, 40), 3)
    >>> G = P.at(0.0, [Y0])  # an evaluation answers the thin products
    >>> G.right(0, Y0.V).shape, G.left(0, Y0.U).shape, G.galerkin(0, Y0.U, Y0.V).shape
    ((50, 3), (40, 3), (3, 3))
    >>> sol = lo.solve(P, Y0, (0.0, 0.05), h=0.01, method="rabug", atol=1e-8, max_rank=20)
    >>> bool(np.linalg.norm(sol.y[-1].to_dense() - P.exact(0.05, Y0)) < 1e-6)
    True
    """

    linear = True

    def __init__(
        self,
        n: int = 100,
        m: int | None = None,
        nu_x: float = 1.0,
        nu_y: float = 1.0,
        C1: Any = None,
        C2: Any = None,
        *,
        xp: Any = None,
    ) -> None:
        m = n if m is None else m
        for name, v in (("n", n), ("m", m)):
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.shape = (int(n), int(m))
        self.nu_x, self.nu_y = float(nu_x), float(nu_y)
        self.xp = xp if xp is not None else array_namespace(np.zeros(1))
        if (C1 is None) != (C2 is None):
            raise ValueError("give both C1 and C2 or neither")
        if C1 is None:
            x = np.linspace(0, 1, n + 2)[1:-1]
            y = np.linspace(0, 1, m + 2)[1:-1]
            C1 = np.exp(-50 * (x - 0.3) ** 2)[:, None]
            C2 = np.exp(-50 * (y - 0.6) ** 2)[:, None]
        if C1.shape[0] != n or C2.shape[0] != m or C1.shape[1] != C2.shape[1]:
            raise ValueError(
                f"C1, C2 must have shapes (n={n}, c) and (m={m}, c), got {C1.shape}, {C2.shape}"
            )
        self.C1, self.C2 = self.xp.asarray(C1), self.xp.asarray(C2)
        self._cache: dict[str, tuple[Any, Any, tuple[Any, Any, Any]]] = {}

    # ----------------------------------------------------------------- operators
    def _A(self, X: Any) -> Any:
        return tridiag_apply(X, -2.0 * self.nu_x, self.nu_x)

    def _B(self, X: Any) -> Any:
        return tridiag_apply(X, -2.0 * self.nu_y, self.nu_y)

    def terms(self) -> list[tuple[Operator, Operator]]:
        """(A, I) and (I, B): F(Y) = A Y + Y Bᵀ + C with A, B symmetric."""
        return [(self._A, None), (None, self._B)]

    def forcing(self) -> tuple[Any, Any]:
        """V ↦ C₁ (C₂ᴴ V) and U ↦ C₂ (C₁ᴴ U), in the dtype of the argument."""

        def right(V: Any) -> Any:
            xp = array_namespace(V)
            C1, C2 = (xp.astype(C, V.dtype, copy=False) for C in (self.C1, self.C2))
            return C1 @ (ct(C2, xp=xp) @ V)

        def left(U: Any) -> Any:
            xp = array_namespace(U)
            C1, C2 = (xp.astype(C, U.dtype, copy=False) for C in (self.C1, self.C2))
            return C2 @ (ct(C1, xp=xp) @ U)

        return right, left

    def dense(self, t: float, A: Any) -> Any:
        """A Y + Y Bᵀ + C on a dense Y."""
        xp = array_namespace(A)
        C1, C2 = (xp.astype(C, A.dtype) for C in (self.C1, self.C2))
        return self._A(A) + self._B(A.T).T + C1 @ ct(C2, xp=xp)

    def right(self, t: float, Y: LowRank, V: Any) -> Any:
        """(A Y + Y Bᵀ + C) V = A X (S ZᴴV) + X S Zᴴ (B V) + C₁ (C₂ᴴ V)."""
        xp = array_namespace(V)
        X, S, Z = Y.U, Y.S, Y.V
        ZhV, ZhBV, C2hV = self._thin("right", Z, V, xp)
        out = self._A(X @ (S @ ZhV))
        out += X @ (S @ ZhBV)
        out += xp.astype(self.C1, V.dtype, copy=False) @ C2hV
        return out

    def left(self, t: float, Y: LowRank, U: Any) -> Any:
        """(A Y + Y Bᵀ + C)ᴴ U = Z Sᴴ Xᴴ (A U) + B Z Sᴴ (Xᴴ U) + C₂ (C₁ᴴ U)."""
        xp = array_namespace(U)
        X, S, Z = Y.U, Y.S, Y.V
        XhAU, XhU, C1hU = self._thin("left", X, U, xp)
        Sh = ct(S, xp=xp)
        out = Z @ (Sh @ XhAU)
        out += self._B(Z @ (Sh @ XhU))
        out += xp.astype(self.C2, U.dtype, copy=False) @ C1hU
        return out

    def galerkin(self, t: float, Y: LowRank, U: Any, V: Any) -> Any:
        """Uᴴ (A Y + Y Bᵀ + C) V = (Uᴴ A X) S (Zᴴ V) + (Uᴴ X) S (Zᴴ B V) + (Uᴴ C₁)(C₂ᴴ V).

        A is real symmetric, so Uᴴ A X = (Xᴴ A U)ᴴ: every factor is a k × k product of
        :meth:`left` and :meth:`right`, formed once per step (the S-step evaluates with the
        same bases at every stage), and a stage costs O(k³) instead of O(n k²).
        """
        xp = array_namespace(U, V)
        X, S, Z = Y.U, Y.S, Y.V
        ZhV, ZhBV, C2hV = self._thin("right", Z, V, xp)
        XhAU, XhU, C1hU = self._thin("left", X, U, xp)
        out = ct(XhAU, xp=xp) @ (S @ ZhV)
        out += ct(XhU, xp=xp) @ (S @ ZhBV)
        out += ct(C1hU, xp=xp) @ C2hV
        return out

    def _thin(self, side: str, W: Any, V: Any, xp: Any) -> tuple[Any, Any, Any]:
        """The k × k products of ``right`` (W = Z: Zᴴ V, Zᴴ (B V), C₂ᴴ V) or ``left`` (W = X:
        Xᴴ (A U), Xᴴ U, C₁ᴴ U), remembered for the last (W, V) pair of arrays.

        The K-step sub-problem evaluates F(K V₀ᴴ) V₀ at every Runge–Kutta stage with the same
        V₀ (the L-step likewise with U₀), so these products — an O(m r) stencil and O(m r²)
        work each — are formed once per step instead of once per stage.  The pair is held by
        weak references, and factors are never modified in place by the library.
        """
        cached = self._cache.get(side)
        if cached is not None and cached[0]() is W and cached[1]() is V:
            return cached[2]
        Wh = ct(W, xp=xp)
        if side == "right":
            C2 = xp.astype(self.C2, V.dtype, copy=False)
            products = (Wh @ V, Wh @ self._B(V), ct(C2, xp=xp) @ V)
        else:
            C1 = xp.astype(self.C1, V.dtype, copy=False)
            products = (Wh @ self._A(V), Wh @ V, ct(C1, xp=xp) @ V)
        try:
            self._cache[side] = (weakref.ref(W), weakref.ref(V), products)
        except TypeError:  # an array type without weak references: no cache
            pass
        return products

    # ----------------------------------------------------------------- data
    def initial(self, rank: int = 5, dtype: Any = None) -> LowRank:
        """Y₀ = Σ_{k<rank} 2⁻ᵏ sin((k+1)πx) sin((k+1)πy), exactly of the given rank."""
        n, m = self.shape
        if not 1 <= rank <= min(n, m):
            raise ValueError(f"rank must satisfy 1 <= rank <= {min(n, m)}, got {rank}")
        Qn, Qm = _sine_cols(n, rank), _sine_cols(m, rank)
        S = np.diag(2.0 ** -np.arange(rank))
        xp = self.xp
        dt = dtype if dtype is not None else xp.float64
        return LowRank(*(xp.astype(xp.asarray(np.ascontiguousarray(M)), dt) for M in (Qn, S, Qm)))

    def exact(self, t: float, Y0: Any) -> Any:
        """Exact solution Y(t) from ``Y0`` (dense or LowRank) via the sine transform (dense)."""
        from .._array_api import to_numpy

        Y0 = to_numpy(Y0.to_dense() if isinstance(Y0, LowRank) else Y0)
        n, m = self.shape
        Qn, ln = sine_basis(n)
        Qm, lm = sine_basis(m)
        Lam = self.nu_x * ln[:, None] + self.nu_y * lm[None, :]
        C = to_numpy(self.C1) @ to_numpy(self.C2).conj().T
        Yh = Qn.T @ Y0 @ Qm
        Ch = Qn.T @ C @ Qm
        E = np.exp(Lam * t)
        Yt = Qn @ (E * Yh + np.expm1(Lam * t) / Lam * Ch) @ Qm.T
        return self.xp.asarray(Yt.astype(Y0.dtype, copy=False))


def _sine_cols(n: int, k: int) -> np.ndarray:
    j = np.arange(1, n + 1)
    return np.sqrt(2.0 / (n + 1)) * np.sin(np.pi * np.outer(j, np.arange(1, k + 1)) / (n + 1))
