"""Tutorial 4 — test your own integrator with lowrank_ode.testing.

We write BUG with explicit-Euler sub-steps as a *plain function* step(F, t, Y, h) -> LowRank,
using only the factored products of the problem (F.at(t, [Y]).right / .left / .galerkin), and run
the library's checkers on it — then on three deliberately broken variants.
"""

import numpy as np
from hypothesis import given, settings

import lowrank_ode as lo
from lowrank_ode import testing
from lowrank_ode.integrators import Strang


def my_bug(F, t, Y, h):
    """One BUG step with explicit Euler sub-steps (Ceruti–Lubich 2022, Alg. 1)."""
    G0 = F.at(t, [Y])  # one evaluation at Y₀ serves the K- and the L-step
    K1 = Y.U @ Y.S + h * G0.right(0, Y.V)  # K' = F(K V₀ᴴ) V₀
    L1 = Y.V @ Y.S.conj().T + h * G0.left(0, Y.U)  # L' = F(U₀ Lᴴ)ᴴ U₀
    U1, _ = np.linalg.qr(K1)
    V1, _ = np.linalg.qr(L1)
    S0 = (U1.conj().T @ Y.U) @ Y.S @ (Y.V.conj().T @ V1)  # M S₀ Nᴴ
    G1 = F.at(t, [lo.LowRank(U1, S0, V1)])
    S1 = S0 + h * G1.galerkin(0, U1, V1)  # S' = U₁ᴴ F(U₁ S V₁ᴴ) V₁
    return lo.LowRank(U1, S1, V1)


# 1. invariants of one step on random built-in problems (hypothesis)
@settings(max_examples=20, deadline=None)
@given(case=testing.problems(max_size=10))
def test_invariants(case):
    testing.check_step_invariants(my_bug, case.problem, case.Y0, 0.05, rank=case.Y0.rank)


test_invariants()
print("check_step_invariants: passed on 20 random problems")

# 2. empirical order against the projected ODE (first order)
slope, errs = testing.check_integrator_order(my_bug, expected=1)
print(f"check_integrator_order: slope {slope:.3f}, errors {', '.join(f'{e:.2e}' for e in errs)}")

# 3. robustness: error independent of σ_min from 1e-2 to 1e-11
errs = testing.check_robustness(my_bug)
print(f"check_robustness: max/min error ratio {max(errs) / min(errs):.2f}")
print()


def show_failure(label, check):
    try:
        check()
    except AssertionError as exc:
        print(f"{label} -> AssertionError:\n    {exc}\n")
    else:
        raise RuntimeError(f"{label}: the checker should have failed")


# broken 1: forget the QR of K (U is not orthonormal)
def no_qr(F, t, Y, h):
    Z = my_bug(F, t, Y, h)
    return lo.LowRank(Z.U @ Z.S, np.eye(Z.rank), Z.V)


case = testing.make_problem(testing.ProblemSpec("klw", 12, 12, 3, seed=0, decay=1e-3))
show_failure("no_qr", lambda: testing.check_step_invariants(no_qr, case.problem, case.Y0, 0.1))


# broken 2: "Strang" with the two half sweeps in the same order K-S-L, K-S-L (not K-S-L, L-S-K)
class WrongStrang(Strang):
    def _step_impl(self, F, t, Y, h):
        Yh = self.sweep(F, t, Y, h / 2, "KSL")
        return self.sweep(F, t + h / 2, Yh, h / 2, "KSL")


show_failure("WrongStrang", lambda: testing.check_integrator_order(WrongStrang(), expected=2))

# broken 3: the Koch–Lubich factor ODEs invert S
show_failure("direct", lambda: testing.check_robustness(lo.integrators.Direct()))
