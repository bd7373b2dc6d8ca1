"""Benchmark: DLRT training and prediction time per batch against dense, as ratios in one run.

1. 5 layers of width W (default 4096), batch 500: one training step (fixed-rank DLRT, SGD:
   two forward/backward passes + QR) and one prediction pass, r ∈ {5, 20, 80, 320}, against the
   dense network (one SGD step), float32 and float64.
2. The 784-500×4-10 MLP, batch 256, float32: fixed rank 20, rank-adaptive τ = 0.17 (after the
   ranks have settled on the bundled MNIST subset), dense — milliseconds per batch.

Run:  python benchmarks/bench_dlrt.py [--width 4096] [--repeats 3] [--skip-wide]
      [--dtypes float32,float64] [--threads auto|N] [--compare-threads]

Everything runs under the library's BLAS thread policy (``--threads``, default ``auto``: what
``train()`` applies; ``docs/design.md``, "BLAS threads"); ``--compare-threads`` also times the
wide network on one thread, interleaved.  The side-by-side comparison with PyTorch is
``benchmarks/bench_vs_torch.py``.

Measured on this project's 2-core machine (nothing else running) with ``python
benchmarks/bench_dlrt.py --dtypes float32 --repeats 2`` (default threads: NumPy's OpenBLAS on 2
threads, SciPy's on 1):

    5 × 4096, batch 500, float32
    net              train s  /dense  predict s  /dense
    dense             1.4955   1.000     0.2654   1.000
    dlrt r=5          0.1255   0.084     0.0202   0.076
    dlrt r=20         0.1059   0.071     0.0171   0.065
    dlrt r=80         0.2192   0.147     0.0294   0.111
    dlrt r=320        0.8532   0.570     0.0676   0.255

    784-500x4-10 MLP, batch 256, float32                ms/batch  GEMM ms
    dense                                                 26.65    10.15
    dlrt fixed r=20 (Adam)                                13.15     4.09
    dlrt fixed r=20 (SGD)                                 10.97     3.94
    dlrt adaptive tau=0.17, SVD-of-He start [21, 20, 20, 20]   17.21     3.72
    dlrt adaptive tau=0.17, product start [21, 20, 20, 20]     14.46     3.33
    straight-line NumPy floor, fixed r=20, SGD             7.45

Targets on the wide network: train/dense ≤ 0.2 at r = 80 (0.147: met); train/dense ≤ 0.05 and
predict/dense ≤ 0.03 at r = 5 (0.084 and 0.076: not met with default threads).  With one BLAS
thread (an earlier run, ``OPENBLAS_NUM_THREADS=1``) the same rows were 0.035 and 0.022 against a
dense step of 2.69 s: the dense GEMMs use the second core and the thin DLRT products hardly do,
so the ratio a user sees with default settings is the larger one.  The straight-line floor —
the same two passes, products and QRs as bare NumPy, without library code or optimizer state —
bounds what NumPy on this CPU can do per fixed-rank step.  Building the wide DLRT networks
dominates the run time (the product start is still built after the SVD of a dense 4096 × 4096
He matrix per layer, docs/design.md).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from lowrank_ode import blas_threads
from lowrank_ode.dlrt import TrainConfig, Trainer
from lowrank_ode.timing import matmul_share, measure_mlp, median_time


def wide(width: int, repeats: int, dtype: str) -> list[tuple[str, float, float]]:
    """(label, train s/batch, predict s/batch) for dense and DLRT ranks 5, 20, 80, 320."""
    rows = []
    for r in (None, 5, 20, 80, 320):
        t = measure_mlp(width, r, repeats, dtype)
        rows.append(("dense" if r is None else f"dlrt r={r}", t["train_s"], t["predict_s"]))
    return rows


def mlp(repeats: int) -> list[tuple[str, float, float]]:
    """(label, ms per batch, of which GEMM ms) on the 784-500×4-10 MLP, float32, batch 256."""
    from lowrank_ode.data import load_builtin_mnist

    d = tuple(load_builtin_mnist(dtype=np.float32))
    x, y = d[0][:256], d[1][:256]
    rows = []
    for label, kw in [
        ("dense", {"method": "dense"}),
        ("dlrt fixed r=20", {"method": "dlrt", "rank": 20}),
        ("dlrt fixed r=20 sgd", {"method": "dlrt", "rank": 20, "optimizer": "sgd"}),
        ("dlrt adaptive tau=0.17", {"method": "dlrt-adaptive", "tau": 0.17, "rank": 100}),
        (
            "dlrt adaptive tau=0.17 product",
            {"method": "dlrt-adaptive", "tau": 0.17, "rank": 100, "init_core": "product"},
        ),
    ]:
        tr = Trainer(TrainConfig(dtype="float32", epochs=1, **kw), d)
        if kw["method"] == "dlrt-adaptive":
            tr.run_epoch()  # let the ranks settle
        ms = 1e3 * median_time(lambda tr=tr: tr.step(x, y), repeats)
        share = matmul_share(lambda tr=tr: tr.step(x, y), repeats)
        rows.append((f"{label} {tr.ranks()}", ms, share * ms))
    return rows


def straight_line_floor(repeats: int) -> float:
    """Milliseconds of one fixed-rank-20 BUG step (SGD) on the MLP written as straight NumPy.

    The same arithmetic as ``method="dlrt", optimizer="sgd"`` — two forward/backward passes,
    K/L products, eight QRs, the Galerkin S-step — with no library code, no checks and no
    Python structure: a floor for what NumPy on this CPU can do per batch.
    """
    from scipy.linalg import lapack

    rng = np.random.default_rng(0)
    f32, r, b, lr = np.float32, 20, 256, 1e-3
    widths = (784, 500, 500, 500, 500)
    qr = lambda A: lapack.sorgqr(*lapack.sgeqrf(A)[:2])[0]  # noqa: E731
    layers = [
        [
            qr(rng.standard_normal((m, r)).astype(f32)),
            np.eye(r, dtype=f32),
            qr(rng.standard_normal((n, r)).astype(f32)),
            np.zeros(m, f32),
        ]
        for n, m in zip(widths[:-1], widths[1:], strict=True)
    ]  # U, S, V, b
    W, c = (0.05 * rng.standard_normal((10, 500))).astype(f32), np.zeros(10, f32)
    x, y = rng.random((b, 784)).astype(f32), rng.integers(0, 10, b)
    zeros = np.zeros((b, 500), f32)

    def passes(lay: list) -> tuple[list, Any, Any]:
        h, cache = x, []
        for U, S, V, bias in lay:
            XV = h @ V
            z = (XV @ S.T) @ U.T
            z += bias
            cache.append((h, XV))
            h = np.maximum(z, zeros)
            cache[-1] += (h,)
        logits = h @ W.T + c
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(b), y] -= 1
        d = p / b
        gW, gc = d.T @ h, d.sum(axis=0)
        d = d @ W
        out = [None] * len(lay)
        for i in range(len(lay) - 1, -1, -1):
            U, S, V, _ = lay[i]
            X, XV, a = cache[i]
            d = d * (a > 0)
            DU = d @ U
            out[i] = (X, XV, d, DU)
            if i:
                d = (DU @ S) @ V.T
        return out, gW, gc

    def step() -> None:
        nonlocal W, c
        grads, _, _ = passes(layers)
        new = []
        for (U, S, V, bias), (X, XV, D, DU) in zip(layers, grads, strict=True):
            U1 = qr(U @ S - lr * (D.T @ XV))
            V1 = qr(V @ S.T - lr * (X.T @ DU))
            new.append([U1, (U1.T @ U) @ S @ (V.T @ V1), V1, bias])  # (U₁ᵀU₀) S₀ (V₁ᵀV₀)ᵀ
        grads, gW, gc = passes(new)
        for lay, (_, XV, D, DU) in zip(new, grads, strict=True):
            lay[1] = lay[1] - lr * (DU.T @ XV)
            lay[3] = lay[3] - lr * D.sum(axis=0)
        W, c = W - lr * gW, c - lr * gc
        layers[:] = new

    return 1e3 * median_time(step, repeats)


def main() -> None:
    """Print both tables, under the thread policy a user of ``train()`` gets (``--threads``)."""
    p = argparse.ArgumentParser()
    p.add_argument("--width", type=int, default=4096)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-wide", action="store_true", help="only the MNIST MLP table")
    p.add_argument("--dtypes", default="float32,float64", help="dtypes of the wide network")
    p.add_argument(
        "--threads",
        default="auto",
        help="BLAS thread policy (lowrank_ode._threads; default 'auto', as train() applies it)",
    )
    p.add_argument(
        "--compare-threads",
        action="store_true",
        help="measure the wide network under 'auto' and under one thread, interleaved",
    )
    a = p.parse_args()
    policies = ["auto", 1] if a.compare_threads else [a.threads]
    for dtype in () if a.skip_wide else a.dtypes.split(","):
        tables = {}
        for policy in policies:
            with blas_threads(policy) as info:
                tables[policy] = wide(a.width, a.repeats, dtype)
            pools = ", ".join(f"{b['library']} {b['num_threads']}" for b in info["blas"])
            print(f"\n5 × {a.width}, batch 500, {dtype}, threads {policy} ({pools})")
            rows = tables[policy]
            dense_train, dense_pred = rows[0][1], rows[0][2]
            print(f"{'net':14s} {'train s':>9s} {'/dense':>7s} {'predict s':>10s} {'/dense':>7s}")
            for label, tt, tp in rows:
                print(
                    f"{label:14s} {tt:9.4f} {tt / dense_train:7.3f} {tp:10.4f} "
                    f"{tp / dense_pred:7.3f}"
                )
        if a.compare_threads:
            print("train s (auto) / train s (one thread):")
            for (label, tt, _), (_, t1, _) in zip(tables["auto"], tables[1], strict=True):
                print(f"{label:14s} {tt / t1:7.3f}")
    with blas_threads(a.threads) as info:
        print(f"\n784-500x4-10 MLP, batch 256, float32, threads {a.threads}")
        print(f"{'net':48s} {'ms/batch':>9s} {'GEMM ms':>8s}")
        for label, ms, gemm in mlp(a.repeats):
            print(f"{label:48s} {ms:9.2f} {gemm:8.2f}")
        floor = straight_line_floor(max(a.repeats, 10))
        print(f"{'straight-line NumPy floor, fixed r=20 sgd':48s} {floor:9.2f}")


if __name__ == "__main__":
    main()
