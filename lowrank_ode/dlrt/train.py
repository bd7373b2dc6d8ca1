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
``dlrt-adaptive``      rank-adaptive BUG, truncation τ‖σ‖₂             2
``dlrt-single-pass``   parallel BUG (K, L, S from one pass), τ         1
``ksl``                projector splitting (K, backward S, L)          3
``dense-truncate``     dense training, then SVD truncation with τ      1
=====================  ==============================================  =====================

``finetune_epochs`` adds a phase with frozen bases (:class:`FixedBasisGalerkin`: S and the
dense parameters only).  Parameter counts (evaluation Σ r(n+m), training Σ [2r(n+m) + 4r²], dense
layers n·m, biases excluded) are those of :mod:`lowrank_ode.nn.models`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..integrators import BUG, KSL, FixedBasisGalerkin, Full, ParallelBUG, RankAdaptiveBUG
from ..integrators.base import Integrator
from ..exceptions import NumericalBreakdown
from ..lowrank import LowRank
from ..nn.models import compression_rate, count_params, lenet5, mlp
from ..truncation import Truncation
from .flow import NetworkFlow, VanillaFlow
from .optim import _Stateful, get_optimizer

__all__ = ["TrainConfig", "Trainer", "TrainingDiverged", "train", "METHODS"]

METHODS = (
    "dense",
    "vanilla",
    "dlrt",
    "dlrt-adaptive",
    "dlrt-single-pass",
    "ksl",
    "dense-truncate",
)


class TrainingDiverged(NumericalBreakdown):
    """The loss or the parameters became NaN/inf; the last good checkpoint is left intact."""


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in checkpoints and JSON outputs).

    Parameters
    ----------
    model : {"mlp", "lenet5"}
    method : one of :data:`METHODS`
    tau : float or None
        Relative truncation tolerance of the adaptive methods (ϑ = τ‖σ‖₂).
    rank : int
        Fixed rank, or the start rank of the adaptive methods.
    widths : tuple of int
        MLP widths (input first, classes last).
    epochs, batch_size, lr, optimizer, seed
        The usual; ``optimizer`` ∈ {"sgd", "momentum", "adam"}.
    finetune_epochs : int
        Extra epochs with frozen bases (S and dense parameters only).
    atol, min_rank, max_rank
        Further truncation options of the adaptive methods.
    decay : float or None
        Prescribe initial singular values ``|N(0,1)|·decay^(−k)`` (robustness study).
    init_core : {"svd", "random", "product"}
        Initial point of the factorized layers: ``"svd"`` — the truncated SVD of a He
        initialization (a flat spectrum); ``"random"`` — the same bases with a Gaussian r × r
        core of the same Frobenius norm (quarter-circle spectrum reaching down to 0);
        ``"product"`` — W₀ = A B Cᵀ with iid N(0, ``init_std``²) factors A (n×r), B (r×r),
        C (m×r), the point the official DLRT code starts from (Keras ``random_normal``), put on
        the manifold by QR (A = Q_A R_A, C = Q_C R_C, S = R_A B R_Cᵀ).  A product of three
        Gaussian matrices has a steeply decaying spectrum, so the relative truncation sheds
        the directions that training does not use.
    init_std : float
        Entry standard deviation of the ``"product"`` factors (Keras' default 0.05).
    dtype : {"float64", "float32"}
    """

    model: str = "mlp"
    method: str = "dlrt-adaptive"
    tau: float | None = 0.11
    rank: int = 100
    widths: tuple[int, ...] = (784, 500, 500, 500, 500, 10)
    epochs: int = 1
    batch_size: int = 256
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    seed: int = 0
    finetune_epochs: int = 0
    atol: float | None = None
    min_rank: int = 1
    max_rank: int | None = None
    decay: float | None = None
    init_core: str = "svd"
    init_std: float = 0.05
    dtype: str = "float64"

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)
        if self.model not in ("mlp", "lenet5"):
            raise ValueError(f"model must be 'mlp' or 'lenet5', got {self.model!r}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        for name in ("epochs", "finetune_epochs", "batch_size", "rank", "min_rank", "seed"):
            v = getattr(self, name)
            low = 0 if name in ("epochs", "finetune_epochs", "seed") else 1
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
        if len(self.widths) < 2 or min(self.widths) < 1:
            raise ValueError(f"widths must hold at least 2 positive sizes, got {self.widths!r}")
        if isinstance(self.lr, bool) or not (
            isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0
        ):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must satisfy 0 <= momentum < 1, got {self.momentum!r}")
        if self.decay is not None and not self.decay > 0:
            raise ValueError(f"decay must be > 0, got {self.decay!r}")
        if self.tau is not None and not (0 <= self.tau < 1):
            raise ValueError(f"tau must satisfy 0 <= tau < 1, got {self.tau!r}")
        if self.init_core not in ("svd", "random", "product"):
            raise ValueError(
                f"init_core must be 'svd', 'random' or 'product', got {self.init_core!r}"
            )
        if not (isinstance(self.init_std, (int, float)) and 0 < self.init_std < math.inf):
            raise ValueError(f"init_std must be a finite number > 0, got {self.init_std!r}")
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")
        if self.method == "dlrt-adaptive" and self.tau is None and self.atol is None:
            raise ValueError("method 'dlrt-adaptive' needs tau or atol")


def build_model(cfg: TrainConfig) -> Any:
    """The network of ``cfg`` (dense for the dense methods, factorized otherwise), seeded."""
    low_rank = cfg.method not in ("dense", "dense-truncate")
    rng = np.random.default_rng([cfg.seed, 1])
    dtype = np.dtype(cfg.dtype)
    kw = {"decay": cfg.decay} if cfg.decay is not None else {}
    if cfg.model == "mlp":
        pairs = zip(cfg.widths[:-2], cfg.widths[1:-1], strict=True)
        ranks = [min(cfg.rank, a, b) for a, b in pairs] or cfg.rank
        model = mlp(cfg.widths, low_rank=low_rank, rank=ranks, dtype=dtype, rng=rng, **kw)
    else:
        ranks = [min(cfg.rank, 20, 25), min(cfg.rank, 50, 500), min(cfg.rank, 500, 800)]
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
    return model


def _truncation(cfg: TrainConfig) -> Truncation | None:
    if cfg.tau is None and cfg.atol is None:
        return None
    return Truncation(rtol=cfg.tau, atol=cfg.atol, min_rank=cfg.min_rank, max_rank=cfg.max_rank)


def make_integrator(cfg: TrainConfig, optimizer: Any) -> Integrator:
    """The integrator implementing ``cfg.method`` with ``optimizer`` as sub-step solver."""
    m = cfg.method
    if m in ("dense", "dense-truncate", "vanilla"):
        return Full(optimizer)
    if m == "dlrt":
        return BUG(optimizer)
    if m == "dlrt-adaptive":
        return RankAdaptiveBUG(optimizer, _truncation(cfg))
    if m == "dlrt-single-pass":
        return ParallelBUG(optimizer, _truncation(cfg))
    return KSL(optimizer)


@dataclass
class Trainer:
    """Runs a :class:`TrainConfig` on data; see the module docstring.

    Parameters
    ----------
    cfg : TrainConfig
    data : (x_train, y_train, x_test, y_test)
        Images flat (N, 784) for the MLP or (N, 1, 28, 28) for LeNet-5; int labels.
    checkpoint : path, optional
        Written atomically after every epoch (``.npz``, no pickle).
    progress : bool
        tqdm progress bar over the batches.
    """

    cfg: TrainConfig
    data: tuple[Any, Any, Any, Any]
    checkpoint: str | Path | None = None
    progress: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        cfg = self.cfg
        self.model = build_model(cfg)
        opt_kw = {"beta": cfg.momentum} if cfg.optimizer == "momentum" else {}
        self.optimizer = get_optimizer(cfg.optimizer, **opt_kw)
        self.flow = VanillaFlow(self.model) if cfg.method == "vanilla" else NetworkFlow(self.model)
        self.integrator = make_integrator(cfg, self.optimizer)
        self.epoch = 0
        self.dense_params = count_params(self.model, "dense")
        x_tr, y_tr, x_te, y_te = self.data
        dt = np.dtype(cfg.dtype)
        if x_tr.dtype != dt or x_te.dtype != dt:  # the network computes in cfg.dtype
            self.data = (x_tr.astype(dt), y_tr, x_te.astype(dt), y_te)
        if x_tr.shape[0] != y_tr.shape[0] or x_te.shape[0] != y_te.shape[0]:
            raise ValueError(
                f"images and labels differ in number: train {x_tr.shape[0]} vs {y_tr.shape[0]}, "
                f"test {x_te.shape[0]} vs {y_te.shape[0]}"
            )

    # ---------------------------------------------------------------- training
    def step(self, x: Any, y: Any, integrator: Integrator | None = None) -> float:
        """One mini-batch step = one integrator step of size ``lr``; returns the batch loss."""
        integ = integrator or self.integrator
        self.flow.set_batch(x, y)
        try:
            blocks = integ.step_blocks(self.flow, 0.0, self.flow.point(), self.cfg.lr)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as err:
            losses = [ev[0] for ev in self.flow.evaluations]
            if all(math.isfinite(v) for v in losses):
                raise  # not a divergence: a genuine error
            raise TrainingDiverged(
                f"non-finite loss inside a step at epoch {self.epoch + 1} (losses {losses}); "
                f"lower the learning rate (lr={self.cfg.lr}); the last checkpoint is kept"
            ) from err
        self.flow.load(blocks)
        loss = self.flow.evaluations[0][0]
        if not math.isfinite(loss) or not _finite(blocks):
            raise TrainingDiverged(
                f"non-finite loss or parameters at epoch {self.epoch + 1} (loss {loss}); "
                f"lower the learning rate (lr={self.cfg.lr}); the last checkpoint is kept"
            )
        return loss

    def run_epoch(self, integrator: Integrator | None = None) -> dict[str, Any]:
        """One pass over the training set in a seeded order; returns the epoch's record."""
        x_tr, y_tr = self.data[0], self.data[1]
        n = x_tr.shape[0]
        order = np.random.default_rng([self.cfg.seed, 2, self.epoch]).permutation(n)
        bs = self.cfg.batch_size
        batches = range(0, n, bs)
        if self.progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc=f"epoch {self.epoch + 1}", unit="batch", leave=False)
        t0 = time.perf_counter()
        losses, accs = [], []
        for s in batches:
            idx = order[s : s + bs]
            losses.append(self.step(x_tr[idx], y_tr[idx], integrator))
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
        galerkin = FixedBasisGalerkin(self.optimizer)
        while self.epoch < total:
            phase = None if self.epoch < self.cfg.epochs else galerkin
            self.run_epoch(phase)
        return self.results()

    # ---------------------------------------------------------------- evaluation
    def predict(self, x: Any, batch: int | None = None) -> np.ndarray:
        """Class predictions of the current network, in batches of ``batch`` images.

        The default is large for flat inputs (4096: the GEMMs of an MLP get faster with more
        rows) and moderate for images (512: a LeNet-5 patch matrix holds 576 rows per image,
        and larger ones leave the cache without making the products faster).
        """
        if batch is None:
            batch = 4096 if x.ndim == 2 else 512
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        out = [
            np.argmax(self.model.forward(x[s : s + batch]), axis=1) for s in range(0, len(x), batch)
        ]
        return np.concatenate(out)

    def evaluate(self) -> float:
        """Test accuracy of the current network (after truncation for ``dense-truncate``)."""
        x_te, y_te = self.data[2], self.data[3]
        if self.cfg.method == "dense-truncate":
            with _truncated(self.model, self.cfg):
                return float(np.mean(self.predict(x_te) == y_te))
        return float(np.mean(self.predict(x_te) == y_te))

    def ranks(self) -> list[int]:
        """Current rank of every factorized layer (truncated ranks for ``dense-truncate``)."""
        if self.cfg.method == "dense-truncate":
            return [Y.rank for Y in _truncate_weights(self.model, self.cfg)]
        return [m.rank for m in self.flow.lr_layers]

    def counts(self) -> dict[str, Any]:
        """Ranks, parameter counts and compression rates (percent) of the current network."""
        ranks = self.ranks()
        if self.cfg.method == "dense-truncate":
            layers = [m for m in self.model.weight_layers()][:-1]
            ev = sum(r * (m.n_in + m.n_out) for r, m in zip(ranks, layers, strict=True))
            last = self.model.weight_layers()[-1]
            ev += last.n_in * last.n_out
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
        """The JSON-able summary of the run."""
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
        }

    # ---------------------------------------------------------------- checkpoints
    def save(self, path: str | Path) -> None:
        """Write model, optimizer state, epoch and history to ``path`` atomically (npz)."""
        path = Path(path)
        arrays: dict[str, Any] = {
            f"param|{k}": np.asarray(v) for k, v in self.model.params().items()
        }
        if isinstance(self.optimizer, _Stateful):
            arrays.update({f"opt|{k}": v for k, v in self.optimizer.state_dict().items()})
        meta = {
            "config": asdict(self.cfg),
            "epoch": self.epoch,
            "history": self.history,
            "format": "lowrank_ode.dlrt.checkpoint/1",
        }
        arrays["meta"] = np.asarray(json.dumps(meta))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(
        cls, path: str | Path, data: Any, cfg: TrainConfig | None = None, **kwargs: Any
    ) -> Trainer:
        """A trainer restored from a checkpoint written by :meth:`save` (no unpickling).

        With ``cfg``, the run continues with its ``epochs``/``finetune_epochs`` (to extend a
        run); every other field must equal the checkpoint's, else ``ValueError`` names it.
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
            stored = TrainConfig(**{**meta["config"], "widths": tuple(meta["config"]["widths"])})
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
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
        tr.model.set_params(params)
        if isinstance(tr.optimizer, _Stateful):
            tr.optimizer.load_state_dict(
                {k.split("|", 1)[1]: v for k, v in arrays.items() if k.startswith("opt|")}
            )
        tr.epoch, tr.history = int(meta["epoch"]), list(meta["history"])
        return tr


def train(
    cfg: TrainConfig,
    data: Any,
    checkpoint: Any = None,
    resume: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Train (or resume from ``checkpoint``) and return :meth:`Trainer.results`."""
    if resume and checkpoint is not None and Path(checkpoint).exists():
        tr = Trainer.load(checkpoint, data, cfg, checkpoint=checkpoint, progress=progress)
    else:
        tr = Trainer(cfg, data, checkpoint=checkpoint, progress=progress)
    return tr.fit()


def _finite(blocks: list[Any]) -> bool:
    for b in blocks:
        arrays = (b.U, b.S, b.V) if isinstance(b, LowRank) else (b,)
        if not all(np.all(np.isfinite(np.asarray(a))) for a in arrays):
            return False
    return True


def _truncate_weights(model: Any, cfg: TrainConfig) -> list[LowRank]:
    """SVD truncation (τ) of every weight layer but the output layer of a dense network."""
    rule = _truncation(cfg) or Truncation()
    out = []
    for m in model.weight_layers()[:-1]:
        W = m.params()["W"].reshape(m.n_out, m.n_in)
        out.append(LowRank.from_dense(W, rank=rule.rank(np.linalg.svd(W, compute_uv=False))))
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
            m.set_params({"W": Y.to_dense().reshape(W.shape)})

    def __exit__(self, *exc: Any) -> None:
        self.model.set_params(self.saved)
