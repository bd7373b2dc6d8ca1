"""Study: DLRT on MNIST — the MLP τ sweep and LeNet-5 of Schotthöfer et al. (NeurIPS 2022).

Each configuration is one :func:`lowrank_ode.dlrt.train` run; its result is written to
``out/<name>.json`` as soon as it finishes and skipped on the next call (resume after a stop).
Quick mode trains on the bundled MNIST subset for three epochs and checks qualitative claims
(DLRT learns; higher τ gives lower ranks and higher compression); full mode trains on the full
MNIST files (``LOWRANK_ODE_DATA`` or ``../shared/data/mnist``).

Run:  python -m studies.mnist_dlrt [--quick] [--only NAME ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lowrank_ode.dlrt import TrainConfig, train
from lowrank_ode.dlrt.cli import load_data

from ._common import assert_true, code_version, markdown_table, savefig

# Published numbers (Schotthöfer et al. 2022, Tables 1, 2 and Sec. 5; see ../shared/REFERENCE.md)
_P11 = {"test_accuracy": 98.11, "compression_eval": 86.52, "ranks": [27, 40, 37, 38]}
_P13 = {"test_accuracy": 97.50, "compression_eval": 89.22, "ranks": [20, 31, 32, 30]}
_P17 = {"test_accuracy": 96.90, "compression_eval": 92.44, "ranks": [13, 21, 24, 20]}
PUBLISHED = {  # the paper's runs are adaptive training followed by fine-tuning (their Table 1)
    "mlp500_dense": {"test_accuracy": 98.54, "compression_eval": 0.0},
    "mlp500_dense_e25": {"test_accuracy": 98.54, "compression_eval": 0.0},
    "mlp500_tau0.05": {
        "test_accuracy": 98.56,
        "compression_eval": 61.55,
        "ranks": [81, 104, 111, 117],
    },
    "mlp500_tau0.05_ft": {
        "test_accuracy": 98.56,
        "compression_eval": 61.55,
        "ranks": [81, 104, 111, 117],
    },
    "mlp500_tau0.11": _P11,
    "mlp500_tau0.11_ft": _P11,
    "mlp500_tau0.13_ft": _P13,
    "mlp500_tau0.17": _P17,
    "mlp500_tau0.17_ft": _P17,
    "mlp784_dense": {"test_accuracy": 98.53, "compression_eval": 0.0},
    "mlp784_tau0.17_ft": {
        "test_accuracy": 97.40,
        "compression_eval": 94.28,
        "ranks": [17, 23, 22, 23],
    },
    "lenet5_tau0.11": {"test_accuracy": 98.21, "compression_eval": 81.7, "ranks": [10, 20, 48]},
    "lenet5_dense": {"test_accuracy": 98.82, "compression_eval": 0.0},
}

# the paper's full τ tables (w = 500 and w = 784): τ → (test %, c.r. eval %, ranks)
PAPER_500 = {
    0.03: (98.49, 34.96, [176, 170, 171, 174]),
    0.05: (98.56, 61.55, [81, 104, 111, 117]),
    0.07: (98.52, 75.26, [52, 67, 73, 72]),
    0.09: (98.34, 82.57, [35, 53, 51, 46]),
    0.11: (98.11, 86.52, [27, 40, 37, 38]),
    0.13: (97.50, 89.22, [20, 31, 32, 30]),
    0.15: (97.22, 91.12, [17, 25, 26, 24]),
    0.17: (96.90, 92.44, [13, 21, 24, 20]),
}
PAPER_784 = {
    0.03: (98.61, 51.37, [190, 190, 190, 190]),
    0.05: (98.59, 68.21, [124, 120, 125, 126]),
    0.09: (98.49, 84.11, [56, 67, 63, 59]),
    0.13: (97.95, 91.04, [29, 35, 38, 34]),
    0.17: (97.40, 94.28, [17, 23, 22, 23]),
}
for _w, _tab in (("500", PAPER_500), ("784", PAPER_784)):
    for _t, (_a, _c, _r) in _tab.items():
        PUBLISHED[f"mlp{_w}_prod_tau{_t}"] = {
            "test_accuracy": _a,
            "compression_eval": _c,
            "ranks": _r,
        }

W784 = (784, 784, 784, 784, 784, 10)
TAU_GRID = (0.11, 0.17, 0.05, 0.03, 0.07, 0.09, 0.13, 0.15)  # most important first
TAU_GRID_784 = (0.09, 0.17, 0.05, 0.03, 0.13, 0.11, 0.07, 0.15)
LENET_TAUS = (0.11, 0.2, 0.3)
PAPER_LENET = {  # τ → (test %, ranks, true c.r. eval % computed from the published ranks)
    0.11: (98.21, [10, 20, 48], 81.7),
    0.2: (98.12, [8, 8, 15], 93.2),
}
MLP = dict(model="mlp", optimizer="adam", lr=1e-3, batch_size=256)
LENET = dict(model="lenet5", optimizer="sgd", lr=0.05, batch_size=128)


def _product_grid(
    prefix: str, widths: tuple[int, ...], taus: tuple[float, ...], epochs: int
) -> dict[str, TrainConfig]:
    """The MLP τ grid from the Gaussian-product start (start rank 100, 5 fine-tuning epochs)."""
    return {
        f"{prefix}_prod_tau{t}": TrainConfig(
            **MLP,
            widths=widths,
            method="dlrt-adaptive",
            tau=t,
            rank=100,
            epochs=epochs,
            finetune_epochs=5,
            init_core="product",
        )
        for t in taus
    }


def configs(quick: bool, epochs: int | None = None) -> dict[str, TrainConfig]:
    """The runs of the study (quick: tiny and on the bundled subset)."""
    if quick:
        e = 3
        base = dict(MLP, widths=(784, 128, 128, 10), epochs=e)
        return {
            "mlp_dense": TrainConfig(**base, method="dense"),
            "mlp_tau0.05": TrainConfig(**base, method="dlrt-adaptive", tau=0.05, rank=64),
            "mlp_tau0.2": TrainConfig(**base, method="dlrt-adaptive", tau=0.2, rank=64),
            "mlp_rank20": TrainConfig(**base, method="dlrt", rank=20),
        }
    e = epochs or 10
    return {
        "mlp500_dense": TrainConfig(**MLP, method="dense", epochs=e),
        "mlp500_tau0.11": TrainConfig(**MLP, method="dlrt-adaptive", tau=0.11, rank=150, epochs=e),
        "mlp500_tau0.05": TrainConfig(**MLP, method="dlrt-adaptive", tau=0.05, rank=150, epochs=e),
        "mlp500_tau0.17": TrainConfig(**MLP, method="dlrt-adaptive", tau=0.17, rank=150, epochs=e),
        "mlp500_rank20": TrainConfig(**MLP, method="dlrt", rank=20, epochs=e),
        # the paper's recipe: rank-adaptive phase, then fine-tuning of S in frozen bases
        "mlp500_tau0.11_ft": TrainConfig(
            **MLP, method="dlrt-adaptive", tau=0.11, rank=150, epochs=e, finetune_epochs=5
        ),
        "mlp500_tau0.13_ft": TrainConfig(
            **MLP, method="dlrt-adaptive", tau=0.13, rank=150, epochs=e, finetune_epochs=5
        ),
        "mlp500_tau0.05_ft": TrainConfig(
            **MLP, method="dlrt-adaptive", tau=0.05, rank=150, epochs=e, finetune_epochs=5
        ),
        "mlp500_tau0.17_ft": TrainConfig(
            **MLP, method="dlrt-adaptive", tau=0.17, rank=150, epochs=e, finetune_epochs=5
        ),
        "mlp500_tau0.21_ft": TrainConfig(
            **MLP, method="dlrt-adaptive", tau=0.21, rank=150, epochs=e, finetune_epochs=5
        ),
        "mlp784_dense": TrainConfig(**MLP, widths=W784, method="dense", epochs=e),
        # the dense baseline trained as long as the τ grid (20 + 5 epochs)
        "mlp500_dense_e25": TrainConfig(**MLP, method="dense", epochs=2 * e + 5),
        "mlp784_tau0.11_ft": TrainConfig(
            **MLP,
            widths=W784,
            method="dlrt-adaptive",
            tau=0.11,
            rank=200,
            epochs=e,
            finetune_epochs=5,
        ),
        "mlp784_tau0.17_ft": TrainConfig(
            **MLP,
            widths=W784,
            method="dlrt-adaptive",
            tau=0.17,
            rank=200,
            epochs=e,
            finetune_epochs=5,
        ),
        # the τ grid with the official code's starting point (W₀ = A B Cᵀ, Gaussian factors,
        # init_core="product"), start rank 100, 2e adaptive epochs + 5 fine-tuning
        **_product_grid("mlp500", (784, 500, 500, 500, 500, 10), TAU_GRID, 2 * e),
        **_product_grid("mlp784", W784, TAU_GRID_784, 2 * e),
        # LeNet-5 τ sweep, 3 seeds: the official (PyTorch) LeNet code's start — truncated SVD
        # of the dense initialization, start ranks 20, 50, 500 (full) — float32, 3 epochs
        # (CPU budget; the paper trains 20)
        **{
            f"lenet5_tau{t}_seed{sd}": TrainConfig(
                **LENET,
                method="dlrt-adaptive",
                tau=t,
                rank=500,
                epochs=3,
                dtype="float32",
                seed=sd,
            )
            for sd in (0, 1, 2)
            for t in LENET_TAUS
        },
        **{
            f"lenet5_dense_seed{sd}": TrainConfig(
                **LENET, method="dense", epochs=3, dtype="float32", seed=sd
            )
            for sd in (0, 1, 2)
        },
        "lenet5_tau0.11": TrainConfig(
            **LENET, method="dlrt-adaptive", tau=0.11, rank=50, epochs=max(2, e // 2)
        ),
    }


def _data_dir() -> str | None:
    env = os.environ.get("LOWRANK_ODE_DATA")
    if env:
        return env
    here = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"
    return str(here) if here.exists() else None


def _same_config(saved: dict | None, cfg: TrainConfig) -> bool:
    """Saved run has ``cfg``'s settings (fields added since it was saved take their defaults)."""
    if saved is None:
        return False
    full = {**json.loads(json.dumps(asdict(TrainConfig()))), **saved}
    full["widths"] = tuple(full["widths"])
    return full == asdict(cfg)


def run_configs(
    cfgs: dict[str, TrainConfig], out: Path, quick: bool, progress: bool = True
) -> dict[str, Any]:
    """Train every configuration not yet saved in ``out`` (one JSON each); return all results."""
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    data_cache: dict[str, Any] = {}
    for name, cfg in cfgs.items():
        path = out / f"{name}.json"
        if path.exists():
            saved = json.loads(path.read_text())
            if _same_config(saved.get("config"), cfg):
                results[name] = saved
                continue  # resume: this configuration is done
        src = "builtin" if quick else _data_dir()
        key = f"{src}:{cfg.model}"
        if key not in data_cache:
            data_cache[key] = load_data(src, cfg.model)
        t0 = time.perf_counter()
        res = train(cfg, data_cache[key], progress=progress and sys.stderr.isatty())
        res["wall_seconds"] = time.perf_counter() - t0
        res["data"] = "bundled subset (5000/1000)" if quick else "full MNIST (60000/10000)"
        res["code"] = code_version()  # the commit that produced this result
        path.write_text(json.dumps(res, indent=1))
        results[name] = res
        print(
            f"{name}: test acc {100 * res['test_accuracy']:.2f} %, ranks {res['ranks']}, "
            f"c.r. eval {res['compression_eval']:.2f} %, {res['wall_seconds']:.0f} s",
            flush=True,
        )
    return results


def run(
    quick: bool = False,
    out: str | Path | None = None,
    progress: bool = True,
    only: list[str] | None = None,
    epochs: int | None = None,
) -> dict[str, Any]:
    """Run (or resume) every configuration into ``out/mnist[_quick]/``; return the results."""
    sub = Path(out or "studies/results") / ("mnist_quick" if quick else "mnist")
    cfgs = {k: v for k, v in configs(quick, epochs).items() if not only or k in only}
    results = run_configs(cfgs, sub, quick, progress)
    if quick:
        check_quick(results)
    return results


def check_quick(results: dict[str, Any]) -> None:
    """Qualitative claims on the subset: everything learns; larger τ → lower rank."""
    for name, r in results.items():
        assert_true(r["test_accuracy"] > 0.5, f"{name} did not learn: {r['test_accuracy']:.3f}")
    lo, hi = results.get("mlp_tau0.05"), results.get("mlp_tau0.2")
    if lo and hi:
        assert_true(
            sum(hi["ranks"]) < sum(lo["ranks"]),
            f"larger τ did not give lower ranks: {lo['ranks']} (τ=0.05), {hi['ranks']} (τ=0.2)",
        )
        assert_true(
            hi["compression_eval"] > lo["compression_eval"],
            f"larger τ did not compress more: {lo['compression_eval']:.2f} (τ=0.05), "
            f"{hi['compression_eval']:.2f} (τ=0.2)",
        )


#: How the tables label runs saved before results recorded their commit (before 6db81a7: two
#: passes per rank-adaptive step, float32 QR/SVD computed in float64).
OLD_CODE = "<6db81a7"


def table(results: dict[str, Any]) -> str:
    """Our numbers beside the published ones."""
    lines = [
        f"{'run':22s} {'test %':>7s} {'paper %':>8s} {'c.r. eval %':>11s} "
        f"{'paper':>6s} {'c.r. train %':>12s}  {'code':12s} ranks (paper)"
    ]
    for name, r in _runs(results).items():
        p = PUBLISHED.get(name, {})
        pa = f"{p['test_accuracy']:.2f}" if p else "—"
        pc = f"{p['compression_eval']:.1f}" if p else "—"
        code = r.get("code", OLD_CODE)
        lines.append(
            f"{name:22s} {100 * r['test_accuracy']:7.2f} {pa:>8s} {r['compression_eval']:11.2f} "
            f"{pc:>6s} {r['compression_train']:12.2f}  {code:12s} {r['ranks']} "
            f"({p.get('ranks', '—')})"
        )
    return "\n".join(lines)


def grid_markdown(results: dict[str, Any]) -> str:
    """The product-start τ grids beside the paper's tables (markdown, for the docs)."""
    rows = []
    for w, tab in (("500", PAPER_500), ("784", PAPER_784)):
        for t in sorted({*tab, *(TAU_GRID if w == "500" else TAU_GRID_784)}):
            r = results.get(f"mlp{w}_prod_tau{t}")
            if not isinstance(r, dict):
                continue
            pa, pc, pr = tab.get(t, ("—", "—", "—"))
            rows.append(
                [
                    w,
                    t,
                    f"{100 * r['test_accuracy']:.2f}",
                    pa,
                    f"{r['compression_eval']:.2f}",
                    pc,
                    f"{r['compression_train']:.2f}",
                    ", ".join(str(k) for k in r["ranks"]),
                    ", ".join(str(k) for k in pr) if isinstance(pr, list) else pr,
                    f"{r.get('wall_seconds', float('nan')):.0f}",
                ]
            )
    head = ["w", "τ", "test %", "paper %", "c.r. eval %", "paper %", "c.r. train %", "ranks"]
    return markdown_table(head + ["paper ranks", "wall s"], rows)


def lenet_summary(results: dict[str, Any]) -> str:
    """LeNet-5 τ sweep: mean ± std over seeds beside the paper (true compression)."""
    import numpy as np

    rows = []
    for label in [f"tau{t}" for t in LENET_TAUS] + ["dense"]:
        runs = [r for k, r in _runs(results).items() if k.startswith(f"lenet5_{label}_seed")]
        if not runs:
            continue
        acc = [100 * r["test_accuracy"] for r in runs]
        cr = [r["compression_eval"] for r in runs]
        t = float(label[3:]) if label.startswith("tau") else None
        pa, pr, pc = PAPER_LENET.get(t, ("—", "—", "—")) if t else (98.82, "—", 0.0)
        rows.append(
            [
                label,
                len(runs),
                f"{np.mean(acc):.2f} ± {np.std(acc):.2f}",
                pa,
                f"{np.mean(cr):.1f}",
                pc,
                "; ".join(str(r["ranks"]) for r in runs) if runs[0]["ranks"] else "—",
                pr,
            ]
        )
    head = ["LeNet-5", "seeds", "test % (ours)", "paper %", "c.r. eval %", "paper %"]
    return markdown_table(head + ["ranks (per seed)", "paper ranks"], rows)


def _runs(results: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in results.items() if isinstance(v, dict)}


def plot(results: dict[str, Any], out: str | Path) -> None:
    """Accuracy vs evaluation compression: our τ grids and runs beside the paper's tables."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    runs = _runs(results)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for w, tab, c in (("500", PAPER_500, "C0"), ("784", PAPER_784, "C2")):
        grid = sorted(
            (float(k.split("tau")[1]), r)
            for k, r in runs.items()
            if k.startswith(f"mlp{w}_prod_tau")
        )
        if grid:
            ax.plot(
                [r["compression_eval"] for _, r in grid],
                [100 * r["test_accuracy"] for _, r in grid],
                "o-",
                color=c,
                label=f"ours, w = {w} (τ grid)",
            )
            for t, r in grid:
                ax.annotate(f"{t:g}", (r["compression_eval"], 100 * r["test_accuracy"]), fontsize=7)
        pts = sorted(tab.items())
        ax.plot(
            [p[1] for _, p in pts],
            [p[0] for _, p in pts],
            "s--",
            color=c,
            mfc="none",
            label=f"paper, w = {w}",
        )
    svd = [r for k, r in runs.items() if k.startswith("mlp500_tau")]
    if svd:
        ax.plot(
            [r["compression_eval"] for r in svd],
            [100 * r["test_accuracy"] for r in svd],
            "x",
            color="C1",
            label="ours, w = 500, SVD start",
        )
    ax.set_xlabel("evaluation compression rate (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("MNIST MLP 784-w×4-10, rank-adaptive DLRT")
    ax.legend(fontsize=8)
    fig.tight_layout()
    savefig(fig, Path(out), "mnist_dlrt")


def main() -> None:
    """Command-line entry."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None)
    p.add_argument("--only", nargs="*")
    p.add_argument("--epochs", type=int, default=None)
    a = p.parse_args()
    res = run(a.quick, a.out, only=a.only, epochs=a.epochs)
    print(table(res))
    print(grid_markdown(res))
    print(lenet_summary(res))
    plot(res, Path(a.out or "studies/results"))


if __name__ == "__main__":
    main()
