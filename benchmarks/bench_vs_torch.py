"""Benchmark: lowrank_ode's training steps side by side with a PyTorch baseline, in one run.

Both sides train on the same MNIST batches in the same process, interleaved (the
configurations take turns, ``--block`` timed steps each, so that drifts of the host's speed hit
all of them alike), with the **default thread settings** of both libraries: nothing is pinned,
the thread counts in force are recorded (``torch.get_num_threads()`` and every BLAS/OpenMP pool
threadpoolctl finds).

MLP 784-500×4-10, float32, Adam (lr 1e-3), batch 256:

* NumPy (``Trainer.step``): ``dense``, ``vanilla`` (W = U Vᵀ, r = 20), ``dlrt`` fixed rank 20,
  ``dlrt-adaptive`` τ = 0.17 from rank 150 with the product start;
* torch: the dense MLP and the plain factorisation W = U Vᵀ (r = 20), trained by autograd.

LeNet-5 (conv 20@5×5 – maxpool 2 – conv 50@5×5 – maxpool 2 – dense 800→500 – dense 500→10,
ReLU), float32, SGD (lr 0.05), batch 128:

* NumPy: ``dense``, ``dlrt`` fixed rank 20, ``dlrt-adaptive`` τ = 0.11 with the paper's
  recipe (the official layers' start at half rank, 10, 25, 250, and the rank cap there);
* torch: the dense LeNet-5 and its U Vᵀ factorisation (r = 20 in every factorised layer).

The turns are blocks, not single steps, because of a caveat of a shared process: the worker
threads of OpenBLAS (NumPy's and SciPy's) and of OpenMP (torch's) spin for a while after a
parallel call before they sleep, and that spinning can slow whatever runs next on the same
cores.  Each turn starts with one untimed step.  Compare ``--block 1`` (step by step) with
``--block`` equal to ``--repeats`` (one turn per configuration) on a quiet machine before
reading the ratios: on this project's 2-core machine, busy with other jobs, torch's dense
LeNet-5 step at default threads ranged from 30 ms to 670 ms between runs (with NumPy's BLAS
at one thread too), so the effect of the order could not be isolated there.

Reported: median step time, interquartile range, and the ratio to torch dense of the same
network measured in the same run; then one full epoch with evaluation per configuration and
side (wall time, train and test accuracy).  The torch models are written here from the
architecture alone; they are a yardstick for what a user of the framework would get.

Install the optional dependencies (the library itself never imports torch)::

    pip install -e '.[bench]'
    # or the CPU wheel explicitly:
    pip install torch==2.13.0+cpu --index-url https://download.pytorch.org/whl/cpu

Run::

    python benchmarks/bench_vs_torch.py                      # 200 timed steps, bundled subset
    LOWRANK_ODE_DATA=/path/to/mnist python benchmarks/bench_vs_torch.py --repeats 400
    python benchmarks/bench_vs_torch.py --quick              # a smoke run (seconds)

The epochs use the full MNIST training set when ``--data-dir`` (or ``LOWRANK_ODE_DATA``) holds
the four IDX files, else the 5000-image subset bundled with the package (nothing is
downloaded).  Tables go to stdout as markdown, everything to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg  # noqa: F401  (loaded now, so that its BLAS pool is in the thread record)

from lowrank_ode import blas_threads
from lowrank_ode.dlrt import TrainConfig, Trainer

try:
    import torch
    import torch.nn.functional as F
    from torch import nn as tnn
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise SystemExit(
        "bench_vs_torch.py needs PyTorch: pip install -e '.[bench]' (see the module docstring)"
    ) from exc

MLP_WIDTHS = (784, 500, 500, 500, 500, 10)
MLP = dict(model="mlp", widths=MLP_WIDTHS, optimizer="adam", lr=1e-3, batch_size=256)
LENET = dict(model="lenet5", optimizer="sgd", lr=0.05, batch_size=128)

NUMPY_CONFIGS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "mlp": [
        ("dense", dict(method="dense")),
        ("vanilla U Vᵀ r=20", dict(method="vanilla", rank=20)),
        ("dlrt fixed r=20", dict(method="dlrt", rank=20)),
        (
            "dlrt-adaptive τ=0.17, start 150, product",
            dict(method="dlrt-adaptive", tau=0.17, rank=150, init_core="product"),
        ),
    ],
    "lenet5": [
        ("dense", dict(method="dense")),
        ("dlrt fixed r=20", dict(method="dlrt", rank=20)),
        ("dlrt-adaptive τ=0.11, paper's start", dict(method="dlrt-adaptive", tau=0.11)),
    ],
}


# --------------------------------------------------------------------------- torch models
class FactorLinear(tnn.Module):
    """``y = (x V) Uᵀ + b``: the plain factorisation ``W = U Vᵀ`` of a linear layer."""

    def __init__(self, n_in: int, n_out: int, rank: int) -> None:
        super().__init__()
        U, V = _factor_init(torch.empty(n_out, n_in), rank)
        self.U, self.V = tnn.Parameter(U), tnn.Parameter(V)
        self.b = tnn.Parameter(torch.zeros(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return (x @ self.V) @ self.U.T + self.b


class FactorConv2d(tnn.Module):
    """Convolution whose matricised kernel ``(c_out, c_in·k·k)`` is ``U Vᵀ``."""

    def __init__(self, c_in: int, c_out: int, k: int, rank: int) -> None:
        super().__init__()
        U, V = _factor_init(torch.empty(c_out, c_in * k * k), rank)
        self.U, self.V = tnn.Parameter(U), tnn.Parameter(V)
        self.b = tnn.Parameter(torch.zeros(c_out))
        self.shape = (c_out, c_in, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return F.conv2d(x, (self.U @ self.V.T).reshape(self.shape), self.b)


def _he(layer: tnn.Module) -> tnn.Module:
    """He-normal weights and zero bias, the initialisation of :mod:`lowrank_ode.nn`."""
    tnn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    tnn.init.zeros_(layer.bias)
    return layer


def _factor_init(W: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(U √σ, V √σ)`` from the truncated SVD of a He-normal weight ``W``."""
    with torch.no_grad():
        tnn.init.kaiming_normal_(W, nonlinearity="relu")
        P, s, Qt = torch.linalg.svd(W.detach(), full_matrices=False)
        r = min(rank, s.numel())
        root = s[:r].sqrt()
        return (P[:, :r] * root).contiguous(), (Qt[:r].T * root).contiguous()


def torch_mlp(rank: int | None) -> tnn.Module:
    """The 784-500×4-10 ReLU MLP; with ``rank`` every layer but the last is ``U Vᵀ``."""
    layers: list[tnn.Module] = []
    pairs = list(zip(MLP_WIDTHS[:-1], MLP_WIDTHS[1:], strict=True))
    for i, (a, b) in enumerate(pairs):
        last = i == len(pairs) - 1
        layers.append(_he(tnn.Linear(a, b)) if rank is None or last else FactorLinear(a, b, rank))
        if not last:
            layers.append(tnn.ReLU())
    return tnn.Sequential(*layers)


def torch_lenet5(rank: int | None) -> tnn.Module:
    """LeNet-5 as :func:`lowrank_ode.nn.lenet5` builds it; with ``rank``, conv1/conv2/fc1 U Vᵀ."""
    if rank is None:
        c1, c2 = _he(tnn.Conv2d(1, 20, 5)), _he(tnn.Conv2d(20, 50, 5))
        f1 = _he(tnn.Linear(800, 500))
    else:
        c1, c2 = FactorConv2d(1, 20, 5, rank), FactorConv2d(20, 50, 5, rank)
        f1 = FactorLinear(800, 500, rank)
    return tnn.Sequential(
        c1,
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        c2,
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Flatten(),
        f1,
        tnn.ReLU(),
        _he(tnn.Linear(500, 10)),
    )


class TorchSide:
    """A torch model, its optimizer, and the step / epoch / evaluation of the benchmark."""

    def __init__(self, model: str, rank: int | None, seed: int) -> None:
        torch.manual_seed(seed)
        self.net = torch_mlp(rank) if model == "mlp" else torch_lenet5(rank)
        cfg = MLP if model == "mlp" else LENET
        opt = torch.optim.Adam if cfg["optimizer"] == "adam" else torch.optim.SGD
        self.opt = opt(self.net.parameters(), lr=cfg["lr"])

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
        """One optimizer step; returns the loss and the logits."""
        self.opt.zero_grad(set_to_none=True)
        out = self.net(x)
        loss = F.cross_entropy(out, y)
        loss.backward()
        self.opt.step()
        return float(loss.detach()), out

    def evaluate(self, x: torch.Tensor, y: torch.Tensor, batch: int = 10000) -> float:
        """Test accuracy, in large batches, without autograd."""
        with torch.no_grad():
            hits = sum(
                int((self.net(x[s : s + batch]).argmax(1) == y[s : s + batch]).sum())
                for s in range(0, len(x), batch)
            )
        return hits / len(x)


# --------------------------------------------------------------------------- measurement
def thread_settings() -> dict[str, Any]:
    """The thread counts in force: torch's, and every pool threadpoolctl finds."""
    info: dict[str, Any] = {
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "cpu_count": os.cpu_count(),
        "env": {
            k: os.environ[k]
            for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
            if k in os.environ
        },
    }
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        info["threadpools"] = "threadpoolctl not installed"
    else:
        info["threadpools"] = [
            {
                "api": p.get("internal_api"),
                "num_threads": p.get("num_threads"),
                "library": Path(p.get("filepath", "")).name,
                "version": p.get("version"),
            }
            for p in threadpool_info()
        ]
    return info


def load_data(data_dir: str | None) -> tuple[tuple[np.ndarray, ...], str]:
    """float32 MNIST (flat images) and a description of where it came from."""
    from lowrank_ode.data import load_builtin_mnist, load_mnist

    data_dir = data_dir or os.environ.get("LOWRANK_ODE_DATA")
    if data_dir:
        return tuple(load_mnist(data_dir, download=False, dtype=np.float32)), f"MNIST {data_dir}"
    return tuple(load_builtin_mnist(dtype=np.float32)), "bundled 5000-image MNIST subset"


def _images(x: np.ndarray, model: str) -> np.ndarray:
    return x if model == "mlp" else x.reshape(-1, 1, 28, 28)


def _stats(times: list[float]) -> dict[str, float]:
    ms = 1e3 * np.asarray(times)
    q25, med, q75 = np.percentile(ms, [25, 50, 75])
    return {"median_ms": float(med), "q25_ms": float(q25), "q75_ms": float(q75), "n": len(ms)}


def steps(
    model: str,
    data: tuple[np.ndarray, ...],
    repeats: int,
    warmup: int,
    seed: int,
    block: int = 10,
) -> list[dict[str, Any]]:
    """Step timings of every NumPy and torch configuration of ``model``.

    The configurations take turns; a turn is one untimed step (it absorbs the spinning of the
    previous turn's thread pools) and then up to ``block`` timed steps, until every
    configuration has ``repeats`` timed steps.
    """
    cfg = MLP if model == "mlp" else LENET
    bs = int(cfg["batch_size"])
    x_tr, y_tr = _images(data[0], model), data[1]
    n_batches = min(16, len(x_tr) // bs)
    order = np.random.default_rng([seed, 5]).permutation(len(x_tr))
    np_batches = [
        (x_tr[order[i * bs : (i + 1) * bs]], y_tr[order[i * bs : (i + 1) * bs]])
        for i in range(n_batches)
    ]
    t_batches = [
        (torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)) for x, y in np_batches
    ]

    runners: list[tuple[str, str, Callable[[int], Any], Any]] = []
    for label, kw in NUMPY_CONFIGS[model]:
        tr = Trainer(
            TrainConfig(**cfg, **kw, dtype="float32", seed=seed, epochs=1), data_for(model, data)
        )
        runners.append(("numpy", label, lambda i, tr=tr: tr.step(*np_batches[i % n_batches]), tr))
    for label, rank in (("dense", None), ("U Vᵀ r=20 (autograd)", 20)):
        side = TorchSide(model, rank, seed)
        runners.append(("torch", label, lambda i, s=side: s.step(*t_batches[i % n_batches]), side))

    for i in range(warmup):
        for _, _, fn, _ in runners:
            fn(i)
    start_ranks = {label: obj.ranks() for side, label, _, obj in runners if side == "numpy"}
    times: list[list[float]] = [[] for _ in runners]
    step = warmup
    for start in range(0, repeats, block):
        for k, (_, _, fn, _) in enumerate(runners):
            fn(step)  # untimed lead-in of the turn
            for i in range(start, min(start + block, repeats)):
                t0 = time.perf_counter()
                fn(step + 1 + i - start)
                times[k].append(time.perf_counter() - t0)
        step += block + 1
    rows = []
    for (side, label, _, obj), t in zip(runners, times, strict=True):
        row = {"side": side, "config": label, **_stats(t)}
        if side == "numpy":
            row["ranks_start"], row["ranks_end"] = start_ranks[label], obj.ranks()
        rows.append(row)
    ref = next(r["median_ms"] for r in rows if r["side"] == "torch" and r["config"] == "dense")
    for r in rows:
        r["ratio_to_torch_dense"] = r["median_ms"] / ref
    return rows


def data_for(model: str, data: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """``data`` with the images shaped for ``model`` (views, no copies)."""
    return (_images(data[0], model), data[1], _images(data[2], model), data[3])


def epochs(model: str, data: tuple[np.ndarray, ...], seed: int) -> list[dict[str, Any]]:
    """One epoch with evaluation per configuration and side: wall time and accuracies."""
    cfg = MLP if model == "mlp" else LENET
    d = data_for(model, data)
    rows = []
    for label, kw in NUMPY_CONFIGS[model]:
        tr = Trainer(TrainConfig(**cfg, **kw, dtype="float32", seed=seed, epochs=1), d)
        t0 = time.perf_counter()
        rec = tr.run_epoch()
        wall = time.perf_counter() - t0
        rows.append(
            {
                "side": "numpy",
                "config": label,
                "epoch_s": wall,
                "train_s": rec["seconds"],
                "train_accuracy": rec["train_accuracy"],
                "test_accuracy": rec["test_accuracy"],
                "ranks": rec["ranks"],
            }
        )
    x_tr, y_tr = torch.from_numpy(np.ascontiguousarray(d[0])), torch.from_numpy(d[1])
    x_te, y_te = torch.from_numpy(np.ascontiguousarray(d[2])), torch.from_numpy(d[3])
    bs = int(cfg["batch_size"])
    order = torch.from_numpy(np.random.default_rng([seed, 2, 0]).permutation(len(x_tr)))
    for label, rank in (("dense", None), ("U Vᵀ r=20 (autograd)", 20)):
        side = TorchSide(model, rank, seed)
        t0 = time.perf_counter()
        hits = 0
        for s in range(0, len(x_tr), bs):
            idx = order[s : s + bs]
            yb = y_tr[idx]
            _, out = side.step(x_tr[idx], yb)
            hits += int((out.argmax(1) == yb).sum())
        train_s = time.perf_counter() - t0
        test_acc = side.evaluate(x_te, y_te)
        rows.append(
            {
                "side": "torch",
                "config": label,
                "epoch_s": time.perf_counter() - t0,
                "train_s": train_s,
                "train_accuracy": hits / len(x_tr),
                "test_accuracy": test_acc,
            }
        )
    return rows


# --------------------------------------------------------------------------- output
def step_table(title: str, rows: list[dict[str, Any]]) -> str:
    """Markdown table of step timings."""
    out = [f"### {title}", "", "| side | config | median ms | IQR ms | / torch dense | ranks |"]
    out.append("|---|---|---:|---:|---:|---|")
    for r in rows:
        ranks = f"{r['ranks_start']} → {r['ranks_end']}" if "ranks_end" in r else ""
        out.append(
            f"| {r['side']} | {r['config']} | {r['median_ms']:.2f} | "
            f"{r['q25_ms']:.2f}–{r['q75_ms']:.2f} | {r['ratio_to_torch_dense']:.2f} | {ranks} |"
        )
    return "\n".join(out)


def epoch_table(title: str, rows: list[dict[str, Any]]) -> str:
    """Markdown table of the epoch runs."""
    out = [
        f"### {title}",
        "",
        "| side | config | epoch s (with eval) | train s | train acc % | test acc % |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['side']} | {r['config']} | {r['epoch_s']:.2f} | {r['train_s']:.2f} | "
            f"{100 * r['train_accuracy']:.2f} | {100 * r['test_accuracy']:.2f} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse the options, run, print the tables, write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--repeats", type=int, default=200, help="timed steps per configuration (default 200)"
    )
    p.add_argument("--warmup", type=int, default=None, help="untimed rounds (default 20)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 3 timed steps, 1 warm-up, epochs on 512 training images",
    )
    p.add_argument("--skip-epochs", action="store_true", help="step timings only")
    p.add_argument(
        "--block",
        type=int,
        default=10,
        help="timed steps per turn of a configuration, after one untimed step (default 10)",
    )
    p.add_argument("--models", default="mlp,lenet5", help="comma-separated: mlp, lenet5")
    p.add_argument("--data-dir", default=None, help="MNIST IDX files (default $LOWRANK_ODE_DATA)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads",
        default="auto",
        help="lowrank_ode's BLAS thread policy, as train() applies it: 'auto' (default), N, or "
        "'none' (the BLAS libraries' own settings: NumPy's and SciPy's pools both on all cores)",
    )
    p.add_argument(
        "--out",
        default=str(Path(__file__).with_name("bench_vs_torch.json")),
        help="JSON output (default benchmarks/bench_vs_torch.json)",
    )
    a = p.parse_args(argv)
    models = [m.strip() for m in a.models.split(",") if m.strip()]
    for m in models:
        if m not in NUMPY_CONFIGS:
            p.error(f"--models: unknown model {m!r} (choose from {sorted(NUMPY_CONFIGS)})")
    if a.repeats < 1:
        p.error(f"--repeats must be >= 1, got {a.repeats}")
    if a.block < 1:
        p.error(f"--block must be >= 1, got {a.block}")
    repeats = 3 if a.quick else a.repeats
    warmup = a.warmup if a.warmup is not None else (1 if a.quick else 20)
    data, source = load_data(a.data_dir)
    epoch_data = data
    if a.quick:
        epoch_data = (data[0][:512], data[1][:512], data[2][:256], data[3][:256])
    result: dict[str, Any] = {
        "meta": {
            "repeats": repeats,
            "warmup": warmup,
            "quick": a.quick,
            "block": a.block,
            "data": source,
            "numpy": np.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "processor": platform.processor(),
        },
    }
    policy = contextlib.nullcontext() if a.threads == "none" else blas_threads(a.threads)
    with policy:
        _measure(a, result, models, data, epoch_data, repeats, warmup)
    result["meta"]["threads_at_end"] = thread_settings()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {a.out}")
    return result


def _measure(
    a: argparse.Namespace,
    result: dict[str, Any],
    models: list[str],
    data: Any,
    epoch_data: Any,
    repeats: int,
    warmup: int,
) -> None:
    """The step tables and the epochs, under the thread policy in force."""
    result["meta"]["threads"] = thread_settings()
    result["meta"]["policy"] = a.threads
    t = result["meta"]["threads"]
    print(
        f"data: {result['meta']['data']}; lowrank_ode threads {a.threads}; "
        f"torch threads {t['torch_num_threads']}; pools: {t['threadpools']}"
    )
    for m in models:
        rows = steps(m, data, repeats, warmup, a.seed, a.block)
        result[f"{m}_steps"] = rows
        title = f"{m}: one training step, {repeats} timed steps, turns of {a.block}"
        print("\n" + step_table(title, rows))
        if not a.skip_epochs:
            rows = epochs(m, epoch_data, a.seed)
            result[f"{m}_epoch"] = rows
            n = len(epoch_data[0])
            print("\n" + epoch_table(f"{m}: one epoch ({n} images) with evaluation", rows))


if __name__ == "__main__":
    main()
