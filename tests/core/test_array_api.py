"""The core runs on array-api-strict arrays: no NumPy-only call leaks (CuPy readiness)."""

import os

import numpy as np
import pytest

import lowrank_ode as lo
from lowrank_ode._array_api import to_numpy
from lowrank_ode.integrators import METHODS
from lowrank_ode.problems import LyapunovProblem, QuadraticGradientFlow, SchrodingerProblem

# LOWRANK_ODE_TEST_NAMESPACE=cupy runs this module on a GPU (benchmarks/gpu_check.py)
_NAMESPACE = os.environ.get("LOWRANK_ODE_TEST_NAMESPACE", "array_api_strict")
xps = pytest.importorskip(
    _NAMESPACE if _NAMESPACE == "array_api_strict" else f"array_api_compat.{_NAMESPACE}"
)
pytestmark = pytest.mark.usefixtures("no_implicit_host_copy")


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


# ----------------------------------------------------------------------------- the whole core
@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("substep", ["euler", "rk4"])
def test_every_integrator_and_substep_on_strict(method, substep):
    """Every integrator with each explicit sub-step solver."""
    Pn = LyapunovProblem(10, 8)
    Ps = LyapunovProblem(10, 8, xp=xps)
    kw = {"rtol": 1e-8} if METHODS[method].rank_adaptive else {}
    _compare(Pn, Ps, Pn.initial(3), method, substep=substep, **kw)


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128"])
def test_generic_qr_and_svd_match_the_lapack_path(dtype):
    """The namespace-generic branches of qr_pos/svd give the LAPACK fast path's factors."""
    from lowrank_ode._array_api import array_namespace, qr_pos, svd

    rng = np.random.default_rng(0)
    A = rng.standard_normal((9, 4)).astype(dtype)
    if dtype.startswith("complex"):
        A = A + 1j * rng.standard_normal((9, 4))
    tol = 1e-5 if dtype == "float32" else 1e-12
    As = xps.asarray(A)
    xs, xn = array_namespace(As), array_namespace(A)
    for fast, generic in zip(qr_pos(A, xp=xn), qr_pos(As, xp=xs), strict=True):
        assert isinstance(generic, type(As))
        assert np.allclose(to_numpy(generic), fast, atol=tol)
    P, s, Q = svd(A, xp=xn)
    Ps, ss, Qs = svd(As, xp=xs)
    assert np.allclose(to_numpy(ss), s, atol=tol)
    # singular vectors up to a unit phase per column
    for a, b in ((to_numpy(Ps), P), (to_numpy(Qs), Q)):
        assert np.allclose(np.abs(np.sum(a.conj() * b, axis=0)), 1, atol=tol)


def test_lowrank_operations_on_strict():
    rng = np.random.default_rng(3)
    Yn = lo.LowRank.random((9, 7), 4, rng)
    Ys = _to_strict(Yn)
    for got, ref in (
        (Ys.truncate(rank=2), Yn.truncate(rank=2)),
        (Ys.truncate(lo.Truncation(rtol=0.2)), Yn.truncate(lo.Truncation(rtol=0.2))),
        (Ys.orthonormalize(), Yn.orthonormalize()),
        (Ys.astype(xps.float32), Yn.astype(np.float32)),
    ):
        assert isinstance(got.U, type(Ys.U))
        assert got.rank == ref.rank
        assert np.allclose(to_numpy(got.to_dense()), ref.to_dense(), atol=1e-6)
    assert np.allclose(to_numpy(Ys.singular_values()), Yn.singular_values())
    assert Ys.norm() == pytest.approx(Yn.norm(), rel=1e-12)
    R = lo.LowRank.random((9, 7), 3, 5, xp=xps)
    assert isinstance(R.U, type(Ys.U))
