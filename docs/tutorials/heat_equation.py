"""Tutorial 1 — the heat equation in Lyapunov form at rank 20: compare the integrators.

dY/dt = T Y + Y Tᵀ + C₁C₂ᵀ on a 200 × 200 grid (T = tridiag(1, −2, 1), a rank-1 source),
from a rank-20 initial value, to T_end = 1.  The exact solution comes from the discrete sine
transform (LyapunovProblem.exact), so every error below is measured against the truth.
"""

import os
import time
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import lowrank_ode as lo  # noqa: E402
from lowrank_ode.problems import LyapunovProblem  # noqa: E402

OUT = Path(os.environ.get("LOWRANK_DOCS_OUT", "."))

P = LyapunovProblem(200, 200)  # factored: no 200 × 200 matrix is formed by the integrators
Y0 = P.initial(rank=20)  # Σ_k 2⁻ᵏ sin((k+1)πx) sin((k+1)πy), exactly rank 20
T_END = 1.0
exact = P.exact(T_END, Y0)

# the best any rank-20 method can do: the truncated SVD of the exact solution
sigma = np.linalg.svd(exact, compute_uv=False)
best = float(np.sqrt(np.sum(sigma[20:] ** 2)))
print(f"‖Y(1)‖_F = {np.linalg.norm(exact):.4f}, best rank-20 error = {best:.2e}")
print(f"numerical rank of Y(1) at 1e-8 (Frobenius tail): {lo.Truncation(atol=1e-8).rank(sigma)}")
print()

methods = ["ksl", "strang", "bug", "rabug", "parallel", "midpoint"]
hs = [0.1, 0.05, 0.025, 0.0125]
errors = {m: [] for m in methods}
print(f"{'method':>9} | " + " | ".join(f"h={h:<7g}" for h in hs) + " | evals, ms/step (h=0.0125)")
for m in methods:
    for h in hs:
        t0 = time.perf_counter()
        sol = lo.solve(P, Y0, (0.0, T_END), h, method=m)
        ms = 1e3 * (time.perf_counter() - t0) / sol.n_steps
        errors[m].append(np.linalg.norm(sol.y[-1].to_dense() - exact))
    row = " | ".join(f"{e:.3e}" for e in errors[m])
    print(f"{m:>9} | {row} | {sol.n_evals:>5}, {ms:5.2f}")

print()
print("Small steps approach the solution of the projected ODE dY/dt = P(Y) F(Y):")
for m in ("ksl", "bug"):
    sol = lo.solve(P, Y0, (0.0, T_END), 0.0025, method=m)
    print(f"  {m:>4}, h=0.0025: error {np.linalg.norm(sol.y[-1].to_dense() - exact):.3e}")

print()
print("Rank-adaptive BUG with an absolute Frobenius-tail tolerance instead of a fixed rank:")
for atol in (1e-4, 1e-6, 1e-8):
    sol = lo.solve(P, Y0, (0.0, T_END), 0.0125, method="rabug", atol=atol, max_rank=60)
    err = np.linalg.norm(sol.y[-1].to_dense() - exact)
    print(f"  atol={atol:g}: final rank {sol.ranks[-1]:2d}, error {err:.2e}")

fig, ax = plt.subplots(figsize=(5.5, 4))
styles = {"rabug": dict(marker="s", ms=9, mfc="none"), "midpoint": dict(marker="x", ms=7)}
for m in methods:
    ax.loglog(hs, errors[m], "-", label=m, **styles.get(m, dict(marker="o")))
ax.axhline(best, color="k", ls=":", label="best rank 20")
ax.loglog(hs, [3e-4 * (h / hs[0]) for h in hs], "k--", lw=0.8, label="slope 1")
ax.set_xticks(hs, [f"{h:g}" for h in hs])
ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
ax.set_xlabel("step size h")
ax.set_ylabel("‖Y_N − Y(1)‖_F")
ax.set_title("Heat equation, n = m = 200, rank 20")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(OUT / "heat_equation.png", dpi=100)
