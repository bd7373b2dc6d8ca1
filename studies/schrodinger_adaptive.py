"""Discrete Schrödinger equation of Ceruti–Kusch–Lubich 2022 (rank-adaptive BUG), Sec. 5.2.

F(Y) = −i(DY + YDᵀ + VYV), D = ½ tridiag(−1, 2, −1), V = diag(1 − cos x_j), x_j = 2πj/N,
N × N, T = 1.  Initial value U₀, V₀ = orth(rand), S₀ = diag(10⁻ⁱ) normalized to ‖Y₀‖_F = 1
(:meth:`~lowrank_ode.problems.SchrodingerProblem.initial`, seed 0); the fixed-rank runs start
from its leading r columns, the rank-adaptive run from its truncation at the tolerance.
Reference: :meth:`~lowrank_ode.problems.SchrodingerProblem.reference` (DOP853, rtol 1e-12,
atol 1e-14) from the full-rank initial value; error ‖Y_n − Y_ref(1)‖_F (absolute = relative,
since ‖Y_ref‖_F = 1).  One RK4 step per sub-step.

Truncation of the rank-adaptive BUG: absolute tolerance ϑ = 1e-6 on the **Frobenius tail**
(Σ_{j>r} σ_j²)^{1/2} (our default, the norm of the truncation error) with rank cap 30; the
authors' code uses the **ℓ¹ tail** Σ_{j>r} σ_j, run here as ``rabug/nuc`` for comparison.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lowrank_ode import Truncation, solve
from lowrank_ode.problems import SchrodingerProblem

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

__all__ = ["run", "plot", "table", "check", "PUBLISHED"]

NAME = "schrodinger_adaptive"

#: The published experiment (set-up and qualitative picture; the paper shows figures, no
#: table), with its source: :data:`studies.published.CLASSICAL`.
PUBLISHED = CLASSICAL["schrodinger_adaptive"]


def params(quick: bool) -> dict:
    """Sizes and grids (quick: N = 32, four step sizes)."""
    base = {
        "T": 1.0,
        "ranks": [4, 8, 12],
        "atol": 1e-6,
        "max_rank": 30,
        "seed": 0,
        "variant": "ckl2022",
    }
    if quick:
        return {**base, "N": 32, "hs": [0.1, 0.05, 0.02, 0.01], "h_series": 0.02}
    return {**base, "N": 100, "hs": [0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001], "h_series": 0.01}


def _configs(p: dict) -> list[tuple[str, dict]]:
    cfgs = [(f"bug/r{r}", {"method": "bug", "rank": r}) for r in p["ranks"]]
    for norm in ("fro", "nuc"):
        cfgs.append(
            (
                f"rabug/{norm}",
                {"method": "rabug", "atol": p["atol"], "max_rank": p["max_rank"], "norm": norm},
            )
        )
    return cfgs


def _series(P: SchrodingerProblem, sol: Any, every: int = 1) -> dict:
    t = np.asarray(sol.t)[::every]
    ys = sol.y[::every]
    norms = np.array([Y.norm() for Y in ys])
    energy = np.array([P.energy(Y) for Y in ys])
    return {
        "t": t,
        "rank": np.asarray(sol.ranks)[::every],
        "norm_drift": np.abs(norms - norms[0]),
        "energy_drift": np.abs(energy - energy[0]),
    }


def run(quick: bool = False, out: Path | None = None, progress: bool = True) -> dict:
    """Error vs h for fixed ranks and the rank-adaptive BUG; rank, norm and energy over time.

    Parameters
    ----------
    quick : bool
        N = 32 and four step sizes; asserts the qualitative claims (see :func:`check`).
    out : Path, optional
        Output folder for ``schrodinger_adaptive.json`` (resumable per configuration).
    progress : bool
        tqdm over configurations.

    Returns
    -------
    dict
        ``configs[key]`` with ``errors`` and ``max_ranks`` over ``hs`` and a time ``series``
        (``t``, ``rank``, ``norm_drift``, ``energy_drift``) at step ``h_series``; ``slopes``.
    """
    p = params(quick)
    store = Store(out, NAME, p)
    P = SchrodingerProblem(p["N"], p["variant"])
    Y0full = P.initial(p["seed"])
    ref = None
    for key, c in progress_iter(_configs(p), progress, "schrodinger"):
        if key in store:
            continue
        if ref is None:
            ref = P.reference(p["T"], Y0full)
        if c["method"] == "bug":
            Y0 = P.initial(p["seed"], rank=c["rank"])
            kw: dict[str, Any] = {}
        else:
            Y0 = Y0full.truncate(Truncation(atol=c["atol"], max_rank=c["max_rank"], norm=c["norm"]))
            kw = {"atol": c["atol"], "max_rank": c["max_rank"], "norm": c["norm"]}
        errs, ranks, series = [], [], None
        with Timer() as tm:
            for h in p["hs"]:
                sol = solve(P, Y0, (0.0, p["T"]), h, method=c["method"], **kw)
                errs.append(float(np.linalg.norm(sol.y[-1].to_dense() - ref)))
                ranks.append(int(np.max(sol.ranks)))
                if np.isclose(h, p["h_series"]):
                    series = _series(P, sol)
        store.put(
            key,
            {
                "errors": errs,
                "max_ranks": ranks,
                "series": series,
                "initial_rank": Y0.rank,
                "seconds": tm.elapsed,
            },
        )
    cfg = store.data["configs"]
    slopes = {k: fit_slope(p["hs"], v["errors"]) for k, v in cfg.items()}
    results = store.finish(slopes=slopes)
    if quick:
        check(results)
    return results


def check(results: dict) -> None:
    """Qualitative claims (AssertionError with a message when one fails).

    1. BUG at r = 12 is first order (slope 1 ± 0.3) over the step sizes;
    2. larger fixed rank ⇒ smaller error at the smallest h (r = 4 > 8 > 12);
    3. the rank-adaptive BUG respects the rank cap and its best error (over h) is at least 5×
       smaller than the best error of fixed rank 12 (not at every h: its truncation error
       accumulates like ϑ/h, so at h = 1e-3 it is above fixed rank 12 in the full run);
    4. the rank-adaptive BUG conserves the norm and the energy to 1e-5, at least 10× better
       than fixed-rank BUG at r = 12 (whose initial S-step value M S₀ Nᴴ is a projection).
    """
    p, cfg = results["meta"], results["configs"]
    assert_slope(p["hs"], cfg["bug/r12"]["errors"], 1.0, 0.3, "BUG r=12 (Schrödinger)")
    last = [cfg[f"bug/r{r}"]["errors"][-1] for r in p["ranks"]]
    assert_true(
        all(a > b for a, b in zip(last, last[1:], strict=False)),
        f"fixed-rank errors at h={p['hs'][-1]} should decrease with the rank: {last}",
    )
    ra = cfg["rabug/fro"]
    assert_true(
        max(ra["max_ranks"]) <= p["max_rank"],
        f"rank cap {p['max_rank']} violated: {ra['max_ranks']}",
    )
    best, best12 = min(ra["errors"]), min(cfg["bug/r12"]["errors"])
    assert_true(
        best <= best12 / 5,
        f"rank-adaptive BUG (best error {best:.2e}) should beat fixed rank 12 "
        f"(best {best12:.2e}) by a factor 5",
    )
    for q in ("norm_drift", "energy_drift"):
        a = max(ra["series"][q])
        b = max(cfg["bug/r12"]["series"][q])
        assert_true(
            a <= 1e-5 and a <= b / 10,
            f"{q}: rank-adaptive {a:.2e} should be ≤ 1e-5 and ≤ BUG r=12 ({b:.2e})/10",
        )


_STYLE = {
    "bug/r4": ("C0", "o"),
    "bug/r8": ("C1", "s"),
    "bug/r12": ("C2", "^"),
    "rabug/fro": ("C3", "v"),
    "rabug/nuc": ("C4", "D"),
}


def _label(key: str, p: dict) -> str:
    if key.startswith("bug"):
        return f"BUG fixed rank {key[5:]}"
    tail = "Frobenius" if key.endswith("fro") else "ℓ¹"
    return f"rank-adaptive, ϑ={p['atol']:g} ({tail} tail), cap {p['max_rank']}"


def plot(results: dict, out: Path) -> list[Path]:
    """Figure ``schrodinger_adaptive``: error vs h, rank over time, norm and energy drift."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p, cfg = results["meta"], results["configs"]
    hs = np.asarray(p["hs"])
    fig, ax = plt.subplots(2, 2, figsize=(10, 7.5), layout="constrained")
    a = ax[0, 0]
    for key, (c, mk) in _STYLE.items():
        a.plot(hs, cfg[key]["errors"], color=c, marker=mk, ms=4, label=_label(key, p))
    e0 = cfg["bug/r12"]["errors"][0]
    slope_guide(a, hs, 1.5 * e0, 1, "slope 1")
    slope_guide(a, hs, 0.05 * e0, 2, "slope 2", ls="-.")
    a.set(
        xscale="log",
        yscale="log",
        xlabel="step size h",
        ylabel=r"$\|Y_n - Y_{ref}(1)\|_F$",
        title="error at T = 1",
    )
    a.grid(True, which="both", alpha=0.3)
    a.legend(fontsize=7)
    titles = {
        "rank": "rank over time",
        "norm_drift": r"norm drift $|\,\|Y_n\|_F-\|Y_0\|_F|$",
        "energy_drift": r"energy drift $|E(Y_n)-E(Y_0)|$",
    }
    for a, q in zip(
        (ax[0, 1], ax[1, 0], ax[1, 1]), ("rank", "norm_drift", "energy_drift"), strict=True
    ):
        for key, (c, _) in _STYLE.items():
            s = cfg[key]["series"]
            if q == "rank":
                a.step(s["t"], s["rank"], where="post", color=c, label=_label(key, p))
            else:
                y = np.maximum(np.asarray(s[q], float), 1e-17)
                a.plot(s["t"][1:], y[1:], color=c, label=_label(key, p))
        a.set(xlabel="t", ylabel=q.replace("_", " "), title=f"{titles[q]}, h = {p['h_series']}")
        if q != "rank":
            a.set_yscale("log")
        a.grid(True, alpha=0.3)
    ax[0, 1].legend(fontsize=7)
    fig.suptitle(
        f"Discrete Schrödinger (Ceruti–Kusch–Lubich 2022), N = {p['N']}, complex, RK4 sub-steps"
    )
    return savefig(fig, out, "schrodinger_adaptive")


def table(results: dict) -> str:
    """Our numbers, with the published experiment's set-up and claims."""
    p, cfg = results["meta"], results["configs"]
    rows = []
    for key in _STYLE:
        v = cfg[key]
        s = v["series"]
        rows.append(
            [
                _label(key, p),
                fmt(v["errors"][0]),
                fmt(v["errors"][-1]),
                f"{results['slopes'][key]:.2f}",
                f"{min(v['max_ranks'])}–{max(v['max_ranks'])}",
                fmt(max(s["norm_drift"])),
                fmt(max(s["energy_drift"])),
            ]
        )
    head = (
        f"Schrödinger (ckl2022), N={p['N']}, T={p['T']}, error ‖Y_n−Y_ref(1)‖_F.  "
        f"Published ({PUBLISHED['source']}): {PUBLISHED['setup']}; {PUBLISHED['claims']}. "
        "The paper shows this experiment as figures and tabulates no values, so only the "
        "qualitative picture can be compared.\n\n"
    )
    return head + markdown_table(
        [
            "method",
            f"err h={p['hs'][0]}",
            f"err h={p['hs'][-1]}",
            "slope (all h)",
            "max rank over h",
            f"max norm drift (h={p['h_series']})",
            f"max energy drift (h={p['h_series']})",
        ],
        rows,
    )
