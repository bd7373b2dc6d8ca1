"""Full-rank reference: the sub-step solver (RK4 by default) on the dense ODE A' = F(t, A)."""

from __future__ import annotations

from typing import Any

from ..lowrank import LowRank
from ..problems.base import Problem
from ..substep import SubProblem
from .base import Integrator

__all__ = ["Full"]


class Full(Integrator):
    """Integrates the full matrix ODE densely; the step returns the SVD of the result.

    Forms n × m matrices: a reference for small problems, not a low-rank method.  With a
    ``truncation`` the result is truncated (the "full step then truncate" baseline).

    Parameters
    ----------
    substep : {"rk4", "euler", "exact"} or SubstepSolver, default "rk4"
        Solver of the K-, L- and S-equations (:mod:`lowrank_ode.substep`).
    truncation : Truncation, optional
        Truncation of the SVD of the full result; ``None``: keep the full rank.

    Raises
    ------
    ValueError
        For an unknown ``substep``.
    TypeError
        When ``truncation`` is not a :class:`~lowrank_ode.truncation.Truncation`.

    Examples
    --------
    The dense reference: the full matrix ODE, returned as a full-rank factorization.

    >>> import lowrank_ode as lo
    >>> from lowrank_ode.integrators import Full
    >>> from lowrank_ode.problems import KLWProblem
    >>> P = KLWProblem(20, seed=0)
    >>> Y0 = P.initial(rank=4)
    >>> Y1 = Full().step(P, 0.0, Y0, 0.01)  # one step from t = 0 to t = 0.01
    >>> Y1.shape, Y1.rank
    ((20, 20), 20)
    >>> sol = lo.solve(P, Y0, (0.0, 0.1), h=0.01, method="full")  # the same, by name
    >>> sol.n_steps
    10
    """

    name = "full"
    method_order = None  # no splitting: the sub-step solver alone sets the order
    accepts_truncation = True  # "full step, then truncate"
    supports_free_blocks = True

    def _step_impl(self, F: Problem, t: float, Y: list[Any], h: float) -> list[Any]:
        A0 = tuple(b.to_dense() if isinstance(b, LowRank) else b for b in Y)

        def f(s: float, X: tuple) -> tuple:
            G = F.at(s, list(X))
            return tuple(G.full(i) for i in range(len(X)))

        A1 = self.substep(f, t, A0, h, key=SubProblem.FULL)
        out = []
        for a, b in zip(A1, Y, strict=True):
            if isinstance(b, LowRank):
                Z = LowRank.from_dense(a, rank=min(a.shape))
                out.append(Z if self.truncation is None else Z.truncate(self.truncation))
            else:
                out.append(a)
        return out
