"""Tutorial 2 — robustness to small singular values on the KLW matrix (small n).

A(t) = e^{tW₁} eᵗ D e^{tW₂}ᵀ with D = diag(σ₁ … σ₄, ε, ε/2, …): the rank-4 part of D decays
geometrically from 1 to σ_min, the rest is a tail of size ε = 1e-4.  F = Ȧ(t).  We start from the
rank-4 part (so σ₄(Y₀) = σ_min exactly) and integrate to T = 0.5 with h = 0.05.
"""

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import lowrank_ode as lo  # noqa: E402
from lowrank_ode.problems import KLWProblem  # noqa: E402

OUT = Path(os.environ.get("LOWRANK_DOCS_OUT", "."))
n, r, eps, h, T = 20, 4, 1e-4, 0.05, 0.5
sigmas = np.logspace(-1, -11, 11)
methods = ["ksl", "strang", "bug", "rabug", "parallel", "midpoint", "direct"]


def error(method: str, sigma_min: float) -> float:
    top = np.geomspace(1.0, sigma_min, r)
    P = KLWProblem(n, singular_values=np.concatenate([top, eps * 2.0 ** -np.arange(n - r)]), seed=3)
    I = np.eye(n)
    Y0 = lo.LowRank(I[:, :r].copy(), np.diag(top), I[:, :r].copy())
    try:
        with np.errstate(all="ignore"):
            Y = lo.solve(P, Y0, (0.0, T), h, method=method).y[-1]
    except lo.NumericalBreakdown:  # solve() stops with it when a step produces NaN/inf
        return np.inf
    return float(np.linalg.norm(Y.to_dense() - P.exact(T)))


errors = {m: [error(m, s) for s in sigmas] for m in methods}
print("σ_min    " + " ".join(f"{m:>9}" for m in methods))
for k, s in enumerate(sigmas):
    print(f"{s:7.0e}  " + " ".join(f"{errors[m][k]:9.2e}" for m in methods))

fig, ax = plt.subplots(figsize=(5.5, 4))
for m in methods:
    e = np.array(errors[m])
    bad = ~np.isfinite(e) | (e > 1e2)
    ax.loglog(sigmas[~bad], e[~bad], "o-", label=m)
    if bad.any():
        ax.loglog(sigmas[bad], np.full(bad.sum(), 1e2), "x", color=ax.lines[-1].get_color())
ax.invert_xaxis()
ax.set_xlabel("smallest singular value σ_min of Y₀")
ax.set_ylabel("‖Y_N − A(T)‖_F")
ax.set_title("KLW, n = 20, r = 4, h = 0.05 (× = blow-up)")
ax.legend(fontsize=8, ncol=2)
fig.tight_layout()
fig.savefig(OUT / "klw_robustness.png", dpi=100)
