"""Study: training and prediction time per batch against the rank (the paper's timing figure).

A 5-layer network of width W (full: 4096; quick: 512) with batch 500: one fixed-rank DLRT
training step (SGD; two forward/backward passes and two QRs) and one prediction pass, for ranks
5 … W/2, against the dense network, float32.  Ratios DLRT/dense are measured in the same run; the
crossover rank is the smallest measured rank at which DLRT is slower than dense.

Run:  python -m studies.timing [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lowrank_ode.timing import measure_mlp

from ._common import Store, assert_true, markdown_table, savefig, study_main
from .published import TIMING

#: Published seconds (5 × 5120, batch 500, a GPU), source :data:`studies.published.TIMING_SOURCE`.
PUBLISHED = TIMING


#: Seconds per training step and prediction pass (kept here under its old name).
measure = measure_mlp


def run(quick: bool = False, out: str | Path | None = None, progress: bool = True) -> dict:
    """Measure dense and every rank (each configuration saved as it finishes)."""
    width = 512 if quick else 4096
    ranks = [5, 20, 80, 256] if quick else [5, 20, 80, 320, 1280, 2048]
    repeats = 2 if quick else 3
    out = Path(out or "studies/results")
    meta = {"width": width, "ranks": ranks, "quick": quick, "init": "product"}
    store = Store(out, "timing", meta=meta)
    keys = ["dense"] + [str(r) for r in ranks]
    for k in keys:
        if k not in store:
            store.put(k, measure(width, None if k == "dense" else int(k), repeats))
    res = store.finish()
    if quick:
        check(res)
    return res


def check(res: dict) -> None:
    """DLRT at the smallest rank trains and predicts faster than dense."""
    c = res["configs"]
    assert_true(c["5"]["train_s"] < c["dense"]["train_s"], f"rank 5 trains slower than dense: {c}")
    assert_true(
        c["5"]["predict_s"] < c["dense"]["predict_s"], f"rank 5 predicts slower than dense: {c}"
    )


def _ratios(res: dict) -> list[tuple[str, float, float, float, float]]:
    c = res["configs"]
    d = c["dense"]
    return [
        (
            k,
            v["train_s"],
            v["train_s"] / d["train_s"],
            v["predict_s"],
            v["predict_s"] / d["predict_s"],
        )
        for k, v in c.items()
    ]


def table(res: dict) -> str:
    """Our seconds and ratios beside the published GPU seconds."""
    rows = []
    for k, tt, rt, tp, rp in _ratios(res):
        key: Any = k if k == "dense" else int(k)
        rows.append(
            [
                k,
                f"{tt:.4f}",
                f"{rt:.3f}",
                f"{PUBLISHED['train'].get(key, '—')}",
                f"{tp:.4f}",
                f"{rp:.3f}",
                f"{PUBLISHED['predict'].get(key, '—')}",
            ]
        )
    head = [
        "rank",
        "train s",
        "/dense",
        "published train s",
        "predict s",
        "/dense",
        "published predict s",
    ]
    return markdown_table(head, rows)


def plot(res: dict, out: str | Path) -> None:
    """Seconds vs rank, dense as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = res["configs"]
    ranks = [int(k) for k in c if k != "dense"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for what, col in (("train_s", "C0"), ("predict_s", "C1")):
        ax.loglog(
            ranks, [c[str(r)][what] for r in ranks], "o-", color=col, label=f"DLRT {what[:-2]}"
        )
        ax.axhline(c["dense"][what], color=col, ls="--", label=f"dense {what[:-2]}")
    ax.set_xlabel("rank r")
    ax.set_ylabel("seconds per batch of 500")
    ax.set_title(f"5 × {res['meta']['width']}, float32")
    ax.legend(fontsize=8)
    fig.tight_layout()
    savefig(fig, Path(out), "timing")


if __name__ == "__main__":
    study_main(sys.modules[__name__], __doc__)
