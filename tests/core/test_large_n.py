"""The factored heat problem at large n: stencil fast path, per-step products, benchmark."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import array_api_strict as xs
import numpy as np
import pytest

import lowrank_ode as lo
from lowrank_ode.lowrank import LowRank
from lowrank_ode.problems import LyapunovProblem
from lowrank_ode.problems.stencil import tridiag_apply, tridiag_dense

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("n", [1, 2, 3, 50])
@pytest.mark.parametrize("periodic", [False, True])
def test_numpy_stencil_is_the_generic_stencil_bit_for_bit(n, periodic):
    X = np.random.default_rng(n).standard_normal((n, 4))
    fast = tridiag_apply(X, -2.0, 0.7, periodic)
    generic = np.asarray(tridiag_apply(xs.asarray(X), -2.0, 0.7, periodic))
    assert np.array_equal(fast, generic)
    T = tridiag_dense(n, -2.0, 0.7, periodic, xp=xs)
    np.testing.assert_allclose(fast, np.asarray(T) @ X, rtol=1e-14, atol=1e-14)


class CountingProblem(LyapunovProblem):
    calls = 0

    def _B(self, X):
        CountingProblem.calls += 1
        return super()._B(X)


@pytest.mark.parametrize("reduced", [True, False])
def test_stage_invariant_products_are_formed_once_per_step(reduced):
    """RK4 K-step: four stages share V₀, so B V₀ is applied once, not four times — on the
    reduced path (V₀ᴴBV₀ formed once per sub-step) and on the generic one (cached products)."""
    P = CountingProblem(60, 50)
    Y = P.initial(4)
    CountingProblem.calls = 0
    lo.solve(P, Y, (0, 0.01), 0.01, method=lo.integrators.BUG(reduced=reduced))
    # K-step: B V₀ once (cached over its 4 stages); L-step: B applied to an m × r matrix once
    # per stage (4); S-step (Galerkin, 4 stages, k × k products only): B V₁ once
    assert CountingProblem.calls == 6


def test_cached_products_follow_the_arrays():
    """A different V (or a different Z) is not answered from the cache."""
    P = LyapunovProblem(40, 30)
    Y = P.initial(3)
    rng = np.random.default_rng(0)
    V1, V2 = rng.standard_normal((30, 3)), rng.standard_normal((30, 3))
    dense = P.dense(0.0, Y.to_dense())
    for V in (V1, V2, V1):
        np.testing.assert_allclose(P.right(0.0, Y, V), dense @ V, rtol=1e-12, atol=1e-12)
    Y2 = LowRank(Y.U, 2 * Y.S, rng.standard_normal((30, 3)))
    np.testing.assert_allclose(
        P.right(0.0, Y2, V1), P.dense(0.0, Y2.to_dense()) @ V1, rtol=1e-12, atol=1e-12
    )
    U = rng.standard_normal((40, 3))
    np.testing.assert_allclose(P.left(0.0, Y, U), dense.T @ U, rtol=1e-12, atol=1e-12)
    for U_, V_ in ((U, V1), (U, V2), (Y.U, Y.V), (U, V1)):
        np.testing.assert_allclose(
            P.galerkin(0.0, Y, U_, V_), U_.T @ dense @ V_, rtol=1e-12, atol=1e-12
        )
    G2 = P.galerkin(0.0, Y2, U, V1)
    np.testing.assert_allclose(G2, U.T @ P.dense(0.0, Y2.to_dense()) @ V1, rtol=1e-12, atol=1e-12)


def test_large_n_benchmark_prints_its_table(capsys):
    spec = importlib.util.spec_from_file_location("bench", ROOT / "benchmarks/bench_large_n.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rc = bench.main(["--n", "200", "400", "--rank", "5"])
    out = capsys.readouterr().out
    assert rc in (0, 1)
    for word in ("bug", "rabug", "peak GB", "time ∝ n^"):
        assert word in out
    assert len([line for line in out.splitlines() if line.strip().startswith(("200", "400"))]) == 4
    with pytest.raises(SystemExit):
        bench.main(["--n", "10", "--rank", "20"])


@pytest.mark.parametrize("method", ["bug", "rabug"])
def test_step_memory_is_ten_factor_sizes(method):
    """The allocation peak of one RK4 step is at most 10.5 arrays of the size of one n × r
    factor, so n = 10⁶, r = 20 stays at 1.7 GB (the benchmark's 2 GB target)."""
    import tracemalloc

    from lowrank_ode.solve import make_integrator

    n, r = 20_000, 20
    P = LyapunovProblem(n, n)
    Y = P.initial(r)
    kw = {"atol": 1e-10, "max_rank": 2 * r} if method == "rabug" else {}
    integ = make_integrator(method, "rk4", **kw)
    integ.step(P, 0.0, Y, 1e-3)
    tracemalloc.start()
    integ.step(P, 0.0, Y, 1e-3)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak <= 10.5 * n * r * 8, f"peak {peak / (n * r * 8):.1f} factor sizes"
