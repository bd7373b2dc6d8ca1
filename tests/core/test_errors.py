"""Bad input gets a clear exception naming the parameter and the value."""

import numpy as np
import pytest

import lowrank_ode as lo
from lowrank_ode.exceptions import NumericalBreakdown
from lowrank_ode.problems import LyapunovProblem


@pytest.fixture
def setup():
    P = LyapunovProblem(8, 6)
    return P, P.initial(2)


def test_bad_step_size(setup):
    P, Y0 = setup
    for h in (0.0, -0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"h must be a finite number > 0, got"):
            lo.solve(P, Y0, (0, 1), h)


def test_bad_t_span(setup):
    P, Y0 = setup
    with pytest.raises(ValueError, match="t_span"):
        lo.solve(P, Y0, (1, 0), 0.1)
    with pytest.raises(ValueError, match="t_span"):
        lo.solve(P, Y0, "ab", 0.1)


def test_unknown_method_and_substep(setup):
    P, Y0 = setup
    with pytest.raises(ValueError, match=r"method must be one of .* got 'bogus'"):
        lo.solve(P, Y0, (0, 1), 0.1, method="bogus")
    with pytest.raises(ValueError, match=r"substep must be one of .* got 'rk9'"):
        lo.solve(P, Y0, (0, 1), 0.1, substep="rk9")


def test_negative_tolerances(setup):
    P, Y0 = setup
    with pytest.raises(ValueError, match=r"rtol must be a finite number >= 0, got -0.1"):
        lo.solve(P, Y0, (0, 1), 0.1, method="rabug", rtol=-0.1)
    with pytest.raises(ValueError, match=r"atol must be a finite number >= 0"):
        lo.solve(P, Y0, (0, 1), 0.1, method="rabug", atol=-1.0)
    with pytest.raises(ValueError, match="fixed rank"):
        lo.solve(P, Y0, (0, 1), 0.1, method="bug", rtol=1e-3)


def test_non_orthonormal_and_nonfinite_initial_value(setup):
    P, Y0 = setup
    bad = lo.LowRank(2 * Y0.U, Y0.S, Y0.V)
    with pytest.raises(ValueError, match=r"Y0.U must have orthonormal columns"):
        lo.solve(P, bad, (0, 1), 0.1)
    S = np.array(Y0.S)
    S[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"Y0.S contains NaN or inf"):
        lo.solve(P, lo.LowRank(Y0.U, S, Y0.V), (0, 1), 0.1)


def test_shape_mismatch(setup):
    P, _ = setup
    Y = lo.LowRank.random((6, 8), 2, 0)
    with pytest.raises(
        ValueError, match=r"Y0 has shape \(6, 8\) but the problem has shape \(8, 6\)"
    ):
        lo.solve(P, Y, (0, 1), 0.1)


def test_rhs_returning_nan_or_wrong_shape():
    Y0 = lo.LowRank.random((5, 4), 2, 0)
    with pytest.raises(NumericalBreakdown, match=r"F\(t=0, Y\) contains NaN or inf"):
        lo.solve(lambda t, Y: np.full_like(Y, np.nan), Y0, (0, 1), 0.5)
    with pytest.raises(ValueError, match=r"F\(t, Y\) must return an array of shape \(5, 4\)"):
        lo.solve(lambda t, Y: np.zeros((4, 5)), Y0, (0, 1), 0.5)
    with pytest.raises(TypeError, match="F must be a Problem or a callable"):
        lo.solve(42, Y0, (0, 1), 0.5)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_breakdown_is_reported():
    """A method that produces NaN/inf (direct with a singular S) raises naming the step."""
    U = np.linalg.qr(np.random.default_rng(0).standard_normal((6, 2)))[0]
    Y0 = lo.LowRank(U, np.diag([1.0, 0.0]), U)
    F = lambda t, Y: Y + np.ones_like(Y)
    with pytest.raises(NumericalBreakdown, match=r"direct .* broke down at t=0: S is singular"):
        lo.solve(F, Y0, (0, 1), 0.5, method="direct")
    Y0 = lo.LowRank(U, np.diag([1.0, 1e-300]), U)
    with pytest.raises(
        NumericalBreakdown,
        match=r"step 1 of 2: non-finite values .* 'direct'|F\(t=0.25, Y\) contains NaN",
    ):
        lo.solve(F, Y0, (0, 1), 0.5, method="direct")


def test_solution_record(setup):
    P, Y0 = setup
    sol = lo.solve(P, Y0, (0, 0.25), 0.1, method="bug", substep="euler")
    assert sol.n_steps == 3 and np.isclose(sol.t[-1], 0.25) and len(sol.y) == 4
    assert sol.n_evals == 2 * 3  # Euler BUG: one evaluation for K and L, one for S
    sol = lo.solve(P, Y0, (0, 0.3), 0.1, method="parallel", substep="euler")
    assert sol.n_evals == 3  # parallel BUG with Euler: a single evaluation per step


def test_exact_substep_needs_a_linear_problem():
    Y0 = lo.LowRank.random((5, 4), 2, 0)
    with pytest.raises(ValueError, match="substep='exact' needs an affine autonomous problem"):
        lo.solve(lambda t, Y: Y**2, Y0, (0, 1), 0.5, substep="exact")
    sol = lo.solve(
        lo.problems.FunctionODE(lambda t, Y: -Y, linear=True),
        Y0,
        (0, 1),
        0.5,
        method="ksl",
        substep="exact",
    )
    assert np.allclose(sol.y[-1].to_dense(), np.exp(-1) * Y0.to_dense(), atol=1e-12)


def test_exact_substep_keeps_the_imaginary_part():
    """A real initial value under a complex (Schrödinger) flow becomes complex, as with RK4."""
    from lowrank_ode.problems import SchrodingerProblem

    P = SchrodingerProblem(8)
    Y0 = lo.LowRank.random((8, 8), 2, 0)
    a = lo.solve(P, Y0, (0, 0.1), 0.1, method="ksl", substep="exact").y[-1]
    b = lo.solve(P, Y0, (0, 0.1), 0.1, method="ksl", substep=lo.RK4(20)).y[-1]
    assert a.dtype == np.complex128
    assert np.allclose(a.to_dense(), b.to_dense(), atol=1e-10)


def test_options_that_would_be_ignored_are_rejected(setup):
    P, Y0 = setup
    from lowrank_ode.integrators import BUG, RankAdaptiveBUG

    with pytest.raises(ValueError, match=r"Integrator instance; configure it directly .*rtol"):
        lo.solve(P, Y0, (0, 1), 0.1, method=RankAdaptiveBUG(), rtol=0.1)
    with pytest.raises(ValueError, match="fixed rank"):
        lo.solve(P, Y0, (0, 1), 0.1, method="bug", min_rank=2)
    with pytest.raises(ValueError, match="'bug' has fixed rank: it takes no truncation"):
        BUG(truncation=lo.Truncation(rtol=0.1))
    with pytest.raises(ValueError, match="cannot be used with method 'direct'"):
        lo.solve(P, Y0, (0, 1), 0.1, method="direct", substep="exact")
    sol = lo.solve(P, Y0, (0, 2), np.int64(1), method="bug")  # integer step sizes are fine
    assert sol.n_steps == 2


def test_more_bad_values():
    from lowrank_ode.problems import SchrodingerProblem

    with pytest.raises(ValueError, match="singular values must be finite"):
        lo.Truncation(atol=0.1).rank(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match=r"rank must satisfy 1 <= rank <= 6"):
        SchrodingerProblem(6).initial(rank=0)
    with pytest.raises(ValueError, match="n_steps must be a positive integer, got True"):
        lo.RK4(True)
    with pytest.raises(ValueError, match="max_size must be a positive integer, got -5"):
        lo.Exact(max_size=-5)
