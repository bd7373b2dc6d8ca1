"""Theorem properties: order of convergence, robustness to small singular values, descent,
norm conservation, rank adaptivity."""

import numpy as np
import pytest

import lowrank_ode as lo
from lowrank_ode.exceptions import NumericalBreakdown
from lowrank_ode.problems import KLWProblem, QuadraticGradientFlow, SchrodingerProblem
from lowrank_ode.testing import check_descent, check_order, dense_error


@pytest.fixture(scope="module")
def klw_projected():
    """KLW with a rank-6 core plus an ε = 1e-2 full-rank perturbation, and a reference of the
    projected ODE dY/dt = P(Y)Ȧ(t): the Koch–Lubich factor ODE with RK4 and a small step (well
    conditioned here), checked against Strang."""
    P = KLWProblem(24, singular_values=2.0 ** -np.arange(1, 7), eps=1e-2, seed=1)
    Y0 = P.initial(6)
    T = 0.5
    ref = lo.solve(P, Y0, (0, T), 5e-3, method="direct").y[-1].to_dense()
    ref_strang = lo.solve(P, Y0, (0, T), 2.5e-3, method="strang").y[-1].to_dense()
    assert np.linalg.norm(ref - ref_strang) < 1e-7
    return P, Y0, T, ref


@pytest.mark.parametrize(
    "method,order,tol",
    [("ksl", 1, 0.15), ("bug", 1, 0.15), ("rabug", 1, 0.15), ("strang", 2, 0.15)],
)
def test_order_against_projected_ode(klw_projected, method, order, tol):
    """Slope of log error vs log h ≈ the declared order (the low-rank error cannot mask it:
    the reference solves the same projected ODE)."""
    P, Y0, T, ref = klw_projected
    assert lo.integrators.METHODS[method].order == order
    check_order(
        lambda h: lo.solve(P, Y0, (0, T), h, method=method).y[-1],
        ref,
        [0.1, 0.05, 0.025, 0.0125],
        expected=order,
        tol=tol,
    )


def test_parallel_order_one(klw_projected):
    """Parallel BUG: first order (pre-asymptotically faster, so test the finer pairs)."""
    P, Y0, T, ref = klw_projected
    errs = [
        dense_error(lo.solve(P, Y0, (0, T), h, method="parallel").y[-1], ref)
        for h in [0.025, 0.0125, 0.00625, 0.003125]
    ]
    slopes = np.diff(np.log(errs)) / np.log(0.5)
    assert 0.8 < slopes[-1] < 1.4, slopes


def _cubic_problem():
    """F(Y) = W₁Y + YW₂ᵀ − YYᵀY + sin(t)Y: F(Y) lies in the tangent space, so the solution keeps
    rank r exactly (ε = 0) while BUG is not exact (its K-step freezes V₀)."""
    from lowrank_ode.problems.klw import random_skew

    rng = np.random.default_rng(0)
    W1, W2 = random_skew(20, rng), random_skew(16, rng)
    F = lambda t, Y: W1 @ Y + Y @ W2.T - Y @ Y.T @ Y + np.sin(t) * Y
    Y0 = lo.LowRank.random((20, 16), 4, 1, singular_values=[1, 0.5, 0.1, 1e-3])
    ref = lo.solve(F, Y0, (0, 1), 2e-3, method="full").y[-1].to_dense()
    return F, Y0, ref


def test_midpoint_at_least_second_order():
    """Midpoint BUG: order ≥ 2 where BUG is order 1 (same problem, same step sizes)."""
    F, Y0, ref = _cubic_problem()
    hs = [0.2, 0.1, 0.05, 0.025]
    p_bug, _ = check_order(
        lambda h: lo.solve(F, Y0, (0, 1), h, method="bug").y[-1], ref, hs, 1, 0.15
    )
    e_mid = [dense_error(lo.solve(F, Y0, (0, 1), h, method="midpoint").y[-1], ref) for h in hs[:3]]
    slope = lo.testing.empirical_order(hs[:3], e_mid)
    assert slope >= 1.8, f"midpoint order {slope:.2f} < 2 (errors {e_mid})"


def _klw_error(method, sigma_min, h, eps):
    """Error at T = 0.5 on KLW with D = diag(σ₁ … σ_r, ε·2⁻ʲ): σ_r(Y₀) = σ_min exactly (an
    orthogonal tail of size ε, not a random full-rank perturbation, which would lift σ_r to ≈ ε)."""
    r = 4
    sv = np.concatenate([np.geomspace(1.0, sigma_min, r), eps * 2.0 ** -np.arange(16)])
    P = KLWProblem(20, singular_values=sv, seed=3)
    Y0 = P.initial(r)
    assert np.isclose(np.linalg.svd(Y0.S, compute_uv=False)[-1], sigma_min, rtol=1e-6)
    try:
        Y = lo.solve(P, Y0, (0, 0.5), h, method=method).y[-1]
    except NumericalBreakdown:  # the method broke down (NaN/inf)
        return np.inf
    return dense_error(Y, P.exact(0.5))


def test_robustness_small_singular_values():
    """KSL, BUG, rabug: error O(h + ε) independent of σ_min; the direct factor ODE degrades."""
    h, eps = 0.05, 1e-12
    sigmas = [1e-2, 1e-5, 1e-8, 1e-11]
    for method in ["ksl", "bug", "rabug"]:
        errs = [_klw_error(method, s, h, eps) for s in sigmas]
        assert max(errs) < 1e-6, (method, errs)  # ε-level: F = Ȧ and RK4 sub-steps
        assert max(errs) / min(errs) < 3, f"{method} error depends on σ_min: {errs}"
    errs_direct = [_klw_error("direct", s, h, eps) for s in sigmas]
    assert errs_direct[-1] > 1e3 * errs_direct[0], f"direct did not degrade: {errs_direct}"


def test_robustness_checker_of_the_testing_api():
    """The public checker agrees: robust methods pass, the factor ODE is rejected."""
    for method in ["ksl", "bug", "rabug"]:
        lo.testing.check_robustness(method)
    with pytest.raises(AssertionError, match="not robust"):
        lo.testing.check_robustness("direct")


@pytest.mark.parametrize("method,kw", [("bug", {}), ("rabug", {"atol": 1e-8}), ("ksl", {})])
def test_descent_of_gradient_flow(method, kw):
    """f(Yₙ₊₁) ≤ f(Yₙ) for the gradient flow of f = ½‖Y − B‖² with small h."""
    rng = np.random.default_rng(0)
    B = (
        rng.standard_normal((15, 12))
        @ np.diag(2.0 ** -np.arange(12))
        @ rng.standard_normal((12, 12))
    )
    F = QuadraticGradientFlow(B)
    Y0 = lo.LowRank.random((15, 12), 3, 1)
    vals = [
        F.value(Y) for Y in lo.solve(F, Y0, (0, 2), 0.05, method=method, substep="euler", **kw).y
    ]
    slack = 0.0 if method != "rabug" else 1e-8 * 10
    check_descent(vals, slack=slack)
    assert vals[-1] < 0.5 * vals[0]


def test_descent_checker_can_fail():
    with pytest.raises(AssertionError, match="no descent at step 1"):
        check_descent([3.0, 2.0, 2.5])


@pytest.mark.parametrize("method", ["ksl", "strang"])
def test_norm_conservation_projector_splitting(method):
    """With exact sub-flows, projector splitting conserves ‖Y‖ of the Schrödinger flow."""
    P = SchrodingerProblem(10)
    Y0 = P.initial(seed=1, rank=3)
    sol = lo.solve(P, Y0, (0, 0.5), 0.1, method=method, substep="exact")
    norms = [Y.norm() for Y in sol.y]
    assert np.ptp(norms) < 1e-12 * norms[0], norms


@pytest.mark.parametrize("method", ["rabug", "midpoint"])
def test_norm_conserved_up_to_truncation(method):
    """Augmented and midpoint BUG: the S-step basis contains U₀, V₀; only truncation loses norm."""
    P = SchrodingerProblem(10)
    Y0 = P.initial(seed=1, rank=3)
    theta = 1e-9
    sol = lo.solve(P, Y0, (0, 0.5), 0.1, method=method, substep="exact", atol=theta)
    norms = np.array([Y.norm() for Y in sol.y])
    assert np.all(np.abs(np.diff(norms)) <= theta + 1e-13), np.diff(norms)


def test_fixed_rank_bug_loses_norm():
    """Fixed-rank BUG is *not* norm conserving (M S₀ Nᴴ is a projection): state it, test it."""
    P = SchrodingerProblem(10)
    Y0 = P.initial(seed=1, rank=3)
    sol = lo.solve(P, Y0, (0, 0.5), 0.1, method="bug", substep="exact")
    norms = [Y.norm() for Y in sol.y]
    assert norms[-1] < norms[0] * (1 - 1e-8)
    assert np.all(np.diff(norms) <= 1e-14)


def test_rank_follows_numerical_rank():
    """rabug's rank tracks the numerical rank (Frobenius tail ≤ ϑ) of the exact solution of the
    forced heat equation, which grows from 1."""
    from lowrank_ode.problems import LyapunovProblem

    L = LyapunovProblem(40, 30, nu_x=1.0, nu_y=0.5)
    Y0 = L.initial(1)
    sol = lo.solve(L, Y0, (0, 2), 0.02, method="rabug", atol=1e-6, save_every=10)
    rule = lo.Truncation(atol=1e-6)
    exact_ranks = [rule.rank(np.linalg.svd(L.exact(t, Y0), compute_uv=False)) for t in sol.t]
    assert sol.ranks[0] == 1 and max(sol.ranks) >= 3
    assert np.all(np.abs(np.asarray(sol.ranks) - exact_ranks) <= 1), (sol.ranks, exact_ranks)
    assert dense_error(sol.y[-1], L.exact(2.0, Y0)) < 1e-5


def test_rank_adaptive_error_bound():
    """Error of rabug ≤ c₁ε + c₂h + c₃ϑ/h over a grid of (h, ϑ) with c₁ = 3, c₂ = 10ε, c₃ = 2T
    (ε = 1e-3 perturbation of a rank-6 KLW matrix), and near c₁ε when ϑ is tiny."""
    eps, T = 1e-3, 0.5
    P = KLWProblem(24, singular_values=np.geomspace(1, 1e-2, 6), eps=eps, seed=4)
    Y0 = P.initial(6)
    for theta in (1e-12, 1e-4, 1e-3):
        for h in (0.1, 0.05, 0.025):
            e = dense_error(
                lo.solve(P, Y0, (0, T), h, method="rabug", atol=theta).y[-1], P.exact(T)
            )
            assert e <= 3 * eps + 10 * eps * h + 2 * T * theta / h, (theta, h, e)
