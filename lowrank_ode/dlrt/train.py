"""The training loop: epochs of mini-batch integrator steps, evaluation, history, checkpoints.

Every method is an integrator of :mod:`lowrank_ode.integrators` stepping a
:class:`~lowrank_ode.dlrt.flow.NetworkFlow` with an optimizer as sub-step solver and the learning
rate as step size — the trainer only feeds batches and records:

=====================  ==============================================  =====================
``method``             integrator                                      passes per batch
=====================  ==============================================  =====================
``dense``              plain optimizer step on the dense network       1
``vanilla``            plain optimizer step on U, V of W = U Vᵀ        1
``dlrt``               fixed-rank BUG (K/L share one pass, then S)     2
``dlrt-adaptive``      rank-adaptive BUG, truncation τ‖σ‖₂             1
``dlrt-single-pass``   parallel BUG (K, L, S from one pass), τ         1
``ksl``                projector splitting (K, backward S, L)          3
``dense-truncate``     dense training, then SVD truncation with τ      1
=====================  ==============================================  =====================

Passes per batch are those of an Euler-type sub-step (SGD, momentum, Adam): the rank-adaptive
step's S-step starts at W₀ (its augmented bases contain U₀ and V₀) and reuses the pass of the K-
and L-steps.  :attr:`Integrator.n_evals <lowrank_ode.integrators.Integrator.n_evals>` counts them.

``finetune_epochs`` adds a phase with frozen bases (:class:`FixedBasisGalerkin`: S and the
dense parameters only).  Parameter counts (evaluation Σ r(n+m), training Σ [2r(n+m) + 4r²], dense
layers n·m, biases excluded) are those of :mod:`lowrank_ode.nn.models`.

``array_library`` (:data:`ARRAY_LIBRARIES`: ``"numpy"``, ``"cupy"``, ``"array_api_strict"``)
chooses where the arrays live: the network is built with NumPy and its parameters are moved
once, the data set is moved once, the batches are gathered on the device from a shuffling
order drawn on the host (the same order for every library), and evaluation and prediction run
on the device; only scalars (losses, counts of correct predictions) come back to the host.
Checkpoints hold host copies.  The numbers of a run do not depend on the library beyond
rounding, so it is an argument of :class:`Trainer` and :func:`train`, recorded in the results,
not a field of :class:`TrainConfig`.
"""

from __future__ import annotations

import functools
import json
import math
import numbers
import os
import tempfile
import time
import warnings
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._array_api import ARRAY_LIBRARIES, array_namespace, library_namespace, qr_pos, to_numpy
from .._io import atomic_open
from .._threads import blas_threads, check_threads, thread_info
from ..exceptions import NonFiniteStep, NumericalBreakdown
from ..integrators import BUG, KSL, FixedBasisGalerkin, Full, ParallelBUG, RankAdaptiveBUG
from ..integrators.base import Integrator
from ..lowrank import LowRank
from ..nn.models import LENET5_FACTORIZED_SHAPES, compression_rate, count_params, lenet5, mlp
from ..truncation import Truncation
from .flow import NetworkFlow, VanillaFlow
from .optim import _Stateful, get_optimizer

__all__ = [
    "TrainConfig",
    "Trainer",
    "TrainingDiverged",
    "train",
    "METHODS",
    "PAPER_DEFAULTS",
    "ARRAY_LIBRARIES",
]

#: The training methods and the integrator class each one steps with (see the table above);
#: the rank-adaptive ones get the truncation of the configuration.
METHODS: dict[str, type[Integrator]] = {
    "dense": Full,
    "vanilla": Full,
    "dlrt": BUG,
    "dlrt-adaptive": RankAdaptiveBUG,
    "dlrt-single-pass": ParallelBUG,
    "ksl": KSL,
    "dense-truncate": Full,
}


class TrainingDiverged(NumericalBreakdown):
    """Training diverged; the last good checkpoint is left intact.

    Raised when the loss or the parameters become NaN/inf, or when a mini-batch loss exceeds
    ``divergence_factor`` times the first mini-batch loss of the run (see :class:`TrainConfig`).
    """


#: The paper's recipe per model; a :class:`TrainConfig` field left at ``None`` takes these.
#: Sources: MLP — Schotthöfer et al. (NeurIPS 2022), Sec. 6.2 / Table 1 (784-500×4-10, Adam
#: 1e-3, batch 256, rank-adaptive training followed by fine-tuning in frozen bases) and the
#: official DLRT code's Gaussian-product start (``init_core="product"``); LeNet-5 — the
#: official LeNet-5 experiment (COMPiLELab/DLRT-Net, ``Lenet_experiment/run_lenet_mnist.py``:
#: SGD lr 0.05, batch 128, 20 epochs; its layers ``models_folder/Lenet5.py``,
#: ``optimizer_KLS/my_conv.py`` and ``Linear_layer_lr_new.py``: start rank and rank cap
#: ⌊min(n, m)/2⌋, Haar-random bases with half-normal singular values, rank ≥ 2).  Training is
#: float32, as in the paper and every framework.
PAPER_DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {
        "optimizer": "adam",
        "lr": 1e-3,
        "batch_size": 256,
        # the paper starts at rank 350 from its own initialization; from the product start,
        # rank 100 reaches the Table 1 ranks (start 150 → 39–41 at τ = 0.11, 250 → 45–47;
        # docs/design.md, "Initialization and the relative truncation")
        "rank": 100,
        "init_core": "product",
        "max_rank_fraction": 1.0,  # no cap
        "min_rank": 1,
        "epochs": 20,
        "finetune_epochs": 5,  # fine-tuning phase of Table 1; the count is this library's choice
    },
    "lenet5": {
        "optimizer": "sgd",
        "lr": 0.05,
        "batch_size": 128,
        # the official layers start the adaptive methods at, and never exceed, half the full
        # rank: 10, 25, 250 (``rmax = min(n, m) // 2`` in optimizer_KLS/my_conv.py and
        # Linear_layer_lr_new.py); the fixed-rank methods at min(rank, n, m)
        "rank": 500,
        "max_rank_fraction": 0.5,
        "min_rank": 2,  # the official truncation never goes below rank 2
        "init_core": "halfnormal",
        "epochs": 20,
        "finetune_epochs": 0,
    },
}
#: initial points of the factorized layers (``TrainConfig.init_core``)
INIT_CORES = ("svd", "random", "product", "halfnormal")
#: default relative truncation tolerance of ``dlrt-adaptive`` (paper, Table 1 row τ = 0.11)
DEFAULT_TAU = 0.11


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in checkpoints and JSON outputs).

    A field left at ``None`` where the type allows it takes the paper's recipe for the model
    (:data:`PAPER_DEFAULTS`); the stored configuration holds the resolved values.

    Parameters
    ----------
    model : {"mlp", "lenet5"}
        The network: a fully connected MLP of ``widths`` or LeNet-5.
    method : one of :data:`METHODS`
        The training method (the table of the module docstring).
    tau : float or None
        Relative truncation tolerance of the adaptive methods (ϑ = τ‖σ‖₂).  ``None``:
        :data:`DEFAULT_TAU` for ``dlrt-adaptive`` without ``atol``, no truncation otherwise
        (``dlrt-single-pass`` is then the fixed-rank parallel BUG).
    rank : int or None
        Fixed rank, or the start rank of the adaptive methods (MLP 100, LeNet-5 500), at most
        min(n, m) of each layer and, for the adaptive methods, ⌊``max_rank_fraction``·min(n, m)⌋.
    widths : tuple of int
        MLP widths (input first, classes last); LeNet-5 has fixed shapes.
    epochs, batch_size, lr, optimizer, seed
        The usual; ``optimizer`` ∈ {"sgd", "momentum", "adam"}.  Defaults: 20 epochs; MLP Adam
        1e-3, batch 256; LeNet-5 SGD 0.05, batch 128.
    finetune_epochs : int or None
        Extra epochs with frozen bases (S and dense parameters only); default 5 for the
        MLP with ``dlrt-adaptive``, else 0.
    momentum : float
        Momentum coefficient of ``optimizer="momentum"`` (0 ≤ momentum < 1).
    atol, min_rank, max_rank
        Further truncation options of the adaptive methods (``min_rank`` default: MLP 1,
        LeNet-5 2 as its official code).
    max_rank_fraction : float or None
        Cap of the adaptive methods: no layer's rank (at the start or during training)
        exceeds ⌊max_rank_fraction · min(n, m)⌋ for its n × m weight matrix.  Default: 1.0 (no
        cap) for the MLP, 0.5 for LeNet-5 (its official code: 10, 25, 250).
    decay : float or None
        Prescribe initial singular values ``|N(0,1)|·decay^(−k)`` (robustness study).
    init_core : {"svd", "random", "product", "halfnormal"} or None
        Initial point of the factorized layers: ``"svd"`` — the truncated SVD of a He
        initialization (a flat spectrum); ``"random"`` — the same bases with a Gaussian r × r
        core of the same Frobenius norm (quarter-circle spectrum reaching down to 0);
        ``"product"`` — W₀ = A B Cᵀ with iid N(0, ``init_std``²) factors A (n×r), B (r×r),
        C (m×r), the point the official DLRT code starts from (Keras ``random_normal``), put on
        the manifold by QR (A = Q_A R_A, C = Q_C R_C, S = R_A B R_Cᵀ).  A product of three
        Gaussian matrices has a steeply decaying spectrum, so the relative truncation sheds
        the directions that training does not use; ``"halfnormal"`` — Haar-random orthonormal
        bases U, V and S = diag of the r largest of 2r draws of ``|N(0, 1)|``, the start of the
        official LeNet-5 layers.  Default: ``"product"`` for the MLP, ``"halfnormal"`` for
        LeNet-5 (each as its official code).
    init_std : float
        Entry standard deviation of the ``"product"`` factors (Keras' default 0.05).
    dtype : {"float32", "float64"}
        Precision of the network (default float32).
    divergence_factor : float or None
        Divergence rule: training stops with :class:`TrainingDiverged` as soon as a mini-batch
        loss exceeds ``divergence_factor`` times the loss of the first mini-batch of the run
        (a resumed run keeps its first loss); NaN/inf always stops it.  ``None``: only NaN/inf.

    Raises
    ------
    TypeError
        When a field has the wrong type (e.g. ``tau="0.1"``).
    ValueError
        When a field is out of range, naming it and the value.

    See Also
    --------
    train, Trainer

    Notes
    -----
    The ``lowrank-ode train`` options set the fields of the same name (``--init`` sets
    ``init_core``); a field left at ``None`` takes :data:`PAPER_DEFAULTS` of its model.

    Examples
    --------
    >>> from lowrank_ode.dlrt import TrainConfig
    >>> cfg = TrainConfig(method="dlrt-adaptive", tau=0.1, rank=16, widths=(784, 64, 64, 10))
    >>> cfg.optimizer, cfg.lr, cfg.batch_size
    ('adam', 0.001, 256)
    >>> cfg = TrainConfig(model="lenet5", method="dlrt-adaptive")  # the paper's LeNet-5 recipe
    >>> cfg.optimizer, cfg.lr, cfg.batch_size, cfg.tau, cfg.dtype
    ('sgd', 0.05, 128, 0.11, 'float32')
    """

    model: str = "mlp"
    method: str = "dlrt-adaptive"
    tau: float | None = None
    rank: int | None = None
    widths: tuple[int, ...] = (784, 500, 500, 500, 500, 10)
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    momentum: float = 0.9
    seed: int = 0
    finetune_epochs: int | None = None
    atol: float | None = None
    min_rank: int | None = None
    max_rank: int | None = None
    max_rank_fraction: float | None = None
    decay: float | None = None
    init_core: str | None = None
    init_std: float = 0.05
    dtype: str = "float32"
    divergence_factor: float | None = 100.0

    def __post_init__(self) -> None:
        for name in ("model", "method"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string, got {getattr(self, name)!r}")
        if self.model not in PAPER_DEFAULTS:
            raise ValueError(f"model must be 'mlp' or 'lenet5', got {self.model!r}")
        for name, value in PAPER_DEFAULTS[self.model].items():
            if getattr(self, name) is None:
                if name == "finetune_epochs" and self.method != "dlrt-adaptive":
                    value = 0
                setattr(self, name, value)
        if self.tau is None and self.method == "dlrt-adaptive" and self.atol is None:
            self.tau = DEFAULT_TAU
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {tuple(METHODS)}, got {self.method!r}")
        for name in ("optimizer", "init_core", "dtype"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string, got {getattr(self, name)!r}")
        if self.optimizer not in ("sgd", "momentum", "adam"):
            raise ValueError(
                f"optimizer must be one of ('sgd', 'momentum', 'adam'), got {self.optimizer!r}"
            )
        for name in ("epochs", "finetune_epochs", "batch_size", "rank", "min_rank", "seed"):
            v = getattr(self, name)
            low = 0 if name in ("epochs", "finetune_epochs", "seed") else 1
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{name} must be an integer, got {v!r}")
            if v < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
            setattr(self, name, int(v))  # plain int: the config is stored as JSON
        if self.max_rank is not None:
            v = self.max_rank
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"max_rank must be an integer or None, got {v!r}")
            if v < self.min_rank:
                raise ValueError(f"max_rank must be >= min_rank={self.min_rank}, got {v!r}")
            self.max_rank = int(v)
        if isinstance(self.widths, (str, bytes)) or not hasattr(self.widths, "__iter__"):
            raise TypeError(f"widths must be a sequence of integers, got {self.widths!r}")
        ws = tuple(self.widths)
        if any(isinstance(w, bool) or not isinstance(w, (int, np.integer)) for w in ws):
            raise TypeError(f"widths must be a sequence of integers, got {self.widths!r}")
        self.widths = tuple(int(w) for w in ws)
        if len(self.widths) < 2 or min(self.widths) < 1:
            raise ValueError(f"widths must hold at least 2 positive sizes, got {self.widths!r}")
        if self.model == "lenet5" and self.widths != _MLP_WIDTHS:
            raise ValueError(
                f"widths applies to model 'mlp' only; model 'lenet5' has a fixed architecture, "
                f"got widths={self.widths!r}"
            )
        # real numbers: any numbers.Real (NumPy scalars too), stored as Python floats
        for name, optional in (
            ("lr", False),
            ("momentum", False),
            ("tau", True),
            ("atol", True),
            ("decay", True),
            ("init_std", False),
            ("max_rank_fraction", False),
            ("divergence_factor", True),
        ):
            v = getattr(self, name)
            if v is None and optional:
                continue
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                kind = "a real number or None" if optional else "a real number"
                raise TypeError(f"{name} must be {kind}, got {v!r}")
            setattr(self, name, float(v))
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must satisfy 0 <= momentum < 1, got {self.momentum!r}")
        if self.decay is not None and not (math.isfinite(self.decay) and self.decay > 0):
            raise ValueError(f"decay must be > 0 and finite, got {self.decay!r}")
        if self.tau is not None and not (0 <= self.tau < 1):
            raise ValueError(f"tau must satisfy 0 <= tau < 1, got {self.tau!r}")
        if self.atol is not None and not (math.isfinite(self.atol) and self.atol >= 0):
            raise ValueError(f"atol must be a finite number >= 0, got {self.atol!r}")
        if self.init_core not in INIT_CORES:
            raise ValueError(f"init_core must be one of {INIT_CORES}, got {self.init_core!r}")
        if not 0 < self.max_rank_fraction <= 1:
            raise ValueError(
                f"max_rank_fraction must satisfy 0 < max_rank_fraction <= 1, "
                f"got {self.max_rank_fraction!r}"
            )
        if not 0 < self.init_std < math.inf:
            raise ValueError(f"init_std must be a finite number > 0, got {self.init_std!r}")
        if self.divergence_factor is not None and not self.divergence_factor > 1:
            raise ValueError(
                f"divergence_factor must be a number > 1 or None, got {self.divergence_factor!r}"
            )
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")


_MLP_WIDTHS = (784, 500, 500, 500, 500, 10)


def build_model(cfg: TrainConfig) -> Any:
    """The network of ``cfg`` (dense for the dense methods, factorized otherwise), seeded."""
    low_rank = cfg.method not in ("dense", "dense-truncate")
    rng = np.random.default_rng([cfg.seed, 1])
    dtype = np.dtype(cfg.dtype)
    kw = {"decay": cfg.decay} if cfg.decay is not None else {}
    if cfg.model == "mlp":
        shapes = list(zip(cfg.widths[1:-1], cfg.widths[:-2], strict=True))
        ranks = [start_rank(cfg, shape) for shape in shapes] or cfg.rank
        model = mlp(cfg.widths, low_rank=low_rank, rank=ranks, dtype=dtype, rng=rng, **kw)
    else:
        ranks = [start_rank(cfg, shape) for shape in LENET5_FACTORIZED_SHAPES]
        model = lenet5(low_rank=low_rank, ranks=ranks, dtype=dtype, rng=rng, **kw)
    if cfg.init_core == "random":
        core_rng = np.random.default_rng([cfg.seed, 3])
        for m in model.low_rank_layers():
            G = core_rng.standard_normal(m.S.shape)
            S = G * (np.linalg.norm(m.S) / np.linalg.norm(G))
            m.set_factors(m.U, S.astype(dtype), m.V)
    elif cfg.init_core == "product":
        core_rng = np.random.default_rng([cfg.seed, 4])
        for m in model.low_rank_layers():
            (n, r), k = m.U.shape, m.V.shape[0]
            A, B, C = (cfg.init_std * core_rng.standard_normal(s) for s in ((n, r), (r, r), (k, r)))
            QA, RA = np.linalg.qr(A)
            QC, RC = np.linalg.qr(C)
            m.set_factors(QA.astype(dtype), (RA @ B @ RC.T).astype(dtype), QC.astype(dtype))
    elif cfg.init_core == "halfnormal":
        core_rng = np.random.default_rng([cfg.seed, 5])
        for m in model.low_rank_layers():
            (n, r), k = m.U.shape, m.V.shape[0]
            QU = qr_pos(core_rng.standard_normal((n, r)))[0]  # Haar on the Stiefel manifold
            QV = qr_pos(core_rng.standard_normal((k, r)))[0]
            sigma = np.sort(np.abs(core_rng.standard_normal(2 * r)))[::-1][:r]
            m.set_factors(QU.astype(dtype), np.diag(sigma).astype(dtype), QV.astype(dtype))
    return model


def start_rank(cfg: TrainConfig, shape: tuple[int, int]) -> int:
    """Initial rank of a factorized n × m layer: ``cfg.rank`` within min(n, m) and, for the
    adaptive methods, within the cap ⌊``max_rank_fraction``·min(n, m)⌋ (at least min_rank)."""
    r = min(cfg.rank, *shape)
    if METHODS[cfg.method].rank_adaptive:
        cap = Truncation(min_rank=cfg.min_rank, max_rank_fraction=cfg.max_rank_fraction).cap(shape)
        r = min(r, cap)
    return r


def _truncation(cfg: TrainConfig) -> Truncation | None:
    if cfg.tau is None and cfg.atol is None:
        return None
    fraction = cfg.max_rank_fraction if cfg.max_rank_fraction < 1 else None
    return Truncation(
        rtol=cfg.tau,
        atol=cfg.atol,
        min_rank=cfg.min_rank,
        max_rank=cfg.max_rank,
        max_rank_fraction=fraction,
    )


def training_integrator(cfg: TrainConfig, optimizer: Any) -> Integrator:
    """The integrator implementing ``cfg.method`` with ``optimizer`` as sub-step solver."""
    cls = METHODS[cfg.method]
    return cls(optimizer, _truncation(cfg) if cls.rank_adaptive else None)


def make_integrator(cfg: TrainConfig, optimizer: Any) -> Integrator:
    """Deprecated name of :func:`training_integrator`."""
    warnings.warn(
        "lowrank_ode.dlrt.train.make_integrator is deprecated and will be removed in the next "
        "release; use training_integrator (lowrank_ode.solve.make_integrator builds by name)",
        DeprecationWarning,
        stacklevel=2,
    )
    return training_integrator(cfg, optimizer)


@dataclass
class Trainer:
    """Runs a :class:`TrainConfig` on data (methods: :ref:`training-methods`).

    Parameters
    ----------
    cfg : TrainConfig
        What to train, and how.
    data : (x_train, y_train, x_test, y_test)
        Images flat (N, 784) for the MLP or (N, 1, 28, 28) for LeNet-5; int labels.
    checkpoint : path, optional
        Written atomically after every epoch (``.npz``, no pickle).
    progress : bool
        tqdm progress bar over the batches.
    threads : "auto" or int
        BLAS thread policy of :meth:`fit` (:mod:`lowrank_ode._threads`): ``"auto"`` keeps
        NumPy's BLAS on all cores and every other BLAS pool on one thread, ``N`` puts NumPy's on
        ``N``.  The policy in force is stored in :meth:`results` under ``"threads"``.
    array_library : {"numpy", "cupy", "array_api_strict"}
        Where the network and the data live while training (:data:`ARRAY_LIBRARIES`): NumPy
        (default); CuPy, every array on the GPU; array-api-strict, the generic code path on the
        CPU.  ``data`` is given as NumPy arrays either way and moved once; :meth:`results`
        records the library under ``"array_library"``.
    history : list of dict, optional
        Records of earlier epochs (filled by :meth:`fit`; restored by :meth:`load`).

    Attributes
    ----------
    model
        The network (:mod:`lowrank_ode.nn.models`).
    flow : NetworkFlow
        The network loss as a factored gradient flow; ``flow.evaluations`` records the
        forward/backward passes of the last step.
    integrator : Integrator
        The integrator of ``cfg.method`` with the optimizer as sub-step solver.
    history : list of dict
        One record per epoch (see :meth:`fit`).
    xp
        The array namespace of ``array_library``.
    device_data : (x_train, y_train, x_test, y_test)
        The data in ``xp`` (``data`` itself for NumPy), moved once at construction.

    Raises
    ------
    ValueError
        When images and labels differ in number, or ``array_library`` is not one of
        :data:`ARRAY_LIBRARIES`.
    ArrayLibraryUnavailable
        When ``array_library`` cannot be used here (CuPy not installed, no GPU visible).

    See Also
    --------
    train : build a trainer (or resume one from a checkpoint) and fit it.

    Examples
    --------
    A small network on a slice of the bundled MNIST subset:

    >>> from lowrank_ode.data import load_builtin_mnist
    >>> from lowrank_ode.dlrt import TrainConfig, Trainer
    >>> x_train, y_train, x_test, y_test = load_builtin_mnist()
    >>> data = (x_train[:512], y_train[:512], x_test[:256], y_test[:256])
    >>> cfg = TrainConfig(method="dlrt", rank=8, widths=(784, 32, 10), batch_size=128, epochs=1)
    >>> trainer = Trainer(cfg, data)
    >>> loss = trainer.step(x_train[:128], y_train[:128])  # one step = one BUG step of size lr
    >>> len(trainer.flow.evaluations), trainer.ranks()  # fixed-rank BUG: two passes
    (2, [8])
    >>> res = trainer.fit()  # the remaining epochs; the same dictionary as train()
    >>> res["ranks"], 0.0 <= res["test_accuracy"] <= 1.0
    ([8], True)

    The same run with every array in another library (``"cupy"`` on a GPU; here the CPU
    check of the generic path), the same numbers up to rounding:

    >>> res_np = Trainer(cfg, data).fit()
    >>> res_st = Trainer(cfg, data, array_library="array_api_strict").fit()
    >>> res_st["array_library"], res_st["ranks"]
    ('array_api_strict', [8])
    >>> loss_np, loss_st = (r["history"][0]["train_loss"] for r in (res_np, res_st))
    >>> abs(loss_st - loss_np) < 1e-5 * loss_np  # float32: the same up to rounding
    True
    """

    cfg: TrainConfig
    data: tuple[Any, Any, Any, Any]
    checkpoint: str | Path | None = None
    progress: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    threads: int | str = "auto"
    array_library: str = "numpy"

    def __post_init__(self) -> None:
        cfg = self.cfg
        self.threads = check_threads(self.threads)
        library_namespace(self.array_library)  # an unusable library fails before any work
        self.thread_info: dict[str, Any] | None = None  # set by fit(): the policy in force
        if not isinstance(cfg, TrainConfig):
            raise TypeError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
        self.data = _check_data(self.data, cfg)
        if self.checkpoint is not None:
            check_output_path(self.checkpoint, "checkpoint")
        self._loss_limit: float | None = None
        self.initial_loss: float | None = None
        self.model = build_model(cfg)
        opt_kw = {"beta": cfg.momentum} if cfg.optimizer == "momentum" else {}
        self.optimizer = get_optimizer(cfg.optimizer, **opt_kw)
        self.flow = VanillaFlow(self.model) if cfg.method == "vanilla" else NetworkFlow(self.model)
        self.integrator = training_integrator(cfg, self.optimizer)
        # the fine-tuning phase: S-steps in frozen bases, continuing the optimizer's S-state
        self.finetune_integrator = FixedBasisGalerkin(self.optimizer)
        self.epoch = 0
        self.dense_params = count_params(self.model, "dense")
        x_tr, y_tr, x_te, y_te = self.data
        dt = np.dtype(cfg.dtype)
        if x_tr.dtype != dt or x_te.dtype != dt:  # the network computes in cfg.dtype
            self.data = (x_tr.astype(dt), y_tr, x_te.astype(dt), y_te)
        # the network and the data set move to the array library once; the flow was built on
        # the NumPy network, so every library starts from the same point
        self._moved: tuple[Any, tuple[Any, ...]] | None = None
        if not self._on_host:
            self.model.map_params(self.xp.asarray)
            _ = self.device_data

    @property
    def xp(self) -> Any:
        """The array namespace of ``array_library`` (kept out of the instance: a trainer
        pickles as before)."""
        return _namespace(self.array_library)

    @property
    def _on_host(self) -> bool:
        return self.array_library == "numpy"

    @property
    def device_data(self) -> tuple[Any, ...]:
        """``data`` in the trainer's array library, moved once (again only when ``data`` is
        replaced); ``data`` itself for NumPy."""
        if self._on_host:
            return self.data
        if self._moved is None or self._moved[0] is not self.data:
            self._moved = (self.data, tuple(self.xp.asarray(a) for a in self.data))
        return self._moved[1]

    def _to_library(self, a: Any) -> Any:
        """A NumPy array moved to the trainer's array library (other arrays as they are)."""
        return self.xp.asarray(a) if isinstance(a, np.ndarray) and not self._on_host else a

    # ---------------------------------------------------------------- training
    def step(self, x: Any, y: Any, integrator: Integrator | None = None) -> float:
        """One mini-batch step = one integrator step of size ``lr``; returns the batch loss.

        ``x`` and ``y`` are arrays of the trainer's array library, or NumPy arrays (moved).

        The step goes through :meth:`Integrator.step
        <lowrank_ode.integrators.Integrator.step>`, which counts the forward/backward passes
        (``integrator.n_evals``) and raises :class:`~lowrank_ode.exceptions.NumericalBreakdown`
        on non-finite parameters; either that or a non-finite loss is a divergence.
        """
        integ = integrator or self.integrator
        self.flow.set_batch(self._to_library(x), self._to_library(y))
        try:
            blocks = integ.step(self.flow, 0.0, self.flow.point(), self.cfg.lr)
        except NonFiniteStep as err:  # the step's result holds NaN/inf: the run diverged
            raise self._diverged("non-finite loss or parameters", f" ({err})") from err
        except ArithmeticError as err:  # another breakdown (SVD of a NaN core, ...)
            losses = [ev[0] for ev in self.flow.evaluations]
            if all(math.isfinite(v) for v in losses):
                raise  # not a divergence of the loss: the breakdown itself
            raise self._diverged("non-finite loss inside a step", f" (losses {losses})") from err
        self.flow.load(blocks)
        loss = self.flow.evaluations[0][0]
        if not math.isfinite(loss):
            raise self._diverged("non-finite loss or parameters", f" (loss {loss})")
        if self._loss_limit is None:
            self._set_loss_limit(loss if self.initial_loss is None else self.initial_loss)
        elif loss > self._loss_limit:
            raise self._diverged(
                f"loss {loss:.4g} exceeds divergence_factor={self.cfg.divergence_factor:g} "
                f"times the first loss {self.initial_loss:.4g}"
            )
        return loss

    def _set_loss_limit(self, first: float) -> None:
        """Fix the divergence threshold from the run's first mini-batch loss."""
        self.initial_loss = float(first)
        f = self.cfg.divergence_factor
        self._loss_limit = math.inf if f is None or first <= 0 else f * float(first)

    @property
    def passes(self) -> int:
        """Forward/backward passes made by this trainer's steps (both phases), counted by
        :meth:`Integrator.step <lowrank_ode.integrators.Integrator.step>`."""
        return self.integrator.n_evals + self.finetune_integrator.n_evals

    def _diverged(self, what: str, detail: str = "") -> TrainingDiverged:
        return TrainingDiverged(
            f"{what} at epoch {self.epoch + 1}{detail}; lower the learning rate "
            f"(lr={self.cfg.lr}); the last checkpoint is kept"
        )

    def run_epoch(self, integrator: Integrator | None = None) -> dict[str, Any]:
        """One pass over the training set in a seeded order; returns the epoch's record.

        The order is drawn on the host (the same for every array library) and moved to the
        library once per epoch; each batch is gathered there (``xp.take``).
        """
        x_tr, y_tr = self.device_data[0], self.device_data[1]
        n = int(x_tr.shape[0])
        order = np.random.default_rng([self.cfg.seed, 2, self.epoch]).permutation(n)
        xp, order_d = self.xp, self._to_library(order)
        bs = self.cfg.batch_size
        batches = range(0, n, bs)
        if self.progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc=f"epoch {self.epoch + 1}", unit="batch", leave=False)
        t0 = time.perf_counter()
        losses, accs = [], []
        for s in batches:
            if self._on_host:
                idx = order[s : s + bs]
                xb, yb = x_tr[idx], y_tr[idx]
            else:
                idx = order_d[s : min(s + bs, n)]
                xb, yb = xp.take(x_tr, idx, axis=0), xp.take(y_tr, idx, axis=0)
            losses.append(self.step(xb, yb, integrator))
            accs.append(self.flow.evaluations[0][1])
        seconds = time.perf_counter() - t0
        self.epoch += 1
        rec = {
            "epoch": self.epoch,
            "train_loss": float(np.mean(losses)),
            "train_accuracy": float(np.mean(accs)),
            "test_accuracy": self.evaluate(),
            "seconds": seconds,
            **self.counts(),
        }
        self.history.append(rec)
        if self.checkpoint is not None:
            self.save(self.checkpoint)
        return rec

    def fit(self) -> dict[str, Any]:
        """Train for ``epochs`` (+ ``finetune_epochs``) from the current epoch; return results."""
        total = self.cfg.epochs + self.cfg.finetune_epochs
        with blas_threads(self.threads) as self.thread_info:
            while self.epoch < total:
                phase = None if self.epoch < self.cfg.epochs else self.finetune_integrator
                self.run_epoch(phase)
        return self.results()

    # ---------------------------------------------------------------- evaluation
    def predict(self, x: Any, batch: int | None = None) -> Any:
        """Class predictions of the current network, in batches of ``batch`` images.

        The forward passes run in the trainer's array library: a NumPy ``x`` is moved there
        batch by batch and the predictions come back as a NumPy array; an ``x`` of the library
        (``trainer.device_data[2]``) gives the predictions there, nothing copied to the host.

        The default batch is large for flat inputs (4096: the GEMMs of an MLP get faster with
        more rows) and moderate for images (512: a LeNet-5 patch matrix holds 576 rows per
        image, and larger ones leave the cache without making the products faster).

        Examples
        --------
        >>> from lowrank_ode.data import load_builtin_mnist
        >>> from lowrank_ode.dlrt import TrainConfig, Trainer
        >>> x_train, y_train, x_test, y_test = load_builtin_mnist()
        >>> cfg = TrainConfig(method="dlrt", rank=4, widths=(784, 16, 10), epochs=0)
        >>> tr = Trainer(cfg, (x_train[:64], y_train[:64], x_test[:32], y_test[:32]))
        >>> tr.predict(x_test[:5]).shape
        (5,)
        """
        if batch is None:
            batch = 4096 if x.ndim == 2 else 512
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        if self._on_host:
            out = [
                np.argmax(self.model.forward(x[s : s + batch]), axis=1)
                for s in range(0, len(x), batch)
            ]
            return np.concatenate(out)
        pred = self.xp.concat(list(self._predictions(x, batch)))
        return to_numpy(pred) if isinstance(x, np.ndarray) else pred

    def _predictions(self, x: Any, batch: int) -> Any:
        """The predictions of each batch of ``x``, in the trainer's array library."""
        xp, n = self.xp, int(x.shape[0])
        for s in range(0, n, batch):  # stops within the array: the standard leaves others open
            xb = self._to_library(x[s : min(s + batch, n), ...])
            yield xp.argmax(self.model.forward(xb), axis=1)

    def _accuracy(self, x: Any, y: Any) -> float:
        """Fraction of ``x`` classified as ``y``; one count of correct predictions per batch
        comes back to the host, as a Python int."""
        if self._on_host:
            return float(np.mean(self.predict(x) == y))
        xp, n = self.xp, int(x.shape[0])
        batch = 4096 if x.ndim == 2 else 512
        correct = 0
        for k, pred in enumerate(self._predictions(x, batch)):
            hit = pred == y[k * batch : min((k + 1) * batch, n)]
            correct += int(xp.sum(xp.astype(hit, xp.int64)))
        return correct / n  # = NumPy's mean of the hits: both divide the same exact integers

    def evaluate(self) -> float:
        """Test accuracy of the current network (after truncation for ``dense-truncate``)."""
        x_te, y_te = self.device_data[2], self.device_data[3]
        if self.cfg.method == "dense-truncate":
            with _truncated(self.model, self.cfg):
                return self._accuracy(x_te, y_te)
        return self._accuracy(x_te, y_te)

    def ranks(self) -> list[int]:
        """Current rank of every factorized layer (truncated ranks for ``dense-truncate``)."""
        if self.cfg.method == "dense-truncate":
            return [Y.rank for Y in _truncate_weights(self.model, self.cfg)]
        return [m.rank for m in self.flow.lr_layers]

    def counts(self) -> dict[str, Any]:
        """Ranks, parameter counts and compression rates (percent) of the current network."""
        ranks = self.ranks()
        if self.cfg.method == "dense-truncate":
            ev = count_params(self.model, "eval", ranks=ranks)  # all but the output layer
            c_eval = 100.0 * (1 - ev / self.dense_params)
            return {
                "ranks": ranks,
                "params_eval": ev,
                "params_train": self.dense_params,
                "compression_eval": c_eval,
                "compression_train": 0.0,
            }
        ev, tr = count_params(self.model, "eval"), count_params(self.model, "train")
        if self.cfg.method in ("dense", "vanilla", "dlrt", "ksl"):
            tr = count_params(self.model, "stored") if self.cfg.method != "dense" else ev
        return {
            "ranks": ranks,
            "params_eval": ev,
            "params_train": tr,
            "compression_eval": compression_rate(self.model, "eval"),
            "compression_train": 100.0 * (1 - tr / self.dense_params),
        }

    def results(self) -> dict[str, Any]:
        """The JSON-able summary of the run (plain Python numbers, whatever the array library)."""
        last = self.history[-1] if self.history else {}
        return {
            "config": asdict(self.cfg),
            "test_accuracy": last.get("test_accuracy"),
            "ranks": last.get("ranks", self.ranks()),
            "compression_eval": last.get("compression_eval"),
            "compression_train": last.get("compression_train"),
            "params_dense": self.dense_params,
            "seconds_per_epoch": float(np.mean([h["seconds"] for h in self.history]))
            if self.history
            else None,
            "history": self.history,
            "threads": self.thread_info if self.thread_info is not None else thread_info(),
            "array_library": self.array_library,
        }

    # ---------------------------------------------------------------- checkpoints
    def save(self, path: str | Path) -> None:
        """Write model, optimizer state, epoch and history to ``path`` atomically (npz).

        The arrays are written from host copies, whatever the array library; a checkpoint
        loads into a trainer of any library (:meth:`load`).
        """
        path = Path(path)
        arrays: dict[str, Any] = {f"param|{k}": to_numpy(v) for k, v in self.model.params().items()}
        if isinstance(self.optimizer, _Stateful):
            arrays.update({f"opt|{k}": v for k, v in self.optimizer.state_dict().items()})
        meta = {
            "config": asdict(self.cfg),
            "epoch": self.epoch,
            "history": self.history,
            "initial_loss": self.initial_loss,
            "optimizer_keys": sorted(getattr(self.optimizer, "state", {})),
            "format": "lowrank_ode.dlrt.checkpoint/1",
        }
        arrays["meta"] = np.asarray(json.dumps(meta))
        with atomic_open(path, "wb") as fh:
            np.savez(fh, **arrays)

    @classmethod
    def load(
        cls, path: str | Path, data: Any, cfg: TrainConfig | None = None, **kwargs: Any
    ) -> Trainer:
        """A trainer restored from a checkpoint written by :meth:`save` (no unpickling).

        With ``cfg``, the run continues with its ``epochs``/``finetune_epochs`` (to extend a
        run); every other field must equal the checkpoint's, else ``ValueError`` names it.
        ``kwargs`` go to the constructor: with ``array_library``, the parameters and the
        optimizer state are read on the host and moved to that library.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            raise ValueError(f"checkpoint {path} is not a readable .npz file: {exc}") from exc
        if "meta" not in arrays:
            raise ValueError(f"checkpoint {path} has no 'meta' entry (not written by lowrank_ode)")
        try:
            meta = json.loads(str(arrays["meta"]))
            _check_meta(meta)
            stored = TrainConfig(**{**meta["config"], "widths": tuple(meta["config"]["widths"])})
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"checkpoint {path} has corrupt metadata: {exc}") from exc
        if cfg is not None:
            for k, v in asdict(stored).items():
                if k not in ("epochs", "finetune_epochs") and getattr(cfg, k) != v:
                    raise ValueError(
                        f"cannot resume {path}: {k}={getattr(cfg, k)!r} differs from the "
                        f"checkpoint's {k}={v!r}"
                    )
            stored.epochs, stored.finetune_epochs = cfg.epochs, cfg.finetune_epochs
        tr = cls(stored, data, **kwargs)
        params = {k.split("|", 1)[1]: v for k, v in arrays.items() if k.startswith("param|")}
        expected = set(tr.model.params())
        if set(params) != expected:
            raise ValueError(
                f"checkpoint {path} parameters {sorted(params)[:5]}… do not match the model "
                f"{sorted(expected)[:5]}…"
            )
        current = tr.model.params()
        for k, v in params.items():
            want = _expected_shape(k, current, params)
            if v.dtype.kind != "f" or v.shape != want:
                raise ValueError(
                    f"checkpoint {path}: parameter {k!r} must be a floating-point array of shape "
                    f"{want}, got dtype {v.dtype} and shape {v.shape}"
                )
            if not np.all(np.isfinite(v)):
                raise ValueError(f"checkpoint {path}: parameter {k!r} contains NaN or inf")
        dtype = np.dtype(tr.cfg.dtype)
        tr.model.set_params(
            {k: tr._to_library(v.astype(dtype, copy=False)) for k, v in params.items()}
        )
        opt = {k.split("|", 1)[1]: v for k, v in arrays.items() if k.startswith("opt|")}
        if isinstance(tr.optimizer, _Stateful):
            try:
                tr.optimizer.load_state_dict(opt)
            except ValueError as exc:
                raise ValueError(f"checkpoint {path}: {exc}") from exc
            keys = meta.get("optimizer_keys")
            if keys is not None and sorted(tr.optimizer.state) != sorted(keys):
                missing = sorted(set(keys) - set(tr.optimizer.state))
                raise ValueError(
                    f"checkpoint {path}: optimizer state {missing or sorted(tr.optimizer.state)} "
                    f"missing or unexpected (saved keys {keys}); the resume would not be faithful"
                )
            _check_optimizer_shapes(tr, path)
            if not tr._on_host:
                tr.optimizer.map_state(tr._to_library)
        elif opt:
            raise ValueError(
                f"checkpoint {path}: optimizer entries {sorted(opt)[:3]} for the stateless "
                f"optimizer {tr.cfg.optimizer!r}"
            )
        tr.epoch, tr.history = int(meta["epoch"]), list(meta["history"])
        if meta.get("initial_loss") is not None:
            tr._set_loss_limit(float(meta["initial_loss"]))
        return tr


def train(
    cfg: TrainConfig,
    data: Any,
    checkpoint: Any = None,
    resume: bool = False,
    progress: bool = False,
    threads: int | str = "auto",
    array_library: str = "numpy",
) -> dict[str, Any]:
    """Train a network as ``cfg`` says (or resume from ``checkpoint``) and return the results.

    Parameters
    ----------
    cfg : TrainConfig
        Model, method, ranks, optimizer, epochs, ...
    data : (x_train, y_train, x_test, y_test)
        Images flat (N, 784) for the MLP or (N, 1, 28, 28) for LeNet-5, integer labels; for
        example ``tuple(load_builtin_mnist())``.
    checkpoint : path, optional
        ``.npz`` checkpoint written atomically after every epoch.
    resume : bool
        Continue from ``checkpoint`` when it exists (its configuration must match ``cfg``,
        except for more epochs).
    progress : bool
        tqdm progress bar over the batches.
    threads : "auto" or int
        BLAS thread policy (see :class:`Trainer`); the results record it under ``"threads"``.
    array_library : {"numpy", "cupy", "array_api_strict"}
        Where the network and the data live (see :class:`Trainer`): ``"cupy"`` trains with
        every array on the GPU.  The results record it under ``"array_library"``.

    Returns
    -------
    dict
        JSON-able results (:meth:`Trainer.results`): ``"test_accuracy"`` — the fraction of
        correctly classified test images, in [0, 1]; ``"ranks"`` — the ranks of the factorized
        layers; ``"compression_eval"`` and ``"compression_train"`` — parameter savings against
        the dense network, **in percent**; ``"params_dense"``, ``"seconds_per_epoch"``,
        ``"config"``, ``"threads"``, ``"array_library"`` and ``"history"`` (one record per
        epoch with the loss, accuracies, ranks, parameter counts and seconds).

    Raises
    ------
    ValueError
        When ``resume`` is set without a ``checkpoint``, or the checkpoint path is not writable
        (checked before the first step), or ``array_library`` is unknown.
    ArrayLibraryUnavailable
        When ``array_library`` cannot be used here (CuPy not installed, no GPU visible).
    FileNotFoundError
        When ``resume`` is set and ``checkpoint`` does not exist.
    TrainingDiverged
        When the loss diverges (the last good checkpoint is kept).

    Examples
    --------
    >>> from lowrank_ode.data import load_builtin_mnist
    >>> from lowrank_ode.dlrt import TrainConfig, train
    >>> x_train, y_train, x_test, y_test = load_builtin_mnist()
    >>> data = (x_train[:512], y_train[:512], x_test[:256], y_test[:256])
    >>> cfg = TrainConfig(method="dlrt-adaptive", tau=0.1, rank=16, widths=(784, 64, 64, 10),
    ...                   batch_size=128, epochs=1, finetune_epochs=0)
    >>> res = train(cfg, data)
    >>> len(res["ranks"]), len(res["history"])  # two factorized hidden layers, one epoch
    (2, 1)
    >>> 0.0 <= res["test_accuracy"] <= 1.0, 0.0 < res["compression_eval"] < 100.0
    (True, True)
    """
    kw = dict(
        checkpoint=checkpoint, progress=progress, threads=threads, array_library=array_library
    )
    if resume:
        if checkpoint is None:
            raise ValueError("resume=True needs a checkpoint path, got checkpoint=None")
        if not Path(checkpoint).is_file():
            raise FileNotFoundError(f"cannot resume: checkpoint {str(checkpoint)!r} does not exist")
        tr = Trainer.load(checkpoint, data, cfg, **kw)
    else:
        tr = Trainer(cfg, data, **kw)
    return tr.fit()


def check_output_path(path: Any, name: str) -> Path:
    """Check that a file can be written at ``path`` (before any work that would be lost).

    Creates the missing parent folders and writes and removes a probe file next to ``path``.

    Raises
    ------
    TypeError
        When ``path`` is not a string or path.
    ValueError
        When ``path`` is a folder or cannot be written, naming ``name`` and the path.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path, got {path!r}")
    p = Path(path)
    if str(path) == "" or p.is_dir():
        raise ValueError(f"{name} must be a file path, got the folder {str(path)!r}")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ValueError(f"{name} {str(path)!r} is not writable: {exc}") from exc
    return p


def _check_data(data: Any, cfg: TrainConfig) -> tuple[Any, Any, Any, Any]:
    """Validate (x_train, y_train, x_test, y_test) once, before training."""
    if not isinstance(data, (tuple, list)) or len(data) != 4:
        size = f" of length {len(data)}" if hasattr(data, "__len__") else ""
        raise TypeError(
            "data must be a tuple (x_train, y_train, x_test, y_test), got "
            f"{type(data).__name__}{size}"
        )
    names = ("x_train", "y_train", "x_test", "y_test")
    arrays = []
    for name, a in zip(names, data, strict=True):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a NumPy array, got {type(a).__name__}")
        arrays.append(a)
    x_tr, y_tr, x_te, y_te = arrays
    for split, x, y in (("train", x_tr, y_tr), ("test", x_te, y_te)):
        if x.shape[0] == 0:
            raise ValueError(f"x_{split} holds 0 images: nothing to {split} on")
        if y.ndim != 1 or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"images and labels differ in number: x_{split} has {x.shape[0]} images, "
                f"y_{split} has shape {y.shape}"
            )
        if x.dtype.kind not in "fiub":
            raise TypeError(f"x_{split} must hold numbers, got dtype {x.dtype}")
        if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
            bad = np.argwhere(~np.isfinite(x))[0]
            raise ValueError(
                f"x_{split} contains NaN or inf (first at index {tuple(int(i) for i in bad)}): "
                "clean the data"
            )
        if y.dtype.kind not in "iu":
            raise TypeError(f"y_{split} must hold integer labels, got dtype {y.dtype}")
    shape = (cfg.widths[0],) if cfg.model == "mlp" else (1, 28, 28)
    for split, x in (("train", x_tr), ("test", x_te)):
        if tuple(x.shape[1:]) != shape:
            raise ValueError(
                f"x_{split} must have shape (N, {', '.join(map(str, shape))}) for model "
                f"{cfg.model!r}, got {x.shape}"
            )
    return x_tr, y_tr, x_te, y_te


@functools.cache
def _namespace(library: str) -> Any:
    """:func:`~lowrank_ode._array_api.library_namespace`, checked once per process."""
    return library_namespace(library)


def _check_meta(meta: Any) -> None:
    """Types of the checkpoint metadata (``TypeError``/``ValueError`` naming the field)."""
    if not isinstance(meta, dict):
        raise TypeError(f"meta must be a JSON object, got {type(meta).__name__}")
    if meta.get("format") != "lowrank_ode.dlrt.checkpoint/1":
        raise ValueError(
            f"format must be 'lowrank_ode.dlrt.checkpoint/1', got {meta.get('format')!r}"
        )
    if not isinstance(meta.get("config"), dict):
        raise TypeError(f"config must be a JSON object, got {meta.get('config')!r}")
    epoch = meta.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int):
        raise TypeError(f"epoch must be an integer, got {epoch!r}")
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch!r}")
    history = meta.get("history")
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise TypeError(f"history must be a list of records, got {history!r:.80}")
    if len(history) != epoch:
        raise ValueError(f"history must hold one record per epoch ({epoch}), got {len(history)}")
    first = meta.get("initial_loss")
    if first is not None and (
        isinstance(first, bool) or not isinstance(first, (int, float)) or not math.isfinite(first)
    ):
        raise TypeError(f"initial_loss must be a finite number or null, got {first!r}")
    keys = meta.get("optimizer_keys")
    if keys is not None and not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        raise TypeError(f"optimizer_keys must be a list of strings, got {keys!r}")


def _expected_shape(key: str, current: dict[str, Any], saved: dict[str, Any]) -> tuple:
    """The shape parameter ``key`` of a checkpoint must have.

    A factorized layer's rank may have changed since the model was built (rank-adaptive
    methods): its U and V keep their rows and may have any number of columns up to that, and S
    is then (columns of U) × (columns of V).
    """
    shape = tuple(current[key].shape)
    prefix, _, name = key.rpartition(".")
    if name not in ("U", "S", "V") or not all(f"{prefix}.{f}" in current for f in "USV"):
        return shape
    cols = {}
    for f in "UV":
        v = np.asarray(saved.get(f"{prefix}.{f}", current[f"{prefix}.{f}"]))
        rows = current[f"{prefix}.{f}"].shape[0]
        cols[f] = v.shape[1] if v.ndim == 2 and 1 <= v.shape[1] <= rows else shape[-1]
    if name == "S":
        return (cols["U"], cols["V"])
    return (shape[0], cols[name])


def _check_optimizer_shapes(tr: Trainer, path: Any) -> None:
    """Each optimizer state entry must fit the block it belongs to (named when it does not)."""
    point = tr.flow.point()
    shapes = [tuple(b.shape) for b in point]
    for key, st in tr.optimizer.state.items():
        for j, (P, Q) in enumerate(st.basis):
            M = st.buffers[0][j]
            if j >= len(shapes):
                raise ValueError(
                    f"checkpoint {path}: optimizer entry opt|{key}|buf0|{j} has no parameter "
                    f"block (the model has {len(shapes)})"
                )
            if M.ndim == 2:
                full = (
                    int(P.shape[0]) if P is not None else int(M.shape[0]),
                    int(Q.shape[0]) if Q is not None else int(M.shape[1]),
                )
            else:
                full = tuple(int(s) for s in M.shape)
            if full not in (shapes[j], shapes[j][::-1]):
                raise ValueError(
                    f"checkpoint {path}: optimizer entry opt|{key}|buf0|{j} (shape {M.shape}) "
                    f"does not fit parameter block {j} of shape {shapes[j]}"
                )


def _truncate_weights(model: Any, cfg: TrainConfig) -> list[LowRank]:
    """SVD truncation (τ) of every weight layer but the output layer of a dense network."""
    rule = Truncation(rtol=cfg.tau, atol=cfg.atol, min_rank=cfg.min_rank, max_rank=cfg.max_rank)
    out = []
    for m in model.weight_layers()[:-1]:
        W = m.params()["W"]
        xp = array_namespace(W)
        W = xp.reshape(W, (m.n_out, m.n_in))
        if type(W) is np.ndarray:
            sigma = np.linalg.svd(W, compute_uv=False)
        else:
            sigma = xp.linalg.svdvals(W)
        out.append(LowRank.from_dense(W, rank=rule.rank(sigma, shape=tuple(W.shape))))
    return out


class _truncated:
    """Context manager: temporarily replace weights by their SVD truncations."""

    def __init__(self, model: Any, cfg: TrainConfig) -> None:
        self.model, self.cfg = model, cfg

    def __enter__(self) -> None:
        self.saved = self.model.params()
        layers = self.model.weight_layers()[:-1]
        for m, Y in zip(layers, _truncate_weights(self.model, self.cfg), strict=True):
            W = m.params()["W"]
            xp = array_namespace(W)
            m.set_params({"W": xp.reshape(Y.to_dense(), tuple(W.shape))})

    def __exit__(self, *exc: Any) -> None:
        self.model.set_params(self.saved)
