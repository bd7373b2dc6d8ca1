"""Gradient flow dY/dt = −∇f(Y) of f(Y) = ½‖A Y − B‖²_F."""

from __future__ import annotations

from typing import Any

from .._array_api import array_namespace, ct
from ..lowrank import LowRank
from .affine import AffineMatrixODE, Operator

__all__ = ["QuadraticGradientFlow"]


class QuadraticGradientFlow(AffineMatrixODE):
    """F(Y) = −∇f(Y) = −Aᴴ(A Y − B) for f(Y) = ½‖A Y − B‖²_F (A = I when not given).

    Parameters
    ----------
    B : array, shape (p, m), or LowRank
        Target.  A :class:`~lowrank_ode.LowRank` target keeps every product factored.
    A : array, shape (p, n), optional
        Linear operator; identity when ``None`` (then F(Y) = B − Y and the flow converges to B).

    Notes
    -----
    The exact flow decreases f monotonically; BUG and its rank-adaptive version inherit this up
    to the truncation (Ceruti–Kusch–Lubich 2022, Thm. 5; Schotthöfer et al. 2022, Thm. 2).
    """

    linear = True

    def __init__(self, B: Any, A: Any = None) -> None:
        for name, M in (("B", B), ("A", A)):
            if M is None or isinstance(M, LowRank):
                continue
            if getattr(M, "ndim", None) != 2:
                raise ValueError(
                    f"{name} must be a 2-D array or a LowRank, got "
                    f"{'shape ' + str(tuple(M.shape)) if hasattr(M, 'shape') else type(M).__name__}"
                )
            xp = array_namespace(M)
            if not bool(xp.all(xp.isfinite(M))):
                raise ValueError(f"{name} contains NaN or inf values")
        self.B = B
        self.A = A
        p, m = B.shape
        if A is not None:
            if A.shape[0] != p:
                raise ValueError(f"A must have {p} rows to match B, got shape {tuple(A.shape)}")
            self.shape = (int(A.shape[1]), int(m))
        else:
            self.shape = (int(p), int(m))

    def terms(self) -> list[tuple[Operator, Operator]]:
        """(−AᴴA, I), or (−I, I) without A."""
        A = self.A
        if A is None:
            return [(lambda X: -X, None)]
        return [(lambda X: -(ct(A, xp=array_namespace(X)) @ (A @ X)), None)]

    def forcing(self) -> tuple[Any, Any]:
        """C = AᴴB: V ↦ Aᴴ(B V) and U ↦ Bᴴ(A U) (B V and Bᴴ U without A)."""
        A = self.A

        def right(V: Any) -> Any:
            xp = array_namespace(V)
            BV = self._B_right(V, xp)
            return BV if A is None else ct(A, xp=xp) @ BV

        def left(U: Any) -> Any:
            xp = array_namespace(U)
            return self._B_left(U if A is None else A @ U, xp)

        return right, left

    def _B_right(self, V: Any, xp: Any) -> Any:
        if isinstance(self.B, LowRank):
            return self.B.U @ (self.B.S @ (ct(self.B.V, xp=xp) @ V))
        return self.B @ V

    def _B_left(self, W: Any, xp: Any) -> Any:  # Bᴴ W
        if isinstance(self.B, LowRank):
            return self.B.V @ (ct(self.B.S, xp=xp) @ (ct(self.B.U, xp=xp) @ W))
        return ct(self.B, xp=xp) @ W

    def dense(self, t: float, Y: Any) -> Any:
        xp = array_namespace(Y)
        B = self.B.to_dense() if isinstance(self.B, LowRank) else self.B
        if self.A is None:
            return B - Y
        return -(ct(self.A, xp=xp) @ (self.A @ Y - B))

    def right(self, t: float, Y: LowRank, V: Any) -> Any:
        xp = array_namespace(V)
        YV = Y.U @ (Y.S @ (ct(Y.V, xp=xp) @ V))
        if self.A is None:
            return self._B_right(V, xp) - YV
        return -(ct(self.A, xp=xp) @ (self.A @ YV - self._B_right(V, xp)))

    def left(self, t: float, Y: LowRank, U: Any) -> Any:
        xp = array_namespace(U)
        AU = U if self.A is None else ct(self.A, xp=xp) @ (self.A @ U)  # AᴴA U
        YhAU = Y.V @ (ct(Y.S, xp=xp) @ (ct(Y.U, xp=xp) @ AU))
        W = U if self.A is None else self.A @ U
        return self._B_left(W, xp) - YhAU

    def value(self, Y: Any) -> float:
        """f(Y) = ½‖A Y − B‖²_F (dense evaluation)."""
        D = Y.to_dense() if isinstance(Y, LowRank) else Y
        xp = array_namespace(D)
        B = self.B.to_dense() if isinstance(self.B, LowRank) else self.B
        R = (D if self.A is None else self.A @ D) - B
        return 0.5 * float(xp.sum(xp.abs(R) ** 2))
