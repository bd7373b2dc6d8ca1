"""The core runs on array-api-strict arrays: no NumPy-only call leaks (CuPy readiness)."""

import numpy as np
import pytest

import lowrank_ode as lo
from lowrank_ode._array_api import to_numpy
from lowrank_ode.integrators import METHODS
from lowrank_ode.problems import LyapunovProblem, QuadraticGradientFlow, SchrodingerProblem

xps = pytest.importorskip("array_api_strict")


def _to_strict(Y):
    return lo.LowRank(*(xps.asarray(np.ascontiguousarray(to_numpy(A))) for A in (Y.U, Y.S, Y.V)))


def _compare(P_np, P_strict, Y0, method, **kw):
    ref = lo.solve(P_np, Y0, (0, 0.2), 0.05, method=method, **kw)
    got = lo.solve(P_strict, _to_strict(Y0), (0, 0.2), 0.05, method=method, **kw)
    Z = got.y[-1]
    assert isinstance(Z.U, type(xps.asarray([1.0])))
    assert np.allclose(to_numpy(Z.to_dense()), ref.y[-1].to_dense(), atol=1e-12)
    assert list(got.ranks) == list(ref.ranks)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_lyapunov_on_strict(method):
    Pn = LyapunovProblem(12, 9)
    Ps = LyapunovProblem(12, 9, xp=xps)
    kw = {"rtol": 1e-8} if METHODS[method].rank_adaptive else {}
    _compare(Pn, Ps, Pn.initial(3), method, **kw)


@pytest.mark.parametrize("method", ["ksl", "strang", "bug", "rabug", "parallel", "midpoint"])
def test_schrodinger_complex_on_strict(method):
    Pn = SchrodingerProblem(10)
    Ps = SchrodingerProblem(10, xp=xps)
    _compare(Pn, Ps, Pn.initial(seed=0, rank=3), method)


def test_gradient_flow_and_projection_on_strict():
    rng = np.random.default_rng(0)
    B = lo.LowRank.random((8, 6), 3, rng)
    Pn = QuadraticGradientFlow(B)
    Ps = QuadraticGradientFlow(_to_strict(B))
    Y0 = lo.LowRank.random((8, 6), 2, rng)
    _compare(Pn, Ps, Y0, "bug", substep="euler")
    Z = xps.asarray(rng.standard_normal((8, 6)))
    Ys = _to_strict(Y0)
    assert np.allclose(to_numpy(lo.tangent_project(Ys, Z)), lo.tangent_project(Y0, to_numpy(Z)))
    assert to_numpy(lo.LowRank.from_dense(Z, rank=2).S).shape == (2, 2)
