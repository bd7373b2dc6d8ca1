"""LowRank, truncation semantics, tangent projection, QR with positive diagonal."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lowrank_ode as lo
from lowrank_ode._array_api import array_namespace, qr_pos
from lowrank_ode.exceptions import NumericalBreakdown
from lowrank_ode.testing import check_orthonormal, lowrank_points, make_point, point_specs
from lowrank_ode.truncation import select_rank

xnp = array_namespace(np.zeros(1))


@settings(max_examples=40, deadline=None)
@given(Y=lowrank_points(max_size=10))
def test_from_dense_round_trip(Y):
    A = Y.to_dense()
    Z = lo.LowRank.from_dense(A, rank=Y.rank)
    assert Z.shape == Y.shape and Z.rank == Y.rank and Z.dtype == Y.dtype
    check_orthonormal(Z)
    assert np.linalg.norm(Z.to_dense() - A) <= 1e-12 * max(1.0, np.linalg.norm(A))


@settings(max_examples=40, deadline=None)
@given(spec=point_specs(max_size=10))
def test_qr_positive_diagonal_is_unique(spec):
    A = make_point(spec).U @ np.asarray(
        np.random.default_rng(spec.seed).standard_normal((spec.rank, spec.rank))
        + 3 * np.eye(spec.rank),
        dtype=spec.dtype,
    )
    Q, R = qr_pos(A, xp=xnp)
    d = np.diag(R)
    assert np.all(d.real >= 0) and np.allclose(d.imag, 0)
    assert np.allclose(Q @ R, A, atol=1e-12)
    check_orthonormal(lo.LowRank(Q, np.eye(Q.shape[1], dtype=Q.dtype), Q[:, : Q.shape[1]]), 1e-12)


@settings(max_examples=60, deadline=None)
@given(
    sigma=st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=12),
    rtol=st.one_of(st.none(), st.floats(0, 1)),
    atol=st.one_of(st.none(), st.floats(0, 5)),
    norm=st.sampled_from(["fro", "nuc", "max"]),
)
def test_truncation_semantics(sigma, rtol, atol, norm):
    """Smallest r with tail(σ_{r+1:}) ≤ max(atol, rtol‖σ‖₂) — and r−1 would violate it."""
    s = np.sort(np.asarray(sigma))[::-1]
    rule = lo.Truncation(rtol=rtol, atol=atol, norm=norm, min_rank=1)

    def fro(x):  # scaled: σ² must not underflow (nor overflow) in the oracle either
        top = x.max() if x.size else 0.0
        return top * np.linalg.norm(x / top) if top > 0 else 0.0

    theta = max(atol or 0.0, (rtol or 0.0) * fro(s))
    tail = {
        "fro": fro,
        "nuc": np.sum,
        "max": lambda x: x.max() if x.size else 0.0,
    }[norm]
    r = select_rank(s, theta, norm)

    def tie(a):  # tail = ϑ up to rounding (e.g. rtol = 1): two correct formulas may round apart
        return abs(a - theta) < 4 * np.finfo(float).eps * max(a, theta)  # never for 0 = 0

    assert tail(s[r:]) <= theta or tie(tail(s[r:]))
    if r > 0:  # minimality: the tail includes σ_r (no skipped value)
        assert tail(s[r - 1 :]) > theta or tie(tail(s[r - 1 :]))
    assert rule.rank(s) == max(r, 1)


def test_truncation_examples_and_clamps():
    s = np.array([1.0, 0.1, 0.01, 0.001])
    assert lo.Truncation(atol=0.0101).rank(s) == 2  # tail(0.01, 0.001) = 0.01005 ≤ 0.0101
    assert lo.Truncation(atol=0.0100).rank(s) == 3
    assert lo.Truncation(atol=0.011, norm="nuc").rank(s) == 2
    assert lo.Truncation(atol=0.01, norm="max").rank(s) == 2
    assert lo.Truncation(rtol=0.5).rank(s) == 1
    assert lo.Truncation(atol=10, min_rank=3).rank(s) == 3
    assert lo.Truncation(atol=0, max_rank=2).rank(s) == 2
    assert lo.Truncation().rank(np.array([1.0, 0.5, 0.0])) == 2  # exact zeros dropped
    assert lo.Truncation().rank(s) == 4  # never fires: keeps everything (not r)
    half = lo.Truncation(atol=0, max_rank_fraction=0.5)
    assert half.rank(s, shape=(4, 9)) == 2 and half.rank(s, shape=(7, 9)) == 3
    assert lo.Truncation(atol=0, max_rank_fraction=0.1, min_rank=2).rank(s, shape=(4, 4)) == 2
    with pytest.raises(ValueError, match="shape"):
        half.rank(s)


def test_truncate_applies_the_rank_fraction_to_its_own_shape():
    Y = lo.LowRank.random((12, 8), 8, rng=0)
    assert Y.truncate(lo.Truncation(max_rank_fraction=0.5)).rank == 4
    assert Y.truncate(lo.Truncation(max_rank_fraction=0.5, max_rank=3)).rank == 3


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"rtol": -1e-3}, "rtol"),
        ({"atol": float("nan")}, "atol"),
        ({"min_rank": 0}, "min_rank"),
        ({"max_rank": 0}, "max_rank"),
        ({"norm": "l3"}, "norm"),
        ({"max_rank_fraction": 0.0}, "max_rank_fraction"),
        ({"max_rank_fraction": 1.5}, "max_rank_fraction"),
    ],
)
def test_truncation_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        lo.Truncation(**kw)


@settings(max_examples=40, deadline=None)
@given(spec=point_specs(max_size=9), seed=st.integers(0, 1000))
def test_tangent_projection(spec, seed):
    """P(Y) is idempotent, maps into T_Y M, fixes tangent vectors; factored == dense."""
    Y = make_point(spec)
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal(Y.shape).astype(spec.dtype)
    if np.dtype(spec.dtype).kind == "c":
        Z = Z + 1j * rng.standard_normal(Y.shape)
    PZ = lo.tangent_project(Y, Z)
    assert np.allclose(lo.tangent_project(Y, PZ), PZ, atol=1e-12)
    U, V = Y.U, Y.V
    # normal component (I − UUᴴ) PZ (I − VVᴴ) vanishes
    Pu = np.eye(Y.shape[0]) - U @ U.conj().T
    Pv = np.eye(Y.shape[1]) - V @ V.conj().T
    assert np.linalg.norm(Pu @ PZ @ Pv) <= 1e-12 * max(1, np.linalg.norm(Z))
    # factored Z gives the same projection without forming Z
    Zl = lo.LowRank.from_dense(Z, rank=min(Y.shape))
    assert np.allclose(lo.tangent_project(Y, Zl).to_dense(), PZ, atol=1e-10)


def test_lowrank_bad_input():
    U = np.linalg.qr(np.random.default_rng(0).standard_normal((5, 2)))[0]
    with pytest.raises(ValueError, match="S must be"):
        lo.LowRank(U, np.eye(2)[None], U)
    with pytest.raises(ValueError, match=r"U must have shape \(n, 3\)"):
        lo.LowRank(U, np.eye(3), np.eye(3))
    with pytest.raises(ValueError, match="exceeds min"):
        lo.LowRank(np.ones((2, 3)), np.eye(3), np.ones((5, 3)))
    with pytest.raises(ValueError, match="orthonormal"):
        lo.LowRank(2 * U, np.eye(2), U, check_orthonormal=True)
    with pytest.raises(ValueError, match="NaN or inf"):
        lo.LowRank(U, np.array([[np.nan, 0], [0, 1]]), U, check_finite=True)
    with pytest.raises(ValueError, match=r"rank must satisfy 1 <= rank <= 2"):
        lo.LowRank.from_dense(np.ones((2, 5)), rank=3)
    with pytest.raises(TypeError, match="rank must be an integer"):
        lo.LowRank.from_dense(np.ones((2, 5)), rank=1.5)
    with pytest.raises(ValueError, match="A contains NaN"):
        lo.LowRank.from_dense(np.full((2, 2), np.inf), rank=1)


def test_random_is_reproducible_and_seeded():
    a = lo.LowRank.random((6, 4), 2, 7)
    b = lo.LowRank.random((6, 4), 2, np.random.default_rng(7))
    assert np.array_equal(a.to_dense(), b.to_dense())
    assert not np.array_equal(a.to_dense(), lo.LowRank.random((6, 4), 2, 8).to_dense())


def test_svd_falls_back_when_gesdd_does_not_converge(monkeypatch):
    """A LAPACK gesdd convergence failure on a finite matrix falls back to gesvd."""
    import numpy as np

    from lowrank_ode._array_api import array_namespace, svd

    A = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
    xp = array_namespace(A)

    import lowrank_ode._array_api as aa

    gesdd = aa._lapack("gesdd", "f")
    calls = []

    def fails(a, **kwargs):  # LAPACK's report of non-convergence: info > 0
        calls.append(a.shape)
        P, s, Qh, _ = gesdd(a, **kwargs)
        return P, s, Qh, 1

    monkeypatch.setitem(aa._LAPACK, ("gesdd", "f"), fails)
    P, sigma, Q = svd(A, xp=xp)
    assert calls == [(7, 5)]
    assert P.dtype == np.float32 and sigma.dtype == np.float32
    assert np.allclose((P * sigma) @ Q.T, A, atol=1e-5)
    B = A.copy()
    B[2, 3] = np.nan
    with pytest.raises(NumericalBreakdown, match="NaN or inf"):
        svd(B, xp=xp)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("shape", [(50, 7), (7, 7), (5, 9), (1, 4), (4, 1)])
def test_lapack_qr_and_svd_match_numpy(dtype, shape):
    """The direct LAPACK paths (working precision) agree with NumPy's QR and SVD."""
    from lowrank_ode._array_api import array_namespace, qr_pos, svd

    rng = np.random.default_rng(3)
    A = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        A = A + 1j * rng.standard_normal(shape)
    A = A.astype(dtype)
    tol = 1e-5 if dtype in (np.float32, np.complex64) else 1e-12
    Q, R = qr_pos(A)
    k = min(shape)
    assert Q.shape == (shape[0], k) and R.shape == (k, shape[1])
    assert Q.dtype == dtype and R.dtype == dtype
    assert np.allclose(Q @ R, A, atol=tol * 10)
    assert np.allclose(Q.conj().T @ Q, np.eye(k), atol=tol * 10)
    assert np.all(np.diag(R).real >= 0) and np.allclose(np.diag(R).imag, 0)
    assert np.allclose(np.tril(R, -1), 0)
    Q_np, R_np = np.linalg.qr(A.astype(np.complex128 if A.dtype.kind == "c" else np.float64))
    ph = np.diag(R_np) / np.abs(np.diag(R_np))  # NumPy's, made positive the same way
    assert np.allclose(Q, Q_np * ph, atol=tol * 100)
    P, sigma, V = svd(A, xp=array_namespace(A))
    assert (
        P.dtype == dtype and V.dtype == dtype and sigma.dtype == np.dtype(dtype).type(0).real.dtype
    )
    assert np.allclose(
        sigma, np.linalg.svd(A.astype(np.complex128), compute_uv=False), atol=tol * 10
    )
    assert np.allclose((P * sigma) @ V.conj().T, A, atol=tol * 10)
