"""Reduced sub-problem operators (``Problem.reduced``) against the generic path through F.at."""

import numpy as np
import pytest
import scipy.sparse as sps

import lowrank_ode as lo
from lowrank_ode.integrators import KSL, METHODS
from lowrank_ode.problems import (
    AffineMatrixODE,
    FunctionODE,
    KLWProblem,
    LyapunovProblem,
    QuadraticGradientFlow,
    SchrodingerProblem,
    SylvesterProblem,
)
from lowrank_ode.substep import SubProblem
from lowrank_ode.truncation import Truncation

rng = np.random.default_rng(11)


def _sylvester_complex():
    A = sps.diags([1.0, -2.0, 1.0], [-1, 0, 1], shape=(28, 28), format="csr") * 3.0
    B = rng.standard_normal((22, 22)) + 1j * rng.standard_normal((22, 22))
    B = (B - B.conj().T) / 2  # skew-Hermitian: a bounded, non-growing flow
    C1 = rng.standard_normal((28, 2)) + 1j * rng.standard_normal((28, 2))
    C2 = rng.standard_normal((22, 2))
    return SylvesterProblem(A, B, C1, C2)


def _random(shape, r, seed, dtype=None):
    return lo.LowRank.random(shape, r, seed, dtype=dtype)


#: the linear problems of the library, with a generic (random) initial value of rank 4
PROBLEMS = {
    "lyapunov": lambda: (
        LyapunovProblem(
            40,
            30,
            nu_x=5.0,
            nu_y=2.5,
            C1=rng.standard_normal((40, 2)),
            C2=rng.standard_normal((30, 2)),
        ),
        _random((40, 30), 4, 5),
    ),
    "klw-linear": lambda: (KLWProblem(30, seed=1).linear_form(), _random((30, 30), 4, 6)),
    "schrodinger": lambda: (SchrodingerProblem(24), SchrodingerProblem(24).initial(rank=4)),
    "schrodinger-periodic": lambda: (
        SchrodingerProblem(24, variant="cekl2024"),
        SchrodingerProblem(24, variant="cekl2024").initial(rank=4),
    ),
    "gradient": lambda: (
        QuadraticGradientFlow(_random((20, 25), 3, 3), A=rng.standard_normal((20, 30)) / 5),
        _random((30, 25), 4, 7),
    ),
    "sylvester-complex": lambda: (_sylvester_complex(), _random((28, 22), 4, 8, complex)),
}

LOWRANK_METHODS = sorted(m for m in METHODS if m not in ("full", "direct"))


def _run(P, Y0, method, substep, reduced, truncation=None):
    cls = METHODS[method]
    integ = cls(substep=substep, truncation=truncation, reduced=reduced)
    sol = lo.solve(P, Y0, (0.0, 0.2), h=0.05, method=integ)
    return sol.y[-1], integ.n_evals


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("method", LOWRANK_METHODS)
@pytest.mark.parametrize("substep", ["rk4", "euler"])
def test_reduced_path_equals_generic_path(problem, method, substep):
    """Every low-rank method on every linear problem: the reduced sub-problems give the step of
    the generic path to rounding (≤ 1e-12 relative, float64) with the same evaluation count.

    One exception, measured: the KLW flow keeps the rank of Y₀ exactly, so the midpoint BUG's
    basis [U½ | F(Y½)V½] holds nearly dependent columns, and its result moves by ~1e-9 when S₀
    is perturbed by one ulp — on the generic path alone.  There the paths must agree within 10×
    that rounding sensitivity, which the test measures and requires to exceed 1e-12."""
    P, Y0 = PROBLEMS[problem]()
    Yr, nr = _run(P, Y0, method, substep, reduced=True)
    Yg, ng = _run(P, Y0, method, substep, reduced=False)
    Dr, Dg = Yr.to_dense(), Yg.to_dense()
    tol = 1e-12
    if (method, problem, substep) == ("midpoint", "klw-linear", "rk4"):
        Y0_ulp = lo.LowRank(Y0.U, Y0.S * (1 + 2.0**-52), Y0.V)
        Yp, _ = _run(P, Y0_ulp, method, substep, reduced=False)
        sensitivity = np.linalg.norm(Yp.to_dense() - Dg) / np.linalg.norm(Dg)
        assert sensitivity > 1e-12
        tol = 10 * sensitivity
    assert np.linalg.norm(Dr - Dg) <= tol * np.linalg.norm(Dg)
    assert nr == ng


@pytest.mark.parametrize("method", ["rabug", "parallel", "midpoint"])
def test_reduced_path_with_rank_adaptive_truncation(method):
    """With a tolerance the ranks chosen on both paths are the same, and so are the results."""
    P, Y0 = PROBLEMS["lyapunov"]()
    trunc = Truncation(atol=1e-6, max_rank=12)
    Yr, nr = _run(P, Y0, method, "rk4", True, trunc)
    Yg, ng = _run(P, Y0, method, "rk4", False, trunc)
    assert Yr.rank == Yg.rank
    assert np.linalg.norm(Yr.to_dense() - Yg.to_dense()) <= 1e-12 * np.linalg.norm(Yg.to_dense())
    assert nr == ng


def _generic_rhs(P, key, U, V):
    """The sub-problem right-hand side through P.at, as the integrators build it."""
    xp_eye = np.eye

    def f(X):
        if key == SubProblem.K:
            return P.at(0.0, [lo.LowRank(X, xp_eye(X.shape[1]), V)]).right(0, V)
        if key == SubProblem.L:
            return P.at(0.0, [lo.LowRank(U, xp_eye(X.shape[1]), X)]).left(0, U)
        return P.at(0.0, [lo.LowRank(U, X, V)]).galerkin(0, U, V)

    return f


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("key", [SubProblem.K, SubProblem.L, SubProblem.S, SubProblem.S_BACKWARD])
def test_reduced_operator_is_the_sub_problem(problem, key):
    """f(t, X) of ``reduced`` equals Pᴴ F(P X Qᴴ) Q (K, S) or F(U₀Lᴴ)ᴴU₀ (L) at a random X,
    in bases of different widths (a rectangular S-step core)."""
    P, Y0 = PROBLEMS[problem]()
    n, m = P.shape
    dt = Y0.dtype
    U = _random((n, 5), 5, 1, dt).U
    V = _random((m, 3), 3, 2, dt).U
    basis = {
        SubProblem.K: (None, V),
        SubProblem.L: (None, U),
        SubProblem.S: (U, V),
        SubProblem.S_BACKWARD: (U, V),
    }[key]
    shape = {SubProblem.K: (n, 3), SubProblem.L: (m, 5)}.get(key, (5, 3))
    X = rng.standard_normal(shape).astype(dt)
    f = P.reduced(key, [basis])
    assert f is not None
    (got,) = f(0.3, (X,))
    want = _generic_rhs(P, key, U, V)(X)
    assert got.shape == want.shape
    assert np.linalg.norm(got - want) <= 1e-13 * max(np.linalg.norm(want), 1.0)


def test_problems_without_reduced_operators_take_the_generic_path():
    """A plain callable and a non-linear problem answer None; the step is unchanged."""
    F = FunctionODE(lambda t, Y: -Y + 0.1 * Y @ Y.T @ Y)
    assert F.reduced(SubProblem.K, [(None, np.eye(4, 2))]) is None
    Y0 = _random((6, 4), 2, 0)
    a = METHODS["bug"]().step(F, 0.0, Y0, 0.1)
    b = METHODS["bug"](reduced=False).step(F, 0.0, Y0, 0.1)
    np.testing.assert_array_equal(a.to_dense(), b.to_dense())
    assert KLWProblem(8).reduced(SubProblem.S, [(np.eye(8, 2), np.eye(8, 2))]) is None


class _CountingLyapunov(LyapunovProblem):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.n_at = 0

    def at(self, t, blocks):
        self.n_at += 1
        return super().at(t, blocks)


@pytest.mark.parametrize(
    "method,n_at",
    [("bug", 1), ("rabug", 1), ("parallel", 1), ("ksl", 0), ("strang", 0), ("midpoint", 2)],
)
def test_reduced_path_evaluates_f_only_outside_the_sub_steps(method, n_at):
    """With reduced operators F.at is called only where the method needs F itself (the shared
    first stage of BUG's K- and L-steps, the midpoint's new directions), never per stage; the
    evaluation count is that of the generic path all the same."""
    P = _CountingLyapunov(20, 20, nu_x=2.0, nu_y=2.0)
    Y0 = _random((20, 20), 3, 0)
    integ = METHODS[method](substep="rk4")
    integ.step(P, 0.0, Y0, 0.01)
    assert P.n_at == n_at
    generic = METHODS[method](substep="rk4", reduced=False)
    generic.step(P, 0.0, Y0, 0.01)
    assert integ.n_evals == generic.n_evals > n_at


def test_exact_sub_step_on_the_reduced_path():
    """The exact sub-flow probes the reduced operator; it agrees with the generic probing."""
    P, Y0 = PROBLEMS["lyapunov"]()
    a = KSL("exact").step(P, 0.0, Y0, 0.05)
    b = KSL("exact", reduced=False).step(P, 0.0, Y0, 0.05)
    assert np.linalg.norm(a.to_dense() - b.to_dense()) <= 1e-12 * np.linalg.norm(b.to_dense())


def test_affine_default_products_agree_with_dense():
    """The generic products built from the terms (SylvesterProblem) equal those of F densely."""
    P = _sylvester_complex()
    Y = _random(P.shape, 3, 4, complex)
    Fd = P.dense(0.0, Y.to_dense())
    G = P.at(0.0, [Y])
    V = rng.standard_normal((P.shape[1], 2))
    U = rng.standard_normal((P.shape[0], 2))
    np.testing.assert_allclose(G.right(0, V), Fd @ V, atol=1e-12)
    np.testing.assert_allclose(G.left(0, U), Fd.conj().T @ U, atol=1e-12)
    assert isinstance(P, AffineMatrixODE) and P.linear


def test_klw_linear_form_has_the_klw_solution():
    """Ẏ = W₁Y + Y + YW₂ᵀ at A(t) is Ȧ(t), so its flow from A(0) is the KLW matrix A(t)."""
    K = KLWProblem(12, seed=3)
    L = K.linear_form()
    for t in (0.0, 0.4):
        np.testing.assert_allclose(L.dense(t, K.exact(t)), K.dense(t, None), atol=1e-12)


def test_sylvester_validates_its_arguments():
    with pytest.raises(ValueError, match="both C1 and C2"):
        SylvesterProblem(np.eye(3), np.eye(3), C1=np.ones((3, 1)))
    with pytest.raises(ValueError, match="shape is required"):
        SylvesterProblem(lambda X: X, np.eye(3))
    with pytest.raises(ValueError, match="A must have shape"):
        SylvesterProblem(np.eye(3, 2), np.eye(3))
    with pytest.raises(ValueError, match="C1, C2 must have shapes"):
        SylvesterProblem(np.eye(3), np.eye(4), np.ones((3, 1)), np.ones((3, 1)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
def test_rk4_update_has_the_bits_of_the_textbook_formula(dtype):
    """The RK4 update with two temporaries is x + (dt/6)(k₁ + 2k₂ + 2k₃ + k₄) bit for bit, and
    ``axpy`` is y + a x bit for bit (in-place accumulation only reorders commuting additions)."""
    from lowrank_ode.substep import _rk4_update, axpy

    g = np.random.default_rng(1)

    def draw():
        z = g.standard_normal((30, 6))
        return (z + 1j * g.standard_normal((30, 6)) if dtype is np.complex128 else z).astype(dtype)

    x, a, b, c, d = (draw() for _ in range(5))
    for dt in (0.1, -0.37, 1e-3 / 7):
        want = x + (dt / 6) * (a + 2 * b + 2 * c + d)
        got = _rk4_update(x, dt, a, b, c, d)
        assert got.dtype == want.dtype and np.array_equal(got, want)
        assert np.array_equal(axpy(dt, (a,), (x,))[0], x + dt * a)
    x0 = x.copy()
    _rk4_update(x, 0.1, a, b, c, d)
    assert np.array_equal(x, x0)  # the inputs are left alone
