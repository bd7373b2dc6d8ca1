"""Reference networks (:func:`mlp`, :func:`lenet5`) and parameter counting.

Parameter counts follow the DLRT paper's conventions (weights only, biases excluded unless
``include_bias=True``), with the *correct* low-rank evaluation count ``r (n_in + n_out)`` per
factorised layer (a published LeNet-5 table omits the ``n_in · r`` term):

* ``"eval"``  — ``Σ r(n_in + n_out)`` over low-rank layers ``+ Σ n_in n_out`` over dense ones,
* ``"train"`` — ``Σ [2r(n_in + n_out) + 4r²]`` (the augmented ``2r`` bases and core) ``+`` dense,
* ``"stored"`` — what the arrays hold now: ``r(n_in + n_out) + r²`` per factorised layer,
* ``"dense"`` — every weight layer counted as dense (``n_in n_out``; the reference for the
  compression rate).

For convolutions ``n_out = c_out`` and ``n_in = c_in kh kw``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike

from .activations import get_activation
from .base import Layer, Sequential, as_rng, check_size
from .conv import Conv2d
from .layers import Dense, Flatten
from .lowrank_layers import LowRankConv2d, LowRankDense, LowRankLayer, factored_param_count
from .pool import MaxPool2d

__all__ = ["mlp", "lenet5", "LENET5_FACTORIZED_SHAPES", "count_params", "compression_rate"]

_KINDS = ("eval", "train", "stored", "dense")


def _ranks(rank: int | Sequence[int], n: int, who: str) -> list[int]:
    if isinstance(rank, (int, np.integer)):
        return [int(rank)] * n
    ranks = [int(r) for r in rank]
    if len(ranks) != n:
        raise ValueError(f"{who}: expected {n} ranks (one per low-rank layer), got {len(ranks)}")
    return ranks


def mlp(
    widths: Sequence[int] = (784, 500, 500, 500, 500, 10),
    low_rank: bool = True,
    rank: int | Sequence[int] = 20,
    activation: str = "relu",
    dtype: DTypeLike = np.float64,
    rng: np.random.Generator | int | None = None,
    init: str | None = None,
    decay: float | None = None,
) -> Sequential:
    """Fully connected network ``widths[0] → … → widths[-1]``, activation between layers.

    With ``low_rank`` every layer but the last is a :class:`LowRankDense` (the output layer
    stays dense, as in DLRT).

    Parameters
    ----------
    widths : sequence of int
        At least two entries.
    low_rank : bool, default True
    rank : int or sequence of int
        One rank for all factorised layers, or one per layer (``len(widths) − 2`` of them).
    activation : {"relu", "tanh", "leaky_relu"}
    dtype : numpy dtype, default float64
    rng : numpy.random.Generator or int or None
    init : {"he", "glorot"}, optional
        Default: ``"he"`` for ReLU-type activations, ``"glorot"`` for tanh.
    decay : float, optional
        Prescribed initial spectrum ``|N(0,1)| sorted · decay**(-k)`` in the low-rank layers.

    Returns
    -------
    model : Sequential
    """
    widths = [check_size(w, f"widths[{i}]") for i, w in enumerate(widths)]
    if len(widths) < 2:
        raise ValueError(f"widths needs at least 2 entries, got {widths}")
    get_activation(activation)  # validate the name before building anything
    rng = as_rng(rng)
    init = init or ("glorot" if activation == "tanh" else "he")
    ranks = _ranks(rank, len(widths) - 2, "mlp") if low_rank else []
    layers: list[Layer] = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        last = i == len(widths) - 2
        if low_rank and not last:
            layers.append(
                LowRankDense(n_in, n_out, ranks[i], rng=rng, dtype=dtype, init=init, decay=decay)
            )
        else:
            layers.append(Dense(n_in, n_out, rng=rng, dtype=dtype, init=init))
        if not last:
            layers.append(get_activation(activation))
    return Sequential(layers)


#: (n_out, n_in) of the weight matrices that :func:`lenet5` factorises: conv 1→20 and 20→50 with
#: 5×5 kernels (n_in = c_in·5·5), dense 800→500.
LENET5_FACTORIZED_SHAPES: tuple[tuple[int, int], ...] = (
    (20, 1 * 5 * 5),
    (50, 20 * 5 * 5),
    (500, 800),
)


def lenet5(
    low_rank: bool = False,
    ranks: int | Sequence[int] = 20,
    dtype: DTypeLike = np.float64,
    rng: np.random.Generator | int | None = None,
    decay: float | None = None,
) -> Sequential:
    """LeNet-5 of the DLRT paper for ``1×28×28`` inputs.

    conv 20@5×5 → ReLU → maxpool 2 → conv 50@5×5 → ReLU → maxpool 2 → flatten → dense 800→500
    → ReLU → dense 500→10.  With ``low_rank`` the two convolutions and the 800→500 layer are
    factorised (ranks ``ranks``, at most min(n_out, n_in) of each layer — 20, 50, 500, see
    :data:`LENET5_FACTORIZED_SHAPES`); the output layer stays dense.

    The layer list applies each max-pool before its ReLU: ``maxpool(ReLU(z)) = ReLU(maxpool(z))``
    (ReLU is monotone), and the gradients agree too (each window's gradient goes to its first
    maximum, and vanishes in both orders when that maximum is ≤ 0), so this is the same network
    with the ReLU on a quarter of the entries.  Layer indices (parameter keys ``"0."``, ``"3."``,
    ``"7."``, ``"9."``) are those of the textbook order.

    Parameters
    ----------
    low_rank : bool, default False
    ranks : int or sequence of 3 ints
    dtype : numpy dtype, default float64
    rng : numpy.random.Generator or int or None
    decay : float, optional
        Prescribed initial spectrum in the low-rank layers.

    Returns
    -------
    model : Sequential
        Input ``(N, 1, 28, 28)``, output logits ``(N, 10)``.
    """
    rng = as_rng(rng)
    kw = {"rng": rng, "dtype": dtype}
    if low_rank:
        r1, r2, r3 = _ranks(ranks, 3, "lenet5")
        conv1: Layer = LowRankConv2d(1, 20, 5, r1, decay=decay, **kw)
        conv2: Layer = LowRankConv2d(20, 50, 5, r2, decay=decay, **kw)
        fc1: Layer = LowRankDense(800, 500, r3, decay=decay, **kw)
    else:
        conv1, conv2, fc1 = Conv2d(1, 20, 5, **kw), Conv2d(20, 50, 5, **kw), Dense(800, 500, **kw)
    return Sequential(
        [
            conv1,
            MaxPool2d(2),
            get_activation("relu"),
            conv2,
            MaxPool2d(2),
            get_activation("relu"),
            Flatten(),
            fc1,
            get_activation("relu"),
            Dense(500, 10, **kw),
        ]
    )


def _layer_count(layer: Layer, kind: str, rank: int | None = None) -> int:
    if rank is not None:
        return factored_param_count(layer.n_out, layer.n_in, rank, kind)
    if isinstance(layer, LowRankLayer):
        return layer.param_count(kind)
    if isinstance(layer, (Dense, Conv2d)):
        return layer.n_in * layer.n_out
    return 0


def count_params(
    model: Sequential,
    kind: str = "eval",
    include_bias: bool = False,
    ranks: Sequence[int | None] | None = None,
) -> int:
    """Number of weight parameters of ``model`` (see the module docstring for ``kind``).

    Parameters
    ----------
    model : Sequential
    kind : {"eval", "train", "stored", "dense"}
    include_bias : bool, default False
        Add ``n_out`` per weight layer.
    ranks : sequence of int or None, optional
        Count the first ``len(ranks)`` weight layers as factorized at these ranks (``None``:
        as the layer is) — e.g. the SVD truncations of a dense network's weights.

    Returns
    -------
    count : int
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    layers = model.weight_layers()
    ranks = list(ranks) if ranks is not None else []
    if len(ranks) > len(layers):
        raise ValueError(f"got {len(ranks)} ranks for {len(layers)} weight layers")
    ranks += [None] * (len(layers) - len(ranks))
    total = 0
    for layer, rank in zip(layers, ranks, strict=True):
        total += _layer_count(layer, kind, rank)
        if include_bias:
            total += layer.n_out
    return total


def compression_rate(model: Sequential, kind: str = "eval") -> float:
    """Compression rate in percent, ``100 (1 − count_params(kind) / count_params("dense"))``.

    Negative when the low-rank model needs more parameters than the dense one (training counts
    at large rank).
    """
    return 100.0 * (1.0 - count_params(model, kind) / count_params(model, "dense"))
