"""Projector-splitting integrators (Lubich & Oseledets, BIT 54 (2014)): Lie–Trotter and Strang."""

from __future__ import annotations

from typing import Any

from .._array_api import array_namespace, ct, qr_pos
from ..lowrank import LowRank
from ..problems.base import Problem
from ..substep import SubProblem
from .base import Integrator, free_indices, lowrank_indices

__all__ = ["KSL", "Strang"]


class KSL(Integrator):
    """Lie–Trotter projector splitting (KSL) — Lubich & Oseledets 2014, Sec. 3 (eqs. 3.1–3.3).

    1. K-step K' = F(KV₀ᴴ)V₀ from K₀ = U₀S₀ over [t₀, t₁]; QR: K₁ = U₁Ŝ;
    2. S-step *backward*: S' = U₁ᴴF(U₁SV₀ᴴ)V₀ integrated from t₁ back to t₀, starting at Ŝ → S̃;
    3. L-step L' = F(U₁Lᴴ)ᴴU₁ from L₀ = V₀S̃ᴴ over [t₀, t₁]; QR: L₁ = V₁S₁ᴴ.

    First order; exact for rank-r A(t) with F = Ȧ (their Thm. 4.1); error bounds independent of
    small singular values (Kieri, Lubich & Walach, SINUM 54 (2016)).  With exact sub-flows it
    conserves ‖Y‖ for skew-Hermitian flows.  Dense blocks move with the K-step.

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
    Lie–Trotter projector splitting at fixed rank:

    >>> import lowrank_ode as lo
    >>> from lowrank_ode.integrators import KSL
    >>> from lowrank_ode.problems import KLWProblem
    >>> P = KLWProblem(20, seed=0)
    >>> Y0 = P.initial(rank=4)
    >>> Y1 = KSL().step(P, 0.0, Y0, 0.01)  # one step from t = 0 to t = 0.01
    >>> Y1.shape, Y1.rank
    ((20, 20), 4)
    >>> sol = lo.solve(P, Y0, (0.0, 0.1), h=0.01, method="ksl")  # the same, by name
    >>> sol.n_steps
    10
    """

    name = "ksl"
    method_order = 1
    supports_free_blocks = True

    def sweep(self, F: Problem, t: float, Y: list[Any], h: float, order: str = "KSL") -> list[Any]:
        """One K–S–L sweep (``order="KSL"``) or its adjoint L–S–K (``order="LSK"``) over ``h``.

        Dense blocks move with the K sub-step: first in K–S–L, last in L–S–K, so that the
        L–S–K sweep is the exact adjoint and Strang stays symmetric (second order).
        """
        if order == "LSK":  # the K–S–L sweep of the transposed problem, dense blocks moving last
            Yt = self._sweep(_Transposed(F), t, _transpose_blocks(Y), h, free_last=True)
            return _transpose_blocks(Yt)
        return self._sweep(F, t, Y, h, free_last=False)

    def _sweep(self, F: Problem, t: float, Y: list[Any], h: float, free_last: bool) -> list[Any]:
        idx, fidx = lowrank_indices(Y), free_indices(Y)
        K1, free = self.k_step(F, t, Y, h, None, with_free=not free_last)
        Y = list(Y)
        for j, i in enumerate(fidx if not free_last else []):
            Y[i] = free[j]
        U1, Sh = [], []
        for K in K1:
            Q, R = qr_pos(K, xp=array_namespace(K))
            U1.append(Q)
            Sh.append(R)
        V0 = [Y[i].V for i in idx]
        St, _ = self.galerkin_step(
            F, t + h, Y, U1, V0, Sh, -h, with_free=False, key=SubProblem.S_BACKWARD
        )
        Ymid = list(Y)
        for j, i in enumerate(idx):
            Ymid[i] = LowRank(U1[j], St[j], V0[j])
        if free_last:
            L1, free = self.l_step(F, t, Ymid, h, None, with_free=True)
            for j, i in enumerate(fidx):
                Ymid[i] = free[j]
        else:
            L1, _ = self.l_step(F, t, Ymid, h, None)
        for j, i in enumerate(idx):
            Q, R = qr_pos(L1[j], xp=array_namespace(L1[j]))
            Ymid[i] = LowRank(U1[j], ct(R, xp=array_namespace(R)), Q)
        return Ymid

    def _step_impl(self, F: Problem, t: float, Y: list[Any], h: float) -> list[Any]:
        return self.sweep(F, t, Y, h)


class Strang(KSL):
    """Strang projector splitting: K(h/2) S(h/2) L(h) S(h/2) K(h/2) — Lubich & Oseledets 2014.

    The Lie–Trotter step over h/2 followed by its adjoint (L–S–K) over h/2; second order.

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
    Strang projector splitting (second order) at fixed rank:

    >>> import lowrank_ode as lo
    >>> from lowrank_ode.integrators import Strang
    >>> from lowrank_ode.problems import KLWProblem
    >>> P = KLWProblem(20, seed=0)
    >>> Y0 = P.initial(rank=4)
    >>> Y1 = Strang().step(P, 0.0, Y0, 0.01)  # one step from t = 0 to t = 0.01
    >>> Y1.shape, Y1.rank
    ((20, 20), 4)
    >>> sol = lo.solve(P, Y0, (0.0, 0.1), h=0.01, method="strang")  # the same, by name
    >>> sol.n_steps
    10
    """

    name = "strang"
    method_order = 2

    def _step_impl(self, F: Problem, t: float, Y: list[Any], h: float) -> list[Any]:
        Yh = self.sweep(F, t, Y, h / 2, "KSL")
        return self.sweep(F, t + h / 2, Yh, h / 2, "LSK")


def _transpose_blocks(Y: list[Any]) -> list[Any]:
    out = []
    for b in Y:
        if isinstance(b, LowRank):
            xp = array_namespace(b.S)
            out.append(LowRank(b.V, ct(b.S, xp=xp), b.U))
        else:
            out.append(ct(b, xp=array_namespace(b)) if b.ndim == 2 else b)
    return out


class _Transposed(Problem):
    """The problem for Yᴴ: F̃(t, Z) = F(t, Zᴴ)ᴴ (swaps right/left products)."""

    def __init__(self, F: Problem) -> None:
        self.F = F
        self.linear = F.linear

    def at(self, t: float, blocks: list[Any]) -> Any:
        return _TransposedEvaluation(self.F.at(t, _transpose_blocks(blocks)))

    def reduced(self, key: SubProblem, basis: Any) -> Any:
        """K- and L-steps swap; the S-step is that of F in the swapped bases, transposed."""
        if key == SubProblem.K:
            return self.F.reduced(SubProblem.L, basis)
        if key == SubProblem.L:
            return self.F.reduced(SubProblem.K, basis)
        if key not in (SubProblem.S, SubProblem.S_BACKWARD):
            return None
        g = self.F.reduced(key, [(Q, P) for P, Q in basis])
        if g is None:
            return None

        def f(t: float, X: tuple) -> tuple:
            Xh = tuple(ct(x, xp=array_namespace(x)) for x in X)
            return tuple(ct(y, xp=array_namespace(y)) for y in g(t, Xh))

        return f


class _TransposedEvaluation:
    def __init__(self, G: Any) -> None:
        self.G = G

    def right(self, i: int, V: Any) -> Any:
        return self.G.left(i, V)

    def left(self, i: int, U: Any) -> Any:
        return self.G.right(i, U)

    def galerkin(self, i: int, U: Any, V: Any) -> Any:
        xp = array_namespace(U, V)
        return ct(self.G.galerkin(i, V, U), xp=xp)

    def full(self, i: int) -> Any:
        A = self.G.full(i)
        return ct(A, xp=array_namespace(A)) if A.ndim == 2 else A
