"""Koch–Lubich factor ODEs ("direct" integration of U, S, V) — kept to show their breakdown."""

from __future__ import annotations

from typing import Any

from .._array_api import array_namespace, ct
from ..exceptions import NumericalBreakdown
from ..lowrank import LowRank
from ..problems.base import Problem
from ..substep import SubProblem
from .base import Integrator, lowrank_indices

__all__ = ["Direct"]


class Direct(Integrator):
    """The Koch–Lubich equations (SIMAX 29 (2007), Prop. 2.1) integrated by the sub-step solver:

        U' = (I − UUᴴ) F V S⁻¹,   S' = Uᴴ F V,   V' = (I − VVᴴ) Fᴴ U S⁻ᴴ,

    followed by a QR retraction of U and V.  The S⁻¹ makes the system stiff when σ_min(S) is
    small: the step size must shrink with σ_min — the failure the other integrators remove.

    Parameters
    ----------
    substep : {"rk4", "euler", "exact"} or SubstepSolver, default "rk4"
        Solver of the K-, L- and S-equations (:mod:`lowrank_ode.substep`).
    truncation : None
        This method keeps the rank of its input: it takes no truncation.

    Raises
    ------
    ValueError
        For an unknown ``substep``, or when a ``truncation`` is given.

    Examples
    --------
    The Koch–Lubich factor ODEs; fine while the step resolves σ_min (see
    :func:`lowrank_ode.testing.check_robustness` for where it fails).

    >>> import lowrank_ode as lo
    >>> from lowrank_ode.integrators import Direct
    >>> from lowrank_ode.problems import KLWProblem
    >>> P = KLWProblem(20, seed=0)
    >>> Y0 = P.initial(rank=4)
    >>> Y1 = Direct().step(P, 0.0, Y0, 0.01)  # one step from t = 0 to t = 0.01
    >>> Y1.shape, Y1.rank
    ((20, 20), 4)
    >>> sol = lo.solve(P, Y0, (0.0, 0.1), h=0.01, method="direct")  # the same, by name
    >>> sol.n_steps
    10
    """

    name = "direct"
    affine_substeps = False  # the (U, S, V) system is nonlinear (S⁻¹, products of factors)
    method_order = None  # no splitting: the sub-step solver alone sets the order

    def _step_impl(self, F: Problem, t: float, Y: list[Any], h: float) -> list[Any]:
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
        X1 = self.substep(f, t, X0, h, key=SubProblem.USV)
        out = list(Y)
        for j, i in enumerate(idx):
            out[i] = LowRank(X1[3 * j], X1[3 * j + 1], X1[3 * j + 2]).orthonormalize()
        return out
