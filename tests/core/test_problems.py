"""Built-in problems: factored products equal the dense ones; exact solutions solve the ODE."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lowrank_ode as lo
from lowrank_ode.problems import (
    KLWProblem,
    LyapunovProblem,
    QuadraticGradientFlow,
    SchrodingerProblem,
)


def _point(n, m, r, seed, dtype):
    """A factored point with NON-orthonormal outer factors (as in K Vᴴ evaluations)."""
    rng = np.random.default_rng(seed)
    g = lambda *s: (
        rng.standard_normal(s) + (1j * rng.standard_normal(s) if dtype is complex else 0)
    ).astype(dtype)
    return lo.LowRank(g(n, r), g(r, r), g(m, r))


def _check_products(P, Y, seed):
    rng = np.random.default_rng(seed + 7)
    n, m = P.shape
    dt = Y.S.dtype
    V = rng.standard_normal((m, 3)).astype(dt)
    U = rng.standard_normal((n, 2)).astype(dt)
    F = P.dense(0.3, Y.to_dense())
    assert np.allclose(P.right(0.3, Y, V), F @ V, atol=1e-10)
    assert np.allclose(P.left(0.3, Y, U), F.conj().T @ U, atol=1e-10)
    assert np.allclose(P.galerkin(0.3, Y, U, V), U.conj().T @ F @ V, atol=1e-10)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 9), m=st.integers(2, 9), seed=st.integers(0, 99))
def test_lyapunov_products(n, m, seed):
    P = LyapunovProblem(n, m, nu_x=0.7, nu_y=1.3)
    _check_products(P, _point(n, m, min(n, m, 2), seed, float), seed)


@settings(max_examples=20, deadline=None)
@given(
    N=st.integers(3, 9), variant=st.sampled_from(["ckl2022", "cekl2024"]), seed=st.integers(0, 99)
)
def test_schrodinger_products_and_invariants(N, variant, seed):
    """Odd and even N; H is self-adjoint, so ⟨Y, F(Y)⟩ is purely imaginary (norm conserved)."""
    P = SchrodingerProblem(N, variant)
    Y = _point(N, N, 2, seed, complex)
    _check_products(P, Y, seed)
    D = Y.to_dense()
    assert abs(np.real(np.vdot(D, P.dense(0.0, D)))) < 1e-10 * np.linalg.norm(D) ** 2


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(2, 8),
    m=st.integers(2, 8),
    seed=st.integers(0, 99),
    lowrank_target=st.booleans(),
    with_A=st.booleans(),
)
def test_gradient_flow_products(n, m, seed, lowrank_target, with_A):
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((n, m))
    A = rng.standard_normal((n, n)) if with_A else None
    if lowrank_target:
        B = lo.LowRank.from_dense(B, rank=1)
    P = QuadraticGradientFlow(B, A)
    _check_products(P, _point(n, m, 1, seed, float), seed)


def test_exact_solutions_solve_their_odes():
    L = LyapunovProblem(7, 5, nu_x=0.8, nu_y=1.1)
    Y0 = L.initial(2)
    t, dt = 0.4, 1e-5
    dYdt = (L.exact(t + dt, Y0) - L.exact(t - dt, Y0)) / (2 * dt)
    assert np.allclose(dYdt, L.dense(t, L.exact(t, Y0)), atol=1e-7)
    K = KLWProblem(6, seed=1)
    dAdt = (K.exact(t + dt) - K.exact(t - dt)) / (2 * dt)
    assert np.allclose(dAdt, K.dense(t, None), atol=1e-7)
    S = SchrodingerProblem(8)
    Z0 = S.initial(seed=0)
    Z = S.reference(0.2, Z0)
    assert np.isclose(np.linalg.norm(Z), np.linalg.norm(Z0.to_dense()), rtol=1e-9)


def test_cached_klw_arrays_are_read_only():
    K = KLWProblem(5, seed=0)
    A = K.exact(1.0)
    with pytest.raises(ValueError):
        A *= 0
