"""The stepping contract: Integrator.step validates, counts evaluations, checks finiteness and
calls _step_impl; step_blocks is a deprecated alias; order is the method's order given its
sub-step."""

import numpy as np
import pytest

import lowrank_ode as lo
from lowrank_ode.exceptions import NumericalBreakdown
from lowrank_ode.integrators import (
    BUG,
    KSL,
    Direct,
    FixedBasisGalerkin,
    Full,
    MidpointBUG,
    ParallelBUG,
    RankAdaptiveBUG,
    Strang,
)
from lowrank_ode.problems import KLWProblem, LyapunovProblem


@pytest.fixture(scope="module")
def klw():
    P = KLWProblem(10, seed=0)
    return P, P.initial(3)


def test_step_counts_evaluations_and_solve_reports_them(klw):
    P, Y0 = klw
    integ = BUG("euler")
    integ.step(P, 0.0, Y0, 0.1)
    assert integ.n_evals == 2  # K and L share one evaluation, S needs a second
    sol = lo.solve(P, Y0, (0, 0.3), 0.1, method=integ)
    assert sol.n_evals == 6
    assert integ.n_evals == 8  # the instance keeps counting across calls


def test_step_raises_numerical_breakdown_on_nonfinite_results(klw):
    P, Y0 = klw

    class Blowup(BUG):
        def _step_impl(self, F, t, Y, h):
            out = super()._step_impl(F, t, Y, h)
            S = out[0].S.copy()
            S[0, 0] = np.inf
            return [lo.LowRank(out[0].U, S, out[0].V)]

    with pytest.raises(NumericalBreakdown, match=r"non-finite values .* from t = 0"):
        Blowup().step(P, 0.0, Y0, 0.1)
    with pytest.raises(NumericalBreakdown, match=r"step 1 of 3: non-finite"):
        lo.solve(P, Y0, (0, 0.3), 0.1, method=Blowup())


def test_step_validates_its_arguments(klw):
    P, Y0 = klw
    for h in (float("nan"), float("inf"), True, "0.1"):
        with pytest.raises(ValueError, match="h must be a finite number"):
            BUG().step(P, 0.0, Y0, h)
    with pytest.raises(TypeError, match="non-empty list of blocks"):
        BUG().step(P, 0.0, [], 0.1)
    with pytest.raises(ValueError, match="does not support dense blocks"):
        MidpointBUG().step(P, 0.0, [Y0, np.zeros(3)], 0.1)
    with pytest.raises(ValueError, match="needs an affine autonomous problem"):
        BUG("exact").step(P, 0.0, Y0, 0.1)
    L = LyapunovProblem(6, 5)
    with pytest.raises(ValueError, match="cannot be used with method 'direct'"):
        Direct("exact").step(L, 0.0, L.initial(2), 0.1)


def test_legacy_step_blocks_override_warns_and_still_steps(klw):
    P, Y0 = klw
    with pytest.warns(DeprecationWarning, match="overrides step_blocks"):

        class Legacy(BUG):
            def step_blocks(self, F, t, Y, h):
                return super().step_blocks(F, t, Y, h)

    with pytest.warns(DeprecationWarning, match="step_blocks is deprecated"):
        out = Legacy().step(P, 0.0, Y0, 0.1)
    np.testing.assert_array_equal(out.to_dense(), BUG().step(P, 0.0, Y0, 0.1).to_dense())
    with pytest.warns(DeprecationWarning, match="step_blocks is deprecated"):
        (Z,) = BUG().step_blocks(P, 0.0, [Y0], 0.1)
    np.testing.assert_array_equal(Z.to_dense(), out.to_dense())


@pytest.mark.parametrize(
    "cls,rk4,euler,exact",
    [
        (Full, 4, 1, None),
        (Direct, 4, 1, None),
        (KSL, 1, 1, 1),
        (Strang, 2, 1, 2),
        (BUG, 1, 1, 1),
        (RankAdaptiveBUG, 1, 1, 1),
        (ParallelBUG, 1, 1, 1),
        (MidpointBUG, 2, 1, 2),
        (FixedBasisGalerkin, 1, 1, 1),
    ],
)
def test_order_is_the_methods_order_given_its_substep(cls, rk4, euler, exact):
    assert cls.order == rk4  # on the class: with the default RK4 sub-step
    assert cls("rk4").order == rk4
    assert cls("euler").order == euler
    if cls.affine_substeps:
        assert cls("exact").order == exact


def test_truncation_is_accepted_exactly_by_the_methods_that_truncate():
    rule = lo.Truncation(rtol=1e-3)
    for cls in (Full, RankAdaptiveBUG, ParallelBUG, MidpointBUG):
        assert cls(truncation=rule).truncation is rule
    for cls in (Direct, KSL, Strang, BUG, FixedBasisGalerkin):
        with pytest.raises(ValueError, match="has fixed rank"):
            cls(truncation=rule)
