"""Low-rank layers: DLRT gradient products by finite differences, agreement with the dense
layers built from ``W = U S Vᵀ``, rank changes, float32."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowrank_ode import nn
from lowrank_ode.nn import _ops
from lowrank_ode.testing.layers import gradient_check

RTOL = 1e-6
SLOPE = (1.7, 2.3)  # slope 1 for a wrong gradient; 2 for the right one
FAST = settings(max_examples=20, deadline=None)


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / max(np.linalg.norm(b), 1e-300))


@st.composite
def lowrank_case(draw: st.DrawFn) -> dict:
    """A LowRankDense or LowRankConv2d with a random input, plus a basis width k."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    if draw(st.booleans()):
        n_in, n_out = draw(st.integers(1, 7)), draw(st.integers(1, 7))
        r = draw(st.integers(1, min(n_in, n_out)))
        layer = nn.LowRankDense(n_in, n_out, r, rng=rng)
        x = rng.standard_normal((draw(st.integers(1, 4)), n_in))
    else:
        c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 4))
        k = draw(st.integers(1, 3))
        stride, pad = draw(st.integers(1, 2)), draw(st.integers(0, 1))
        n_in = c_in * k * k
        r = draw(st.integers(1, min(n_in, c_out)))
        layer = nn.LowRankConv2d(c_in, c_out, k, r, stride, pad, rng=rng)
        hw = draw(st.integers(max(1, k - 2 * pad), 5))
        x = rng.standard_normal((draw(st.integers(1, 2)), c_in, hw, hw))
    width = draw(st.integers(1, min(layer.n_in, layer.n_out)))
    return {"layer": layer, "x": x, "k": width, "rng": rng}


def _J_setup(layer: nn.LowRankLayer, x: np.ndarray, rng: np.random.Generator):
    """Run forward/backward with J(y) = <w, y> + ½‖y‖² and return J as a function of the output."""
    y = layer.forward(x)
    w = rng.standard_normal(y.shape)
    layer.backward(w + y)
    return lambda out: float(np.sum(w * out) + 0.5 * np.sum(out * out))


def _check(f, theta, g, rng) -> None:
    err, slope = gradient_check(f, theta, g, rng)
    assert err < RTOL, err
    assert SLOPE[0] < slope < SLOPE[1], slope


@FAST
@given(case=lowrank_case())
def test_grad_right_is_K_gradient(case: dict) -> None:
    """grad_right(V) = ∂J/∂K of J(K Vᵀ), for a non-orthonormal basis of any width k."""
    layer, x, k, rng = case["layer"], case["x"], case["k"], case["rng"]
    K, V, I = rng.standard_normal((layer.n_out, k)), rng.standard_normal((layer.n_in, k)), np.eye(k)
    layer.set_factors(K, I, V)
    J = _J_setup(layer, x, rng)
    g = layer.grad_right(V)

    def f(Kp: np.ndarray) -> float:
        layer.set_factors(Kp, I, V)
        return J(layer.forward(x))

    _check(f, K, g, rng)


@FAST
@given(case=lowrank_case())
def test_grad_left_is_L_gradient(case: dict) -> None:
    """grad_left(U) = ∂J/∂L of J(U Lᵀ)."""
    layer, x, k, rng = case["layer"], case["x"], case["k"], case["rng"]
    U, L, I = rng.standard_normal((layer.n_out, k)), rng.standard_normal((layer.n_in, k)), np.eye(k)
    layer.set_factors(U, I, L)
    J = _J_setup(layer, x, rng)
    g = layer.grad_left(U)

    def f(Lp: np.ndarray) -> float:
        layer.set_factors(U, I, Lp)
        return J(layer.forward(x))

    _check(f, L, g, rng)


@FAST
@given(case=lowrank_case())
def test_grad_galerkin_is_S_gradient(case: dict) -> None:
    """grad_galerkin(U, V) = ∂J/∂S of J(U S Vᵀ) and equals grads()['S']."""
    layer, x, k, rng = case["layer"], case["x"], case["k"], case["rng"]
    U, V = rng.standard_normal((layer.n_out, k)), rng.standard_normal((layer.n_in, k))
    S = rng.standard_normal((k, k))
    layer.set_factors(U, S, V)
    J = _J_setup(layer, x, rng)
    g = layer.grad_galerkin(U, V)
    assert rel(layer.grads()["S"], g) < 1e-13

    def f(Sp: np.ndarray) -> float:
        layer.set_factors(U, Sp, V)
        return J(layer.forward(x))

    _check(f, S, g, rng)


@FAST
@given(case=lowrank_case())
def test_vanilla_grads_are_UV_gradients(case: dict) -> None:
    """vanilla_grads(U, V) = (∂J/∂U, ∂J/∂V) for W = U Vᵀ."""
    layer, x, k, rng = case["layer"], case["x"], case["k"], case["rng"]
    U, V, I = rng.standard_normal((layer.n_out, k)), rng.standard_normal((layer.n_in, k)), np.eye(k)
    layer.set_factors(U, I, V)
    J = _J_setup(layer, x, rng)
    gU, gV = layer.vanilla_grads(U, V)
    theta = np.concatenate([U.ravel(), V.ravel()])

    def f(t: np.ndarray) -> float:
        layer.set_factors(t[: U.size].reshape(U.shape), I, t[U.size :].reshape(V.shape))
        return J(layer.forward(x))

    _check(f, theta, np.concatenate([gU.ravel(), gV.ravel()]), rng)


@FAST
@given(case=lowrank_case())
def test_agrees_with_dense_layer(case: dict) -> None:
    """Forward, dx and every gradient product agree with the dense layer of W = U S Vᵀ."""
    layer, x, rng = case["layer"], case["x"], case["rng"]
    r = layer.rank
    layer.set_factors(
        rng.standard_normal((layer.n_out, r)),
        rng.standard_normal((r, r)),
        rng.standard_normal((layer.n_in, r)),
    )
    layer.set_params({"b": rng.standard_normal(layer.n_out)})
    dense = layer.to_dense()
    y, yd = layer.forward(x), dense.forward(x)
    assert rel(y, yd) < 1e-12
    dy = rng.standard_normal(y.shape)
    assert rel(layer.backward(dy), dense.backward(dy)) < 1e-12
    G = np.reshape(dense.grads()["W"], (layer.n_out, layer.n_in))
    assert rel(layer.grad_dense(), G) < 1e-12
    assert rel(layer.grads()["b"], dense.grads()["b"]) < 1e-12
    assert rel(layer.grads()["S"], layer.U.T @ G @ layer.V) < 1e-12
    k = 2 * case["k"]  # augmented width, possibly wider than min(n_in, n_out)
    Ub, Vb = rng.standard_normal((layer.n_out, k)), rng.standard_normal((layer.n_in, k))
    assert rel(layer.grad_right(Vb), G @ Vb) < 1e-12
    assert rel(layer.grad_right(layer.V), G @ layer.V) < 1e-12  # cached-XV path
    assert rel(layer.grad_left(Ub), G.T @ Ub) < 1e-12
    assert rel(layer.grad_galerkin(Ub, Vb), Ub.T @ G @ Vb) < 1e-12
    gU, gV = layer.vanilla_grads(Ub, Vb)
    assert rel(gU, G @ Vb) < 1e-12 and rel(gV, G.T @ Ub) < 1e-12


def test_weight_is_never_formed() -> None:
    """No matrix product in forward/backward/grad_* has an n_out × n_in operand or result."""
    rng = np.random.default_rng(0)
    for layer, x in [
        (nn.LowRankDense(30, 40, 3, rng=rng), rng.standard_normal((5, 30))),
        (nn.LowRankConv2d(3, 8, 3, 2, rng=rng), rng.standard_normal((2, 3, 6, 6))),
    ]:
        seen: list[tuple[int, ...]] = []
        orig = _ops.matmul

        def spy(a, b, seen=seen, orig=orig):
            out = orig(a, b)
            seen.extend([a.shape, b.shape, out.shape])
            return out

        _ops.matmul = spy
        try:
            y = layer.forward(x)
            layer.backward(np.ones_like(y))
            U2, V2 = rng.standard_normal((layer.n_out, 6)), rng.standard_normal((layer.n_in, 6))
            layer.grad_right(V2), layer.grad_left(U2), layer.grad_galerkin(U2, V2)
        finally:
            _ops.matmul = orig
        bad = {(layer.n_out, layer.n_in), (layer.n_in, layer.n_out)}
        assert not bad & set(seen), seen


def test_forward_runs_at_current_rank_after_set_factors() -> None:
    """After a rank drop, forward must compute with the new (smaller) factors."""
    rng = np.random.default_rng(1)
    model = nn.lenet5(low_rank=True, ranks=(6, 8, 10), rng=rng)
    for layer in model.low_rank_layers():
        layer.dense_products = False  # the thin products, whose widths show the rank
    x = rng.standard_normal((2, 1, 28, 28))
    model.forward(x)
    assert [lay._cache["XV"].shape[1] for lay in model.low_rank_layers()] == [6, 8, 10]
    new_ranks = [2, 3, 4]
    for layer, r in zip(model.low_rank_layers(), new_ranks, strict=True):
        layer.set_factors(layer.U[:, :r], layer.S[:r, :r], layer.V[:, :r])
        assert layer.rank == r
    seen: list[tuple[int, ...]] = []
    orig = _ops.matmul

    def spy(a, b):
        seen.append(tuple(b.shape))
        return orig(a, b)

    _ops.matmul = spy
    try:
        y = model.forward(x)
    finally:
        _ops.matmul = orig
    assert [lay._cache["XV"].shape[1] for lay in model.low_rank_layers()] == new_ranks
    # the V factors multiplied in forward have the new widths
    assert (25, 2) in seen and (500, 3) in seen and (800, 4) in seen
    assert (25, 6) not in seen and (800, 10) not in seen
    # and the output is that of the truncated weights
    dense = nn.Sequential(
        [lay.to_dense() if isinstance(lay, nn.LowRankLayer) else lay for lay in model.layers]
    )
    assert rel(y, dense.forward(x)) < 1e-12


def test_rank_can_grow_and_cache_is_replaced() -> None:
    rng = np.random.default_rng(2)
    layer = nn.LowRankDense(8, 6, 2, rng=rng)
    x = rng.standard_normal((3, 8))
    layer.forward(x)
    keys = set(layer._cache)
    layer.set_factors(rng.standard_normal((6, 5)), np.eye(5), rng.standard_normal((8, 5)))
    for _ in range(3):
        y = layer.forward(x)
        assert set(layer._cache) == keys  # overwritten, never growing
    assert layer.rank == 5 and layer._cache["XV"].shape == (3, 5)
    layer.backward(np.ones_like(y))
    assert layer.grads()["S"].shape == (5, 5)


def test_grad_products_require_backward() -> None:
    layer = nn.LowRankDense(4, 3, 2, rng=0)
    with pytest.raises(RuntimeError, match="forward and backward"):
        layer.grad_right(layer.V)
    layer.forward(np.ones((2, 4)))
    with pytest.raises(RuntimeError, match="forward and backward"):
        layer.grad_left(layer.U)


@pytest.mark.parametrize("conv", [False, True])
def test_float32_forward_backward(conv: bool) -> None:
    """float32 stays float32 and matches float64 to single-precision accuracy."""
    rng = np.random.default_rng(4)
    if conv:
        layer64 = nn.LowRankConv2d(2, 5, 3, 2, padding=1, rng=rng)
        x64 = rng.standard_normal((3, 2, 6, 6))
    else:
        layer64 = nn.LowRankDense(7, 5, 3, rng=rng)
        x64 = rng.standard_normal((4, 7))
    layer32 = nn.LowRankDense(7, 5, 3) if not conv else nn.LowRankConv2d(2, 5, 3, 2, padding=1)
    layer32.set_params({k: v.astype(np.float32) for k, v in layer64.params().items()})
    y64, y32 = layer64.forward(x64), layer32.forward(x64.astype(np.float32))
    assert y32.dtype == np.float32
    assert rel(y32, y64) < 1e-5
    dy = rng.standard_normal(y64.shape)
    dx64, dx32 = layer64.backward(dy), layer32.backward(dy.astype(np.float32))
    assert dx32.dtype == np.float32
    assert rel(dx32, dx64) < 1e-5
    for key in ("S", "b"):
        assert layer32.grads()[key].dtype == np.float32
        assert rel(layer32.grads()[key], layer64.grads()[key]) < 1e-5
    V = rng.standard_normal((layer64.n_in, 4))
    assert rel(layer32.grad_right(V.astype(np.float32)), layer64.grad_right(V)) < 1e-5


def test_float32_model_loss_and_grads() -> None:
    rng = np.random.default_rng(5)
    m64 = nn.mlp((12, 10, 8, 3), rank=3, rng=rng)
    m32 = nn.mlp((12, 10, 8, 3), rank=3, dtype=np.float32)
    m32.set_params({k: v.astype(np.float32) for k, v in m64.params().items()})
    x, labels = rng.standard_normal((6, 12)), rng.integers(0, 3, 6)
    l64, l32 = nn.SoftmaxCrossEntropy(), nn.SoftmaxCrossEntropy()
    v64 = l64.forward(m64.forward(x), labels)
    v32 = l32.forward(m32.forward(x.astype(np.float32)), labels)
    assert v32 == pytest.approx(v64, rel=1e-5)
    dx32 = m32.backward(l32.backward())
    m64.backward(l64.backward())
    assert dx32.dtype == np.float32
    for k, g in m64.grads().items():
        assert m32.grads()[k].dtype == np.float32
        assert rel(m32.grads()[k], g) < 1e-4, k


def test_dense_products_agree_with_thin_products() -> None:
    """The dense path (W and G = δᵀX formed) gives the thin path's values up to rounding."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 2, 7, 7))
    layers = {}
    for dense in (False, True):
        layer = nn.LowRankConv2d(2, 5, 3, 3, padding=1, rng=4)
        layer.dense_products = dense
        y = layer.forward(x)
        dx = layer.backward(np.cos(y))
        layers[dense] = (layer, y, dx)
    (thin, y0, dx0), (full, y1, dx1) = layers[False], layers[True]
    assert "W" in full._cache and "W" not in thin._cache
    assert rel(y1, y0) < 1e-13 and rel(dx1, dx0) < 1e-13
    assert rel(full.grads()["S"], thin.grads()["S"]) < 1e-13
    U, V = rng.standard_normal((5, 6)), rng.standard_normal((18, 6))
    assert rel(full.grad_right(V), thin.grad_right(V)) < 1e-13
    assert rel(full.grad_left(U), thin.grad_left(U)) < 1e-13
    assert rel(full.grad_galerkin(U, V), thin.grad_galerkin(U, V)) < 1e-13
    assert rel(full.grad_dense(), thin.grad_dense()) < 1e-13


def test_dense_products_are_chosen_by_flops() -> None:
    """LeNet-5's first convolution forms W; the wide dense layers of the MLP never do."""
    assert nn.lowrank_layers.dense_products_cheaper(128 * 24 * 24, 25, 20, 15)
    assert not nn.lowrank_layers.dense_products_cheaper(256, 500, 500, 150)
    assert not nn.lowrank_layers.dense_products_cheaper(128, 800, 500, 20)
