"""GPU check: the library on CuPy arrays — tests, one DLRT epoch, and the width-4096 timing study.

Run on a machine with an NVIDIA GPU and CuPy (``pip install -e '.[test,gpu]'``)::

    python benchmarks/gpu_check.py            # full check, prints a markdown table
    python benchmarks/gpu_check.py --quick    # width 512 instead of 4096, fewer ranks

It does three things and prints one table headed by the GPU model:

1. runs the namespace-generic test modules (core integrators, every layer, the DLRT trainer's
   step and whole ``Trainer.fit`` runs with checkpoints: ``tests/core/test_array_api.py``,
   ``tests/nn/test_nn_array_api.py``, ``tests/dlrt/test_dlrt_array_api.py``,
   ``tests/dlrt/test_fit_array_library.py``) with CuPy as the array library under test
   (``LOWRANK_ODE_TEST_NAMESPACE=cupy``) — every array of those runs lives on the device;
2. trains one epoch of rank-adaptive DLRT (τ = 0.11, float32, bundled MNIST subset) of the MLP
   784-500×4-10 (Adam, batch 256) and of LeNet-5 (SGD, batch 128) through ``Trainer.fit`` with
   ``array_library="cupy"`` — the network, the data set, the batches and the evaluation on the
   device — and the same epochs on the CPU (``array_library="numpy"``): seconds (the epoch and
   its test evaluation), test accuracy and ranks of each;
3. times the paper's timing study (5 layers of width 4096, batch 500, float32: one fixed-rank
   DLRT training step and one prediction pass per rank, and the dense network) on the GPU and
   on the CPU.

Without CuPy or without a visible GPU it stops at once with exit status 2 and says so; nothing
else in the repository depends on a GPU.  ``--array-library array_api_strict`` runs the same
script on the CPU through array-api-strict (a dry run of the script itself, used by its test).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TEST_MODULES = (
    "tests/core/test_array_api.py",
    "tests/nn/test_nn_array_api.py",
    "tests/dlrt/test_dlrt_array_api.py",
    "tests/dlrt/test_fit_array_library.py",
)


class NoDevice(RuntimeError):
    """CuPy is not installed or sees no GPU."""


def device_namespace(library: str) -> tuple[Any, str, Callable[[], None]]:
    """``(xp, device description, synchronize)`` of the array library under test.

    Raises
    ------
    NoDevice
        For ``"cupy"`` without CuPy or without a GPU.
    """
    from lowrank_ode._array_api import library_namespace
    from lowrank_ode.exceptions import ArrayLibraryUnavailable

    if library not in ("cupy", "array_api_strict"):
        raise ValueError(f"array library must be 'cupy' or 'array_api_strict', got {library!r}")
    try:  # the check Trainer(array_library=...) makes: installed, and a GPU for CuPy
        xp = library_namespace(library, option="--array-library")
    except ArrayLibraryUnavailable as exc:
        raise NoDevice(str(exc)) from exc
    if library == "array_api_strict":
        return xp, "CPU (array-api-strict dry run, no GPU)", lambda: None
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    mem = props["totalGlobalMem"] / 2**30
    runtime = cupy.cuda.runtime.runtimeGetVersion()
    desc = f"{name} ({mem:.0f} GiB), CuPy {cupy.__version__}, CUDA runtime {runtime}"

    def sync() -> None:
        cupy.cuda.get_current_stream().synchronize()

    return xp, desc, sync


def run_tests(library: str) -> tuple[str, bool]:
    """Run the namespace-generic test modules with ``library`` under test; (summary, ok)."""
    env = {**os.environ, "LOWRANK_ODE_TEST_NAMESPACE": library}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TEST_MODULES]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if re.search(r"\d+ (passed|failed)", ln)]
    summary = lines[-1].strip("= ") if lines else f"pytest exit status {proc.returncode}"
    if proc.returncode != 0:
        print(proc.stdout[-4000:], proc.stderr[-2000:], sep="\n", file=sys.stderr)
    return summary, proc.returncode == 0


def _median_time(fn: Callable[[], Any], sync: Callable[[], None], repeats: int) -> float:
    fn()  # warm-up (kernels compiled, workspaces allocated)
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def dlrt_epoch(
    library: str,
    sync: Callable[[], None],
    model: str = "mlp",
    n_train: int | None = None,
    n_test: int | None = None,
) -> dict[str, Any]:
    """One epoch of rank-adaptive DLRT (the paper's recipe of ``model``, τ = 0.11, float32)
    through :meth:`Trainer.fit` with ``array_library=library``: seconds (the epoch and its test
    evaluation, the device synchronized), test accuracy, ranks."""
    from lowrank_ode.data import load_builtin_mnist
    from lowrank_ode.dlrt import TrainConfig, Trainer

    x, y, xt, yt = load_builtin_mnist(flat=model == "mlp", dtype="float32")
    x, y, xt, yt = x[:n_train], y[:n_train], xt[:n_test], yt[:n_test]
    cfg = TrainConfig(
        model=model, method="dlrt-adaptive", tau=0.11, dtype="float32", epochs=1, finetune_epochs=0
    )
    tr = Trainer(cfg, (x, y, xt, yt), array_library=library)  # network and data moved once
    sync()
    t0 = time.perf_counter()
    res = tr.fit()
    sync()
    return {
        "seconds": time.perf_counter() - t0,
        "test_accuracy": res["test_accuracy"],
        "ranks": res["ranks"],
    }


def timing_study(
    xp: Any, sync: Callable[[], None], width: int, ranks: list[int], repeats: int
) -> dict[str, dict[str, float]]:
    """Seconds per training step and per prediction pass, per rank and dense (``"dense"``)."""
    from lowrank_ode.dlrt import TrainConfig, Trainer

    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, width)).astype("float32")
    y = rng.integers(0, 10, 500)
    put = (lambda a: a) if xp is None else xp.asarray
    out = {}
    for rank in [None, *ranks]:
        cfg = TrainConfig(
            method="dense" if rank is None else "dlrt",
            rank=rank or 1,
            widths=(width,) * 5 + (10,),
            optimizer="sgd",
            lr=1e-3,
            dtype="float32",
            batch_size=500,
            init_core="product",
        )
        tr = Trainer(cfg, (x, y, x[:10], y[:10]))
        if xp is not None:
            tr.model.map_params(xp.asarray)
        xd, yd = put(x), put(y)
        out["dense" if rank is None else str(rank)] = {
            "train_s": _median_time(lambda tr=tr, xd=xd, yd=yd: tr.step(xd, yd), sync, repeats),
            "predict_s": _median_time(lambda tr=tr, xd=xd: tr.model.forward(xd), sync, repeats),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the table; 0 when every test passed, 1 otherwise, 2 without a device."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="width 512, ranks 5/20/80/256")
    p.add_argument(
        "--array-library",
        choices=["cupy", "array_api_strict"],
        default="cupy",
        help="library under test (array_api_strict: a CPU dry run of this script)",
    )
    p.add_argument("--skip-tests", action="store_true", help="skip step 1 (the test modules)")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)
    try:
        xp, desc, sync = device_namespace(a.array_library)
    except NoDevice as exc:
        print(f"gpu_check: {exc}; nothing was checked.", file=sys.stderr)
        return 2
    dry = a.array_library != "cupy"
    width = 64 if dry else (512 if a.quick else 4096)
    ranks = [4, 16] if dry else ([5, 20, 80, 256] if a.quick else [5, 20, 80, 320, 1280, 2048])
    lines = [f"## GPU check on {desc}", "", "| check | GPU | CPU (NumPy) |", "|---|---|---|"]
    ok = True
    if not a.skip_tests:
        summary, ok = run_tests(a.array_library)
        lines.append(
            f"| core, layer, DLRT-step and Trainer.fit tests under {a.array_library} | {summary} "
            "| — |"
        )
    for model, label, n_train, n_test in (
        ("mlp", "MLP 784-500×4-10", 512 if dry else None, None),
        ("lenet5", "LeNet-5", 32 if dry else None, 64 if dry else None),
    ):
        gpu = dlrt_epoch(a.array_library, sync, model, n_train, n_test)
        cpu = dlrt_epoch("numpy", lambda: None, model, n_train, n_test)
        lines.append(
            f"| one DLRT epoch through Trainer.fit ({label}, τ 0.11, float32, "
            f"{n_train or 5000} images): seconds | {gpu['seconds']:.2f} | {cpu['seconds']:.2f} |"
        )
        lines.append(
            f"| … test accuracy %, ranks | {100 * gpu['test_accuracy']:.2f}, {gpu['ranks']} | "
            f"{100 * cpu['test_accuracy']:.2f}, {cpu['ranks']} |"
        )
    g = timing_study(xp, sync, width, ranks, a.repeats)
    c = timing_study(None, lambda: None, width, ranks, a.repeats)
    for key in g:
        label = "dense" if key == "dense" else f"rank {key}"
        for what in ("train_s", "predict_s"):
            lines.append(
                f"| width {width}, batch 500, {label}: {what[:-2]} step (ms) | "
                f"{1e3 * g[key][what]:.1f} | {1e3 * c[key][what]:.1f} |"
            )
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
