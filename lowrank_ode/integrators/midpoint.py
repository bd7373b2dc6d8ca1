"""Midpoint BUG — Ceruti, Einkemmer, Kusch & Lubich, BIT 64 (2024), "A robust second-order
low-rank BUG integrator based on the midpoint rule" (arXiv:2402.08607)."""

from __future__ import annotations

from typing import Any

from ..lowrank import LowRank
from ..problems.base import Problem
from .base import Integrator, augment, change_core, lowrank_indices
from .bug import RankAdaptiveBUG

__all__ = ["MidpointBUG"]


class MidpointBUG(Integrator):
    """Second-order robust BUG integrator based on the midpoint rule.

    1. an augmented (rank ≤ 2r, untruncated) BUG step over h/2 gives Y½ = U½ S½ V½ᴴ;
    2. Û = orth[U½ | F(t½, Y½)V½], V̂ = orth[V½ | F(t½, Y½)ᴴU½] (≤ 4r columns, U₀ ⊂ span Û);
    3. Galerkin S-step over the whole step from (ÛᴴU₀) S₀ (V̂ᴴV₀)ᴴ;
    4. truncation by ``truncation`` (or back to rank r).

    Error c₀δ + c₁ε̂ + c₂hε + c₃h² + c₄nϑ (their Thm. 5.1): second order when the
    sub-step solver is at least second order (RK4 by default).  Construction as in the authors'
    reproduction code; dense blocks are not supported.

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
    Second order; truncated back to the input rank when no truncation is given:

    >>> import lowrank_ode as lo
    >>> from lowrank_ode.integrators import MidpointBUG
    >>> from lowrank_ode.problems import KLWProblem
    >>> P = KLWProblem(20, seed=0)
    >>> Y0 = P.initial(rank=4)
    >>> Y1 = MidpointBUG().step(P, 0.0, Y0, 0.01)  # one step from t = 0 to t = 0.01
    >>> Y1.shape, Y1.rank
    ((20, 20), 4)
    >>> sol = lo.solve(P, Y0, (0.0, 0.1), h=0.01, method="midpoint")  # the same, by name
    >>> sol.n_steps
    10
    """

    name = "midpoint"
    method_order = 2
    rank_adaptive = True
    accepts_truncation = True

    def _step_impl(self, F: Problem, t: float, Y: list[Any], h: float) -> list[Any]:
        idx = lowrank_indices(Y)
        half = RankAdaptiveBUG(self.substep, reduced=self.reduced).augmented_step(F, t, Y, h / 2)
        G = F.at(t + h / 2, half)
        out = list(Y)
        Uh, Vh, S0 = [], [], []
        for i in idx:
            Yh = half[i]
            U = augment(Yh.U, G.right(i, Yh.V))
            V = augment(Yh.V, G.left(i, Yh.U))
            Uh.append(U)
            Vh.append(V)
            S0.append(change_core(U, Y[i].U, Y[i].S, V, Y[i].V))
        S1, _ = self.galerkin_step(F, t, Y, Uh, Vh, S0, h, with_free=False)
        for j, i in enumerate(idx):
            out[i] = self.truncate(LowRank(Uh[j], S1[j], Vh[j]), Y[i].rank)
        return out
