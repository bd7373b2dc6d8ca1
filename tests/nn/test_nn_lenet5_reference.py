"""LeNet-5 forward and backward against a straightforward reference written here.

The library's convolution and pooling are tuned for speed (patch matrices, strided views,
in-place writes, dense or thin products chosen by size); the reference below is the textbook
definition — a sum over the kernel offsets for the convolution and its adjoint, the first
maximum of each window for the pooling — so that any of those tunings that changes a value
beyond rounding shows up here (float64, relative differences ≤ 1e-12).
"""

from __future__ import annotations

import numpy as np
import pytest

from lowrank_ode import nn

TOL = 1e-12


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / max(np.linalg.norm(b), 1e-300))


# --------------------------------------------------------------------------- reference
def conv_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``y[n, o, i, j] = Σ_{c,p,q} W[o, c, p, q] x[n, c, i + p, j + q] + b[o]`` (no padding)."""
    n, _, h, w = x.shape
    c_out, _, kh, kw = W.shape
    ho, wo = h - kh + 1, w - kw + 1
    y = np.zeros((n, c_out, ho, wo))
    for p in range(kh):
        for q in range(kw):
            y += np.einsum("oc,ncij->noij", W[:, :, p, q], x[:, :, p : p + ho, q : q + wo])
    return y + b[None, :, None, None]


def conv_backward(
    x: np.ndarray, W: np.ndarray, dy: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dx, dW, db)`` of :func:`conv_forward`."""
    _, _, ho, wo = dy.shape
    kh, kw = W.shape[2:]
    dx, dW = np.zeros_like(x), np.zeros_like(W)
    for p in range(kh):
        for q in range(kw):
            patch = x[:, :, p : p + ho, q : q + wo]
            dW[:, :, p, q] = np.einsum("noij,ncij->oc", dy, patch)
            dx[:, :, p : p + ho, q : q + wo] += np.einsum("oc,noij->ncij", W[:, :, p, q], dy)
    return dx, dW, dy.sum(axis=(0, 2, 3))


def pool_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2×2 max pooling, stride 2; returns ``y`` and the first maximal offset of each window."""
    n, c, h, w = x.shape
    win = (
        x.reshape(n, c, h // 2, 2, w // 2, 2)
        .transpose(0, 1, 2, 4, 3, 5)
        .reshape(n, c, h // 2, w // 2, 4)
    )
    arg = np.argmax(win, axis=-1)  # first maximum in row-major window order
    return np.take_along_axis(win, arg[..., None], axis=-1)[..., 0], arg


def pool_backward(arg: np.ndarray, dy: np.ndarray) -> np.ndarray:
    n, c, ho, wo = dy.shape
    dwin = np.zeros((n, c, ho, wo, 4))
    np.put_along_axis(dwin, arg[..., None], dy[..., None], axis=-1)
    return (
        dwin.reshape(n, c, ho, wo, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, 2 * ho, 2 * wo)
    )


def weights(model: nn.Sequential) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(W, b)`` of the four weight layers (kernels 4-D), low-rank ones multiplied out."""
    out = []
    for layer in model.weight_layers():
        if isinstance(layer, nn.LowRankLayer):
            W = layer.U @ layer.S @ layer.V.T
        else:
            W = layer.W
        if hasattr(layer, "c_out"):
            W = W.reshape(layer.c_out, layer.c_in, *layer.kernel_size)
        out.append((W, layer.b))
    return out


def reference(model: nn.Sequential, x: np.ndarray, dlogits: np.ndarray) -> dict[str, np.ndarray]:
    """Logits, input gradient and weight/bias gradients of LeNet-5, by the definitions."""
    (W1, b1), (W2, b2), (W3, b3), (W4, b4) = weights(model)
    z1 = conv_forward(x, W1, b1)
    a1 = np.maximum(z1, 0)
    p1, arg1 = pool_forward(a1)
    z2 = conv_forward(p1, W2, b2)
    a2 = np.maximum(z2, 0)
    p2, arg2 = pool_forward(a2)
    f = p2.reshape(len(x), -1)
    z3 = f @ W3.T + b3
    a3 = np.maximum(z3, 0)
    logits = a3 @ W4.T + b4
    g = {"logits": logits, "W4": dlogits.T @ a3, "b4": dlogits.sum(axis=0)}
    d3 = (dlogits @ W4) * (z3 > 0)
    g["W3"], g["b3"] = d3.T @ f, d3.sum(axis=0)
    d2 = pool_backward(arg2, (d3 @ W3).reshape(p2.shape)) * (z2 > 0)
    dp1, g["W2"], g["b2"] = conv_backward(p1, W2, d2)
    d1 = pool_backward(arg1, dp1) * (z1 > 0)
    g["dx"], g["W1"], g["b1"] = conv_backward(x, W1, d1)
    return g


# --------------------------------------------------------------------------- tests
def _case(low_rank: bool, seed: int) -> tuple[nn.Sequential, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    model = nn.lenet5(low_rank=low_rank, ranks=(7, 12, 30), rng=rng)
    for layer in model.weight_layers():  # nonzero biases, so that their paths are exercised
        layer.set_params({"b": 0.1 * rng.standard_normal(layer.n_out)})
    return model, rng.standard_normal((3, 1, 28, 28)), rng.standard_normal((3, 10))


@pytest.mark.parametrize("dense_products", [None, False, True])
def test_lowrank_lenet5_matches_reference(dense_products: bool | None) -> None:
    model, x, dlogits = _case(True, 0)
    for layer in model.low_rank_layers():
        layer.dense_products = dense_products
    ref = reference(model, x, dlogits)
    assert rel(model.forward(x), ref["logits"]) < TOL
    assert rel(model.backward(dlogits), ref["dx"]) < TOL
    rng = np.random.default_rng(1)
    for i, layer in enumerate(model.weight_layers(), start=1):
        G = np.reshape(ref[f"W{i}"], (layer.n_out, layer.n_in))
        assert rel(layer.grads()["b"], ref[f"b{i}"]) < TOL, i
        if not isinstance(layer, nn.LowRankLayer):
            assert rel(layer.grads()["W"], ref[f"W{i}"]) < TOL, i
            continue
        U, V = layer.U, layer.V
        assert rel(layer.grads()["S"], U.T @ G @ V) < TOL, i
        assert rel(layer.grad_dense(), G) < TOL, i
        assert rel(layer.grad_right(V), G @ V) < TOL, i
        assert rel(layer.grad_left(U), G.T @ U) < TOL, i
        Ua = rng.standard_normal((layer.n_out, 2 * layer.rank))
        Va = rng.standard_normal((layer.n_in, 2 * layer.rank))
        assert rel(layer.grad_galerkin(Ua, Va), Ua.T @ G @ Va) < TOL, i


def test_dense_lenet5_matches_reference() -> None:
    model, x, dlogits = _case(False, 2)
    ref = reference(model, x, dlogits)
    assert rel(model.forward(x), ref["logits"]) < TOL
    assert rel(model.backward(dlogits), ref["dx"]) < TOL
    for i, layer in enumerate(model.weight_layers(), start=1):
        assert rel(layer.grads()["W"], ref[f"W{i}"]) < TOL, i
        assert rel(layer.grads()["b"], ref[f"b{i}"]) < TOL, i


def test_max_pool_ties_go_to_the_first_maximum() -> None:
    """With ties in most windows (ReLU zeros do this), the gradient goes where the reference
    puts it — the first maximum in row-major order — not to the last one."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2, size=(2, 3, 6, 8)).astype(np.float64)
    dy = rng.standard_normal((2, 3, 3, 4))
    pool = nn.MaxPool2d(2)
    y = pool.forward(x)
    y_ref, arg = pool_forward(x)
    assert np.array_equal(y, y_ref)
    assert np.array_equal(pool.backward(dy), pool_backward(arg, dy))
    last = 3 - np.argmax(
        x.reshape(2, 3, 3, 2, 4, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 3, 3, 4, 4)[..., ::-1],
        axis=-1,
    )
    assert not np.array_equal(pool_backward(last, dy), pool_backward(arg, dy))


@pytest.mark.parametrize(
    ("kernel", "stride", "padding"), [(5, 1, 0), (3, 2, 1), ((2, 3), (1, 2), (1, 0))]
)
def test_col2im_t_product_is_the_adjoint_of_im2col_t(kernel, stride, padding) -> None:
    """``col2im_t_product(A, B) = col2im_t(A B)`` with the columns in ``(n, i, j)`` order, and
    ``<im2col_t(x), A B> = <x, col2im_t_product(A, B)>``."""
    rng = np.random.default_rng(4)
    x_shape = (2, 3, 7, 6)
    kh, kw = nn.base.pair(kernel, "kernel")
    x = rng.standard_normal(x_shape)
    Xt = nn.conv.im2col_t(x, kernel, stride, padding)
    X = nn.im2col(x, kernel, stride, padding)
    rows = X.shape[0]
    n = x_shape[0]
    A, B = rng.standard_normal((3 * kh * kw, 4)), rng.standard_normal((4, rows))
    got = nn.conv.col2im_t_product(A, B, x_shape, kernel, stride, padding)
    assert got.shape == x_shape
    assert abs(np.vdot(Xt, A @ B) - np.vdot(x, got)) < TOL * np.linalg.norm(A @ B) * np.linalg.norm(
        x
    )
    # the same columns as im2col's rows, reordered
    order = np.arange(rows).reshape(n, rows // n).T.reshape(-1)  # (i, j, n) -> (n, i, j) index
    assert np.array_equal(Xt, X[order].T)
    want = nn.conv.col2im_t((A @ B)[:, np.argsort(order)], x_shape, kernel, stride, padding)
    assert rel(got, want) < TOL
    with pytest.raises(ValueError, match="col2im_t_product expected A"):
        nn.conv.col2im_t_product(A[:-1], B, x_shape, kernel, stride, padding)
