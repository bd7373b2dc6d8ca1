"""Forward+backward timings of LeNet-5 and the 784-500×4-10 MLP, dense vs low-rank.

Not a test.  Run::

    .venv/bin/python benchmarks/bench_nn.py [--repeats N] [--threads T]

What is timed: one ``model.forward`` + ``SoftmaxCrossEntropy.forward`` + ``backward`` +
``model.backward`` on random data (median over ``repeats`` after two warm-ups).  For the low-rank
models the column ``+K,L`` additionally times the two DLRT gradient products of every factorised
layer (``grad_right(V)``, ``grad_left(U)``) that the K- and L-steps need.

GEMM share: every matrix product of :mod:`lowrank_ode.nn` goes through
``lowrank_ode.nn._ops.matmul``; the benchmark replaces that function by a wrapper that
accumulates ``time.perf_counter`` around each call (a separate, instrumented set of repetitions),
and reports ``GEMM time / total time``.  The rest is im2col/col2im copies, pooling, activations,
the loss, and Python overhead.

Measured on a shared 2-vCPU AMD EPYC VM (other jobs running, load average about 1.5–2, so
expect ±20 % noise), NumPy 2.4.6 with scipy-openblas 0.3.31, one BLAS thread, with
``.venv/bin/python benchmarks/bench_nn.py --repeats 20``:

    # AMD EPYC, 2 logical CPUs, NumPy 2.4.6, Python 3.11.7, BLAS threads 1, median of 20
    model                   dtype     batch  fwd+bwd ms  GEMM %  +K,L ms
    --------------------------------------------------------------------
    LeNet-5 dense           float32     128      110.34    31.4
    LeNet-5 dense           float64     128      164.50    37.5
    LeNet-5 r=20,20,20      float32     128       78.72    25.3    87.52
    LeNet-5 r=20,20,20      float64     128      160.39    31.8   165.64
    MLP 784-500x4-10 dense  float32     256       24.97    78.9
    MLP 784-500x4-10 dense  float64     256       43.56    86.9
    MLP 784-500x4-10 r=20   float32     256        5.90    27.6     8.76
    MLP 784-500x4-10 r=20   float64     256        8.79    41.1    12.71

Reading it: the MLP is GEMM-bound when dense (≈80–87 %); at rank 20 its products are ~20× smaller
and the step is ~4–5× faster, now dominated by the element-wise work.  LeNet-5 spends only about
a third of its time in GEMMs: ``im2col`` (stack + transpose copy), ``col2im_t``, max pooling and
ReLU masks on the 128×20×24×24 activations dominate, so factorising the convolutions helps little.
``--threads 2`` on this shared VM made timings erratic (spinning OpenBLAS threads), hence the
default of one thread.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

# BLAS threads must be fixed before NumPy is imported: ``--threads`` (default 1).  Multithreaded
# OpenBLAS on a shared/oversubscribed machine gives erratic timings (spinning worker threads).
if __name__ == "__main__":
    _t = "1"
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            _t = sys.argv[i + 1]
        elif arg.startswith("--threads="):
            _t = arg.split("=", 1)[1]
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = _t

import numpy as np  # noqa: E402

from lowrank_ode import nn  # noqa: E402
from lowrank_ode.timing import matmul_share, median_time  # noqa: E402


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _step(model: nn.Sequential, x: np.ndarray, labels: np.ndarray, kl: bool) -> None:
    loss = nn.SoftmaxCrossEntropy()
    loss.forward(model.forward(x), labels)
    model.backward(loss.backward())
    if kl:
        for layer in model.low_rank_layers():
            layer.grad_right(layer.V)
            layer.grad_left(layer.U)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    cases = [
        ("LeNet-5 dense", lambda dt: nn.lenet5(False, dtype=dt, rng=1), (128, 1, 28, 28)),
        ("LeNet-5 r=20,20,20", lambda dt: nn.lenet5(True, 20, dtype=dt, rng=1), (128, 1, 28, 28)),
        ("MLP 784-500x4-10 dense", lambda dt: nn.mlp(low_rank=False, dtype=dt, rng=1), (256, 784)),
        ("MLP 784-500x4-10 r=20", lambda dt: nn.mlp(rank=20, dtype=dt, rng=1), (256, 784)),
    ]
    print(
        f"# {_cpu_name()}, {os.cpu_count()} logical CPUs, NumPy {np.__version__}, "
        f"Python {platform.python_version()}, BLAS threads {args.threads}, "
        f"median of {args.repeats}"
    )
    header = f"{'model':<24}{'dtype':<9}{'batch':>6}{'fwd+bwd ms':>12}{'GEMM %':>8}{'+K,L ms':>9}"
    print(header)
    print("-" * len(header))
    for name, build, shape in cases:
        for dtype in (np.float32, np.float64):
            model = build(dtype)
            x = rng.standard_normal(shape).astype(dtype)
            labels = rng.integers(0, 10, size=shape[0])
            step = lambda m=model, x=x, y=labels: _step(m, x, y, False)
            t = median_time(step, args.repeats, warmup=2)
            share = matmul_share(step, args.repeats)
            kl = ""
            if model.low_rank_layers():
                step_kl = lambda m=model, x=x, y=labels: _step(m, x, y, True)
                kl = f"{1e3 * median_time(step_kl, args.repeats, warmup=2):9.2f}"
            print(
                f"{name:<24}{np.dtype(dtype).name:<9}{shape[0]:>6}{1e3 * t:12.2f}"
                f"{100 * share:8.1f}{kl:>9}"
            )


if __name__ == "__main__":
    main()
