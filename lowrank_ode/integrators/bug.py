"""The basis-update & Galerkin (BUG) integrators: fixed-rank, rank-adaptive and parallel."""

from __future__ import annotations

from typing import Any

from .._array_api import array_namespace, ct
from ..lowrank import LowRank
from ..problems.base import Problem
from ..substep import SubProblem
from .base import Integrator, augment, change_core, free_indices, lowrank_indices, orth

__all__ = ["BUG", "RankAdaptiveBUG", "ParallelBUG"]


def _assemble(Y: list[Any], idx: list[int], fidx: list[int], lr: list[Any], free: list[Any]):
    out = list(Y)
    for j, i in enumerate(idx):
        out[i] = lr[j]
    for j, i in enumerate(fidx):
        out[i] = free[j]
    return out


class BUG(Integrator):
    """Fixed-rank unconventional (BUG) integrator — Ceruti & Lubich, BIT 62 (2022), Alg. 1.

    1. K-step K' = F(K V₀ᴴ)V₀ and L-step L' = F(U₀Lᴴ)ᴴU₀ from K₀ = U₀S₀, L₀ = V₀S₀ᴴ, in parallel
       (one evaluation at Y₀ serves both first stages);
    2. U₁ = orth(K₁), V₁ = orth(L₁), M = U₁ᴴU₀, N = V₁ᴴV₀;
    3. Galerkin S-step S' = U₁ᴴF(U₁SV₁ᴴ)V₁ forward from M S₀ Nᴴ.

    First order, robust to small singular values, exact when A(t) has rank r and F = Ȧ
    (Ceruti–Lubich 2022, Thms. 4 and 5).  Dense blocks are updated in the S-step.

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
    Fixed-rank BUG with the default RK4 sub-steps; ``BUG(substep='euler')`` for Euler:

    >>> import lowrank_ode as lo
    >>> from lowrank_ode.integrators import BUG
    >>> from lowrank_ode.problems import KLWProblem
    >>> P = KLWProblem(20, seed=0)
    >>> Y0 = P.initial(rank=4)
    >>> Y1 = BUG().step(P, 0.0, Y0, 0.01)  # one step from t = 0 to t = 0.01
    >>> Y1.shape, Y1.rank
    ((20, 20), 4)
    >>> sol = lo.solve(P, Y0, (0.0, 0.1), h=0.01, method="bug")  # the same, by name
    >>> sol.n_steps
    10
    """

    name = "bug"
    method_order = 1
    supports_free_blocks = True

    def _step_impl(self, F: Problem, t: float, Y: list[Any], h: float) -> list[Any]:
        idx, fidx = lowrank_indices(Y), free_indices(Y)
        G0 = F.at(t, Y)
        K1, _ = self.k_step(F, t, Y, h, G0)
        L1, _ = self.l_step(F, t, Y, h, G0)
        U1 = [orth(K) for K in K1]
        V1 = [orth(L) for L in L1]
        S0 = [change_core(U1[j], Y[i].U, Y[i].S, V1[j], Y[i].V) for j, i in enumerate(idx)]
        S1, free = self.galerkin_step(F, t, Y, U1, V1, S0, h)
        lr = [LowRank(U1[j], S1[j], V1[j]) for j in range(len(idx))]
        return _assemble(Y, idx, fidx, lr, free)


class RankAdaptiveBUG(Integrator):
    """Rank-adaptive BUG — Ceruti, Kusch & Lubich, BIT 62 (2022), Alg. 3 ("augmented BUG").

    1. K- and L-steps as in :class:`BUG`;
    2. Û = orth([K₁ | U₀]), V̂ = orth([L₁ | V₀]) (rank ≤ 2r);
    3. Galerkin S-step in the augmented bases from (ÛᴴU₀) S₀ (V̂ᴴV₀)ᴴ;
    4. SVD of the core and truncation by ``truncation`` (tolerance ϑ; see
       :class:`~lowrank_ode.truncation.Truncation`), or back to rank r when none is given.

    Error c₀δ + c₁ε + c₂h + c₃ϑ/h (Thm. 2 there); with exact sub-flows the S-step basis contains
    U₀, V₀, so norm-conserving and gradient flows keep their invariants up to the truncation.

    Because U₀ ⊂ span Û and V₀ ⊂ span V̂, the S-step starts at the old point itself:
    Û Ŝ₀ V̂ᴴ = ÛÛᴴ Y₀ V̂V̂ᴴ = Y₀.  Its first evaluation is therefore the one the K- and L-steps
    already made, F(t, Y₀), contracted with the new bases (Ûᴴ F(t, Y₀) V̂); with an Euler-type
    sub-step (SGD, momentum, Adam) a whole step costs ONE evaluation of F, not two.

    Parameters
    ----------
    substep : {"rk4", "euler", "exact"} or SubstepSolver, default "rk4"
        Solver of the K-, L- and S-equations (:mod:`lowrank_ode.substep`).
    truncation : Truncation, optional
        Rank selection of the augmented factorization
        (:class:`~lowrank_ode.truncation.Truncation`); ``None``: truncate back to the rank of the
        input.

    Raises
    ------
    ValueError
        For an unknown ``substep``.
    TypeError
        When ``truncation`` is not a :class:`~lowrank_ode.truncation.Truncation`.

    Examples
    --------
    Without a truncation the step truncates back to the rank of its input; with
    ``truncation=Truncation(atol=...)`` (or ``solve(..., atol=...)``) the rank follows the solution.

    >>> import lowrank_ode as lo
    >>> from lowrank_ode.integrators import RankAdaptiveBUG
    >>> from lowrank_ode.problems import KLWProblem
    >>> P = KLWProblem(20, seed=0)
    >>> Y0 = P.initial(rank=4)
    >>> Y1 = RankAdaptiveBUG().step(P, 0.0, Y0, 0.01)  # one step from t = 0 to t = 0.01
    >>> Y1.shape, Y1.rank
    ((20, 20), 4)
    >>> sol = lo.solve(P, Y0, (0.0, 0.1), h=0.01, method="rabug")  # the same, by name
    >>> sol.n_steps
    10
    """

    name = "rabug"
    method_order = 1
    rank_adaptive = True
    accepts_truncation = True
    supports_free_blocks = True

    def augmented_step(self, F: Problem, t: float, Y: list[Any], h: float) -> list[Any]:
        """Steps 1–3: the untruncated rank-≤2r result (used by the midpoint integrator)."""
        idx, fidx = lowrank_indices(Y), free_indices(Y)
        G0 = F.at(t, Y)
        K1, _ = self.k_step(F, t, Y, h, G0)
        L1, _ = self.l_step(F, t, Y, h, G0)
        Uh = [augment(K1[j], Y[i].U) for j, i in enumerate(idx)]
        Vh = [augment(L1[j], Y[i].V) for j, i in enumerate(idx)]
        S0 = [change_core(Uh[j], Y[i].U, Y[i].S, Vh[j], Y[i].V) for j, i in enumerate(idx)]
        # Û Ŝ₀ V̂ᴴ = Y₀: the S-step's first stage reuses the evaluation at Y₀
        S1, free = self.galerkin_step(F, t, Y, Uh, Vh, S0, h, G0=G0)
        lr = [LowRank(Uh[j], S1[j], Vh[j]) for j in range(len(idx))]
        return _assemble(Y, idx, fidx, lr, free)

    def _step_impl(self, F: Problem, t: float, Y: list[Any], h: float) -> list[Any]:
        Z = self.augmented_step(F, t, Y, h)
        return [
            self.truncate(z, y.rank) if isinstance(z, LowRank) else z
            for z, y in zip(Z, Y, strict=True)
        ]


class ParallelBUG(Integrator):
    """Parallel BUG — Ceruti, Kusch & Lubich, SIAM J. Sci. Comput. (2024), Alg. 1.

    K-, L- and S-steps all start from the old factors at once (with Euler sub-steps a single
    evaluation at Y₀ serves all three):  K' = F(KV₀ᴴ)V₀, L' = F(U₀Lᴴ)ᴴU₀, S' = U₀ᴴF(U₀SV₀ᴴ)V₀.
    New directions Ũ = orth((I − U₀U₀ᴴ)K₁), Ṽ = orth((I − V₀V₀ᴴ)L₁) augment the bases, and the
    core in [U₀ Ũ], [V₀ Ṽ] is

        Ŝ = [[S̄₁, L₁ᴴṼ], [ŨᴴK₁, 0]],

    truncated by ``truncation`` (or back to rank r).  First order; rank-adaptive with a tolerance.

    Parameters
    ----------
    substep : {"rk4", "euler", "exact"} or SubstepSolver, default "rk4"
        Solver of the K-, L- and S-equations (:mod:`lowrank_ode.substep`).
    truncation : Truncation, optional
        Rank selection of the augmented factorization
        (:class:`~lowrank_ode.truncation.Truncation`); ``None``: truncate back to the rank of the
        input.

    Raises
    ------
    ValueError
        For an unknown ``substep``.
    TypeError
        When ``truncation`` is not a :class:`~lowrank_ode.truncation.Truncation`.

    Examples
    --------
    K-, L- and S-steps from the same point (fixed rank here, no truncation given):

    >>> import lowrank_ode as lo
    >>> from lowrank_ode.integrators import ParallelBUG
    >>> from lowrank_ode.problems import KLWProblem
    >>> P = KLWProblem(20, seed=0)
    >>> Y0 = P.initial(rank=4)
    >>> Y1 = ParallelBUG().step(P, 0.0, Y0, 0.01)  # one step from t = 0 to t = 0.01
    >>> Y1.shape, Y1.rank
    ((20, 20), 4)
    >>> sol = lo.solve(P, Y0, (0.0, 0.1), h=0.01, method="parallel")  # the same, by name
    >>> sol.n_steps
    10
    """

    name = "parallel"
    method_order = 1
    rank_adaptive = True
    accepts_truncation = True
    supports_free_blocks = True

    def _step_impl(self, F: Problem, t: float, Y: list[Any], h: float) -> list[Any]:
        idx, fidx = lowrank_indices(Y), free_indices(Y)
        G0 = F.at(t, Y)
        K1, _ = self.k_step(F, t, Y, h, G0)
        L1, _ = self.l_step(F, t, Y, h, G0)
        U0 = [Y[i].U for i in idx]
        V0 = [Y[i].V for i in idx]
        Sb, free = self.galerkin_step(F, t, Y, U0, V0, [Y[i].S for i in idx], h, G0=G0)
        lr = []
        for j, i in enumerate(idx):
            xp = array_namespace(K1[j])
            r = Y[i].rank
            Ut = augment(U0[j], K1[j])[:, r:]  # orth((I − U₀U₀ᴴ)K₁), columns ⟂ U₀
            Vt = augment(V0[j], L1[j])[:, r:]
            top = xp.concat([Sb[j], ct(L1[j], xp=xp) @ Vt], axis=1)
            bottom = xp.concat(
                [ct(Ut, xp=xp) @ K1[j], xp.zeros((Ut.shape[1], Vt.shape[1]), dtype=Sb[j].dtype)],
                axis=1,
            )
            Shat = xp.concat([top, bottom], axis=0)
            Z = LowRank(xp.concat([U0[j], Ut], axis=1), Shat, xp.concat([V0[j], Vt], axis=1))
            lr.append(self.truncate(Z, r))
        return _assemble(Y, idx, fidx, lr, free)


class FixedBasisGalerkin(Integrator):
    """Galerkin step in frozen bases: only S (and the dense blocks) move, S' = UᴴF(USVᴴ)V.

    The S-step of BUG on its own — DLRT's fine-tuning phase, which freezes U and V after the
    rank-adaptive phase (Schotthöfer et al. 2022, Sec. 5).  It integrates the same sub-problem
    as BUG's S-step, :attr:`SubProblem.S <lowrank_ode.substep.SubProblem.S>`, so a stateful
    sub-step solver (momentum, Adam) carries its S-state from a BUG phase into the fine-tuning
    phase, transported to the frozen bases.

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
    A Galerkin step for S in the bases of the input (U and V stay fixed):

    >>> import lowrank_ode as lo
    >>> from lowrank_ode.integrators import FixedBasisGalerkin
    >>> from lowrank_ode.problems import KLWProblem
    >>> P = KLWProblem(20, seed=0)
    >>> Y0 = P.initial(rank=4)
    >>> Y1 = FixedBasisGalerkin().step(P, 0.0, Y0, 0.01)  # one step from t = 0 to t = 0.01
    >>> Y1.shape, Y1.rank
    ((20, 20), 4)
    >>> sol = lo.solve(P, Y0, (0.0, 0.1), h=0.01, method="galerkin")  # the same, by name
    >>> sol.n_steps
    10
    """

    name = "galerkin"
    method_order = 1
    supports_free_blocks = True

    def _step_impl(self, F: Problem, t: float, Y: list[Any], h: float) -> list[Any]:
        idx, fidx = lowrank_indices(Y), free_indices(Y)
        U = [Y[i].U for i in idx]
        V = [Y[i].V for i in idx]
        S0 = [Y[i].S for i in idx]
        S1, free = self.galerkin_step(F, t, Y, U, V, S0, h, key=SubProblem.S)
        lr = [LowRank(U[j], S1[j], V[j]) for j in range(len(idx))]
        return _assemble(Y, idx, fidx, lr, free)
