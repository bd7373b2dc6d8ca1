"""Finite-difference gradient checks of every layer and loss (float64).

Each check is a central-difference directional derivative (relative error < 1e-6) and a
Taylor-remainder test: ``|L(θ+εd) − L(θ) − ε<g, d>|`` must decay like ``ε²`` (fitted slope in
[1.7, 2.3] over ``ε = 1e-2 … 1e-4``).  Inputs of piecewise-linear layers (ReLU, max pooling) are
drawn a fixed distance away from the kinks so no ``ε`` crosses one.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowrank_ode import nn
from lowrank_ode.testing.layers import gradient_check, layer_gradient_report

RTOL = 1e-6
SLOPE = (1.7, 2.3)  # slope 1 for a wrong gradient; 2 for the right one
FAST = settings(max_examples=20, deadline=None)


def assert_report(report: dict[str, tuple[float, float]]) -> None:
    for name, (err, slope) in report.items():
        assert err < RTOL, f"{name}: directional derivative rel err {err:.2e}"
        assert SLOPE[0] < slope < SLOPE[1], f"{name}: Taylor slope {slope:.3f}"


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Entries with |x| >= 0.1, so perturbations of size <= 1e-2 never cross the ReLU kink."""
    return rng.choice([-1.0, 1.0], size=shape) * (0.1 + np.abs(rng.standard_normal(shape)))


def distinct(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Entries pairwise at least 0.1 apart, so max-pool windows have no (near-)ties."""
    n = int(np.prod(shape))
    return (rng.permutation(n).astype(np.float64) * 0.1 - 0.05 * n).reshape(shape)


@st.composite
def conv_geometry(draw: st.DrawFn) -> dict:
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 6))
    w = draw(st.integers(max(1, kw - 2 * pw), 6))
    return {
        "n": draw(st.integers(1, 2)),
        "c_in": draw(st.integers(1, 3)),
        "c_out": draw(st.integers(1, 3)),
        "kernel": (kh, kw),
        "stride": (sh, sw),
        "padding": (ph, pw),
        "hw": (h, w),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


@FAST
@given(
    n_in=st.integers(1, 6),
    n_out=st.integers(1, 6),
    batch=st.integers(1, 4),
    seed=st.integers(0, 2**31 - 1),
)
def test_dense_gradients(n_in: int, n_out: int, batch: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    layer = nn.Dense(n_in, n_out, rng=rng)
    layer.set_params({"b": rng.standard_normal(n_out)})
    assert_report(layer_gradient_report(layer, rng.standard_normal((batch, n_in)), rng))


@FAST
@given(g=conv_geometry())
def test_conv2d_gradients(g: dict) -> None:
    rng = np.random.default_rng(g["seed"])
    layer = nn.Conv2d(g["c_in"], g["c_out"], g["kernel"], g["stride"], g["padding"], rng=rng)
    layer.set_params({"b": rng.standard_normal(g["c_out"])})
    x = rng.standard_normal((g["n"], g["c_in"], *g["hw"]))
    assert_report(layer_gradient_report(layer, x, rng))


@FAST
@given(g=conv_geometry())
def test_lowrank_conv2d_gradients(g: dict) -> None:
    rng = np.random.default_rng(g["seed"])
    n_in = g["c_in"] * g["kernel"][0] * g["kernel"][1]
    r = int(rng.integers(1, min(n_in, g["c_out"]) + 1))
    layer = nn.LowRankConv2d(g["c_in"], g["c_out"], g["kernel"], r, g["stride"], g["padding"])
    # non-orthonormal factors: the layer must not assume orthonormality
    layer.set_factors(
        rng.standard_normal((g["c_out"], r)),
        rng.standard_normal((r, r)),
        rng.standard_normal((n_in, r)),
    )
    layer.set_params({"b": rng.standard_normal(g["c_out"])})
    x = rng.standard_normal((g["n"], g["c_in"], *g["hw"]))
    assert_report(layer_gradient_report(layer, x, rng))


@FAST
@given(
    n_in=st.integers(1, 6),
    n_out=st.integers(1, 6),
    batch=st.integers(1, 4),
    seed=st.integers(0, 2**31 - 1),
)
def test_lowrank_dense_gradients(n_in: int, n_out: int, batch: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    r = int(rng.integers(1, min(n_in, n_out) + 1))
    layer = nn.LowRankDense(n_in, n_out, r, rng=rng)
    layer.set_factors(
        rng.standard_normal((n_out, r)), rng.standard_normal((r, r)), rng.standard_normal((n_in, r))
    )
    layer.set_params({"b": rng.standard_normal(n_out)})
    report = layer_gradient_report(layer, rng.standard_normal((batch, n_in)), rng)
    assert set(report) == {"x", "S", "b"}
    assert_report(report)


@FAST
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple),
    kind=st.sampled_from(["relu", "leaky_relu", "tanh"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_activation_gradients(shape: tuple[int, ...], kind: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    layer = nn.LeakyReLU(0.2) if kind == "leaky_relu" else nn.get_activation(kind)
    assert_report(layer_gradient_report(layer, away_from_zero(rng, shape), rng))


@FAST
@given(
    n=st.integers(1, 2),
    c=st.integers(1, 3),
    k=st.integers(1, 3),
    s=st.integers(1, 3),
    extra=st.tuples(st.integers(0, 4), st.integers(0, 4)),
    kind=st.sampled_from(["max", "avg"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_pool_gradients(
    n: int, c: int, k: int, s: int, extra: tuple[int, int], kind: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    layer = nn.MaxPool2d(k, s) if kind == "max" else nn.AvgPool2d(k, s)
    x = distinct(rng, (n, c, k + extra[0], k + extra[1]))
    assert_report(layer_gradient_report(layer, x, rng))


@FAST
@given(
    shape=st.lists(st.integers(1, 4), min_size=2, max_size=4).map(tuple), seed=st.integers(0, 99)
)
def test_flatten_gradients(shape: tuple[int, ...], seed: int) -> None:
    rng = np.random.default_rng(seed)
    assert_report(layer_gradient_report(nn.Flatten(), rng.standard_normal(shape), rng))


@FAST
@given(
    batch=st.integers(1, 5),
    classes=st.integers(2, 6),
    scale=st.sampled_from([0.1, 1.0, 10.0]),
    seed=st.integers(0, 2**31 - 1),
)
def test_softmax_cross_entropy_gradient(batch: int, classes: int, scale: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    logits = scale * rng.standard_normal((batch, classes))
    labels = rng.integers(0, classes, size=batch)
    loss = nn.SoftmaxCrossEntropy()
    loss.forward(logits, labels)
    g = loss.backward()
    err, slope = gradient_check(lambda z: loss.forward(z, labels), logits, g, rng)
    assert err < RTOL
    assert SLOPE[0] < slope < SLOPE[1]


@FAST
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple), seed=st.integers(0, 99)
)
def test_mse_gradient(shape: tuple[int, ...], seed: int) -> None:
    rng = np.random.default_rng(seed)
    pred, target = rng.standard_normal(shape), rng.standard_normal(shape)
    loss = nn.MSELoss()
    loss.forward(pred, target)
    err, slope = gradient_check(lambda p: loss.forward(p, target), pred, loss.backward(), rng)
    assert err < RTOL
    assert SLOPE[0] < slope < SLOPE[1]


def test_softmax_cross_entropy_is_stable_and_correct() -> None:
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    labels = np.array([0, 2])
    loss = nn.SoftmaxCrossEntropy()
    value = loss.forward(logits, labels)
    assert np.isfinite(value)
    assert value == pytest.approx(np.log(3.0) / 2, rel=1e-14)
    g = loss.backward()
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g.sum(axis=1), 0.0, atol=1e-15)


def test_taylor_slope_detects_a_wrong_gradient() -> None:
    """Sanity check of the checker itself: a perturbed gradient gives slope ≈ 1."""
    rng = np.random.default_rng(0)
    layer = nn.Dense(4, 3, rng=rng)
    x = rng.standard_normal((2, 4))
    y = layer.forward(x)
    w = rng.standard_normal(y.shape)
    layer.backward(w + y)
    g = layer.grads()["W"] * 1.01
    base = layer.W.copy()

    def f(W: np.ndarray) -> float:
        layer.set_params({"W": W})
        out = layer.forward(x)
        layer.set_params({"W": base})
        return float(np.sum(w * out) + 0.5 * np.sum(out * out))

    err, slope = gradient_check(f, base, g, rng)
    assert err > 1e-4
    assert slope < 1.3


def test_sequential_gradient() -> None:
    """End to end through a small low-rank conv net with the cross-entropy loss."""
    rng = np.random.default_rng(3)
    model = nn.Sequential(
        [
            nn.LowRankConv2d(2, 4, 3, 2, padding=1, rng=rng),
            nn.Tanh(),
            nn.AvgPool2d(2),
            nn.Flatten(),
            nn.LowRankDense(4 * 3 * 3, 5, 3, rng=rng),
            nn.Tanh(),
            nn.Dense(5, 3, rng=rng),
        ]
    )
    x = rng.standard_normal((3, 2, 6, 6))
    labels = np.array([0, 2, 1])
    loss = nn.SoftmaxCrossEntropy()
    loss.forward(model.forward(x), labels)
    dx = model.backward(loss.backward())
    grads = {k: v.copy() for k, v in model.grads().items()}
    err, slope = gradient_check(lambda z: loss.forward(model.forward(z), labels), x, dx, rng)
    assert err < RTOL and SLOPE[0] < slope < SLOPE[1]
    params = {k: v.copy() for k, v in model.params().items()}
    for key, g in grads.items():

        def f(p: np.ndarray, key: str = key) -> float:
            model.set_params({key: p})
            out = loss.forward(model.forward(x), labels)
            model.set_params({key: params[key]})
            return out

        err, slope = gradient_check(f, params[key], g, rng)
        assert err < RTOL, key
        assert SLOPE[0] < slope < SLOPE[1], key


@pytest.mark.parametrize("kind", ["dense", "lowrank", "conv", "lowrank_conv"])
def test_backward_without_input_gradient(kind: str) -> None:
    """Sequential.backward(dy, input_grad=False): same parameter gradients, no dx."""
    rng = np.random.default_rng(0)
    if kind in ("dense", "lowrank"):
        first = nn.Dense(7, 5, rng=1) if kind == "dense" else nn.LowRankDense(7, 5, 3, rng=1)
        x = rng.standard_normal((4, 7))
        model = nn.Sequential([first, nn.ReLU(), nn.Dense(5, 3, rng=2)])
    else:
        first = nn.Conv2d(2, 3, 3, rng=1) if kind == "conv" else nn.LowRankConv2d(2, 3, 3, 2, rng=1)
        x = rng.standard_normal((2, 2, 6, 6))
        model = nn.Sequential([first, nn.ReLU(), nn.Flatten(), nn.Dense(48, 3, rng=2)])
    dy = rng.standard_normal((x.shape[0], 3))
    model.forward(x)
    dx = model.backward(dy)
    g_full = model.grads()
    model.forward(x)
    assert model.backward(dy, input_grad=False) is None
    g = model.grads()
    assert dx.shape == x.shape and set(g) == set(g_full)
    for k in g:
        assert np.array_equal(g[k], g_full[k]), k
