"""Hostile input to the core: LowRank, Truncation, solve, the problems, the augmented bases.

Every case asserts the exception type and that the message names the parameter and the value.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lowrank_ode as lo
from lowrank_ode.exceptions import NumericalBreakdown
from lowrank_ode.integrators import RankAdaptiveBUG
from lowrank_ode.integrators.base import augment, orth
from lowrank_ode.problems import KLWProblem, QuadraticGradientFlow


def _orthonormal(n, r, seed=0):
    return np.linalg.qr(np.random.default_rng(seed).standard_normal((n, r)))[0]


# ------------------------------------------------------------------ LowRank: dtypes
def test_from_dense_promotes_integer_input():
    A = np.arange(12).reshape(4, 3)
    Y = lo.LowRank.from_dense(A, rank=2)
    assert Y.dtype == np.float64 and Y.U.dtype == Y.V.dtype == np.float64
    assert np.allclose(np.diag(Y.S), np.linalg.svd(A.astype(float), compute_uv=False)[:2])
    assert np.isclose(Y.S[1, 1], 1.4640585, rtol=1e-6)  # not 1 (the int cast of 1.46)


@pytest.mark.parametrize("dtype", [int, bool, np.float16, np.int8])
def test_random_refuses_non_lapack_dtypes(dtype):
    with pytest.raises(TypeError, match=rf"dtype must be float32, .* got {np.dtype(dtype).name}"):
        lo.LowRank.random((4, 3), 2, 0, dtype=dtype)


def test_from_dense_refuses_float16():
    with pytest.raises(TypeError, match=r"A must have dtype .* got float16"):
        lo.LowRank.from_dense(np.ones((4, 3), dtype=np.float16), rank=1)


def test_one_dtype_rule_at_construction():
    U, V = _orthonormal(5, 2), _orthonormal(4, 2, 1)
    Y = lo.LowRank(U.astype(np.float32), np.eye(2), V + 0j)
    assert Y.dtype == Y.U.dtype == Y.V.dtype == np.complex128
    assert Y.to_dense().dtype == np.complex128
    Z = Y.truncate(rank=1)
    assert Z.U.dtype == Z.S.dtype == Z.V.dtype == np.complex128


def test_integer_factors_are_promoted():
    Y = lo.LowRank(np.eye(4, 2, dtype=int), np.eye(2, dtype=int), np.eye(3, 2, dtype=int))
    assert Y.U.dtype == Y.S.dtype == Y.V.dtype == np.float64


def test_float16_factors_refused():
    U = _orthonormal(5, 2).astype(np.float16)
    with pytest.raises(TypeError, match=r"U must have dtype .* got float16"):
        lo.LowRank(U, np.eye(2), _orthonormal(4, 2))


@pytest.mark.parametrize("method", ["singular_values", "norm"])
def test_infinite_core_is_reported(method):
    U = _orthonormal(5, 2)
    Y = lo.LowRank(U, np.diag([np.inf, 1.0]), U)
    with pytest.raises(ValueError, match=r"S contains NaN or inf"):
        getattr(Y, method)()


@given(
    dts=st.lists(
        st.sampled_from(["float32", "float64", "complex64", "complex128", "int64", "int32"]),
        min_size=3,
        max_size=3,
    )
)
@settings(max_examples=40, deadline=None)
def test_dtype_rule_is_result_type(dts):
    U, V = _orthonormal(5, 2), _orthonormal(4, 2, 1)
    arrs = [A.astype(dt) for A, dt in zip((U, np.eye(2), V), dts)]
    Y = lo.LowRank(*arrs)
    floats = [np.dtype(d) if np.dtype(d).kind in "fc" else np.dtype(np.float64) for d in dts]
    expected = np.result_type(*floats)
    assert Y.U.dtype == Y.S.dtype == Y.V.dtype == expected


# ------------------------------------------------------------------ Truncation
@pytest.mark.parametrize(
    "rule,sigma,rank",
    [
        (lo.Truncation(rtol=1e-8), [1e200, 1e199], 2),  # σ² overflows
        (lo.Truncation(atol=1e-300), [1.0, 1e-200], 2),  # σ² underflows
        (lo.Truncation(rtol=0.5), [1e-200, 1e-201], 1),
        (lo.Truncation(atol=1e300, norm="nuc"), [1e308, 1e308], 2),  # the ℓ¹ sum overflows
    ],
)
def test_truncation_without_overflow_or_underflow(rule, sigma, rank):
    with np.errstate(all="raise"):  # no RuntimeWarning either
        assert rule.rank(np.array(sigma)) == rank


@given(
    s=st.lists(st.floats(1e-3, 1.0), min_size=1, max_size=12),
    e=st.integers(-290, 290),
    rtol=st.floats(1e-6, 0.9),
    norm=st.sampled_from(["fro", "nuc", "max"]),
)
@settings(max_examples=80, deadline=None)
def test_relative_truncation_is_scale_invariant(s, e, rtol, norm):
    """Scaling σ by 10^e (up to 1e±290) never changes the rank of a relative rule."""
    sigma = np.sort(np.asarray(s))[::-1]
    rule = lo.Truncation(rtol=rtol, norm=norm)
    assume_exact = rule.rank(sigma)
    scaled = rule.rank(sigma * 10.0**e)
    # a tie at the threshold may flip with the rounding of the scaling: allow only that
    if scaled != assume_exact:
        tails = np.sqrt(np.cumsum((sigma**2)[::-1])[::-1])
        assert np.isclose(tails[min(scaled, assume_exact)], rtol * np.linalg.norm(sigma))
    else:
        assert scaled == assume_exact


@pytest.mark.parametrize(
    "sigma,match",
    [
        (np.array([1.0, 2.0]), r"descending order .* sigma=\[1\. 2\.\]"),
        (np.array([1.0, -1.0]), r"non-negative .* sigma=\[ 1\. -1\.\]"),
        (np.array([[1.0, 0.5]]), r"sigma must be a 1-D array .* shape \(1, 2\)"),
        (np.array([1.0, np.nan]), r"singular values must be finite, got sigma=\[ 1. nan\]"),
    ],
)
def test_truncation_refuses_bad_sigma(sigma, match):
    with pytest.raises(ValueError, match=match):
        lo.Truncation(rtol=0.1).rank(sigma)


@given(st.lists(st.floats(0.0, 10.0), min_size=2, max_size=10, unique=True))
@settings(max_examples=50, deadline=None)
def test_any_non_descending_sigma_is_refused(s):
    sigma = np.asarray(s)
    if np.all(sigma[1:] <= sigma[:-1]):
        sigma = sigma[::-1]  # make it ascending: unique values, so not descending
    with pytest.raises(ValueError, match="sigma must be non-negative and in descending order"):
        lo.Truncation(atol=0.1).rank(sigma)


def test_rank_adaptive_keeps_its_rank_when_sigma_squared_overflows():
    """Y' = 1000 Y grows past 1e154 (σ² overflows): the rank must stay 2, not drop to 1."""
    Y0 = lo.LowRank.random((6, 5), 2, 0)
    ranks = []
    sol = lo.solve(
        lambda t, Y: 1000 * Y,
        Y0,
        (0, 1),
        0.01,
        method="rabug",
        rtol=1e-8,
        callback=lambda t, Y: ranks.append(Y.rank),
    )
    assert np.max(sol.y[-1].singular_values()) > 1e200
    assert set(ranks) == {2}


# ------------------------------------------------------------------ solve: steps, breakdown
@pytest.fixture
def point():
    return lo.LowRank.random((6, 5), 2, 0)


@pytest.mark.parametrize(
    "t_span,h,match",
    [
        ((0, 1), 1e-9, r"t_span=\(0, 1\) with h=1e-09 needs 1e\+09 steps > max_steps=1000000"),
        ((0, 1), 1e-300, r"with h=1e-300 needs 1e\+300 steps > max_steps"),
        ((0, 1e308), 1e-300, r"h=1e-300 is too small for t_span=\(0, 1e\+308\)"),
        ((-1e308, 1e308), 1.0, r"t_span is too long: .* t_span=\(-1e\+308, 1e\+308\)"),
    ],
)
def test_step_count_is_checked_up_front(point, t_span, h, match):
    calls = []
    with pytest.raises(ValueError, match=match):
        lo.solve(lambda t, Y: calls.append(t) or -Y, point, t_span, h)
    assert calls == []  # refused before any work


def test_step_below_time_resolution(point):
    with pytest.raises(ValueError, match=r"h=1e-20 is below the resolution .* t \+ h == t"):
        lo.solve(lambda t, Y: -Y, point, (1e6, 1e6 + 1), 1e-20, max_steps=None)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_max_steps_must_be_a_positive_integer(point, bad):
    with pytest.raises(
        ValueError, match=rf"max_steps must be a positive integer or None, got {bad}"
    ):
        lo.solve(lambda t, Y: -Y, point, (0, 1), 0.5, max_steps=bad)


def test_max_steps_can_be_raised(point):
    with pytest.raises(ValueError, match="max_steps=10"):
        lo.solve(lambda t, Y: -Y, point, (0, 1), 0.05, max_steps=10)
    assert lo.solve(lambda t, Y: -Y, point, (0, 1), 0.05, max_steps=20).n_steps == 20


def test_nonfinite_step_is_a_breakdown(point):
    F = lambda t, Y: np.full_like(Y, np.nan) if t > 0.2 else -Y
    with pytest.raises(NumericalBreakdown, match=r"F\(t=0.25, Y\) contains NaN or inf") as info:
        lo.solve(F, point, (0, 1), 0.25, method="bug", substep="euler")
    assert isinstance(info.value, ArithmeticError) and not isinstance(info.value, ValueError)


def test_singular_core_in_the_direct_method_is_a_breakdown():
    U = _orthonormal(6, 2)
    Y0 = lo.LowRank(U, np.diag([1.0, 0.0]), U)
    with pytest.raises(NumericalBreakdown, match=r"direct .* broke down at t=0: S is singular"):
        lo.solve(lambda t, Y: Y + 1, Y0, (0, 1), 0.5, method="direct")


def test_failed_factorization_is_a_breakdown():
    from lowrank_ode._array_api import array_namespace, svd

    A = np.ones((4, 3))
    A[1, 1] = np.inf
    with pytest.raises(NumericalBreakdown, match=r"svd: the \(4, 3\) matrix has NaN or inf"):
        svd(A, xp=array_namespace(A))


def test_blow_up_in_solve_is_a_breakdown_naming_the_step(point):
    with np.errstate(all="ignore"):
        with pytest.raises(
            NumericalBreakdown,
            match=r"F\(t=0.3, Y\) contains NaN or inf|non-finite values .* after step \d+",
        ):
            lo.solve(lambda t, Y: 1e80 * Y, point, (0, 1), 0.1, method="bug", substep="euler")


# ------------------------------------------------------------------ problems
@pytest.mark.parametrize(
    "kw,exc,match",
    [
        ({"w_norm": float("nan")}, ValueError, r"w_norm must be a finite number >= 0, got nan"),
        ({"w_norm": -1.0}, ValueError, r"w_norm must be a finite number >= 0, got -1.0"),
        ({"eps": "1"}, TypeError, r"eps must be a real number, got '1'"),
        ({"singular_values": [1.0, np.inf]}, ValueError, r"singular_values must be finite"),
        ({"singular_values": np.ones((2, 2))}, ValueError, r"singular_values .* shape \(2, 2\)"),
        ({"n": True}, ValueError, r"n must be a positive integer, got True"),
    ],
)
def test_klw_problem_arguments(kw, exc, match):
    kw = {"n": 8, **kw}
    with pytest.raises(exc, match=match):
        KLWProblem(**kw)


@pytest.mark.parametrize(
    "B,A,match",
    [
        (np.ones(5), None, r"B must be a 2-D array or a LowRank, got shape \(5,\)"),
        (np.ones((3, 3)), np.ones(3), r"A must be a 2-D array or a LowRank, got shape \(3,\)"),
        (np.full((3, 3), np.nan), None, r"B contains NaN or inf"),
        ([[1.0, 2.0]], None, r"B must be a 2-D array or a LowRank, got list"),
    ],
)
def test_quadratic_gradient_flow_arguments(B, A, match):
    with pytest.raises(ValueError, match=match):
        QuadraticGradientFlow(B, A)


# ------------------------------------------------------------------ augmented bases
def _approximation_situation():
    """studies/README.md §4: gradient flow of ½‖Y − B‖², n = 50, geometric σ(B) = 2^{−j/2},
    rank-adaptive BUG with Euler sub-steps and ϑ = 0, after one step of h = 0.2 (rank 4), where
    [K₁ | U₀] of the next step has numerical rank 6 of 8."""
    n = 50
    sigma = 2 ** (-np.arange(n) / 2)
    B = lo.LowRank.random((n, n), n, 1, singular_values=sigma).to_dense()
    P = QuadraticGradientFlow(B)
    Y0 = lo.LowRank.random((n, n), 2, 2, singular_values=np.array([0.5, 0.25]))
    Y1 = lo.solve(P, Y0, (0, 0.2), 0.2, method="rabug", atol=0.0, substep="euler").y[-1]
    return P, Y1


def test_augmented_step_is_continuous_in_its_input():
    P, Y1 = _approximation_situation()
    step = RankAdaptiveBUG("euler", lo.Truncation(atol=0.0))
    E = np.zeros_like(Y1.S)
    E[-1, -1] = 1e-16
    a = step.step(P, 0.2, Y1, 0.2)
    b = step.step(P, 0.2, lo.LowRank(Y1.U, Y1.S + E, Y1.V), 0.2)
    assert a.rank == b.rank == 6  # the two round-off directions are not part of the basis
    assert np.linalg.norm(a.to_dense() - b.to_dense()) < 1e-12


def test_full_rank_augmentation_is_plain_householder_qr():
    rng = np.random.default_rng(3)
    A, B = rng.standard_normal((30, 5)), rng.standard_normal((30, 5))
    assert np.array_equal(augment(A, B), orth(np.concatenate([A, B], axis=1)))


def test_dependent_columns_are_dropped_and_span_kept():
    rng = np.random.default_rng(4)
    A = rng.standard_normal((20, 3))
    B = np.concatenate([A @ rng.standard_normal((3, 2)), rng.standard_normal((20, 1))], axis=1)
    Q = augment(A, B)
    assert Q.shape == (20, 4)
    assert np.allclose(Q.T @ Q, np.eye(4), atol=1e-13)
    M = np.concatenate([A, B], axis=1)
    assert np.linalg.norm(M - Q @ (Q.T @ M)) < 1e-12 * np.linalg.norm(M)
