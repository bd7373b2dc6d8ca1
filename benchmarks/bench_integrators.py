"""Benchmark: the low-rank integrators per sub-step, reduced against generic sub-problems.

Two experiments of B. Carrel's randomized DLRA suite (``matrix_ode_toolbox``, repository
BenjaminCarrel/randomized-dynamical-low-rank, ``experiments/``), rebuilt here from their
definitions, at the sizes of an earlier comparison with that suite:

``toy`` (``exp_toy_problem``)
    Ẏ = W₁Y + Y + YW₂ᵀ, W_k = (W̃_k − W̃_kᵀ)/2 with W̃₁, W̃₂ uniform on [0, 1)ⁿˣⁿ (drawn in this
    order by NumPy's legacy generator, seed 2810), Y(0) = D = diag(10⁻ⁱ), i = 0 … n−1; exact
    solution Y(t) = e^{tW₁} eᵗ D e^{tW₂}ᵀ.  Y₀ = best rank-r approximation of D.  Here n = 2000,
    r = 16, T = 1, h = 0.1, one RK4 step per sub-step (the suite's script: n = 100, T = h = 0.1).
``lyapunov`` (``exp_lyapunov``, ``make_lyapunov_heat_square_dirichlet_kressner``)
    Ẏ = AY + YA + C on x = linspace(−π, π, n), A = tridiag(1, −2, 1)/Δx² (Dirichlet),
    C = Σ_{k=1}^{10} 10^{1−k} e^{−k x²} (e^{−k x²})ᵀ scaled to ‖C‖_F = 1.  The initial value is
    what the definition computes: its loop over k = 1 … 20 assigns X₀ = b(k) sin(kx) sin(kx)ᵀ
    each time, so the k = 20 term remains (b(20) = 5e⁻¹⁶), and it is then advanced exactly over
    t = 10⁻⁴ (the suite uses a second-order exponential integrator there, exact for this
    affine problem).  Y₀ = best rank-r approximation; reference: the exact solution (sine
    transform; the suite: exponential Runge–Kutta with 1000 sub-steps).  Here n = 1000, r = 10,
    T = h = 0.1 (one step), RK4 with enough inner steps for stability: h·8/Δx² ≤ 2.5 per inner
    step, about 8000 at n = 1000 (the suite's script: n = 256, r = 5).

Methods: KSL, Strang, BUG, augmented BUG (truncated back to r) and rank-adaptive BUG
(ϑ = max(10⁻⁸, 10⁻⁸‖σ‖) on each dropped singular value, ``norm="max"``).  For each, the wall
time of :func:`lowrank_ode.solve` (:func:`lowrank_ode.timing.median_time`) and the relative
Frobenius error against the reference, on the reduced path (sub-problem operators formed once
per sub-step, :meth:`lowrank_ode.problems.Problem.reduced`) and on the generic path
(``Integrator(reduced=False)``), and the distance between the two results.

Run (BLAS threads: the library's ``auto`` policy unless ``--threads N``; the setting is
printed):

    python benchmarks/bench_integrators.py [--experiment toy lyapunov] [--threads auto|N]
        [--repeats 1] [--warmup 0] [--methods ...] [--quick]

``--quick`` runs both experiments at tiny sizes (a smoke test, seconds).

Reading the last column: in the Lyapunov experiment the heat flow damps all but a few
directions, so K₁ and L₁ are numerically rank-deficient at these ranks (at n = 1000, r = 10:
σ₉(K₁)/σ₁ ≈ 1.5e-15 and σ₁₀(K₁)/σ₁ ≈ 2.5e-16; at n = 256, r = 5: σ₅/σ₁ ≈ 3e-20).  The last
columns of orth(K₁) are then fixed by rounding errors, on either path: the two paths compute
K₁ with different (equally valid) rounding and may end in results farther apart than rounding,
by as much as the weight of the solution in those directions (at n = 256, r = 5, BUG: 3.6e-6
relative, against an error of 1e-5).  Neither is the more accurate one.  On problems whose K₁
has full numerical rank (the toy problem, and the tests) the paths agree to 1e-12 or better.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import lowrank_ode as lo
from lowrank_ode import blas_threads
from lowrank_ode.exceptions import NumericalBreakdown
from lowrank_ode.integrators import BUG, KSL, Integrator, RankAdaptiveBUG, Strang
from lowrank_ode.problems import LyapunovProblem, SylvesterProblem
from lowrank_ode.substep import RK4
from lowrank_ode.timing import median_time
from lowrank_ode.truncation import Truncation

#: tolerance of the rank-adaptive BUG (absolute and relative, on each dropped singular value)
RANK_TOL = 1e-8
#: RK4 stability: |h λ| ≤ 2.78 on the negative real axis; inner steps keep h·ρ ≤ this
RK4_REACH = 2.5


@dataclass
class Experiment:
    """A problem, its initial value, the reference at T and the step parameters."""

    name: str
    problem: Any
    Y0: lo.LowRank
    reference: np.ndarray
    T: float
    h: float
    inner_steps: int
    description: str


def toy(n: int, rank: int, T: float, h: float, inner_steps: int = 1) -> Experiment:
    """Ẏ = W₁Y + Y + YW₂ᵀ from D = diag(10⁻ⁱ) (see the module docstring)."""
    from scipy.linalg import expm

    gen = np.random.RandomState(2810)
    Wt1 = gen.rand(n, n)
    Wt2 = gen.rand(n, n)
    W1, W2 = (Wt1 - Wt1.T) / 2, (Wt2 - Wt2.T) / 2
    d = 10.0 ** -np.arange(n, dtype=float)
    problem = SylvesterProblem(W1 + np.eye(n), W2)  # A = W₁ + I, Y Bᴴ = Y W₂ᵀ
    E = np.eye(n)[:, :rank]
    Y0 = lo.LowRank(E.copy(), np.diag(d[:rank]), E.copy())  # D is diagonal and sorted
    reference = (expm(T * W1) * (np.exp(T) * d)[None, :]) @ expm(T * W2).T
    text = f"toy Ẏ = W₁Y + Y + YW₂ᵀ: n = {n}, r = {rank}, T = {T:g}, h = {h:g}"
    return Experiment("toy", problem, Y0, reference, T, h, inner_steps, text)


def lyapunov(n: int, rank: int, T: float, h: float, inner_steps: int | None = None) -> Experiment:
    """Ẏ = AY + YA + C, the heat equation of the Lyapunov experiment (module docstring)."""
    x = np.linspace(-np.pi, np.pi, n)
    dx = x[1] - x[0]
    nu = 1.0 / dx**2
    g = np.exp(-np.outer(x**2, np.arange(1, 11)))  # columns e^{−k x²}, k = 1 … 10
    C1, C2 = g * 10.0 ** -np.arange(10)[None, :], g
    C1 = C1 / math.sqrt(np.trace((C1.T @ C1) @ (C2.T @ C2)))  # ‖C₁C₂ᵀ‖_F = 1
    problem = LyapunovProblem(n, n, nu_x=nu, nu_y=nu, C1=C1, C2=C2)
    s = np.sin(20 * x)
    X0 = problem.exact(1e-4, 5 * np.exp(-(7 + 0.5 * 18)) * np.outer(s, s))
    Y0 = lo.LowRank.from_dense(X0, rank=rank)
    reference = problem.exact(T, X0)
    if inner_steps is None:
        inner_steps = max(1, math.ceil(h * 8 * nu / RK4_REACH))
    text = (
        f"Lyapunov Ẏ = AY + YA + C: n = {n}, r = {rank}, T = {T:g}, h = {h:g}, "
        f"{inner_steps} RK4 steps per sub-step"
    )
    return Experiment("lyapunov", problem, Y0, reference, T, h, inner_steps, text)


def methods(inner_steps: int) -> dict[str, Callable[[bool], Integrator]]:
    """The integrators compared, each built for the reduced (True) or generic (False) path."""
    sub = RK4(inner_steps)
    adaptive = Truncation(rtol=RANK_TOL, atol=RANK_TOL, norm="max")
    return {
        "KSL": lambda red: KSL(sub, reduced=red),
        "Strang": lambda red: Strang(sub, reduced=red),
        "BUG": lambda red: BUG(sub, reduced=red),
        "augmented BUG": lambda red: RankAdaptiveBUG(sub, reduced=red),
        "rank-adaptive BUG": lambda red: RankAdaptiveBUG(sub, adaptive, reduced=red),
    }


def run(
    exp: Experiment,
    make: Callable[[bool], Integrator],
    reduced: bool,
    repeats: int,
    warmup: int,
    threads: Any = "auto",
) -> dict[str, Any]:
    """Seconds (median), error against the reference, rank, evaluations and the result."""
    out: dict[str, Any] = {}

    def once() -> None:
        integ = make(reduced)
        sol = lo.solve(exp.problem, exp.Y0, (0.0, exp.T), exp.h, method=integ, threads=threads)
        out["Y"], out["n_evals"] = sol.y[-1], integ.n_evals

    try:
        out["seconds"] = median_time(once, repeats, warmup)
    except NumericalBreakdown:
        return {"breakdown": True}
    D = out["Y"].to_dense()
    out["error"] = float(np.linalg.norm(D - exp.reference) / np.linalg.norm(exp.reference))
    out["rank"] = out["Y"].rank
    out["dense"] = D
    return out


def table(
    exp: Experiment, names: list[str], repeats: int, warmup: int, threads: Any = "auto"
) -> None:
    """Print one experiment: per method and path, time, error, rank, evaluations."""
    print(f"\n{exp.description}")
    print(
        f"{'method':18s} {'path':8s} {'seconds':>9s} {'rel. error':>15s} {'rank':>5s} "
        f"{'evals':>7s} {'|Y_red − Y_gen|/|Y|':>20s}"
    )
    makers = methods(exp.inner_steps)
    for name in names:
        rows = {
            path: run(exp, makers[name], path == "reduced", repeats, warmup, threads)
            for path in ("reduced", "generic")
        }
        red, gen = rows["reduced"], rows["generic"]
        both = "dense" in red and "dense" in gen
        if both:
            diff = np.linalg.norm(red["dense"] - gen["dense"]) / np.linalg.norm(gen["dense"])
        for path, r in rows.items():
            if r.get("breakdown"):
                print(f"{name:18s} {path:8s} {'breakdown (NaN/inf)':>31s}")
                continue
            tail = f"{diff:20.2e}" if both and path == "reduced" else ""
            print(
                f"{name:18s} {path:8s} {r['seconds']:9.3f} {r['error']:15.8e} {r['rank']:5d} "
                f"{r['n_evals']:7d} {tail}"
            )


def main(argv: list[str] | None = None) -> int:
    """Print the tables of the experiments asked for."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--experiment", nargs="+", choices=("toy", "lyapunov"))
    p.add_argument("--methods", nargs="+", choices=tuple(methods(1)))
    p.add_argument("--threads", default="auto", help="BLAS thread policy: auto (default) or N")
    p.add_argument("--repeats", type=int, default=1, help="timed runs (median)")
    p.add_argument("--warmup", type=int, default=0, help="untimed runs first")
    p.add_argument("--toy-n", type=int, default=2000)
    p.add_argument("--toy-rank", type=int, default=16)
    p.add_argument("--toy-T", type=float, default=1.0)
    p.add_argument("--toy-h", type=float, default=0.1)
    p.add_argument("--lyap-n", type=int, default=1000)
    p.add_argument("--lyap-rank", type=int, default=10)
    p.add_argument("--lyap-T", type=float, default=0.1)
    p.add_argument("--lyap-h", type=float, default=0.1)
    p.add_argument("--lyap-inner", type=int, default=None, help="RK4 steps per sub-step")
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    a = p.parse_args(argv)
    if a.quick:
        a.toy_n, a.toy_rank, a.toy_T = 40, 4, 0.2
        a.lyap_n, a.lyap_rank, a.lyap_T, a.lyap_h = 48, 4, 0.02, 0.01
    names = a.methods or list(methods(1))
    with blas_threads(a.threads) as info:
        pools = ", ".join(f"{b['library']} {b['num_threads']}" for b in info["blas"])
        print(f"BLAS threads: policy {a.threads} ({pools})")
        for which in a.experiment or ("toy", "lyapunov"):
            if which == "toy":
                exp = toy(a.toy_n, a.toy_rank, a.toy_T, a.toy_h)
            else:
                exp = lyapunov(a.lyap_n, a.lyap_rank, a.lyap_T, a.lyap_h, a.lyap_inner)
            table(exp, names, a.repeats, a.warmup, a.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
