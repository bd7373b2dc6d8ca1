"""Benchmark: BUG and rank-adaptive BUG on the factored heat (Lyapunov) problem up to n = 10⁶.

dY/dt = T Y + Y Tᵀ + C₁C₂ᵀ with T = tridiag(1, −2, 1) of size n = m, Y₀ of rank r = 20, RK4
sub-steps, h = 10⁻³.  The operators are banded stencils applied to the n × r factors, so no
n × n array exists at any point (one would take 8 TB at n = 10⁶).  For each n the script times
one step of each method (after one warm-up step) and measures the peak of memory allocated
during a step (``tracemalloc``, which NumPy reports its buffers to) and the peak resident size
of the process; then it fits the growth slope of time against n (log–log least squares; the
work is O(n r²), so the target is a slope ≤ 1.1) and checks the peak at the largest n against
2 GB.

Run:  python benchmarks/bench_large_n.py [--n 1000 10000 100000 1000000] [--rank 20]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc

import numpy as np

from lowrank_ode.problems import LyapunovProblem
from lowrank_ode.solve import make_integrator

SIZES = (1_000, 10_000, 100_000, 1_000_000)
METHODS = ("bug", "rabug")
MEMORY_TARGET_GB = 2.0
SLOPE_TARGET = 1.1


def bench(n: int, method: str, r: int = 20, h: float = 1e-3) -> tuple[float, float]:
    """(seconds of one step, tracemalloc peak in GB of one step) at size ``n``."""
    P = LyapunovProblem(n, n)
    Y = P.initial(r)
    kw = {"atol": 1e-10, "max_rank": 2 * r} if method == "rabug" else {}
    integ = make_integrator(method, "rk4", **kw)
    integ.step(P, 0.0, Y, h)  # warm-up (BLAS threads, first-touch pages)
    t0 = time.perf_counter()
    integ.step(P, 0.0, Y, h)
    seconds = time.perf_counter() - t0
    tracemalloc.start()
    Y1 = integ.step(P, 0.0, Y, h)
    peak = tracemalloc.get_traced_memory()[1] / 1e9
    tracemalloc.stop()
    if not np.isfinite(Y1.norm()):
        raise ArithmeticError(f"{method} step at n={n} is not finite")
    return seconds, peak


def slope(ns: list[int], times: list[float]) -> float:
    """Least-squares slope of log(time) against log(n)."""
    if len(ns) < 2:
        return float("nan")
    return float(np.polyfit(np.log(ns), np.log(times), 1)[0])


def _max_rss_gb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return kb / (1e9 if sys.platform == "darwin" else 1e6)


def main(argv: list[str] | None = None) -> int:
    """Print the table; exit status 1 when a target is missed at the sizes run."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, nargs="+", default=list(SIZES), help="sizes n = m")
    p.add_argument("--rank", type=int, default=20)
    a = p.parse_args(argv)
    if any(n < 2 * a.rank for n in a.n):
        p.error(f"every --n must be at least 2 × rank = {2 * a.rank}, got {a.n}")
    ns = sorted(a.n)
    print(f"factored heat problem, r = {a.rank}, RK4 sub-steps, one step each")
    print(
        f"{'n':>9} {'method':>6} {'s/step':>9} {'peak GB':>8} {'max RSS GB':>10} "
        f"{'dense n×n GB':>12}"
    )
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    peaks: dict[str, list[float]] = {m: [] for m in METHODS}
    for n in ns:
        for method in METHODS:
            sec, peak = bench(n, method, a.rank)
            times[method].append(sec)
            peaks[method].append(peak)
            print(
                f"{n:>9} {method:>6} {sec:>9.3f} {peak:>8.3f} {_max_rss_gb():>10.2f} "
                f"{n * n * 8 / 1e9:>12.3g}",
                flush=True,
            )
    ok = True
    print()
    for method in METHODS:
        s = slope(ns, times[method])
        met_s = s <= SLOPE_TARGET
        met_m = peaks[method][-1] <= MEMORY_TARGET_GB
        ok = ok and met_s and met_m
        print(
            f"{method:>6}: time ∝ n^{s:.2f} over n = {ns[0]:.0e} … {ns[-1]:.0e} "
            f"(target ≤ {SLOPE_TARGET}: {'met' if met_s else 'NOT met'}); peak "
            f"{peaks[method][-1]:.3f} GB at n = {ns[-1]:.0e} "
            f"(target ≤ {MEMORY_TARGET_GB} GB: {'met' if met_m else 'NOT met'})"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
