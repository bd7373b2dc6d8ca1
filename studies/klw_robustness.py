"""KLW test matrix: error vs step size for all integrators, and robustness to small σ_min.

Setting (Kieri–Lubich–Walach 2016; Ceruti–Lubich 2022, Sec. 5.1)::

    A(t) = e^{tW₁} eᵗ D e^{tW₂}ᵀ,   D = diag(2⁻ʲ),   W₁, W₂ random skew-symmetric,
    ‖W₁‖₂ = ‖W₂‖₂ = 1   (the normalization used throughout; it sets the constants),

N × N, t ∈ [0, 1], initial value the best rank-r approximation of D, error ‖Y(1) − A(1)‖_F
(absolute Frobenius) against the exact A(1).  Two equivalent right-hand sides:

* ``"linear"`` — F(Y) = W₁Y + Y + YW₂ᵀ (the matrix ODE of Ceruti–Lubich 2022, where their BUG
  numbers come from); F depends on Y, so the integrators have a genuine O(h) splitting error;
* ``"explicit"`` — F(t) = Ȧ(t), independent of Y (the form of the KLW 2016 robustness theorem).

Panel 2 (robustness): D with r nonzero values geometric from 1 down to σ_min plus a full-rank
perturbation ε E (‖E‖₂ = 1), fixed h: the projector-splitting and BUG errors do not depend on
σ_min, while the Koch–Lubich factor ODEs ("direct", with S⁻¹) blow up once σ_min ≪ h.  A
breakdown (NaN/inf, singular S) is recorded as ``inf``; breakdowns and errors above
:data:`BLOWUP` are drawn as crosses at the top of the panel.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from lowrank_ode import LowRank, NumericalBreakdown, solve
from lowrank_ode.problems import KLWProblem

from ._common import (
    Store,
    Timer,
    assert_slope,
    assert_true,
    fit_slope,
    fmt,
    markdown_table,
    progress_iter,
    savefig,
    slope_guide,
)
from .published import CLASSICAL

__all__ = ["run", "plot", "table", "check", "LinearKLW", "PUBLISHED"]

NAME = "klw_robustness"
METHODS = ("ksl", "strang", "bug", "rabug", "parallel", "midpoint", "direct")
ROBUST_METHODS_QUICK = ("ksl", "bug", "rabug", "direct")

#: Published levels (N = 100, ‖W‖₂ = 1), with their source: :data:`studies.published.CLASSICAL`.
PUBLISHED = CLASSICAL["klw_robustness"]


class LinearKLW(KLWProblem):
    """The same A(t) as the solution of the linear matrix ODE F(Y) = W₁Y + Y + YW₂ᵀ.

    Factored products cost O(N r²) (plus the N × N × r products with W₁, W₂); ``exact(t)``
    is A(t) from the full D, the reference of the error plots.
    """

    linear = True

    def dense(self, t: float, Y: Any) -> Any:  # noqa: D102
        return self.W1 @ Y + Y + Y @ self.W2.T

    def right(self, t: float, Y: LowRank, V: Any) -> Any:
        """(W₁Y + Y + YW₂ᵀ)V = (W₁ + I)(U S VᵧᵀV) + U S (W₂Vᵧ)ᵀV."""
        YV = Y.U @ (Y.S @ (Y.V.T @ V))
        return self.W1 @ YV + YV + Y.U @ (Y.S @ ((self.W2 @ Y.V).T @ V))

    def left(self, t: float, Y: LowRank, U: Any) -> Any:
        """(W₁Y + Y + YW₂ᵀ)ᵀU = Yᵀ(W₁ᵀ + I)U + W₂ YᵀU."""
        YtU = Y.V @ (Y.S.T @ (Y.U.T @ U))
        return Y.V @ (Y.S.T @ (Y.U.T @ (self.W1.T @ U))) + YtU + self.W2 @ YtU


def make_problem(form: str, n: int, seed: int = 0, **kwargs: Any) -> KLWProblem:
    """The KLW problem in ``form`` ``"linear"`` or ``"explicit"`` (‖W₁‖₂ = ‖W₂‖₂ = 1)."""
    cls = {"linear": LinearKLW, "explicit": KLWProblem}[form]
    return cls(n, seed=seed, w_norm=1.0, **kwargs)


def params(quick: bool) -> dict:
    """Sizes and grids of the study (quick: N = 40, three step sizes, three σ_min)."""
    if quick:
        return {
            "n": 40,
            "ranks": [4, 8, 16],
            "hs": [0.1, 0.05, 0.025],
            "T": 1.0,
            "forms_h": ["linear"],
            "methods": list(METHODS),
            "seed": 0,
            "robust": {
                "forms": ["explicit"],
                "rank": 8,
                "h": 0.02,
                "eps": 1e-6,
                "sigma_min": [1e-2, 1e-6, 1e-10],
                "methods": list(ROBUST_METHODS_QUICK),
            },
        }
    return {
        "n": 100,
        "ranks": [4, 8, 16],
        "hs": [0.1, 0.05, 0.02, 0.01, 0.005],
        "T": 1.0,
        "forms_h": ["linear", "explicit"],
        "methods": list(METHODS),
        "seed": 0,
        "robust": {
            "forms": ["explicit", "linear"],
            "rank": 8,
            "h": 0.01,
            "eps": 1e-6,
            "sigma_min": [1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12],
            "methods": list(METHODS),
        },
    }


def final_error(
    P: KLWProblem, Y0: LowRank, T: float, h: float, method: str, ref: np.ndarray
) -> float:
    """‖Y(T) − A(T)‖_F, or ``inf`` when the method breaks down (NaN/inf, singular S)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            sol = solve(P, Y0, (0.0, T), h, method=method)
        except NumericalBreakdown:  # NaN/inf in a step, a singular S (direct)
            return float("inf")
    e = float(np.linalg.norm(sol.y[-1].to_dense() - ref))
    return e if np.isfinite(e) else float("inf")


def run(quick: bool = False, out: Path | None = None, progress: bool = True) -> dict:
    """Compute both panels, save ``out/klw_robustness.json`` (resumable), check in quick mode.

    Parameters
    ----------
    quick : bool
        N = 40 and short grids; asserts the qualitative claims (see :func:`check`).
    out : Path, optional
        Output folder for the JSON (nothing written when ``None``).
    progress : bool
        tqdm over configurations.

    Returns
    -------
    dict
        ``meta`` (parameters), ``configs`` (``"h/<form>/r<r>/<method>"`` → errors over ``hs``,
        ``"robust/<form>/<method>"`` → errors over ``sigma_min``), ``best`` (best-approximation
        errors ‖A(1) − A_r(1)‖_F), ``slopes``.
    """
    p = params(quick)
    store = Store(out, NAME, p)
    n, T, hs = p["n"], p["T"], p["hs"]
    best: dict[str, dict[str, float]] = {}
    jobs = [(f, r, m) for f in p["forms_h"] for r in p["ranks"] for m in p["methods"]]
    problems = {f: make_problem(f, n, p["seed"]) for f in p["forms_h"]}
    refs = {f: np.asarray(P.exact(T)) for f, P in problems.items()}
    for f, ref in refs.items():
        sv = np.linalg.svd(ref, compute_uv=False)
        best[f] = {str(r): float(np.sqrt(np.sum(sv[r:] ** 2))) for r in p["ranks"]}
    for f, r, m in progress_iter(jobs, progress, "klw error vs h"):
        key = f"h/{f}/r{r}/{m}"
        if key in store:
            continue
        P = problems[f]
        with Timer() as tm:
            errs = [final_error(P, P.initial(r), T, h, m, refs[f]) for h in hs]
        store.put(key, {"errors": errs, "seconds": tm.elapsed})

    rb = p["robust"]
    rjobs = [(f, m) for f in rb["forms"] for m in rb["methods"]]
    for f, m in progress_iter(rjobs, progress, "klw robustness"):
        key = f"robust/{f}/{m}"
        if key in store:
            continue
        errs = []
        with Timer() as tm:
            for smin in rb["sigma_min"]:
                P = make_problem(
                    f,
                    n,
                    p["seed"],
                    eps=rb["eps"],
                    singular_values=np.geomspace(1.0, smin, rb["rank"]),
                )
                ref = np.asarray(P.exact(T))
                errs.append(final_error(P, P.initial(rb["rank"]), T, rb["h"], m, ref))
        store.put(key, {"errors": errs, "seconds": tm.elapsed})

    cfg = store.data["configs"]
    slopes = {k: fit_slope(hs, v["errors"]) for k, v in cfg.items() if k.startswith("h/")}
    results = store.finish(best=best, slopes=slopes)
    if quick:
        check(results)
    return results


def check(results: dict) -> None:
    """The qualitative claims (raises AssertionError with a message when one fails).

    1. KSL sits on the best-approximation error (within 10 %) for every r and h;
    2. BUG at r = 16 is first order (slope 1 ± 0.25) on the linear form;
    3. KSL, BUG and rank-adaptive BUG (at fixed rank) are flat in σ_min (max/min ≤ 3);
    4. the direct factor ODEs break down (inf, or 100× the KSL error) at the smallest σ_min.
    """
    p, cfg = results["meta"], results["configs"]
    f = p["forms_h"][0]
    for r in p["ranks"]:
        e = np.asarray(cfg[f"h/{f}/r{r}/ksl"]["errors"])
        b = results["best"][f][str(r)]
        assert_true(
            bool(np.all(np.abs(e / b - 1) <= 0.10)),
            f"KSL r={r} should sit on the best-approximation error {b:.3e}, got {e}",
        )
    assert_slope(p["hs"], cfg[f"h/{f}/r16/bug"]["errors"], 1.0, 0.25, "BUG r=16 (KLW)")
    rb = p["robust"]
    for g in rb["forms"]:
        for m in ("ksl", "bug", "rabug"):
            e = np.asarray(cfg[f"robust/{g}/{m}"]["errors"])
            assert_true(
                bool(np.all(np.isfinite(e))) and e.max() / e.min() <= 3.0,
                f"{m} ({g}) should be robust to σ_min → 0, errors {e}",
            )
        d = cfg[f"robust/{g}/direct"]["errors"][-1]
        k = cfg[f"robust/{g}/ksl"]["errors"][-1]
        assert_true(
            not np.isfinite(d) or d >= 100 * k,
            f"direct ({g}) should break down at σ_min={rb['sigma_min'][-1]:g}: "
            f"error {d:.3e} vs KSL {k:.3e}",
        )


_STYLE = {
    "ksl": ("C0", "o"),
    "strang": ("C1", "s"),
    "bug": ("C2", "^"),
    "rabug": ("C3", "v"),
    "parallel": ("C4", "D"),
    "midpoint": ("C5", "P"),
    "direct": ("k", "x"),
}
_LABEL = {
    "rabug": "rabug (fixed r)",
    "parallel": "parallel (fixed r)",
    "midpoint": "midpoint (fixed r)",
    "direct": "direct (factor ODEs)",
}


#: errors above this (‖A(1)‖_F ≈ 1.6) are drawn as breakdown markers; the JSON keeps the values
BLOWUP = 1e2


def _plot_line(ax: Any, x: Any, y: Any, top: float, method: str) -> None:
    c, mk = _STYLE[method]
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(y) & (y < BLOWUP)
    ax.plot(x[ok], y[ok], color=c, marker=mk, ms=4, lw=1.2, label=_LABEL.get(method, method))
    if (~ok).any():
        ax.plot(
            x[~ok],
            np.full((~ok).sum(), top),
            ls="none",
            color=c,
            marker="X",
            ms=9,
            label=f"{method}: NaN/inf or > {BLOWUP:g}",
        )


def plot(results: dict, out: Path) -> list[Path]:
    """Figures ``klw_error_vs_h`` and ``klw_robustness`` (PNG and PDF) in ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p, cfg = results["meta"], results["configs"]
    hs = np.asarray(p["hs"])
    forms = p["forms_h"]
    fig, axes = plt.subplots(
        len(forms),
        len(p["ranks"]),
        figsize=(4.2 * len(p["ranks"]), 3.6 * len(forms)),
        squeeze=False,
        layout="constrained",
    )
    for i, f in enumerate(forms):
        for j, r in enumerate(p["ranks"]):
            ax = axes[i, j]
            vals = [v for m in p["methods"] for v in cfg[f"h/{f}/r{r}/{m}"]["errors"]]
            top = 3 * max(v for v in vals if np.isfinite(v) and v < BLOWUP)
            for m in p["methods"]:
                _plot_line(ax, hs, cfg[f"h/{f}/r{r}/{m}"]["errors"], top, m)
            b = results["best"][f][str(r)]
            ax.axhline(b, color="0.5", ls="--", lw=1, label="best rank-r approx.")
            e_bug = cfg[f"h/{f}/r{r}/bug"]["errors"][0]
            slope_guide(ax, hs, e_bug * 1.5, 1, "slope 1")
            slope_guide(ax, hs, e_bug * 0.3, 2, "slope 2", ls="-.")
            ax.set(
                xscale="log",
                yscale="log",
                xlabel="step size h",
                ylabel=r"$\|Y_n - A(1)\|_F$",
                title=f"{'F(Y)=W₁Y+Y+YW₂ᵀ' if f == 'linear' else 'F=Ȧ(t)'}, r = {r}",
            )
            ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[-1, -1].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="outside right center")
    fig.suptitle(f"KLW matrix, N = {p['n']}, T = 1, ‖W₁‖₂ = ‖W₂‖₂ = 1: error vs h")
    paths = savefig(fig, out, "klw_error_vs_h")

    rb = p["robust"]
    s = np.asarray(rb["sigma_min"])
    fig, axes = plt.subplots(
        1,
        len(rb["forms"]),
        figsize=(5.2 * len(rb["forms"]), 4),
        squeeze=False,
        layout="constrained",
    )
    for j, f in enumerate(rb["forms"]):
        ax = axes[0, j]
        vals = [v for m in rb["methods"] for v in cfg[f"robust/{f}/{m}"]["errors"]]
        top = 10 * max(v for v in vals if np.isfinite(v) and v < BLOWUP)
        for m in rb["methods"]:
            _plot_line(ax, s, cfg[f"robust/{f}/{m}"]["errors"], top, m)
        ax.set(
            xscale="log",
            yscale="log",
            xlabel=r"$\sigma_{\min}$ of D (r-th singular value)",
            ylabel=r"$\|Y_n - A(1)\|_F$",
            title=f"{'F(Y)=W₁Y+Y+YW₂ᵀ' if f == 'linear' else 'F=Ȧ(t)'}: r = {rb['rank']}, "
            f"h = {rb['h']}, ε = {rb['eps']:g}",
        )
        ax.invert_xaxis()
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Robustness to small singular values (crosses at the top: breakdown)")
    return paths + savefig(fig, out, "klw_robustness")


def table(results: dict) -> str:
    """Our numbers beside the published ones (source in :data:`PUBLISHED`)."""
    p, cfg = results["meta"], results["configs"]
    hs = p["hs"]
    f = "linear"
    rows = []
    for r in p["ranks"]:
        e = cfg[f"h/{f}/r{r}/ksl"]["errors"]
        rows.append(
            [
                f"KSL r={r}, all h",
                f"{fmt(min(e))} … {fmt(max(e))}",
                fmt(PUBLISHED["ksl"].get(r)),
                f"best approx. {fmt(results['best'][f][str(r)])}",
            ]
        )
    e16 = cfg[f"h/{f}/r16/bug"]["errors"]
    for h in (0.1, 0.005):
        ours = e16[hs.index(h)] if h in hs else None
        rows.append(
            [
                f"BUG r=16, h={h}",
                fmt(ours),
                fmt(PUBLISHED["bug_r16"][h]),
                f"slope {results['slopes'][f'h/{f}/r16/bug']:.2f}",
            ]
        )
    head = (
        f"KLW, N={p['n']}, ‖W₁‖₂=‖W₂‖₂=1, F(Y)=W₁Y+Y+YW₂ᵀ, error ‖Y(1)−A(1)‖_F.  "
        f"Published: {PUBLISHED['source']}.\n\n"
    )
    t1 = markdown_table(["quantity", "ours", "published", "note"], rows)
    # all methods, all forms, at the smallest and largest h
    rows2 = []
    for g in p["forms_h"]:
        for r in p["ranks"]:
            for m in p["methods"]:
                e = cfg[f"h/{g}/r{r}/{m}"]["errors"]
                slope = results["slopes"][f"h/{g}/r{r}/{m}"]
                rows2.append([g, r, m, fmt(e[0]), fmt(e[-1]), f"{slope:.2f}"])
    t2 = markdown_table(
        ["form", "r", "method", f"err h={hs[0]}", f"err h={hs[-1]}", "slope"], rows2
    )
    rb = p["robust"]
    rows3 = []
    for g in rb["forms"]:
        for m in rb["methods"]:
            rows3.append([g, m] + [fmt(v) for v in cfg[f"robust/{g}/{m}"]["errors"]])
    t3 = markdown_table(["form", "method"] + [f"σ_min={s:g}" for s in rb["sigma_min"]], rows3)
    return (
        head
        + t1
        + "\n\nAll methods:\n\n"
        + t2
        + f"\n\nRobustness (r={rb['rank']}, h={rb['h']}, ε={rb['eps']:g}):\n\n"
        + t3
    )
