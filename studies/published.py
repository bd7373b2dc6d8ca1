"""Published values the studies compare with, each with its source.

Every number that a study, a table or a document sets beside ours lives here, with the place it
was published: a table, figure or section of a paper, or a file (and commit) of the authors'
public repository.  The studies import these values; nothing is re-typed elsewhere.

Two kinds of source appear:

* the papers (cited by authors, venue and arXiv number);
* the authors' public code repositories on GitHub, cited as ``owner/repo``, path and commit,
  for the experiment recipes (learning rate, epochs, runs) and for tables the code produced.

Derived values (compression rates) are *computed* from the published ranks by
:func:`eval_params` and :func:`train_params`, never copied, so that the counting convention is
explicit.  In particular the official LeNet-5 table (:data:`LENET5_OFFICIAL`) reports a
compression that omits the ``n_in · r`` parameters of each factorization; its true compression
is :func:`lenet5_compression` of its ranks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Source",
    "PAPER",
    "MLP_SOURCE",
    "LENET5_TABLE_SOURCE",
    "LENET5_SCRIPT_SOURCE",
    "ROBUSTNESS_SCRIPT_SOURCE",
    "MLPRow",
    "MLP_WIDTHS",
    "MLP_DENSE",
    "MLP_TAU",
    "LeNetRow",
    "LENET5_LAYERS",
    "LENET5_OUTPUT",
    "LENET5_OFFICIAL",
    "LENET5_DENSE",
    "LENET5_RECIPE",
    "ROBUSTNESS",
    "ROBUSTNESS_SOURCE",
    "ROBUSTNESS_RECIPE",
    "TIMING",
    "TIMING_SOURCE",
    "CLASSICAL",
    "eval_params",
    "train_params",
    "mlp_layers",
    "compression",
    "mlp_compression",
    "lenet5_compression",
    "all_sources",
]


@dataclass(frozen=True)
class Source:
    """Where a published value comes from.

    Parameters
    ----------
    work : str
        The paper (authors, title, venue, arXiv number) or the public repository
        (``owner/repo`` on GitHub).
    where : str
        Table, figure or section of the paper, or the file path in the repository (and the
        part of the file).
    commit : str or None
        The repository commit the values were read at (``None`` for a paper).
    """

    work: str
    where: str
    commit: str | None = None

    def __str__(self) -> str:
        at = f" at commit {self.commit}" if self.commit else ""
        return f"{self.work}, {self.where}{at}"


#: The DLRT paper.
PAPER = (
    "S. Schotthöfer, E. Zangrando, J. Kusch, G. Ceruti, F. Tudisco, 'Low-rank lottery tickets: "
    "finding efficient low-rank neural networks via matrix differential equations', "
    "NeurIPS 2022 (arXiv:2205.13571)"
)

# ----------------------------------------------------------------------------- MLP (Sec. 5.1)
#: The MLP τ grids (w = 500 and w = 784): the paper's Sec. 5.1 tables, as tabulated by the
#: authors' plotting script (test accuracies ``accs_500``/``accs_784`` and the per-layer ranks
#: ``e0xx_ranks`` in ``print_param_counts``).
MLP_SOURCE = Source(
    "github.com/CSMMLab/DLRT-Net (the paper's TensorFlow code)",
    "illustration/create_illustrations_talk.py, print_param_counts(); paper Sec. 5.1",
    "2818c8a7512694401a8d2416476bb62f217c544d",
)


@dataclass(frozen=True)
class MLPRow:
    """One published row of the MLP τ grid: test accuracy (%) and the four hidden ranks."""

    test_accuracy: float
    ranks: tuple[int, ...]


#: The networks: 784 → w → w → w → w → 10, ReLU; the last layer stays dense.
MLP_WIDTHS: dict[int, tuple[int, ...]] = {
    500: (784, 500, 500, 500, 500, 10),
    784: (784, 784, 784, 784, 784, 10),
}
#: Dense baselines (test accuracy %), same source.
MLP_DENSE: dict[int, float] = {500: 98.54, 784: 98.53}
#: τ → published row, per width (adaptive training followed by fine-tuning in frozen bases).
MLP_TAU: dict[int, dict[float, MLPRow]] = {
    500: {
        0.03: MLPRow(98.49, (176, 170, 171, 174)),
        0.05: MLPRow(98.56, (81, 104, 111, 117)),
        0.07: MLPRow(98.52, (52, 67, 73, 72)),
        0.09: MLPRow(98.34, (35, 53, 51, 46)),
        0.11: MLPRow(98.11, (27, 40, 37, 38)),
        0.13: MLPRow(97.50, (20, 31, 32, 30)),
        0.15: MLPRow(97.22, (17, 25, 26, 24)),
        0.17: MLPRow(96.90, (13, 21, 24, 20)),
    },
    784: {
        0.03: MLPRow(98.61, (190, 190, 190, 190)),
        0.05: MLPRow(98.59, (124, 120, 125, 126)),
        0.07: MLPRow(98.58, (76, 86, 85, 83)),
        0.09: MLPRow(98.49, (56, 67, 63, 59)),
        0.11: MLPRow(98.12, (35, 49, 47, 43)),
        0.13: MLPRow(97.95, (29, 35, 38, 34)),
        0.15: MLPRow(97.81, (22, 29, 27, 27)),
        0.17: MLPRow(97.40, (17, 23, 22, 23)),
    },
}

# ----------------------------------------------------------------------------- LeNet-5
#: The official LeNet-5 τ table (mean and std of the test accuracy over 5 runs; ranks of the
#: best run; their compression columns).  The file's first row, τ = 0.07, was overwritten by
#: the dense baseline in the script that wrote it, so τ = 0.07 has no published row.  The script
#: takes each DLRT run's test accuracy at its epoch of least validation loss, but each dense
#: run's at its epoch of *highest test accuracy* (``extract_best_val(..., 'test_acc')``), so the
#: dense baseline is the best epoch of each run, an optimistic figure.
LENET5_TABLE_SOURCE = Source(
    "github.com/COMPiLELab/DLRT-Net (the paper's PyTorch code)",
    "Lenet_experiment/cross_val_tab_paper.csv (written by Lenet_experiment/produce_results.py)",
    "aea3af5e1e773b6cec3f0e49b8bfd14e77e42571",
)
#: The official LeNet-5 recipe: 20 epochs, batch 128, SGD lr 0.05, 5 runs per τ.
LENET5_SCRIPT_SOURCE = Source(
    "github.com/COMPiLELab/DLRT-Net (the paper's PyTorch code)",
    "Lenet_experiment/run_lenet_mnist.py (argparse defaults)",
    "aea3af5e1e773b6cec3f0e49b8bfd14e77e42571",
)


@dataclass(frozen=True)
class LeNetRow:
    """One row of the official LeNet-5 table.

    ``their_cr_test`` / ``their_cr_train`` are the file's compression columns (%), which count
    ``r (r + n_out)`` per factorized layer and omit ``n_in · r``; use
    :func:`lenet5_compression` of ``ranks`` for the true value.
    """

    mean: float
    std: float
    ranks: tuple[int, int, int]
    their_cr_test: float
    their_cr_train: float


#: The three factorized LeNet-5 layers as matrices (n_out, n_in): conv1 20 × (1·5·5),
#: conv2 50 × (20·5·5), fc1 500 × 800; then the dense output layer 10 × 500.
LENET5_LAYERS: tuple[tuple[int, int], ...] = ((20, 25), (50, 500), (500, 800))
LENET5_OUTPUT: tuple[int, int] = (10, 500)

LENET5_OFFICIAL: dict[float, LeNetRow] = {
    0.09: LeNetRow(98.161, 0.260, (10, 23, 62), 91.3, 38.2),
    0.11: LeNetRow(98.212, 0.438, (10, 20, 48), 93.0, 52.0),
    0.13: LeNetRow(97.872, 0.489, (9, 16, 37), 94.3, 63.2),
    0.15: LeNetRow(98.139, 0.329, (9, 16, 28), 95.3, 70.8),
    0.2: LeNetRow(98.115, 0.343, (8, 8, 15), 97.0, 84.3),
    0.3: LeNetRow(97.451, 0.484, (4, 6, 8), 97.8, 90.6),
    0.4: LeNetRow(95.967, 0.949, (2, 4, 4), 98.3, 94.4),
    0.45: LeNetRow(94.068, 0.486, (2, 2, 3), 98.5, 95.9),
}
#: The dense LeNet-5 baseline of the same file: mean ± std (%) over its runs.
LENET5_DENSE: tuple[float, float] = (98.819, 0.064)
LENET5_RECIPE = {"epochs": 20, "batch_size": 128, "optimizer": "sgd", "lr": 0.05, "runs": 5}

# ----------------------------------------------------------------------------- robustness
#: Robustness to small singular values (paper Sec. 5.3): LeNet-5, fixed rank 20 in conv1,
#: conv2 and fc1, initial singular values |N(0,1)| sorted × decay^(−k); mean ± std (%) of the
#: test accuracy over 10 runs, DLRT against the plain factorization W = U Vᵀ trained by SGD.
ROBUSTNESS_SOURCE = Source(PAPER, "Sec. 5.3 (robustness with respect to small singular values)")
ROBUSTNESS: dict[int, dict[str, tuple[float, float]]] = {
    1: {"dlrt": (97.81, 0.14), "vanilla": (93.74, 1.39)},
    2: {"dlrt": (97.29, 0.29), "vanilla": (90.91, 2.46)},
    10: {"dlrt": (97.07, 0.65), "vanilla": (86.24, 4.56)},
}
#: The official robustness recipe: batch 128, 20 epochs, SGD lr 0.01, 10 runs per decay.
ROBUSTNESS_SCRIPT_SOURCE = Source(
    "github.com/COMPiLELab/DLRT-Net (the paper's PyTorch code)",
    "UV_vanilla/dlrt_factorization_run.py (argparse defaults)",
    "aea3af5e1e773b6cec3f0e49b8bfd14e77e42571",
)
ROBUSTNESS_RECIPE = {
    "rank": 20,
    "epochs": 20,
    "batch_size": 128,
    "optimizer": "sgd",
    "lr": 0.01,
    "runs": 10,
}

# ----------------------------------------------------------------------------- timing
#: Seconds per training batch and per prediction of the test set (paper Fig. 3: 5 layers of
#: width 5120, batch 500, on a GPU), keyed by rank ("dense" for the dense network).
TIMING_SOURCE = Source(PAPER, "Fig. 3 (timings against the rank)")
TIMING: dict[str, dict[int | str, float]] = {
    "train": {"dense": 0.320, 5: 0.072, 20: 0.099, 80: 0.199, 160: 0.388, 320: 0.855},
    "predict": {"dense": 1.248, 5: 0.247, 160: 0.266, 640: 0.480, 1280: 0.797, 2560: 1.430},
}

# ----------------------------------------------------------------------------- classical DLRA
_KLW = (
    "O. Kieri, C. Lubich, H. Walach, 'Discretized dynamical low-rank approximation in the "
    "presence of small singular values', SIAM J. Numer. Anal. 54 (2016)"
)
_CL = (
    "G. Ceruti, C. Lubich, 'An unconventional robust integrator for dynamical low-rank "
    "approximation', BIT 62 (2022) (arXiv:2010.02022)"
)
_CKL = (
    "G. Ceruti, J. Kusch, C. Lubich, 'A rank-adaptive robust integrator for dynamical low-rank "
    "approximation', BIT 62 (2022) (arXiv:2104.05247)"
)
_CEKL = (
    "G. Ceruti, L. Einkemmer, J. Kusch, C. Lubich, 'A robust second-order low-rank BUG "
    "integrator based on the midpoint rule', BIT 64 (2024) (arXiv:2402.08607)"
)

#: What the classical papers publish for the integrator studies.  These papers show their
#: experiments as figures, not tables: the entries are the set-ups and the claims, and the KLW
#: entry gives the approximate levels of the published curves (order of magnitude).
CLASSICAL: dict[str, dict[str, object]] = {
    "klw_robustness": {
        "source": f"{_CL}, numerical experiments; robustness theory: {_KLW}",
        "bug_r16": {0.1: 3e-2, 0.005: 2e-3},  # first-order BUG curve, r = 16, ‖W‖₂ = 1
        "ksl": {4: 9.8e-2, 8: 6.1e-3, 16: 2.4e-5},  # KSL on the best-approximation error
    },
    "schrodinger_adaptive": {
        "source": f"{_CKL}, numerical experiment: discrete Schrödinger equation",
        "setup": "N=100, T=1, ranks 4/8/12, h 1e-1…1e-3, RK4 sub-steps, adaptive tol 1e-6 "
        "(ℓ¹ tail), rank cap 30",
        "claims": "first-order error curves (slope-1 guide) down to a rank-dependent plateau; "
        "adaptive rank follows the solution; norm and energy nearly conserved by "
        "the rank-adaptive method",
    },
    "midpoint_order": {
        "source": f"{_CEKL}, numerical experiment: non-stiff discrete Schrödinger equation",
        "setup": "N=500, T=0.5, h=T·10^linspace(0.1,−2.5,10), r=10/15/20, relative error "
        "vs tight reference",
        "order": 2,
    },
    "approximation": {
        "source": f"{_CKL}, error bound c₀δ + c₁ε + c₂h + c₃ϑ/h; {PAPER}, Sec. 4 "
        "(‖W(t_k) − Y_k‖ ≤ c₁ε + c₂λ + c₃ϑ/λ)",
        "form": "c1*eps + c2*h + c3*theta/h, constants independent of the singular values",
    },
    "descent": {
        "source": f"{_CKL}, monotone decrease in gradient flows up to the truncation "
        f"tolerance; {PAPER}, Sec. 4 (descent)",
        "claim": "f(Y_{n+1}) ≤ f(Y_n) − αh + βϑ (descent up to the truncation), for h small enough",
    },
}


# ----------------------------------------------------------------------------- counting
def _check_ranks(layers: Sequence[tuple[int, int]], ranks: Sequence[int]) -> None:
    if len(ranks) != len(layers):
        raise ValueError(f"ranks must give one rank per layer ({len(layers)}), got {ranks!r}")
    for (n_out, n_in), r in zip(layers, ranks, strict=True):
        if not (isinstance(r, int) and 1 <= r <= min(n_out, n_in)):
            raise ValueError(f"rank {r!r} is not in [1, {min(n_out, n_in)}] for {n_out}×{n_in}")


def eval_params(
    layers: Sequence[tuple[int, int]], ranks: Sequence[int], dense: Sequence[tuple[int, int]]
) -> int:
    """Evaluation parameters: ``Σ r (n_out + n_in)`` per factorized layer, plus dense layers.

    Parameters
    ----------
    layers : sequence of (n_out, n_in)
        The factorized layers as matrices (a convolution as C_out × C_in·k²).
    ranks : sequence of int
        One rank per factorized layer.
    dense : sequence of (n_out, n_in)
        Layers that stay dense (the output layer).  Biases are not counted.

    Returns
    -------
    int
    """
    _check_ranks(layers, ranks)
    low = sum(r * (n + m) for (n, m), r in zip(layers, ranks, strict=True))
    return low + sum(n * m for n, m in dense)


def train_params(
    layers: Sequence[tuple[int, int]], ranks: Sequence[int], dense: Sequence[tuple[int, int]]
) -> int:
    """Training parameters: ``Σ [2r (n_out + n_in) + 4r²]`` (the augmented bases and core of
    the rank-adaptive step), plus the dense layers; the paper's convention."""
    _check_ranks(layers, ranks)
    low = sum(2 * r * (n + m) + 4 * r * r for (n, m), r in zip(layers, ranks, strict=True))
    return low + sum(n * m for n, m in dense)


def compression(
    layers: Sequence[tuple[int, int]],
    ranks: Sequence[int],
    dense: Sequence[tuple[int, int]],
    kind: str = "eval",
) -> float:
    """Compression rate in percent, ``100 (1 − params / dense params)``; ``kind`` ∈
    {"eval", "train"}.  Negative when the factorization needs more parameters."""
    if kind not in ("eval", "train"):
        raise ValueError(f"kind must be 'eval' or 'train', got {kind!r}")
    count = eval_params if kind == "eval" else train_params
    full = sum(n * m for n, m in (*layers, *dense))
    return 100.0 * (1.0 - count(layers, ranks, dense) / full)


def mlp_layers(widths: Sequence[int]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The factorized layers and the dense output layer of the MLP ``widths`` as (n_out, n_in)."""
    pairs = [(b, a) for a, b in zip(widths[:-1], widths[1:], strict=False)]
    return pairs[:-1], pairs[-1:]


def mlp_compression(widths: Sequence[int], ranks: Sequence[int], kind: str = "eval") -> float:
    """Compression (%) of the MLP ``widths`` with hidden-layer ``ranks``."""
    layers, dense = mlp_layers(widths)
    return compression(layers, ranks, dense, kind)


def lenet5_compression(ranks: Sequence[int], kind: str = "eval") -> float:
    """True compression (%) of LeNet-5 with ranks (conv1, conv2, fc1), ``n_in · r`` included."""
    return compression(LENET5_LAYERS, ranks, [LENET5_OUTPUT], kind)


def all_sources() -> dict[str, str]:
    """Every source cited by this module, by the name of the values it backs."""
    return {
        "MLP_TAU, MLP_DENSE": str(MLP_SOURCE),
        "LENET5_OFFICIAL, LENET5_DENSE": str(LENET5_TABLE_SOURCE),
        "LENET5_RECIPE": str(LENET5_SCRIPT_SOURCE),
        "ROBUSTNESS": str(ROBUSTNESS_SOURCE),
        "ROBUSTNESS_RECIPE": str(ROBUSTNESS_SCRIPT_SOURCE),
        "TIMING": str(TIMING_SOURCE),
        **{f"CLASSICAL[{k!r}]": str(v["source"]) for k, v in CLASSICAL.items()},
    }
