"""Points with dense ("free") blocks next to low-rank ones, as DLRT uses them."""

import numpy as np
import pytest

import lowrank_ode as lo
from lowrank_ode.integrators import BUG, KSL, ParallelBUG, RankAdaptiveBUG, Strang
from lowrank_ode.problems.base import Evaluation, Problem
from lowrank_ode.substep import RK4
from lowrank_ode.testing import empirical_order

rng = np.random.default_rng(0)
n = 5
A, B, C = (0.5 * rng.standard_normal((n, n)) for _ in range(3))


class Coupled(Problem):
    """Y' = AY + YBᵀ + θ,  θ' = Cθ − Y: a low-rank block coupled to a dense block."""

    def at(self, t, blocks):
        return _Ev(blocks[0], blocks[1])


class _Ev(Evaluation):
    def __init__(self, Y, th):
        self.Y, self.th = Y, th

    def full(self, i):
        Yd = self.Y.to_dense()
        return A @ Yd + Yd @ B.T + self.th if i == 0 else C @ self.th - Yd


def _run(integ, N, T=0.5):
    Y0 = lo.LowRank.random((n, n), 2, 1, singular_values=np.array([1.0, 0.5]))
    Y = [Y0, 0.3 * np.random.default_rng(2).standard_normal((n, n))]
    for k in range(N):
        Y = integ.step(Coupled(), k * T / N, Y, T / N)
    return Y


def _errors(integ):
    R = _run(integ, 1024)
    errs = []
    for N in (8, 16, 32, 64):
        Y = _run(integ, N)
        errs.append(np.linalg.norm(Y[0].to_dense() - R[0].to_dense()) + np.linalg.norm(Y[1] - R[1]))
    return errs


def test_strang_stays_second_order_with_moving_dense_blocks():
    """Dense blocks move with K in both halves, so L–S–K is the adjoint of K–S–L."""
    hs = [1 / 8, 1 / 16, 1 / 32, 1 / 64]
    assert abs(empirical_order(hs, _errors(Strang(RK4(2)))) - 2) < 0.1
    assert abs(empirical_order(hs, _errors(KSL(RK4(2)))) - 1) < 0.1


@pytest.mark.parametrize("cls", [BUG, RankAdaptiveBUG, ParallelBUG, KSL])
def test_dense_blocks_move_and_stay_dense(cls):
    Y = _run(cls(RK4()), 4)
    assert isinstance(Y[0], lo.LowRank) and Y[0].rank == 2
    assert isinstance(Y[1], np.ndarray) and Y[1].shape == (n, n)
    assert np.all(np.isfinite(Y[1]))
