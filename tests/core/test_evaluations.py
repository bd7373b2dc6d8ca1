"""How many evaluations of F each integrator makes, and that reusing one is exact."""

import numpy as np
import pytest

import lowrank_ode as lo
from lowrank_ode.integrators import BUG, KSL, ParallelBUG, RankAdaptiveBUG
from lowrank_ode.problems.base import FunctionODE
from lowrank_ode.truncation import Truncation

rng = np.random.default_rng(5)
A = rng.standard_normal((9, 7))
B = rng.standard_normal((9, 9)) / 3


def F(t, Y):
    """A nonlinear right-hand side: F(Y) = B Y − Y Yᵀ Y / 10 + cos(t) A."""
    return B @ Y - Y @ Y.T @ Y / 10 + np.cos(t) * A


class Counting(FunctionODE):
    def __init__(self):
        super().__init__(F)
        self.points = []

    def at(self, t, blocks):
        self.points.append(blocks[0].to_dense())
        return super().at(t, blocks)


class FreshS(RankAdaptiveBUG):
    """Rank-adaptive BUG that evaluates F anew at the start of its S-step (no reuse)."""

    def galerkin_step(self, F, t, Y, U, V, S0, h, G0=None, **kw):
        return super().galerkin_step(F, t, Y, U, V, S0, h, G0=None, **kw)


@pytest.mark.parametrize(
    "integ,n_eval",
    [
        (BUG("euler"), 2),
        (RankAdaptiveBUG("euler", Truncation(rtol=1e-3)), 1),
        (ParallelBUG("euler", Truncation(rtol=1e-3)), 1),
        (KSL("euler"), 3),
        (RankAdaptiveBUG("rk4", Truncation(rtol=1e-3)), 1 + 3 + 3 + 3),
    ],
    ids=["bug", "rabug", "parallel", "ksl", "rabug-rk4"],
)
def test_evaluations_per_step(integ, n_eval):
    """Euler sub-steps: BUG needs two evaluations, the rank-adaptive and parallel BUG one."""
    P = Counting()
    Y0 = lo.LowRank.random((9, 7), 3, 0)
    integ.step(P, 0.0, Y0, 0.01)
    assert len(P.points) == n_eval


@pytest.mark.parametrize("substep", ["euler", "rk4"])
def test_rank_adaptive_s_step_starts_at_the_old_point(substep):
    """Û Ŝ₀ V̂ᴴ = Y₀, so reusing F(t, Y₀) for the S-step's first stage gives the same step as
    evaluating F there anew (to rounding)."""
    Y0 = lo.LowRank.random((9, 7), 3, 1)
    h = 0.05
    P_fresh = Counting()
    fresh = FreshS(substep, Truncation(rtol=1e-6)).step(P_fresh, 0.0, Y0, h)
    # the fresh S-step's first point is Y₀ itself
    k_s = 1 if substep == "euler" else 1 + 3 + 3  # K/L stages before the S-step
    assert np.allclose(P_fresh.points[k_s], Y0.to_dense(), atol=1e-13)
    reused = RankAdaptiveBUG(substep, Truncation(rtol=1e-6)).step(Counting(), 0.0, Y0, h)
    assert reused.rank == fresh.rank
    assert np.allclose(reused.to_dense(), fresh.to_dense(), atol=1e-13)
