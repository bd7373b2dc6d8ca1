"""Study: robustness of DLRT to small singular values (Schotthöfer et al. 2022, Sec. 5.3).

Fixed rank 20 in every hidden layer, initial singular values |N(0,1)| sorted × decay^(−k),
decay ∈ {1, 2, 10}; DLRT (fixed-rank BUG, SGD) against the plain factorization W = U Vᵀ trained
by SGD on U and V, several seeds.  The paper uses LeNet-5 (20 epochs, lr 0.01, 10 runs).  Full
mode runs LeNet-5 as the paper does but for 2 epochs, float32, 3 seeds (``lenet5_*`` runs), and
the MLP 784-500×4-10 (lr 0.05, 5 epochs, 3 seeds); quick mode the MLP 784-256-256-10 (lr 0.2,
4 epochs on the bundled subset).  The claim checked: DLRT is insensitive to the decay, U Vᵀ
degrades.

Run:  python -m studies.mnist_robustness [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from lowrank_ode.dlrt import TrainConfig

from ._common import assert_true, savefig, study_main
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
    runs = {
        f"decay{d}_{m}_seed{s}": TrainConfig(**base, method=m, decay=float(d), seed=s)
        for d in DECAYS
        for m in ("dlrt", "vanilla")
        for s in seeds
    }
    if not quick:  # the paper's network and learning rate, fewer epochs (CPU budget)
        lenet = dict(
            model="lenet5",
            optimizer="sgd",
            lr=0.01,
            batch_size=128,
            rank=20,
            epochs=2,
            dtype="float32",
        )
        runs.update(
            {
                f"lenet5_decay{d}_{m}_seed{s}": TrainConfig(
                    **lenet, method=m, decay=float(d), seed=s
                )
                for s in seeds
                for d in DECAYS
                for m in ("dlrt", "vanilla")
            }
        )
    return runs


def summarize(
    results: dict[str, Any], model: str = ""
) -> dict[int, dict[str, tuple[float, float]]]:
    """Mean and standard deviation (percent) of the test accuracy per decay and method.

    ``model=""`` summarizes the MLP runs, ``"lenet5"`` the ``lenet5_*`` runs.
    """
    out: dict[int, dict[str, tuple[float, float]]] = {}
    prefix = f"{model}_" if model else ""
    for d in DECAYS:
        for m in ("dlrt", "vanilla"):
            acc = [
                100 * r["test_accuracy"]
                for k, r in results.items()
                if isinstance(r, dict) and k.startswith(f"{prefix}decay{d}_{m}_")
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
    assert_true(
        s[10]["dlrt"][0] > s[10]["vanilla"][0] + 10, f"DLRT not ahead of U Vᵀ at decay 10: {s}"
    )
    assert_true(s[10]["dlrt"][0] > 0.6 * s[1]["dlrt"][0], f"DLRT degrades with the decay: {s}")


def table(results: dict[str, Any]) -> str:
    """Our mean ± std (MLP and LeNet-5) beside the paper's (LeNet-5)."""
    lines = [
        "| network | decay | DLRT (ours) | U Vᵀ (ours) | DLRT (paper, LeNet-5) | U Vᵀ (paper) |",
        "|---|---|---|---|---|---|",
    ]
    for model, label in (("", "MLP"), ("lenet5", "LeNet-5")):
        s = summarize(results, model)
        for d in DECAYS:
            if d not in s or len(s[d]) < 2:
                continue
            o, p = s[d], PUBLISHED[d]
            lines.append(
                f"| {label} | {d} | {o['dlrt'][0]:.2f} ± {o['dlrt'][1]:.2f} | "
                f"{o['vanilla'][0]:.2f} ± {o['vanilla'][1]:.2f} | "
                f"{p['dlrt'][0]} ± {p['dlrt'][1]} | {p['vanilla'][0]} ± {p['vanilla'][1]} |"
            )
    return "\n".join(lines)


def plot(results: dict[str, Any], out: str | Path) -> None:
    """Accuracy vs decay for both methods, with the paper's LeNet-5 numbers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for model, label, fmt in (("", "MLP", "o:"), ("lenet5", "LeNet-5", "o-")):
        s = summarize(results, model)
        ds = [d for d in DECAYS if d in s and len(s[d]) == 2]
        for m, c in (("dlrt", "C0"), ("vanilla", "C3")):
            if ds:
                mean = [s[d][m][0] for d in ds]
                std = [s[d][m][1] for d in ds]
                ax.errorbar(ds, mean, yerr=std, fmt=fmt, color=c, label=f"{m} (ours, {label})")
    ds = list(DECAYS)
    for m, c in (("dlrt", "C0"), ("vanilla", "C3")):
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
