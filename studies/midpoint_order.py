"""Order of the midpoint BUG integrator — Kusch 2024, Sec. 6.1 / Ceruti–Einkemmer–Kusch–Lubich 2024.

Discrete Schrödinger equation (variant ``"cekl2024"``): periodic D (1 on the diagonal, −½ off
the diagonal and in the corners), F(Y) = i(DY + YD) − iVYV, V = diag(1 − cos x_j), N × N,
T = 0.5; Y₀ = U₀S₀V₀ᴴ with U₀, V₀ = orth(rand) and S₀ = diag(10⁻ⁱ) **not** normalized (seed 0),
the low-rank runs starting from its leading r columns.  Step sizes
h = T·10^{linspace(0.1, −2.5, 10)}, made uniform as h = T/n with n = max(1, round(T/h_nominal))
(so the first one is a single step of length T); ranks r ∈ {10, 15, 20}.

Sub-steps: the K-, L- and S-equations are solved either with one classical RK4 step
(``"rk4"``, the library default) or with ten RK4 steps (``"rk4x10"``, close to the exact
sub-flows that the error analysis assumes).  With one RK4 step the large-h part of the curve is
dominated by the RK4 error of the Galerkin step (slope ≈ 4 down to the plateau); with accurate
sub-flows the integrator's own error shows (slope ≈ 2.5–3 before the plateau, BUG exactly 1).

Quick mode uses N = 100 and r = 20 only: for N = 32 or 48 the augmented midpoint basis (4r
columns) fills the whole space for r ≥ 8–12, and at smaller ranks the error sits on the rank
plateau from the largest step on, so no order can be measured there.

Error: relative Frobenius error ‖Y_n − Y_ref(T)‖_F / ‖Y_ref(T)‖_F.  Reference: scipy DOP853
(rtol 1e-12, atol 1e-14) on the full N × N ODE, :meth:`SchrodingerProblem.reference` with
``matrix_free=True`` (the stencil, O(N²) per evaluation, instead of the assembled N × N
Laplacian, O(N³)); in quick mode both are computed and their difference is recorded
(``reference_check``).

The order is fitted on the points before the plateau (:func:`pre_plateau`): h ≤ T/2 (at
least two steps); when the curve flattens at the end (last local slope < 0.5), only the leading
points whose error exceeds 3 × the smallest error; a rank with fewer than two such points has
no measurable order (at N = 500, r = 10 the rank plateau is reached from h = T/3 on).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from lowrank_ode import RK4, solve
from lowrank_ode.problems import SchrodingerProblem

from ._common import (
    Store,
    Timer,
    assert_true,
    fit_slope,
    fmt,
    markdown_table,
    progress_iter,
    savefig,
    slope_guide,
)
from .published import CLASSICAL

__all__ = ["run", "plot", "table", "check", "pre_plateau", "reference", "PUBLISHED"]

NAME = "midpoint_order"

#: The published experiment (set-up and the order, drawn with a slope-2 guide), with its
#: source: :data:`studies.published.CLASSICAL`.
PUBLISHED = CLASSICAL["midpoint_order"]


SUBSTEPS = {"rk4": 1, "rk4x10": 10}


def params(quick: bool, method: str = "midpoint") -> dict:
    """Sizes and grids (quick: N = 100, r = 20, four step sizes, accurate sub-steps)."""
    grid = 0.5 * 10 ** np.linspace(0.1, -2.5, 10)
    base = {
        "T": 0.5,
        "seed": 0,
        "variant": "cekl2024",
        "method": method,
        "methods": [method] + (["bug"] if method != "bug" else []),
        "check_substep": "rk4x10",
    }
    if quick:
        return {
            **base,
            "N": 100,
            "ranks": [20],
            "substeps": ["rk4x10"],
            "h_nominal": grid[1:5].tolist(),
        }
    return {
        **base,
        "N": 500,
        "ranks": [10, 15, 20],
        "substeps": ["rk4", "rk4x10"],
        "h_nominal": grid.tolist(),
    }


def reference(P: SchrodingerProblem, T: float, Y0: np.ndarray) -> np.ndarray:
    """Deprecated: ``P.reference(T, Y0, matrix_free=True)``."""
    warnings.warn(
        "studies.midpoint_order.reference is deprecated; use "
        "SchrodingerProblem.reference(T, Y0, matrix_free=True)",
        DeprecationWarning,
        stacklevel=2,
    )
    return P.reference(T, Y0, matrix_free=True)


def pre_plateau(hs: list[float], errors: list[float], T: float) -> list[int]:
    """Indices used for the order fit: h ≤ T/2 and before the plateau (see module docstring).

    A plateau is present when the last local slope is below 0.5; then only the leading points
    whose error exceeds 3 × the smallest error are kept (possibly fewer than two: no order can
    be measured at that rank).  Without a plateau all points with h ≤ T/2 are used.
    """
    idx = [i for i, h in enumerate(hs) if h <= T / 2 + 1e-14 and np.isfinite(errors[i])]
    if len(idx) < 3:
        return idx
    a, b = idx[-2], idx[-1]
    last = np.log(errors[a] / errors[b]) / np.log(hs[a] / hs[b])
    if last >= 0.5:
        return idx
    emin = min(errors[i] for i in idx)
    keep = []
    for i in idx:
        if errors[i] > 3 * emin:
            keep.append(i)
        else:
            break
    return keep


def run(
    quick: bool = False, out: Path | None = None, progress: bool = True, method: str = "midpoint"
) -> dict:
    """Relative error vs h of ``method`` (and BUG for comparison) for r = 10, 15, 20.

    Parameters
    ----------
    quick : bool
        N = 100, r = 20, four step sizes; asserts that ``method`` is second order before the
        plateau (:func:`check`).
    out : Path, optional
        Output folder for ``midpoint_order.json`` (resumable per (method, rank)).
    progress : bool
        tqdm over configurations.
    method : str
        The integrator whose second order is asserted (default ``"midpoint"``); passing a
        first-order method (``"bug"``) makes the quick check fail, as it must.

    Returns
    -------
    dict
        ``hs`` (uniform step sizes), ``n_steps``, ``configs["<method>/<substep>/r<r>"]`` with
        ``errors``,
        ``slopes`` and ``fit_points``.
    """
    p = params(quick, method)
    T = p["T"]
    n_steps = [max(1, int(round(T / h))) for h in p["h_nominal"]]
    hs = [T / n for n in n_steps]
    store = Store(out, NAME, p)
    P = SchrodingerProblem(p["N"], p["variant"])
    Y0full = P.initial(p["seed"], normalize=False)
    ref = refcheck = None
    jobs = [(m, s, r) for s in p["substeps"] for r in p["ranks"] for m in p["methods"]]
    for m, s, r in progress_iter(jobs, progress, "midpoint order"):
        key = f"{m}/{s}/r{r}"
        if key in store:
            continue
        if ref is None:
            ref = P.reference(T, Y0full.to_dense(), matrix_free=True)
            nref = float(np.linalg.norm(ref))
        Y0 = P.initial(p["seed"], rank=r, normalize=False)
        with Timer() as tm:
            errs = []
            for h in hs:
                sol = solve(P, Y0, (0.0, T), h, method=m, substep=RK4(SUBSTEPS[s]))
                errs.append(float(np.linalg.norm(sol.y[-1].to_dense() - ref)) / nref)
        store.put(key, {"errors": errs, "seconds": tm.elapsed})
    if quick and ref is not None:
        R2 = P.reference(T, Y0full)
        refcheck = float(np.linalg.norm(ref - R2) / np.linalg.norm(R2))
    cfg = store.data["configs"]
    fits = {k: pre_plateau(hs, v["errors"], T) for k, v in cfg.items()}
    slopes = {
        k: fit_slope([hs[i] for i in fits[k]], [cfg[k]["errors"][i] for i in fits[k]]) for k in cfg
    }
    extra = {"hs": hs, "n_steps": n_steps, "fit_points": fits, "slopes": slopes}
    if refcheck is not None:
        extra["reference_check"] = refcheck
    results = store.finish(**extra)
    if quick:
        check(results)
    return results


def check(results: dict, min_order: float = 1.7, max_order: float = 3.3) -> None:
    """Assert ``min_order ≤ order ≤ max_order`` before the plateau, for the method under test.

    Checked with accurate sub-flows (``check_substep``) at every rank that has at least two
    points before its plateau (at least one rank must).  The measured
    pre-asymptotic slope of the midpoint BUG there is about 2.6 (second order, the error
    analysis' h² term plus higher-order terms not yet negligible); a first-order method (BUG,
    slope 1) fails the lower bound, an RK4-dominated curve (slope 4) the upper one.
    """
    p = results["meta"]
    checked = 0
    for r in p["ranks"]:
        key = f"{p['method']}/{p['check_substep']}/r{r}"
        s = results["slopes"][key]
        pts = results["fit_points"][key]
        errs = results["configs"][key]["errors"]
        if len(pts) < 2:  # on the rank plateau from the largest step on: nothing to measure
            continue
        checked += 1
        assert_true(
            min_order <= s <= max_order,
            f"{key}: order {s:.2f} before the plateau, expected second order "
            f"(in [{min_order}, {max_order}]); fitted points "
            f"h={[round(results['hs'][i], 5) for i in pts]}, "
            f"errors={[f'{errs[i]:.2e}' for i in pts]}",
        )
    assert_true(checked > 0, f"no rank has two points before the plateau: {results['fit_points']}")
    if "reference_check" in results:
        assert_true(
            results["reference_check"] < 1e-10,
            f"matrix-free reference differs from SchrodingerProblem.reference by "
            f"{results['reference_check']:.2e}",
        )


def plot(results: dict, out: Path) -> list[Path]:
    """Figure ``midpoint_order``: relative error vs h, one panel per rank, slope-2 guide."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p, cfg = results["meta"], results["configs"]
    hs = np.asarray(results["hs"])
    fig, axes = plt.subplots(
        1,
        len(p["ranks"]),
        figsize=(4.4 * len(p["ranks"]) + 0.5, 4.0),
        layout="constrained",
        sharey=True,
        squeeze=False,
    )
    color = {"midpoint": "C3", "bug": "C2"}
    for ax, r in zip(axes[0], p["ranks"], strict=True):
        for m in p["methods"]:
            for s in p["substeps"]:
                key = f"{m}/{s}/r{r}"
                e = np.asarray(cfg[key]["errors"])
                ls, mk = ("-", "o") if s == "rk4x10" else ("--", "s")
                sl = results["slopes"][key]
                sl = f"slope {sl:.2f}" if np.isfinite(sl) else "on the plateau: no slope"
                ax.plot(
                    hs,
                    e,
                    color=color.get(m, "C0"),
                    ls=ls,
                    marker=mk,
                    ms=4,
                    label=f"{m}, {s} ({sl})",
                )
                pts = results["fit_points"][key]
                ax.plot(hs[pts], e[pts], ls="none", marker="o", mfc="none", mec="k", ms=9)
        key = f"{p['method']}/{p['check_substep']}/r{r}"
        pts = results["fit_points"][key]
        if len(pts) >= 2:
            anchor = cfg[key]["errors"][pts[0]]
            slope_guide(ax, hs[pts[0] :], anchor * 2, 2, "slope 2")
            slope_guide(ax, hs[pts[0] :], anchor * 8, 1, "slope 1", ls="-.")
        ax.set(xscale="log", yscale="log", xlabel="step size h = T/n", title=f"r = {r}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6.5, loc="lower right")
    axes[0, 0].set_ylabel(r"$\|Y_n - Y_{ref}(T)\|_F / \|Y_{ref}(T)\|_F$")
    fig.suptitle(
        f"Midpoint BUG order, Schrödinger (cekl2024), N = {p['N']}, T = {p['T']}; "
        "rk4 = one RK4 step per sub-step, rk4x10 = ten (black circles: fitted points)",
        fontsize=10,
    )
    return savefig(fig, out, "midpoint_order")


def table(results: dict) -> str:
    """Our fitted orders and errors beside the published expectation (order 2)."""
    p, cfg = results["meta"], results["configs"]
    hs = results["hs"]
    rows = []
    for s in p["substeps"]:
        for r in p["ranks"]:
            for m in p["methods"]:
                key = f"{m}/{s}/r{r}"
                e = cfg[key]["errors"]
                pts = results["fit_points"][key]
                sl = results["slopes"][key]
                rows.append(
                    [
                        m,
                        s,
                        r,
                        f"{sl:.2f}" if np.isfinite(sl) else "— (plateau)",
                        str(PUBLISHED["order"] if m == "midpoint" else 1),
                        f"{hs[pts[0]]:.3g}–{hs[pts[-1]]:.3g}" if len(pts) >= 2 else "—",
                        fmt(e[0]),
                        fmt(min(e)),
                        fmt(e[-1]),
                    ]
                )
    head = (
        f"Schrödinger cekl2024, N={p['N']}, T={p['T']}, relative error.  Published "
        f"({PUBLISHED['source']}): {PUBLISHED['setup']}; midpoint BUG second order "
        "(slope-2 guide).  The paper shows the order as a figure; it tabulates no errors.\n\n"
    )
    tab = markdown_table(
        [
            "method",
            "sub-step",
            "r",
            "fitted order (pre-plateau)",
            "published order",
            "fit range h",
            f"error h={hs[0]:.3g}",
            "smallest error (plateau)",
            f"error h={hs[-1]:.3g}",
        ],
        rows,
    )
    if "reference_check" in results:
        tab += (
            f"\n\nMatrix-free reference vs SchrodingerProblem.reference: relative "
            f"difference {results['reference_check']:.1e}."
        )
    return head + tab
