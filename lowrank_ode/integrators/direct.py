"""Koch–Lubich factor ODEs ("direct" integration of U, S, V) — kept to show their breakdown."""

from __future__ import annotations

from typing import Any

from .._array_api import array_namespace, ct
from ..exceptions import NumericalBreakdown
from ..lowrank import LowRank
from ..problems.base import Problem
from .base import Integrator, lowrank_indices

__all__ = ["Direct"]


class Direct(Integrator):
    """The Koch–Lubich equations (SIMAX 29 (2007), Prop. 2.1) integrated by the sub-step solver:

        U' = (I − UUᴴ) F V S⁻¹,   S' = Uᴴ F V,   V' = (I − VVᴴ) Fᴴ U S⁻ᴴ,

    followed by a QR retraction of U and V.  The S⁻¹ makes the system stiff when σ_min(S) is
    small: the step size must shrink with σ_min — the failure the other integrators remove.
    """

    name = "direct"
    affine_substeps = False  # the (U, S, V) system is nonlinear (S⁻¹, products of factors)
    order = 4  # the order of the default RK4 sub-step on smooth, well-conditioned problems

    def step_blocks(self, F: Problem, t: float, Y: list[Any], h: float) -> list[Any]:  # noqa: D102
        idx = lowrank_indices(Y)

        def f(s: float, X: tuple) -> tuple:
            pts = list(Y)
            for j, i in enumerate(idx):
                pts[i] = LowRank(X[3 * j], X[3 * j + 1], X[3 * j + 2])
            G = F.at(s, pts)
            out: list[Any] = []
            for j, i in enumerate(idx):
                U, S, V = X[3 * j : 3 * j + 3]
                xp = array_namespace(U, S, V)
                FV = G.right(i, V)
                FhU = G.left(i, U)
                Sdot = ct(U, xp=xp) @ FV
                # X S⁻¹ = solve(Sᵀ, Xᵀ)ᵀ and X S⁻ᴴ = solve(conj(S), Xᵀ)ᵀ
                Sc = xp.conj(S) if xp.isdtype(S.dtype, "complex floating") else S
                try:
                    Udot = xp.linalg.solve(S.T, (FV - U @ Sdot).T).T
                    Vdot = xp.linalg.solve(Sc, (FhU - V @ ct(Sdot, xp=xp)).T).T
                except Exception as exc:  # LinAlgError on NumPy, other types elsewhere
                    raise NumericalBreakdown(
                        f"direct (Koch–Lubich) method broke down at t={s:.6g}: S is singular "
                        f"({exc}); use ksl, bug or rabug, which do not invert S"
                    ) from exc
                out += [Udot, Sdot, Vdot]
            return tuple(out)

        X0 = tuple(a for i in idx for a in (Y[i].U, Y[i].S, Y[i].V))
        X1 = self.substep(f, t, X0, h, key="USV")
        out = list(Y)
        for j, i in enumerate(idx):
            out[i] = LowRank(X1[3 * j], X1[3 * j + 1], X1[3 * j + 2]).orthonormalize()
        return out
