"""Descent of the loss along BUG / rank-adaptive BUG steps of a gradient flow.

Ceruti–Kusch–Lubich 2022 (Thm. 5) and Schotthöfer et al. 2022 (DLRT, Thm. 2): along the
rank-adaptive BUG applied to Ẏ = −∇f(Y), f(Y_{n+1}) ≤ f(Y_n) − αh + βϑ — descent up to the
truncation.  Set-up: f(Y) = ½‖AY − B‖²_F (:class:`~lowrank_ode.problems.QuadraticGradientFlow`),
A = I + ½G/√n (G Gaussian), B random with σ_j = 0.7^j, n × n, start at a random rank-4 Y₀,
explicit-Euler sub-steps (DLRT's SGD step with learning rate h), K steps per run, h = κ/L with
L = ‖A‖₂² the Lipschitz constant of ∇f and κ ∈ {0.1 … 2.1} (Euler is stable for κ < 2).

For this quadratic f the step bound is explicit.  The augmented Galerkin step is an Euler step
in span Û ⊗ span V̂ ∋ Y_n, so with Ĝ = ÛᴴÛ∇f(Y_n)V̂V̂ᴴ

    f(Ŷ) = f(Y_n) − h‖Ĝ‖² + ½h²‖AĜ‖² ≤ f(Y_n) − α_n h,   α_n = (1 − hL/2)‖Ĝ‖²_F,

and truncation by Δ with ‖Δ‖_F = ϑ_n ≤ ϑ costs at most β_n ϑ_n, β_n = ‖∇f(Ŷ)‖_F + ½Lϑ_n.
The study records, for every step, f(Y_n), f(Ŷ), f(Y_{n+1}), α_n, β_n, ϑ_n and checks
f(Y_{n+1}) ≤ f(Y_n) − α_n h + β_n ϑ_n; a step "descends" when f(Y_{n+1}) ≤ f(Y_n) + δ with the
round-off slack δ = 1e-12·f(Y₀).  Fixed-rank BUG (no truncation, but a projected start of its
S-step) is run for comparison; only its loss is recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lowrank_ode import LowRank
from lowrank_ode.problems import QuadraticGradientFlow
from lowrank_ode.solve import make_integrator

from ._common import Store, Timer, assert_true, fmt, markdown_table, progress_iter, savefig
from .published import CLASSICAL

__all__ = ["run", "plot", "table", "check", "PUBLISHED"]

NAME = "descent"
SLACK = 1e-12

#: The published descent property (a qualitative statement), with its source:
#: :data:`studies.published.CLASSICAL`.
PUBLISHED = CLASSICAL["descent"]


def params(quick: bool) -> dict:
    """Sizes and grids (quick: n = 30, 100 steps, four step sizes, three methods)."""
    if quick:
        return {
            "n": 30,
            "K": 100,
            "rank": 4,
            "seed": 0,
            "kappas": [0.5, 1.0, 1.9, 2.1],
            "methods": [["bug", None], ["rabug", 1e-8], ["rabug", 1e-2]],
            "series_kappa": 1.0,
        }
    return {
        "n": 60,
        "K": 300,
        "rank": 4,
        "seed": 0,
        "kappas": [0.1, 0.5, 1.0, 1.5, 1.9, 2.1],
        "methods": [
            ["bug", None],
            ["rabug", None],
            ["rabug", 1e-8],
            ["rabug", 1e-4],
            ["rabug", 1e-2],
            ["rabug", 1e-1],
        ],
        "series_kappa": 1.0,
    }


def make_problem(p: dict) -> tuple[QuadraticGradientFlow, np.ndarray, LowRank, float]:
    """(problem, A, Y₀, L) for the parameters ``p``."""
    n = p["n"]
    rng = np.random.default_rng(p["seed"])
    A = np.eye(n) + 0.5 * rng.standard_normal((n, n)) / np.sqrt(n)
    B = LowRank.random((n, n), n, p["seed"] + 1, singular_values=0.7 ** np.arange(n)).to_dense()
    sv = 2.0 ** -np.arange(p["rank"])
    Y0 = LowRank.random((n, n), p["rank"], p["seed"] + 2, singular_values=sv)
    return QuadraticGradientFlow(B, A), A, Y0, float(np.linalg.norm(A, 2) ** 2)


def _label(method: str, theta: float | None) -> str:
    if method == "bug":
        return "BUG (fixed rank)"
    return "rank-adaptive BUG, fixed rank" if theta is None else f"rank-adaptive BUG, ϑ={theta:g}"


def _key(method: str, theta: float | None, kappa: float) -> str:
    return f"{method}/theta={'none' if theta is None else f'{theta:g}'}/hL={kappa:g}"


def _r(x: Any) -> Any:
    """Round to 5 significant digits (keeps the JSON small)."""
    return [float(f"{v:.5g}") for v in np.asarray(x, float)]


def trajectory(
    P: QuadraticGradientFlow,
    A: np.ndarray,
    Y0: LowRank,
    L: float,
    h: float,
    K: int,
    method: str,
    theta: float | None,
) -> dict:
    """K steps of ``method``; per-step loss and (rank-adaptive) the descent-bound terms."""
    integ = make_integrator(method, "euler", atol=theta)
    f = [P.value(Y0)]
    Y = Y0
    terms: dict[str, list[float]] = {
        "fhat": [],
        "alpha": [],
        "beta": [],
        "drop": [],
        "rank": [Y0.rank],
    }
    with np.errstate(all="ignore"):
        for k in range(K):
            if method == "bug":
                Y = integ.step(P, k * h, Y, h)
                f.append(P.value(Y))
                terms["rank"].append(Y.rank)
                if not np.isfinite(f[-1]):
                    break
                continue
            Yd = Y.to_dense()
            Yh = integ.augmented_step(P, k * h, [Y], h)[0]
            Yn = integ.truncate(Yh, Y.rank)
            Yhd = Yh.to_dense()
            G = A.T @ (A @ Yd - P.B)
            Ghat = Yh.U.T @ G @ Yh.V
            sig = np.linalg.svd(Yh.S, compute_uv=False)  # ϑ_n from the discarded σ's: no
            drop = float(np.linalg.norm(sig[Yn.rank :]))  # cancellation when f is huge
            terms["fhat"].append(P.value(Yh))
            terms["alpha"].append((1 - h * L / 2) * float(np.sum(Ghat**2)))
            terms["beta"].append(float(np.linalg.norm(A.T @ (A @ Yhd - P.B))) + 0.5 * L * drop)
            terms["drop"].append(drop)
            terms["rank"].append(Yn.rank)
            Y = Yn
            f.append(P.value(Y))
            if not np.isfinite(f[-1]):
                break
    return {"f": f, **terms}


def summarize(tr: dict, h: float, f0: float) -> dict:
    """Descent fractions, largest increase and (rank-adaptive) the bound's worst violation."""
    f = np.asarray(tr["f"], float)
    d = np.diff(f)
    fin = np.isfinite(d)
    out: dict[str, Any] = {
        "n_steps": int(d.size),
        "frac_descent": float(np.mean(fin & (d <= SLACK * f0))),
        "frac_strict": float(np.mean(fin & (d <= 0))),
        "max_increase": float(np.max(d)) if np.all(fin) else float("inf"),
        "f_final": float(f[-1]),
        "final_rank": int(tr["rank"][-1]),
    }
    if tr["alpha"]:
        n = len(tr["alpha"])
        alpha, beta, drop = (np.asarray(tr[k][:n], float) for k in ("alpha", "beta", "drop"))
        fhat = np.asarray(tr["fhat"][:n], float)
        bound = f[:n] - alpha * h + beta * drop
        scale = np.maximum(np.abs(f[:n]), f0)
        out["max_violation"] = float(np.nanmax((f[1 : n + 1] - bound) / scale)) if n else 0.0
        out["min_alpha"] = float(np.nanmin(alpha))
        out["max_trunc_increase"] = float(np.nanmax(f[1 : n + 1] - fhat))
        out["max_beta_theta"] = float(np.nanmax(beta * drop))
        out["max_drop"] = float(np.nanmax(drop))
    return out


def run(quick: bool = False, out: Path | None = None, progress: bool = True) -> dict:
    """All (method, ϑ, h) runs; save ``out/descent.json`` (resumable per run).

    Parameters
    ----------
    quick : bool
        n = 30, 100 steps; asserts the claims of :func:`check`.
    out : Path, optional
        Output folder.
    progress : bool
        tqdm over runs.

    Returns
    -------
    dict
        ``configs[key]`` with the summary of each run (see :func:`summarize`) and, for
        h = ``series_kappa``/L, the per-step ``f``, truncation increase and bound.
    """
    p = params(quick)
    store = Store(out, NAME, p)
    P, A, Y0, L = make_problem(p)
    f0 = P.value(Y0)
    jobs = [(m, th, k) for m, th in p["methods"] for k in p["kappas"]]
    for m, th, kappa in progress_iter(jobs, progress, "descent"):
        key = _key(m, th, kappa)
        if key in store:
            continue
        h = kappa / L
        with Timer() as tm:
            tr = trajectory(P, A, Y0, L, h, p["K"], m, th)
        res = {
            "method": m,
            "theta": th,
            "kappa": kappa,
            "h": h,
            **summarize(tr, h, f0),
            "seconds": tm.elapsed,
        }
        if np.isclose(kappa, p["series_kappa"]):
            res["f"] = _r(tr["f"])
            if tr["alpha"]:
                n = len(tr["alpha"])
                res["trunc_increase"] = _r(np.asarray(tr["f"][1 : n + 1]) - np.asarray(tr["fhat"]))
                res["trunc_bound"] = _r(np.asarray(tr["beta"]) * np.asarray(tr["drop"]))
        store.put(key, res)
    results = store.finish(L=L, f0=f0)
    if quick:
        check(results)
    return results


def check(results: dict) -> None:
    """Claims (AssertionError with a message when one fails).

    1. f(Y_{n+1}) ≤ f(Y_n) − α_n h + β_n ϑ_n on every step of every rank-adaptive run (up to
       1e-12·max(f(Y_n), f(Y₀))), with α_n ≥ 0 whenever hL ≤ 2 and ϑ_n ≤ ϑ when a tolerance is set;
    2. with ϑ ≤ 1e-8 and hL < 2 every step descends;
    3. beyond the Euler stability limit (hL > 2) descent fails for the rank-adaptive runs
       (fixed-rank BUG is only recorded: its rank-r projection can keep it bounded there).
    """
    cfg = results["configs"]
    for k, v in cfg.items():
        if v["method"] != "bug":
            assert_true(
                v["max_violation"] <= SLACK,
                f"{k}: f(Y_n+1) exceeds the bound f(Y_n) − α_n h + β_n ϑ_n by "
                f"{v['max_violation']:.3e} × max(f(Y_n), f(Y₀))",
            )
            if v["kappa"] <= 2:
                assert_true(v["min_alpha"] >= 0, f"{k}: α_n < 0 ({v['min_alpha']:.3e})")
            if v["theta"] is not None:
                assert_true(
                    v["max_drop"] <= v["theta"] * (1 + 1e-8),
                    f"{k}: truncation dropped {v['max_drop']:.3e} > ϑ={v['theta']:g}",
                )
        if (
            v["kappa"] < 2
            and v["method"] == "rabug"
            and v["theta"] is not None
            and v["theta"] <= 1e-8
        ):
            assert_true(
                v["frac_descent"] == 1.0, f"{k}: only {v['frac_descent']:.0%} of the steps descend"
            )
        if v["kappa"] > 2 and v["method"] == "rabug":
            assert_true(
                v["frac_descent"] < 0.5,
                f"{k}: hL={v['kappa']} > 2 should break descent, "
                f"got {v['frac_descent']:.0%} descending steps",
            )


def plot(results: dict, out: Path) -> list[Path]:
    """Figure ``descent``: descent fraction vs hL, loss curves, truncation increase vs βϑ."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p, cfg = results["meta"], results["configs"]
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.3), layout="constrained")
    kap = np.asarray(p["kappas"])
    for i, (m, th) in enumerate(p["methods"]):
        fr = [cfg[_key(m, th, k)]["frac_descent"] for k in kap]
        ax[0].plot(kap, fr, marker="os^vDP"[i % 6], color=f"C{i}", label=_label(m, th))
        v = cfg[_key(m, th, p["series_kappa"])]
        f = np.asarray(v["f"], float)
        ax[1].plot(np.arange(f.size), f, color=f"C{i}", label=_label(m, th))
        if "trunc_bound" in v:
            b = np.asarray(v["trunc_bound"], float)
            inc = np.asarray(v["trunc_increase"], float)
            ok = (b > 0) & (inc > 0)
            ax[2].plot(b[ok], inc[ok], ".", ms=4, color=f"C{i}", label=_label(m, th))
    ax[0].axvline(2.0, color="0.5", ls=":", label="hL = 2 (Euler stability)")
    ax[0].set(
        xlabel="hL  (L = ‖A‖₂², Lipschitz constant of ∇f)",
        ylabel=f"fraction of steps with f(Yₙ₊₁) ≤ f(Yₙ) + {SLACK:g}·f(Y₀)",
        title=f"descent fraction over {p['K']} steps",
        ylim=(-0.05, 1.05),
    )
    ax[0].legend(fontsize=7)
    ax[1].set(
        yscale="log",
        xlabel="step n",
        ylabel="f(Yₙ) = ½‖AYₙ − B‖²",
        title=f"loss, hL = {p['series_kappa']:g}",
    )
    ax[1].legend(fontsize=7)
    a = ax[2]
    lim = [
        v
        for m, th in p["methods"]
        for v in cfg[_key(m, th, p["series_kappa"])].get("trunc_bound", [])
        if v > 0
    ]
    if lim:
        xx = np.geomspace(min(lim), max(lim), 10)
        a.plot(xx, xx, "k--", lw=1, label="increase = β ϑₙ (bound)")
    a.set(
        xscale="log",
        yscale="log",
        xlabel="βₙϑₙ = (‖∇f(Ŷ)‖ + Lϑₙ/2)·ϑₙ",
        ylabel="f(Yₙ₊₁) − f(Ŷₙ₊₁)  (truncation increase)",
        title=f"truncation cost vs bound, hL = {p['series_kappa']:g} (positive values)",
    )
    a.legend(fontsize=7)
    for a in ax:
        a.grid(True, which="both", alpha=0.3)
    fig.suptitle(
        f"Gradient flow of ½‖AY−B‖², n = {p['n']}, Euler sub-steps (DLRT): "
        "descent up to the truncation"
    )
    return savefig(fig, out, "descent")


def table(results: dict) -> str:
    """Descent fractions and bound checks beside the published claim."""
    p, cfg = results["meta"], results["configs"]
    rows = []
    for m, th in p["methods"]:
        for k in p["kappas"]:
            v = cfg[_key(m, th, k)]
            n_up = int(round((1 - v["frac_descent"]) * v["n_steps"]))
            rows.append(
                [
                    _label(m, th),
                    f"{k:g}",
                    f"{v['frac_descent']:.3f} ({n_up})",
                    f"{v['frac_strict']:.3f}",
                    fmt(max(v["max_increase"], 0.0)),
                    fmt(v["f_final"]),
                    v["final_rank"],
                    fmt(v.get("max_violation")),
                    fmt(v.get("max_beta_theta")),
                ]
            )
    head = (
        f"f=½‖AY−B‖², n={p['n']}, L={results['L']:.3f}, {p['K']} Euler-sub-step steps "
        f"from rank {p['rank']}.  Published ({PUBLISHED['source']}): {PUBLISHED['claim']} "
        "— a qualitative statement; no numbers to compare.\n\n"
    )
    return head + markdown_table(
        [
            "method",
            "hL",
            "descent frac with slack (# steps up)",
            "descent frac (strict)",
            "max increase",
            "f final",
            "final rank",
            "max (f_{n+1} − bound)/max(f_n, f_0)",
            "max β_nϑ_n",
        ],
        rows,
    )
