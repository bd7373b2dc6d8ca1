"""Discrete Schrödinger equations of the rank-adaptive and midpoint BUG papers (complex)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._array_api import array_namespace, ct
from ..lowrank import LowRank, _check_rank
from .affine import AffineMatrixODE, Operator
from .stencil import tridiag_apply, tridiag_dense

__all__ = ["SchrodingerProblem"]


class SchrodingerProblem(AffineMatrixODE):
    r"""F(Y) = −i(a(D Y + Y Dᵀ) + V Y V) with D tridiagonal and V = diag(1 − cos x_j).

    Parameters
    ----------
    N : int
        Grid size (Y is N × N); x_j = 2πj/N, j = −N/2 … N/2−1.
    variant : {"ckl2022", "cekl2024"}
        ``"ckl2022"`` — Ceruti–Kusch–Lubich 2022 (rank-adaptive BUG), Sec. 5.2:
        D = ½ tridiag(−1, 2, −1), a = 1.
        ``"cekl2024"`` — the midpoint-BUG / second-order parallel papers (Kusch 2024, Sec. 6.1):
        periodic D (1 on the diagonal, −½ off the diagonal and in the corners) and
        F(Y) = i(DY + YD) − iVYV, i.e. a = −1.
    xp : namespace, optional
        Array namespace of the factors the problem returns (default NumPy).

    Raises
    ------
    ValueError
        For an unknown ``variant`` or ``N < 3``.

    Notes
    -----
    H(Y) = a(DY + YDᵀ) + VYV is self-adjoint for the Frobenius inner product, so the exact flow
    conserves the norm ‖Y‖_F and the energy E(Y) = ⟨Y, H(Y)⟩.  Projector splitting with exact
    sub-flows conserves the norm; the rank-adaptive and midpoint BUG conserve it up to the
    truncation (their S-step basis contains the old basis); fixed-rank BUG does not (its initial
    S-step value M S₀ Nᴴ is a projection).

    Examples
    --------
    The norm is conserved by the exact flow, and by rank-adaptive BUG up to the truncation:

    >>> import lowrank_ode as lo
    >>> from lowrank_ode.problems import SchrodingerProblem
    >>> P = SchrodingerProblem(32)
    >>> Y0 = P.initial(rank=8)
    >>> sol = lo.solve(P, Y0, (0.0, 0.1), h=0.01, method="rabug", atol=1e-10, max_rank=16)
    >>> bool(abs(sol.y[-1].norm() - Y0.norm()) < 1e-8)
    True
    """

    linear = True

    def __init__(self, N: int = 100, variant: str = "ckl2022", *, xp: Any = None) -> None:
        if variant not in ("ckl2022", "cekl2024"):
            raise ValueError(f"variant must be 'ckl2022' or 'cekl2024', got {variant!r}")
        if not isinstance(N, (int, np.integer)) or N < 3:
            raise ValueError(f"N must be an integer >= 3, got {N!r}")
        self.N, self.variant = int(N), variant
        self.shape = (self.N, self.N)
        self.periodic = variant == "cekl2024"
        self.a = 1.0 if variant == "ckl2022" else -1.0
        j = np.arange(-(N // 2), N - N // 2)
        x = 2 * np.pi * j / N
        self.xp = xp if xp is not None else array_namespace(np.zeros(1))
        self.v = self.xp.asarray(1.0 - np.cos(x))

    def _D(self, X: Any) -> Any:
        return tridiag_apply(X, 1.0, -0.5, self.periodic)

    def _H_right(self, Y: LowRank, V: Any, xp: Any) -> Any:
        X, S, Z = Y.U, Y.S, Y.V
        v = xp.astype(self.v, V.dtype)[:, None]
        Zh = ct(Z, xp=xp)
        return self.a * (self._D(X @ (S @ (Zh @ V))) + X @ (S @ (Zh @ self._D(V)))) + v * (
            X @ (S @ (Zh @ (v * V)))
        )

    def terms(self) -> list[tuple[Operator, Operator]]:
        """F(Y) = (−iaD) Y + Y (iaD)ᴴ + (−iV) Y Vᴴ (D, V real symmetric, a real)."""
        a = self.a

        def v_times(X: Any) -> Any:
            xp = array_namespace(X)
            return xp.astype(self.v, X.dtype)[:, None] * X

        return [
            (lambda X: (-1j * a) * self._D(X), None),
            (None, lambda X: (1j * a) * self._D(X)),
            (lambda X: -1j * v_times(X), v_times),
        ]

    def dense(self, t: float, A: Any) -> Any:
        xp = array_namespace(A)
        v = xp.astype(self.v, A.dtype)
        H = self.a * (self._D(A) + self._D(A.T).T) + v[:, None] * A * v[None, :]
        return -1j * H

    def right(self, t: float, Y: LowRank, V: Any) -> Any:
        """−i H(Y) V, factored."""
        return -1j * self._H_right(Y, V, array_namespace(V))

    def left(self, t: float, Y: LowRank, U: Any) -> Any:
        """(−i H(Y))ᴴ U = i H(Yᴴ) U (H commutes with ᴴ since D, V are real symmetric)."""
        xp = array_namespace(U)
        Yh = LowRank(Y.V, ct(Y.S, xp=xp), Y.U)
        return 1j * self._H_right(Yh, U, xp)

    # ---------------------------------------------------------------- invariants, data
    def energy(self, Y: Any) -> float:
        """E(Y) = Re⟨Y, H(Y)⟩_F, conserved by the exact flow."""
        D = Y.to_dense() if isinstance(Y, LowRank) else Y
        xp = array_namespace(D)
        H = 1j * self.dense(0.0, D)
        return float(xp.real(xp.sum(xp.conj(D) * H)))

    def initial(self, seed: Any = 0, rank: int | None = None, normalize: bool = True) -> LowRank:
        """U₀, V₀ = orth(rand), S₀ = diag(10⁻ⁱ), i = 1 … N (Frobenius-normalized when asked).

        With ``rank`` the factorization is cut to its leading ``rank`` columns.
        """
        N = self.N
        if rank is not None:
            _check_rank(rank, N)
        rng = np.random.default_rng(seed)
        U, _ = np.linalg.qr(rng.random((N, N)))
        V, _ = np.linalg.qr(rng.random((N, N)))
        s = 10.0 ** -np.arange(1, N + 1, dtype=float)
        s = np.maximum(s, 0.0)
        if normalize:
            s = s / np.linalg.norm(s)
        r = N if rank is None else rank
        xp = self.xp
        c = xp.complex128
        return LowRank(
            xp.astype(xp.asarray(U[:, :r]), c),
            xp.astype(xp.asarray(np.diag(s[:r])), c),
            xp.astype(xp.asarray(V[:, :r]), c),
        )

    def reference(
        self,
        T: float,
        Y0: Any,
        rtol: float = 1e-12,
        atol: float = 1e-14,
        matrix_free: bool = False,
    ) -> np.ndarray:
        """Reference solution Y(T) by scipy's DOP853 on the dense (NumPy) ODE.

        Parameters
        ----------
        T : float
        Y0 : LowRank or array, shape (N, N)
        rtol, atol : float
            Tolerances of DOP853.
        matrix_free : bool
            Evaluate F by :meth:`dense` (stencil products, O(N²) per evaluation) instead of
            the assembled N × N Laplacian (O(N³)); the two agree to the solver's tolerance,
            which makes them a check on each other.
        """
        from scipy.integrate import solve_ivp

        from .._array_api import to_numpy

        A0 = to_numpy(Y0.to_dense() if isinstance(Y0, LowRank) else Y0).astype(complex)
        N = self.N
        if matrix_free:

            def f(t: float, y: np.ndarray) -> np.ndarray:
                return self.dense(t, y.reshape(N, N)).ravel()

        else:
            Dd = to_numpy(
                tridiag_dense(N, 1.0, -0.5, self.periodic, xp=array_namespace(np.zeros(1)))
            )
            v = to_numpy(self.v)

            def f(t: float, y: np.ndarray) -> np.ndarray:
                A = y.reshape(N, N)
                H = self.a * (Dd @ A + A @ Dd.T) + v[:, None] * A * v[None, :]
                return (-1j * H).ravel()

        sol = solve_ivp(f, (0.0, T), A0.ravel(), method="DOP853", rtol=rtol, atol=atol)
        if not sol.success:
            raise RuntimeError(f"reference solver failed: {sol.message}")
        return sol.y[:, -1].reshape(N, N)
