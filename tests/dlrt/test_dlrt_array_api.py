"""DLRT through the trainer's own step on ``array_api_strict`` arrays: every method, every
optimizer, the fine-tuning phase and LeNet-5 give the NumPy numbers (no NumPy-only call)."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from lowrank_ode._array_api import to_numpy
from lowrank_ode.dlrt import TrainConfig, Trainer
from lowrank_ode.dlrt.train import METHODS
from lowrank_ode.integrators import FixedBasisGalerkin

# LOWRANK_ODE_TEST_NAMESPACE=cupy runs this module on a GPU (benchmarks/gpu_check.py)
_NAMESPACE = os.environ.get("LOWRANK_ODE_TEST_NAMESPACE", "array_api_strict")
xps = pytest.importorskip(
    _NAMESPACE if _NAMESPACE == "array_api_strict" else f"array_api_compat.{_NAMESPACE}"
)
pytestmark = pytest.mark.usefixtures("no_implicit_host_copy")

STRICT = type(xps.asarray(1.0))


def _data(model: str, n: int = 48, seed: int = 0):
    rng = np.random.default_rng(seed)
    shape = (n, 784) if model == "mlp" else (n, 1, 28, 28)
    x = rng.random(shape)
    y = rng.integers(0, 10, n)
    return x, y, x[:8], y[:8]


def _pair(cfg: TrainConfig):
    """Two trainers of ``cfg`` on the same data: NumPy, and the same network on strict arrays.

    In float64: the two paths agree to rounding, which the comparisons check at 1e-10."""
    cfg = dataclasses.replace(cfg, dtype="float64")
    data = _data(cfg.model)
    ref, strict = Trainer(cfg, data), Trainer(cfg, data)
    strict.model.map_params(xps.asarray)
    return ref, strict


def _steps(ref: Trainer, strict: Trainer, n_steps: int, finetune: bool = False) -> None:
    """``n_steps`` trainer steps on both (with ``finetune``: the frozen-basis phase)."""
    x, y = ref.data[0], ref.data[1]
    bs = 16
    phase = (FixedBasisGalerkin(ref.optimizer), FixedBasisGalerkin(strict.optimizer))
    for k in range(n_steps):
        xb, yb = x[k * bs : (k + 1) * bs], y[k * bs : (k + 1) * bs]
        loss_np = ref.step(xb, yb, phase[0] if finetune else None)
        loss_st = strict.step(xps.asarray(xb), xps.asarray(yb), phase[1] if finetune else None)
        assert loss_st == pytest.approx(loss_np, rel=1e-10, abs=1e-12)


def _assert_same_params(ref: Trainer, strict: Trainer) -> None:
    p_np, p_st = ref.model.params(), strict.model.params()
    assert set(p_np) == set(p_st)
    for k, v in p_st.items():
        assert isinstance(v, STRICT), k
        a, b = to_numpy(v), p_np[k]
        assert a.shape == b.shape, k
        assert np.linalg.norm(a - b) <= 1e-10 * max(np.linalg.norm(b), 1.0), k
    assert strict.ranks() == ref.ranks()


@pytest.mark.parametrize("method", [m for m in METHODS if m != "dense-truncate"])
def test_trainer_step_on_strict_every_method(method):
    cfg = TrainConfig(model="mlp", widths=(784, 12, 12, 10), method=method, rank=4, tau=0.2)
    ref, strict = _pair(cfg)
    _steps(ref, strict, 2)
    _assert_same_params(ref, strict)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_trainer_step_on_strict_every_optimizer(optimizer):
    """Optimizer state (moments transported between bases) on strict arrays; then one
    fine-tuning step in frozen bases (the Galerkin phase)."""
    cfg = TrainConfig(
        model="mlp",
        widths=(784, 12, 10),
        method="dlrt-adaptive",
        rank=4,
        tau=0.1,
        optimizer=optimizer,
        lr=0.05,
    )
    ref, strict = _pair(cfg)
    _steps(ref, strict, 2)
    _steps(ref, strict, 1, finetune=True)
    _assert_same_params(ref, strict)


def test_lenet5_dlrt_step_on_strict():
    cfg = TrainConfig(
        model="lenet5", method="dlrt-adaptive", rank=6, tau=0.2, optimizer="sgd", lr=0.05
    )
    ref, strict = _pair(cfg)
    x, y = ref.data[0][:4], ref.data[1][:4]
    assert strict.step(xps.asarray(x), xps.asarray(y)) == pytest.approx(ref.step(x, y), rel=1e-10)
    _assert_same_params(ref, strict)
