"""A factored problem with n = m = 10⁴ runs without any n × m allocation."""

import tracemalloc

import numpy as np
import pytest

import lowrank_ode as lo
from lowrank_ode.problems import LyapunovProblem


class NoDense(LyapunovProblem):
    def dense(self, t, A):  # any fallback to a dense evaluation is a failure
        raise AssertionError("dense n×m evaluation requested")


@pytest.mark.parametrize("method", ["bug", "rabug", "ksl", "parallel", "midpoint"])
def test_large_factored_problem_never_forms_dense(method):
    n = 10_000
    P = NoDense(n, n, nu_x=1.0, nu_y=1.0)
    Y0 = P.initial(10)
    kw = {"atol": 1e-8, "max_rank": 20} if method in ("rabug", "parallel", "midpoint") else {}
    tracemalloc.start()
    sol = lo.solve(P, Y0, (0, 0.02), 0.01, method=method, **kw)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    dense_bytes = n * n * 8  # 800 MB for one n×n float64 matrix
    assert peak < dense_bytes / 10, f"peak {peak / 1e6:.1f} MB"
    assert sol.y[-1].shape == (n, n)
    assert np.isfinite(sol.y[-1].norm())
