"""Benchmark: one BUG and one rank-adaptive BUG step on the factored Lyapunov (heat) problem.

Prints time per step (median of repeats) under the library's default BLAS thread policy
(``"auto"``, what ``solve`` applies) and under one BLAS thread, and the tracemalloc peak of one
step next to the size of one dense n × n float64 matrix, for n ∈ {10³, 10⁴}, r = 20, RK4 and Euler
sub-steps.

Run:  python benchmarks/bench_core.py
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np

from lowrank_ode import blas_threads
from lowrank_ode.problems import LyapunovProblem
from lowrank_ode.solve import make_integrator


def bench(n: int, method: str, substep: str, r: int = 20, repeats: int = 5) -> tuple[float, float]:
    """(median seconds per step, peak MB of one step)."""
    P = LyapunovProblem(n, n)
    Y = P.initial(r)
    kw = {"atol": 1e-10, "max_rank": 2 * r} if method == "rabug" else {}
    integ = make_integrator(method, substep, **kw)
    integ.step(P, 0.0, Y, 1e-3)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        integ.step(P, 0.0, Y, 1e-3)
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    integ.step(P, 0.0, Y, 1e-3)
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return float(np.median(times)), peak


def main() -> None:
    """Print the table: each step under the default thread policy and under one BLAS thread."""
    print(
        f"{'n':>6} {'method':>6} {'substep':>7} {'ms (auto)':>10} {'ms (1 thr)':>10} "
        f"{'auto/1':>7} {'peak MB':>8} {'dense n×n MB':>12}"
    )
    for n in (1_000, 10_000):
        for method in ("bug", "rabug"):
            for substep in ("rk4", "euler"):
                with blas_threads("auto"):
                    sec, peak = bench(n, method, substep)
                with blas_threads(1):
                    sec1, _ = bench(n, method, substep)
                print(
                    f"{n:>6} {method:>6} {substep:>7} {1e3 * sec:>10.2f} {1e3 * sec1:>10.2f} "
                    f"{sec / sec1:>7.2f} {peak:>8.1f} {n * n * 8 / 1e6:>12.0f}"
                )


if __name__ == "__main__":
    main()
