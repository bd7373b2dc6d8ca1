"""Dot-product (adjoint) tests: <A x, y> = <x, Aᵀ y> for im2col/col2im and the linear layers."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lowrank_ode import nn

FAST = settings(max_examples=20, deadline=None)


@st.composite
def geometry(draw: st.DrawFn) -> dict:
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    return {
        "n": draw(st.integers(1, 3)),
        "c_in": draw(st.integers(1, 3)),
        "c_out": draw(st.integers(1, 3)),
        "kernel": (kh, kw),
        "stride": (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        "padding": (ph, pw),
        "hw": (
            draw(st.integers(max(1, kh - 2 * ph), 7)),
            draw(st.integers(max(1, kw - 2 * pw), 7)),
        ),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-12 * max(abs(a), abs(b), 1.0)


@FAST
@given(g=geometry())
def test_im2col_col2im_adjoint(g: dict) -> None:
    rng = np.random.default_rng(g["seed"])
    x = rng.standard_normal((g["n"], g["c_in"], *g["hw"]))
    X = nn.im2col(x, g["kernel"], g["stride"], g["padding"])
    Y = rng.standard_normal(X.shape)
    back = nn.col2im(Y, x.shape, g["kernel"], g["stride"], g["padding"])
    assert back.shape == x.shape
    assert close(float(np.sum(X * Y)), float(np.sum(x * back)))


@FAST
@given(g=geometry())
def test_im2col_matches_direct_convolution(g: dict) -> None:
    """Conv2d (im2col path) against a naive loop-based cross-correlation."""
    rng = np.random.default_rng(g["seed"])
    layer = nn.Conv2d(g["c_in"], g["c_out"], g["kernel"], g["stride"], g["padding"], rng=rng)
    layer.set_params({"b": rng.standard_normal(g["c_out"])})
    x = rng.standard_normal((g["n"], g["c_in"], *g["hw"]))
    y = layer.forward(x)
    (kh, kw), (sh, sw), (ph, pw) = g["kernel"], g["stride"], g["padding"]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ref = np.zeros_like(y)
    for i in range(y.shape[2]):
        for j in range(y.shape[3]):
            patch = xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
            ref[:, :, i, j] = np.einsum("nchw,ochw->no", patch, layer.W) + layer.b
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@FAST
@given(
    n_in=st.integers(1, 8),
    n_out=st.integers(1, 8),
    batch=st.integers(1, 4),
    seed=st.integers(0, 999),
)
def test_dense_adjoint(n_in: int, n_out: int, batch: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for layer in (nn.Dense(n_in, n_out, rng=rng), nn.LowRankDense(n_in, n_out, 1, rng=rng)):
        x = rng.standard_normal((batch, n_in))
        y = rng.standard_normal((batch, n_out))
        out = layer.forward(x)  # bias is zero: the map is linear in x
        assert close(float(np.sum(out * y)), float(np.sum(x * layer.backward(y))))


@FAST
@given(g=geometry())
def test_conv_adjoint_in_input_and_weight(g: dict) -> None:
    rng = np.random.default_rng(g["seed"])
    layer = nn.Conv2d(g["c_in"], g["c_out"], g["kernel"], g["stride"], g["padding"], rng=rng)
    x = rng.standard_normal((g["n"], g["c_in"], *g["hw"]))
    out = layer.forward(x)
    y = rng.standard_normal(out.shape)
    dx = layer.backward(y)
    assert close(float(np.sum(out * y)), float(np.sum(x * dx)))  # linear in x (b = 0)
    assert close(float(np.sum(out * y)), float(np.sum(layer.W * layer.grads()["W"])))  # in W


@FAST
@given(
    n=st.integers(1, 2),
    c=st.integers(1, 3),
    k=st.integers(1, 3),
    s=st.integers(1, 3),
    extra=st.tuples(st.integers(0, 4), st.integers(0, 4)),
    seed=st.integers(0, 999),
)
def test_pool_adjoint(n: int, c: int, k: int, s: int, extra: tuple[int, int], seed: int) -> None:
    """Average pooling is linear; max pooling is linear for a fixed argmax pattern."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, k + extra[0], k + extra[1]))
    for layer in (nn.AvgPool2d(k, s), nn.MaxPool2d(k, s)):
        out = layer.forward(x)
        y = rng.standard_normal(out.shape)
        dx = layer.backward(y)  # for max pooling: <P x, y> = <x, Pᵀ y>, P selects the maxima
        assert close(float(np.sum(out * y)), float(np.sum(x * dx)))


def test_maxpool_matches_naive() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6))
    y = nn.MaxPool2d(3, 2).forward(x)
    ref = np.array(
        [
            [
                [
                    [x[b, c, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3].max() for j in range(2)]
                    for i in range(3)
                ]
                for c in range(3)
            ]
            for b in range(2)
        ]
    )
    np.testing.assert_array_equal(y, ref)
