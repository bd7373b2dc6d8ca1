"""Hostile input to the layers and losses: one error type per kind of misuse."""

import numpy as np
import pytest

from lowrank_ode.nn import (
    AvgPool2d,
    Conv2d,
    Dense,
    Flatten,
    LeakyReLU,
    LowRankConv2d,
    LowRankDense,
    MaxPool2d,
    MSELoss,
    ReLU,
    Sequential,
    SoftmaxCrossEntropy,
    Tanh,
)

LAYERS = {
    "Dense": (lambda: Dense(4, 3, rng=0), (2, 3)),
    "Conv2d": (lambda: Conv2d(1, 2, 3, rng=0), (2, 2, 4, 4)),
    "MaxPool2d": (lambda: MaxPool2d(2), (2, 1, 2, 2)),
    "AvgPool2d": (lambda: AvgPool2d(2), (2, 1, 2, 2)),
    "Flatten": (Flatten, (2, 4)),
    "ReLU": (ReLU, (2, 3)),
    "LeakyReLU": (LeakyReLU, (2, 3)),
    "Tanh": (Tanh, (2, 3)),
    "LowRankDense": (lambda: LowRankDense(4, 3, 2, rng=0), (2, 3)),
    "LowRankConv2d": (lambda: LowRankConv2d(1, 2, 3, 2, rng=0), (2, 2, 4, 4)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_backward_before_forward_is_a_runtime_error(name):
    make, dy_shape = LAYERS[name]
    with pytest.raises(RuntimeError, match=rf"{name}\.backward called before forward"):
        make().backward(np.ones(dy_shape))


@pytest.mark.parametrize("loss", [SoftmaxCrossEntropy, MSELoss])
def test_loss_backward_before_forward_is_a_runtime_error(loss):
    with pytest.raises(RuntimeError, match=rf"{loss.__name__}\.backward called before forward"):
        loss().backward()


@pytest.mark.parametrize(
    "make,exc,match",
    [
        (lambda: Dense(2.7, 3), TypeError, r"n_in must be an integer, got 2.7"),
        (lambda: Dense(3, 0), ValueError, r"n_out must be an integer >= 1, got 0"),
        (lambda: Dense(True, 3), TypeError, r"n_in must be an integer, got True"),
        (lambda: LowRankDense(4.0, 3, 2), TypeError, r"n_in must be an integer, got 4.0"),
        (lambda: Conv2d(1.5, 2, 3), TypeError, r"c_in must be an integer, got 1.5"),
        (lambda: Conv2d(1, 2, 2.5), TypeError, r"kernel_size must be an int .* got 2.5"),
        (lambda: MaxPool2d((2, "2")), TypeError, r"kernel_size must be an int .* got \(2, '2'\)"),
        (lambda: LowRankConv2d(1, 2, 3, 2, stride=1.0), TypeError, r"stride .* got 1.0"),
    ],
)
def test_layer_sizes_must_be_integers(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize(
    "layer,x,who",
    [
        (Dense(3, 2, rng=0), [[1.0, 2.0, 3.0]], "Dense"),
        (LowRankDense(3, 2, 1, rng=0), [[1.0, 2.0, 3.0]], "LowRankDense"),
        (Conv2d(1, 1, 1, rng=0), [[[[1.0]]]], "Conv2d"),
        (Sequential([Dense(3, 2, rng=0)]), [[1.0, 2.0, 3.0]], "Sequential"),
        (MaxPool2d(1), 3.0, "MaxPool2d"),
        (Flatten(), (1, 2), "Flatten"),
    ],
)
def test_non_array_input_is_a_type_error(layer, x, who):
    with pytest.raises(
        TypeError, match=rf"{who} expected an array as input, got {type(x).__name__}"
    ):
        layer.forward(x)


def test_empty_batch_to_cross_entropy():
    with pytest.raises(ValueError, match=r"non-empty batch of logits, got shape \(0, 10\)"):
        SoftmaxCrossEntropy().forward(np.zeros((0, 10)), np.zeros(0, dtype=int))


def test_empty_prediction_to_mse():
    with pytest.raises(ValueError, match=r"MSELoss expected a non-empty pred, got shape \(0, 3\)"):
        MSELoss().forward(np.zeros((0, 3)), np.zeros((0, 3)))


def test_list_to_losses():
    with pytest.raises(TypeError, match=r"expected an array for logits, got list"):
        SoftmaxCrossEntropy().forward([[0.0, 1.0]], np.zeros(1, dtype=int))
    with pytest.raises(TypeError, match=r"MSELoss expected an array for target, got list"):
        MSELoss().forward(np.zeros(2), [0.0, 1.0])


def test_mlp_widths_must_be_integers():
    from lowrank_ode.nn import mlp

    with pytest.raises(TypeError, match=r"widths\[1\] must be an integer, got 2.7"):
        mlp((784, 2.7, 10))
