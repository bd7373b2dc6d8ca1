"""The demo job: integrate built-in problems with every method and save a comparison plot."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._io import write_text_atomic
from .exceptions import NumericalBreakdown
from .integrators import METHODS
from .lowrank import dense_error
from .problems import KLWProblem
from .solve import solve

__all__ = ["run_demo"]


def run_demo(out: str | Path = "demo_out", quick: bool = False, progress: bool = True) -> dict:
    """Error vs step size of every method on the KLW problem (D = diag(2⁻ʲ), rank 16) and timings.

    Writes ``out/demo.json`` and ``out/demo.png`` and returns the results.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n, r, T = (40, 10, 1.0) if quick else (100, 16, 1.0)
    P = KLWProblem(n, seed=0)
    Y0 = P.initial(r)
    exact = P.exact(T)
    best = float(np.linalg.svd(exact, compute_uv=False)[r:].__pow__(2).sum() ** 0.5)
    hs = [0.1, 0.05, 0.025] if quick else [0.1, 0.05, 0.025, 0.0125, 0.00625, 0.003125]
    results: dict[str, Any] = {"n": n, "rank": r, "T": T, "h": hs, "best_approximation": best}
    from tqdm.auto import tqdm

    methods = [m for m in METHODS if m not in ("full", "galerkin")]
    bar = tqdm(methods, desc="demo", disable=not progress)
    for m in bar:
        errs, secs = [], []
        for h in hs:
            t0 = time.perf_counter()
            try:
                Y = solve(P, Y0, (0, T), h, method=m).y[-1]
                errs.append(dense_error(Y, exact))
            except NumericalBreakdown:  # the direct method breaks down: no error to plot
                errs.append(float("inf"))
            secs.append(time.perf_counter() - t0)
        results[m] = {"error": errs, "seconds": secs}
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for m in methods:
        e = np.asarray(results[m]["error"])
        ax.loglog(hs, np.where(np.isfinite(e), e, np.nan), "o-", label=m)
    ax.axhline(best, color="k", ls=":", label="best rank-r approx.")
    ax.set_xlabel("step size h")
    ax.set_ylabel(r"error $\|Y_n - A(T)\|_F$")
    ax.set_title(f"KLW problem, n={n}, r={r}, D = diag(2^-j), ‖W‖₂ = 1, T={T}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "demo.png", dpi=120)
    plt.close(fig)
    write_text_atomic(out / "demo.json", json.dumps(results, indent=1))
    lines = [f"{'method':10s} " + " ".join(f"h={h:<9.4g}" for h in hs)]
    for m in methods:
        lines.append(f"{m:10s} " + " ".join(f"{e:<11.3e}" for e in results[m]["error"]))
    lines.append(f"best rank-{r} approximation error: {best:.3e}")
    print("\n".join(lines))
    print(f"wrote {out / 'demo.png'} and {out / 'demo.json'}")
    return results
