"""Study: robustness of DLRT to small singular values (Schotthöfer et al. 2022, Sec. 5.3).

Fixed rank 20 in every hidden layer, initial singular values |N(0,1)| sorted × decay^(−k),
decay ∈ {1, 2, 10}; DLRT (fixed-rank BUG, SGD) against the plain factorization W = U Vᵀ trained
by SGD on U and V, several seeds.  The paper uses LeNet-5 (20 epochs, lr 0.01, 10 runs); on this
2-core machine we use the MLP 784-500×4-10 (full, lr 0.05, 5 epochs) or 784-256-256-10 (quick,
lr 0.2, 4 epochs on the bundled subset) — the qualitative claim (DLRT insensitive to the decay,
U Vᵀ degrading) is the same.

Run:  python -m studies.mnist_robustness [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from lowrank_ode.dlrt import TrainConfig

from ._common import savefig, study_main
from .mnist_dlrt import run_configs

PUBLISHED = {  # LeNet-5, mean ± std over 10 runs (their Table 4)
    1: {"dlrt": (97.81, 0.14), "vanilla": (93.74, 1.39)},
    2: {"dlrt": (97.29, 0.29), "vanilla": (90.91, 2.46)},
    10: {"dlrt": (97.07, 0.65), "vanilla": (86.24, 4.56)},
}
DECAYS = (1, 2, 10)


def configs(quick: bool) -> dict[str, TrainConfig]:
    """One run per (decay, method, seed)."""
    base = dict(model="mlp", optimizer="sgd", rank=20, batch_size=256)
    if quick:
        base.update(widths=(784, 256, 256, 10), epochs=4, lr=0.2)
        seeds: tuple[int, ...] = (0,)
    else:  # lr 0.2 made the 4-hidden-layer MLP unstable on full MNIST (accuracy jumps)
        base.update(epochs=5, lr=0.05)
        seeds = (0, 1, 2)
    return {
        f"decay{d}_{m}_seed{s}": TrainConfig(**base, method=m, decay=float(d), seed=s)
        for d in DECAYS
        for m in ("dlrt", "vanilla")
        for s in seeds
    }


def summarize(results: dict[str, Any]) -> dict[int, dict[str, tuple[float, float]]]:
    """Mean and standard deviation (percent) of the test accuracy per decay and method."""
    out: dict[int, dict[str, tuple[float, float]]] = {}
    for d in DECAYS:
        for m in ("dlrt", "vanilla"):
            acc = [
                100 * r["test_accuracy"]
                for k, r in results.items()
                if isinstance(r, dict) and k.startswith(f"decay{d}_{m}_")
            ]
            if acc:
                out.setdefault(d, {})[m] = (float(np.mean(acc)), float(np.std(acc)))
    return out


def run(quick: bool = False, out: str | Path | None = None, progress: bool = True) -> dict:
    """Train (or resume) all runs into ``out/mnist_robustness[_quick]/``."""
    sub = Path(out or "studies/results") / (
        "mnist_robustness_quick" if quick else "mnist_robustness"
    )
    results = run_configs(configs(quick), sub, quick, progress)
    if quick:
        check_quick(results)
    return results


def check_quick(results: dict[str, Any]) -> None:
    """U Vᵀ falls behind as the decay grows; DLRT does not (the paper's Table 4, qualitatively)."""
    s = summarize(results)
    assert s[10]["dlrt"][0] > s[10]["vanilla"][0] + 10, f"DLRT not ahead of U Vᵀ at decay 10: {s}"
    assert s[10]["dlrt"][0] > 0.6 * s[1]["dlrt"][0], f"DLRT degrades with the decay: {s}"


def table(results: dict[str, Any]) -> str:
    """Our mean ± std beside the paper's (LeNet-5)."""
    s = summarize(results)
    lines = [
        "| decay | DLRT (ours) | U Vᵀ (ours) | DLRT (paper, LeNet-5) | U Vᵀ (paper) |",
        "|---|---|---|---|---|",
    ]
    for d in DECAYS:
        if d not in s:
            continue
        o, p = s[d], PUBLISHED[d]
        lines.append(
            f"| {d} | {o['dlrt'][0]:.2f} ± {o['dlrt'][1]:.2f} | "
            f"{o['vanilla'][0]:.2f} ± {o['vanilla'][1]:.2f} | "
            f"{p['dlrt'][0]} ± {p['dlrt'][1]} | {p['vanilla'][0]} ± {p['vanilla'][1]} |"
        )
    return "\n".join(lines)


def plot(results: dict[str, Any], out: str | Path) -> None:
    """Accuracy vs decay for both methods, with the paper's LeNet-5 numbers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = summarize(results)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ds = [d for d in DECAYS if d in s]
    for m, c in (("dlrt", "C0"), ("vanilla", "C3")):
        mean = [s[d][m][0] for d in ds]
        std = [s[d][m][1] for d in ds]
        ax.errorbar(ds, mean, yerr=std, fmt="o-", color=c, label=f"{m} (ours, MLP)")
        ax.plot(
            ds,
            [PUBLISHED[d][m][0] for d in ds],
            "s--",
            color=c,
            mfc="none",
            label=f"{m} (paper, LeNet-5)",
        )
    ax.set_xscale("log")
    ax.set_xlabel("decay of the initial singular values")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    savefig(fig, Path(out), "mnist_robustness")


if __name__ == "__main__":
    study_main(sys.modules[__name__], __doc__)
