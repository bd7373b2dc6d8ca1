"""Property-based tests of the integrators: invariants, exactness, shapes (hypothesis)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import lowrank_ode as lo
from lowrank_ode.integrators import METHODS
from lowrank_ode.testing import (
    check_exactness,
    check_orthonormal,
    make_point,
    point_specs,
    polynomial_rank_r_problem,
)

ALL = sorted(METHODS)
LOW_RANK = [m for m in ALL if m not in ("full", "galerkin")]  # galerkin: frozen bases
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("method", LOW_RANK)
@SETTINGS
@given(spec=point_specs(max_size=10), h=st.sampled_from([0.01, 0.05, 0.2]))
def test_step_keeps_orthonormal_factors_and_shapes(method, spec, h):
    """U, V orthonormal (1e-12) after every step; shape kept; rank as documented."""
    # the factor ODE is not expected to survive tiny σ (see test_robustness)
    assume(method != "direct" or spec.decay >= 1e-6)
    F, _ = polynomial_rank_r_problem(spec)
    Y = make_point(spec)
    sol = lo.solve(F, Y, (0.0, 3 * h), h, method=method)
    for Z in sol.y:
        assert Z.shape == (spec.n, spec.m)
        check_orthonormal(Z, 1e-12)
    assert all(r == spec.rank for r in sol.ranks), "fixed-rank run changed the rank"


@pytest.mark.parametrize("method", ["ksl", "strang", "bug", "rabug"])
@SETTINGS
@given(spec=point_specs(max_size=9, min_decay=1e-6))
def test_exact_for_rank_r_solutions(method, spec):
    """F = Ȧ with rank-r A(t) cubic in t: RK4 sub-steps are exact, so the method is exact."""
    F, A = polynomial_rank_r_problem(spec)
    Y0 = lo.LowRank.from_dense(A(0.0), rank=spec.rank)
    # rank(A(t)) must stay r with a gap (else the rank-r factorization is ill-defined)
    s = np.linalg.svd(A(0.5), compute_uv=False)
    assume(s[spec.rank - 1] >= 1e-6 * s[0])
    check_exactness(lambda: lo.solve(F, Y0, (0.0, 0.5), 0.1, method=method).y[-1], A(0.5), 1e-9)


def test_parallel_is_not_exact():
    """Parallel BUG is first order even on rank-r solutions (a check that exactness can fail)."""
    spec = lo.testing.PointSpec(8, 6, 3, 0.1, "float64", 3)
    F, A = polynomial_rank_r_problem(spec)
    Y0 = lo.LowRank.from_dense(A(0.0), rank=3)
    with pytest.raises(AssertionError, match="not exact"):
        check_exactness(
            lambda: lo.solve(F, Y0, (0, 0.5), 0.1, method="parallel").y[-1], A(0.5), 1e-9
        )


@pytest.mark.parametrize("method", ["rabug", "parallel", "midpoint"])
@SETTINGS
@given(spec=point_specs(max_size=10), rtol=st.sampled_from([1e-2, 1e-6, 1e-10]))
def test_adaptive_rank_bounds(method, spec, rtol):
    """Adaptive methods: 1 ≤ rank ≤ min(n, m, max_rank), orthonormal factors."""
    F, _ = polynomial_rank_r_problem(spec)
    Y = make_point(spec)
    cap = max(1, min(spec.n, spec.m) - 1)
    sol = lo.solve(F, Y, (0.0, 0.2), 0.1, method=method, rtol=rtol, max_rank=cap)
    for Z in sol.y[1:]:
        assert 1 <= Z.rank <= cap
        check_orthonormal(Z, 1e-12)


@pytest.mark.parametrize("method", LOW_RANK)
def test_full_rank_edge_case(method):
    """rank = min(n, m): the manifold is all full-rank matrices; every method must still run."""
    spec = lo.testing.PointSpec(7, 4, 4, 0.5, "float64", 11)
    F, A = polynomial_rank_r_problem(spec)
    Y0 = lo.LowRank.from_dense(A(0.0), rank=4)
    sol = lo.solve(F, Y0, (0.0, 0.3), 0.1, method=method)
    check_orthonormal(sol.y[-1])
    assert sol.y[-1].rank == 4
    err = np.linalg.norm(sol.y[-1].to_dense() - A(0.3)) / np.linalg.norm(A(0.3))
    assert err < 1e-3, f"{method}: error {err:.2e} at full rank"


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "complex128"])
@pytest.mark.parametrize("method", ["ksl", "bug", "rabug", "parallel", "midpoint", "strang"])
def test_dtypes_are_preserved(method, dtype):
    spec = lo.testing.PointSpec(9, 7, 3, 0.1, dtype, 5)
    F, A = polynomial_rank_r_problem(spec)
    Y0 = make_point(spec)
    sol = lo.solve(F, Y0, (0.0, 0.2), 0.1, method=method)
    Z = sol.y[-1]
    assert Z.U.dtype == Z.S.dtype == Z.V.dtype == np.dtype(dtype)
    tol = 1e-5 if dtype in ("float32", "complex64") else 1e-12
    check_orthonormal(Z, tol)
