"""Bad input raises ValueError naming the expected and the received value."""

from __future__ import annotations

import numpy as np
import pytest

from lowrank_ode import nn


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: nn.LowRankDense(10, 6, 7), r"min\(n_in, n_out\) = min\(10, 6\) = 6, got 7"),
        (lambda: nn.LowRankDense(10, 6, 0), r"1 <= rank .* got 0"),
        (lambda: nn.LowRankConv2d(2, 8, 3, 19), r"min\(18, 8\) = 8, got 19"),
        (lambda: nn.LowRankConv2d(2, 8, 3, -1), r"got -1"),
        (lambda: nn.LowRankDense(10, 6, 2.5), r"integer, got 2.5"),
        (lambda: nn.Conv2d(2, 3, 0), r"kernel_size=\(0, 0\)"),
        (lambda: nn.MaxPool2d(2, 0), r"stride=\(0, 0\)"),
        (lambda: nn.mlp((8, 6, 4, 2), rank=(2, 2, 2)), r"expected 2 ranks .* got 3"),
        (lambda: nn.mlp((8, 6, 2), activation="gelu"), r"got 'gelu'"),
        (lambda: nn.lowrank_init(5, 4, 2, singular_values=np.ones(3)), r"\(2,\), got \(3,\)"),
    ],
)
def test_constructor_errors(make, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_dense_input_shape() -> None:
    layer = nn.Dense(5, 3)
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 5\), got \(2, 4\)"):
        layer.forward(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"\(batch, 5\), got \(5,\)"):
        layer.forward(np.ones(5))
    with pytest.raises(ValueError, match=r"\(batch, 5\), got \(2, 4\)"):
        nn.LowRankDense(5, 3, 2).forward(np.ones((2, 4)))


@pytest.mark.parametrize("cls", ["Conv2d", "LowRankConv2d"])
def test_conv_channel_mismatch_and_sizes(cls: str) -> None:
    layer = nn.Conv2d(3, 4, 3) if cls == "Conv2d" else nn.LowRankConv2d(3, 4, 3, 2)
    with pytest.raises(ValueError, match=r"expected 3 input channels .* got 1"):
        layer.forward(np.ones((2, 1, 8, 8)))
    with pytest.raises(
        ValueError, match=r"expected input of shape \(N, 3, H, W\), got \(3, 8, 8\)"
    ):
        layer.forward(np.ones((3, 8, 8)))
    with pytest.raises(ValueError, match=r"kernel \(3, 3\) larger than the padded input \(2, 8\)"):
        layer.forward(np.ones((1, 3, 2, 8)))
    layer.forward(np.ones((2, 3, 5, 5)))
    with pytest.raises(
        ValueError, match=r"expected dy of shape \(2, 4, 3, 3\), got \(2, 4, 3, 2\)"
    ):
        layer.backward(np.ones((2, 4, 3, 2)))


def test_pool_input_errors() -> None:
    with pytest.raises(ValueError, match=r"\(N, C, H, W\), got \(4, 4\)"):
        nn.MaxPool2d(2).forward(np.ones((4, 4)))
    with pytest.raises(ValueError, match=r"kernel \(3, 3\) larger .* \(2, 2\)"):
        nn.AvgPool2d(3).forward(np.ones((1, 1, 2, 2)))


def test_set_factors_errors() -> None:
    layer = nn.LowRankDense(7, 5, 2)
    with pytest.raises(ValueError, match=r"expected U of shape .*\(5, r\).*received U \(4, 2\)"):
        layer.set_factors(np.ones((4, 2)), np.eye(2), np.ones((7, 2)))
    with pytest.raises(ValueError, match=r"received U \(5, 2\), S \(3, 3\), V \(7, 2\)"):
        layer.set_factors(np.ones((5, 2)), np.eye(3), np.ones((7, 2)))
    with pytest.raises(ValueError, match=r"V \(n_in, r\) = \(7, r\).*V \(6, 3\)"):
        layer.set_factors(np.ones((5, 3)), np.eye(3), np.ones((6, 3)))
    with pytest.raises(ValueError, match=r"min\(7, 5\) = 5, got 6"):
        layer.set_factors(np.ones((5, 6)), np.eye(6), np.ones((7, 6)))
    with pytest.raises(ValueError, match=r"b: expected shape \(5,\), got \(4,\)"):
        layer.set_params({"b": np.zeros(4)})
    layer.forward(np.ones((3, 7)))
    layer.backward(np.ones((3, 5)))
    with pytest.raises(ValueError, match=r"expected V of shape \(7, k\), got \(5, 2\)"):
        layer.grad_right(np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"expected U of shape \(5, k\), got \(7, 2\)"):
        layer.grad_left(np.ones((7, 2)))
    assert layer.rank == 2  # failed calls left the layer untouched


def test_set_params_errors() -> None:
    layer = nn.Dense(4, 3)
    with pytest.raises(ValueError, match=r"W: expected shape \(3, 4\), got \(4, 3\)"):
        layer.set_params({"W": np.ones((4, 3))})
    with pytest.raises(ValueError, match=r"got 'V'"):
        layer.set_params({"V": np.ones((4, 3))})
    model = nn.Sequential([layer])
    with pytest.raises(ValueError, match=r"index < 1, got '3.W'"):
        model.set_params({"3.W": np.ones((3, 4))})


def test_loss_errors() -> None:
    loss = nn.SoftmaxCrossEntropy()
    with pytest.raises(ValueError, match=r"labels in \[0, 3\), got values in \[0, 3\]"):
        loss.forward(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"labels of shape \(2,\), got \(3,\)"):
        loss.forward(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"integer labels, got dtype float64"):
        loss.forward(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\(batch, n_classes\), got \(3,\)"):
        loss.forward(np.zeros(3), np.array([0]))
    with pytest.raises(ValueError, match=r"target of shape \(2, 3\), got \(3, 2\)"):
        nn.MSELoss().forward(np.zeros((2, 3)), np.zeros((3, 2)))


def test_col2im_shape_error() -> None:
    with pytest.raises(ValueError, match=r"cols of shape \(8, 4\), got \(8, 5\)"):
        nn.col2im(np.zeros((8, 5)), (2, 1, 3, 3), 2)
