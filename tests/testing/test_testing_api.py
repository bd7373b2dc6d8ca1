"""The public testing API (:mod:`lowrank_ode.testing`) accepts the library's integrators and
rejects deliberately broken ones with a clear message.

Broken integrators used here:

* ``skip_qr`` — a plain function: BUG, then returns ``LowRank(U S, I, V)`` (no QR of K);
* :class:`HalfSBUG` — BUG whose Galerkin S-step integrates over h/2 only (inconsistent);
* :class:`WrongStrang` — "Strang" as two Lie–Trotter K–S–L half-steps instead of
  K–S–L followed by its adjoint L–S–K (first order, not second);
* the Koch–Lubich factor ODEs (``"direct"``), which invert S.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import lowrank_ode as lo
from lowrank_ode import nn
from lowrank_ode.integrators import BUG, METHODS, Integrator, Strang
from lowrank_ode.integrators.base import change_core, lowrank_indices, orth
from lowrank_ode.problems import KLWProblem
from lowrank_ode.testing import (
    PointSpec,
    as_step,
    check_in_tangent_space,
    check_integrator_order,
    check_layer_gradients,
    check_order,
    check_robustness,
    check_step_invariants,
    integrate,
    make_point,
    make_problem,
    make_tangent_vector,
    problems,
    tangent_pairs,
    tangent_vectors,
)

FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LOW_RANK = [m for m in sorted(METHODS) if m not in ("full", "galerkin")]
ROBUST = ["ksl", "strang", "bug", "rabug", "parallel", "midpoint"]


# ------------------------------------------------------------------------- broken integrators
def skip_qr(F, t, Y, h):
    """BUG step that forgets to orthonormalize K: returns U = K (not orthonormal)."""
    Z = BUG().step(F, t, Y, h)
    return lo.LowRank(Z.U @ Z.S, np.eye(Z.rank, dtype=Z.dtype), Z.V)


class HalfSBUG(BUG):
    """BUG whose S-step uses h/2: the result is inconsistent (no convergence in h)."""

    name = "bug-half-s"

    def _step_impl(self, F, t, Y, h):
        idx = lowrank_indices(Y)
        G0 = F.at(t, Y)
        K1, _ = self.k_step(F, t, Y, h, G0)
        L1, _ = self.l_step(F, t, Y, h, G0)
        U1, V1 = [orth(K) for K in K1], [orth(L) for L in L1]
        S0 = [change_core(U1[j], Y[i].U, Y[i].S, V1[j], Y[i].V) for j, i in enumerate(idx)]
        S1, _ = self.galerkin_step(F, t, Y, U1, V1, S0, h / 2)
        return [lo.LowRank(U1[j], S1[j], V1[j]) for j in range(len(idx))]


class WrongStrang(Strang):
    """K–S–L over h/2 twice (the second sweep should be the adjoint L–S–K): order 1."""

    name = "wrong-strang"

    def _step_impl(self, F, t, Y, h):
        Yh = self.sweep(F, t, Y, h / 2, "KSL")
        return self.sweep(F, t + h / 2, Yh, h / 2, "KSL")


class Impure(BUG):
    """A correct BUG step that scribbles on its input."""

    def _step_impl(self, F, t, Y, h):
        out = super()._step_impl(F, t, Y, h)
        Y[0].S[0, 0] += 1.0
        return out


@pytest.fixture(scope="module")
def klw():
    P = KLWProblem(12, singular_values=np.geomspace(1, 1e-6, 4), eps=1e-3, seed=2)
    return P, P.initial(4)


# ------------------------------------------------------------------------- as_step, integrate
def test_as_step_accepts_instances_classes_names_and_functions(klw):
    P, Y0 = klw
    ref = lo.solve(P, Y0, (0, 0.3), 0.1, method="bug").y[-1].to_dense()
    for m in (BUG(), BUG, "bug", lambda F, t, Y, h: BUG().step(F, t, Y, h)):
        assert callable(as_step(m))
        np.testing.assert_allclose(integrate(m, P, Y0, (0, 0.3), 0.1).to_dense(), ref, atol=1e-14)
    with pytest.raises(TypeError, match="expected an Integrator"):
        as_step(3)
    with pytest.raises(ValueError, match="method must be one of"):
        as_step("no-such-method")


def test_integrate_rejects_non_lowrank_and_nonfinite(klw):
    P, Y0 = klw
    with pytest.raises(TypeError, match="must return a LowRank"):
        integrate(lambda F, t, Y, h: Y.to_dense(), P, Y0, (0, 0.1), 0.05)
    nan = lambda F, t, Y, h: lo.LowRank(Y.U, Y.S * np.nan, Y.V)  # noqa: E731
    with pytest.raises(FloatingPointError, match="NaN/inf at step 1"):
        integrate(nan, P, Y0, (0, 0.1), 0.05)


# ------------------------------------------------------------------------- step invariants
@pytest.mark.parametrize("method", LOW_RANK)
@FAST
@given(case=problems(max_size=8))
def test_library_integrators_pass_step_invariants(method, case):
    """Every library integrator (instance) keeps the invariants on random built-in problems."""
    if method == "direct" and case.spec.kind == "klw" and case.spec.decay < 1e-6:
        return  # the factor ODE breaks down for tiny σ (that is check_robustness's point)
    if method == "direct" and case.spec.kind == "schrodinger":
        return  # S₀ = diag(10⁻ⁱ): the same breakdown
    fixed = not METHODS[method].rank_adaptive
    check_step_invariants(
        METHODS[method](), case.problem, case.Y0, 0.05, rank=case.Y0.rank if fixed else None
    )


def test_step_without_qr_is_rejected(klw):
    P, Y0 = klw
    with pytest.raises(AssertionError, match=r"skip_qr: after one step .*U is not orthonormal"):
        check_step_invariants(skip_qr, P, Y0, 0.1)


def test_other_broken_steps_are_rejected(klw):
    P, Y0 = klw
    with pytest.raises(AssertionError, match="must return a LowRank, got ndarray"):
        check_step_invariants(lambda F, t, Y, h: Y.to_dense(), P, Y0, 0.1)
    with pytest.raises(AssertionError, match="has shape"):
        check_step_invariants(lambda F, t, Y, h: lo.LowRank(Y.U[:-1], Y.S, Y.V), P, Y0, 0.1)
    with pytest.raises(AssertionError, match="rank 4, expected rank 2"):
        check_step_invariants(BUG(), P, Y0, 0.1, rank=2)
    with pytest.raises(AssertionError, match="S contains NaN or inf"):
        check_step_invariants(
            lambda F, t, Y, h: lo.LowRank(Y.U, np.full_like(Y.S, np.nan), Y.V), P, Y0, 0.1
        )
    with pytest.raises(AssertionError, match="dtype complex128, expected float64"):
        check_step_invariants(lambda F, t, Y, h: Y.astype(np.complex128), P, Y0, 0.1)
    with pytest.raises(AssertionError, match=r"modified its input Y\.S in place"):
        check_step_invariants(Impure(), P, Y0, 0.1)

    def boom(F, t, Y, h):
        raise np.linalg.LinAlgError("Singular matrix")

    with pytest.raises(AssertionError, match="raised LinAlgError: Singular matrix"):
        check_step_invariants(boom, P, Y0, 0.1)


# ------------------------------------------------------------------------- order
@pytest.mark.parametrize("method,order", [("bug", 1), ("ksl", 1), ("strang", 2)])
def test_library_integrators_pass_order_check(method, order):
    check_integrator_order(METHODS[method](), order)


def test_wrong_strang_is_rejected_by_check_order():
    """Both sweeps K–S–L: first order, so ``check_order`` with expected=2 rejects it."""
    with pytest.raises(
        AssertionError,
        match=r"WrongStrang \(wrong-strang\): empirical order 1\.\d\d, expected 2 ± 0\.15",
    ):
        check_integrator_order(WrongStrang(), 2)


def test_bug_with_half_s_step_is_rejected_by_check_order(klw):
    """The plain ``check_order`` with ``integrate``: the S-step over h/2 does not converge."""
    P, Y0 = klw
    T = 0.4
    ref = integrate("direct", P, Y0, (0, T), 4e-3).to_dense()  # projected ODE; σ_min = 1e-6
    check_order(lambda h: integrate(BUG(), P, Y0, (0, T), h), ref, [0.1, 0.05, 0.025, 0.0125], 1)
    with pytest.raises(AssertionError, match=r"empirical order -?0\.\d\d, expected 1 ± 0\.3"):
        check_order(
            lambda h: integrate(HalfSBUG(), P, Y0, (0, T), h), ref, [0.1, 0.05, 0.025, 0.0125], 1
        )


def test_check_integrator_order_needs_a_complete_problem(klw):
    P, Y0 = klw
    with pytest.raises(ValueError, match="give Y0 and the dense reference"):
        check_integrator_order("bug", 1, F=P)


# ------------------------------------------------------------------------- robustness
@pytest.mark.parametrize("method", ROBUST)
def test_library_integrators_are_robust(method):
    errors = check_robustness(METHODS[method]())
    assert len(errors) == 10 and max(errors) < 1e-3


def test_direct_method_is_rejected_by_check_robustness():
    with pytest.raises(
        AssertionError,
        match=r"Direct \(direct\) is not robust to small singular values: the error depends "
        r"on σ_min, max/min = .* > 3 \(KLW problem",
    ):
        check_robustness(lo.integrators.Direct())


def test_a_step_that_does_nothing_is_rejected_by_check_robustness():
    with pytest.raises(AssertionError, match="does the step move the solution at all"):
        check_robustness(lambda F, t, Y, h: Y)


def test_robustness_reports_breakdowns():
    def breaks_for_small_sigma(F, t, Y, h):
        if float(np.min(np.abs(np.diag(Y.S)))) < 1e-6:
            raise ValueError("S is singular")
        return BUG().step(F, t, Y, h)

    with pytest.raises(AssertionError, match=r"broke down \(ValueError: S is singular\)"):
        check_robustness(breaks_for_small_sigma, sigmas=(1e-2, 1e-8))


# ------------------------------------------------------------------------- strategies
@FAST
@given(pair=tangent_pairs(max_size=9))
def test_tangent_pairs_are_tangent(pair):
    Y, dY = pair
    assert dY.shape == Y.shape and dY.dtype == Y.dtype
    check_in_tangent_space(Y, dY)


Y_FIXED = make_point(PointSpec(7, 5, 2, 1e-4, "complex128", 0))


@FAST
@given(dY=tangent_vectors(Y_FIXED, factored=True))
def test_factored_tangent_vectors_are_tangent(dY):
    assert isinstance(dY, lo.LowRank) and dY.rank <= 2 * Y_FIXED.rank
    check_in_tangent_space(Y_FIXED, dY)


def test_check_in_tangent_space_can_fail():
    Y = make_point(PointSpec(6, 5, 2, 1e-2, "float64", 1))
    Z = np.random.default_rng(0).standard_normal((6, 5))
    with pytest.raises(AssertionError, match="not a tangent vector at Y"):
        check_in_tangent_space(Y, Z)
    dY = make_tangent_vector(Y, 3, scale=2.0)
    assert np.isclose(np.linalg.norm(dY), 2.0)


@FAST
@given(case=problems(max_size=8))
def test_problem_cases_are_consistent(case):
    s = case.spec
    assert case.problem.shape == (s.n, s.m) == case.Y0.shape
    assert case.Y0.rank == s.rank
    lo.testing.check_orthonormal(case.Y0, 1e-10)
    if s.kind != "klw":  # A(0) = Y0; for KLW, Y0 is the best rank-r approximation of A(0)
        np.testing.assert_allclose(case.reference(0.0), case.Y0.to_dense(), atol=1e-12)


def test_problem_reference_is_the_full_solution():
    case = make_problem(lo.testing.ProblemSpec("lyapunov", 6, 5, 2, 0, nu_x=0.5, nu_y=0.3))
    Y = lo.solve(case.problem, case.Y0, (0, 0.2), 0.01, method="full").y[-1]
    np.testing.assert_allclose(Y.to_dense(), case.reference(0.2), atol=1e-9)
    with pytest.raises(ValueError, match="kinds must be a non-empty subset"):
        problems(kinds=("heat",))


# ------------------------------------------------------------------------- layers
class WrongDense(nn.Dense):
    """Dense layer whose weight gradient is off by a factor of 2."""

    def backward(self, dy):
        dx = super().backward(dy)
        self._grads["W"] = 2.0 * self._grads["W"]
        return dx


def test_library_layers_pass_gradient_check():
    rng = np.random.default_rng(0)
    layer = nn.LowRankDense(5, 4, 2, rng=rng)
    layer.set_params({"b": rng.standard_normal(4)})
    report = check_layer_gradients(layer, rng.standard_normal((3, 5)), rng=1)
    assert set(report) == {"x", "S", "b"}
    check_layer_gradients(nn.Tanh(), rng.standard_normal((3, 4)))


def test_wrong_layer_gradient_is_rejected():
    rng = np.random.default_rng(0)
    layer = WrongDense(5, 4, rng=rng)
    with pytest.raises(
        AssertionError,
        match=r"(?s)WrongDense: wrong gradients .*gradient of 'W'.*Taylor slope 1\.0",
    ):
        check_layer_gradients(layer, rng.standard_normal((3, 5)))
    with pytest.raises(ValueError, match="need float64 input"):
        check_layer_gradients(nn.Tanh(), np.ones((2, 2), np.float32))


def test_integrator_base_class_is_what_users_subclass():
    assert issubclass(WrongStrang, Integrator) and issubclass(HalfSBUG, Integrator)


def test_the_library_never_imports_the_testing_package():
    """lowrank_ode.testing is for test-suites: importing the library (and running its CLI
    modules) must not load it or hypothesis."""
    import subprocess
    import sys

    code = (
        "import sys, lowrank_ode, lowrank_ode.cli, lowrank_ode.demo, lowrank_ode.dlrt, "
        "lowrank_ode.nn, lowrank_ode.data;"
        "print(sorted(m for m in sys.modules if m.startswith(('lowrank_ode.testing', "
        "'hypothesis'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_gradcheck_moved_to_testing_layers_with_a_deprecated_alias():
    import importlib
    import sys

    import lowrank_ode.testing.layers as layers

    sys.modules.pop("lowrank_ode.nn.gradcheck", None)
    with pytest.warns(DeprecationWarning, match="lowrank_ode.testing.layers"):
        old = importlib.import_module("lowrank_ode.nn.gradcheck")
    assert old.gradient_check is layers.gradient_check
    assert lo.testing.dense_error is lo.lowrank.dense_error
