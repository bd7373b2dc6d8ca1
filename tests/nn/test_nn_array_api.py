"""The layers run on ``array_api_strict`` arrays (no NumPy-only call leaks) and match NumPy."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest

from lowrank_ode import nn
from lowrank_ode._array_api import to_numpy

# LOWRANK_ODE_TEST_NAMESPACE=cupy runs this module on a GPU (benchmarks/gpu_check.py)
_NAMESPACE = os.environ.get("LOWRANK_ODE_TEST_NAMESPACE", "array_api_strict")
xps = pytest.importorskip(
    _NAMESPACE if _NAMESPACE == "array_api_strict" else f"array_api_compat.{_NAMESPACE}"
)
pytestmark = pytest.mark.usefixtures("no_implicit_host_copy")


def rel(a, b) -> float:
    a, b = to_numpy(a), to_numpy(b)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def _run(model: nn.Sequential, loss, x, target):
    value = loss.forward(model.forward(x), target)
    dx = model.backward(loss.backward())
    return value, dx


def _compare(model: nn.Sequential, loss_cls, x: np.ndarray, target: np.ndarray) -> None:
    strict = copy.deepcopy(model)
    strict.map_params(xps.asarray)
    v_np, dx_np = _run(model, loss_cls(), x, target)
    v_st, dx_st = _run(strict, loss_cls(), xps.asarray(x), xps.asarray(target))
    assert isinstance(dx_st, type(xps.asarray(1.0)))
    assert v_st == pytest.approx(v_np, rel=1e-12)
    assert rel(dx_st, dx_np) < 1e-12
    g_np, g_st = model.grads(), strict.grads()
    assert set(g_np) == set(g_st)
    for k in g_np:
        assert rel(g_st[k], g_np[k]) < 1e-12, k
    rng = np.random.default_rng(0)
    for lay_np, lay_st in zip(model.low_rank_layers(), strict.low_rank_layers(), strict=True):
        U = rng.standard_normal((lay_np.n_out, 2 * lay_np.rank))
        V = rng.standard_normal((lay_np.n_in, 2 * lay_np.rank))
        Us, Vs = xps.asarray(U), xps.asarray(V)
        assert rel(lay_st.grad_right(Vs), lay_np.grad_right(V)) < 1e-12
        assert rel(lay_st.grad_left(Us), lay_np.grad_left(U)) < 1e-12
        assert rel(lay_st.grad_galerkin(Us, Vs), lay_np.grad_galerkin(U, V)) < 1e-12
        assert rel(lay_st.grad_right(lay_st.V), lay_np.grad_right(lay_np.V)) < 1e-12


def test_lowrank_conv_net_on_array_api_strict() -> None:
    rng = np.random.default_rng(0)
    model = nn.Sequential(
        [
            nn.LowRankConv2d(1, 4, 3, 2, stride=1, padding=1, rng=rng),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.LowRankConv2d(4, 6, 3, 3, stride=2, padding=0, rng=rng),
            nn.Flatten(),
            nn.LowRankDense(6 * 1 * 1, 5, 2, rng=rng),
            nn.ReLU(),
            nn.Dense(5, 3, rng=rng),
        ]
    )
    x = rng.standard_normal((4, 1, 6, 6))
    labels = np.array([0, 1, 2, 1])
    _compare(model, nn.SoftmaxCrossEntropy, x, labels)


def test_dense_conv_net_on_array_api_strict() -> None:
    rng = np.random.default_rng(1)
    model = nn.Sequential(
        [
            nn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0), rng=rng),
            nn.Tanh(),
            nn.AvgPool2d(2, 1),
            nn.Flatten(),
            nn.Dense(3 * 2 * 3, 4, rng=rng),
            nn.LeakyReLU(0.1),
            nn.Dense(4, 2, rng=rng),
        ]
    )
    x = rng.standard_normal((3, 2, 5, 5))
    target = rng.standard_normal((3, 2))
    _compare(model, nn.MSELoss, x, target)


def test_lenet5_lowrank_on_array_api_strict() -> None:
    rng = np.random.default_rng(2)
    model = nn.lenet5(low_rank=True, ranks=(3, 4, 5), rng=rng)
    _compare(model, nn.SoftmaxCrossEntropy, rng.standard_normal((2, 1, 28, 28)), np.array([3, 7]))


def _layers(rng):
    """Each layer type once, with an input shape it accepts."""
    img = (2, 2, 6, 6)
    return [
        (nn.Dense(5, 3, rng=rng), (4, 5)),
        (nn.LowRankDense(6, 5, 2, rng=rng), (4, 6)),
        (nn.Conv2d(2, 3, 3, stride=2, padding=1, rng=rng), img),
        (nn.LowRankConv2d(2, 4, (3, 2), 2, stride=(1, 2), padding=(0, 1), rng=rng), img),
        (nn.MaxPool2d(2), img),
        (nn.MaxPool2d(3, 2), img),
        (nn.AvgPool2d(2, 1), img),
        (nn.Flatten(), img),
        (nn.ReLU(), (4, 5)),
        (nn.LeakyReLU(0.2), (4, 5)),
        (nn.Tanh(), (4, 5)),
    ]


@pytest.mark.parametrize("index", range(11))
def test_each_layer_alone_on_array_api_strict(index) -> None:
    """Forward, backward (input gradient and parameter gradients) of every layer type."""
    rng = np.random.default_rng(index)
    layer, shape = _layers(rng)[index]
    x = rng.standard_normal(shape)
    strict = copy.deepcopy(layer)
    strict.map_params(xps.asarray)
    y_np = layer.forward(x)
    y_st = strict.forward(xps.asarray(x))
    assert isinstance(y_st, type(xps.asarray(1.0)))
    assert rel(y_st, y_np) < 1e-12
    dy = rng.standard_normal(y_np.shape)
    assert rel(strict.backward(xps.asarray(dy)), layer.backward(dy)) < 1e-12
    g_np, g_st = layer.grads(), strict.grads()
    assert set(g_np) == set(g_st)
    for k in g_np:
        assert rel(g_st[k], g_np[k]) < 1e-12, k


def test_im2col_col2im_and_log_softmax_on_array_api_strict() -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 7, 6))
    for k, s, p in ((3, 1, 1), ((2, 3), (2, 1), (0, 1))):
        cols = nn.im2col(x, k, s, p)
        cols_st = nn.im2col(xps.asarray(x), k, s, p)
        assert rel(cols_st, cols) == 0.0
        assert rel(nn.col2im(cols_st, x.shape, k, s, p), nn.col2im(cols, x.shape, k, s, p)) < 1e-14
    z = 50 * rng.standard_normal((5, 4))
    assert rel(nn.log_softmax(xps.asarray(z)), nn.log_softmax(z)) < 1e-14
