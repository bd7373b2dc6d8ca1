"""Fully connected layer and :class:`Flatten`."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from .. import _array_api as aa
from . import _ops
from .base import Layer, as_rng, check_array, check_size, shape_of
from .init import dense_init

__all__ = ["Dense", "Flatten", "check_2d_input"]


def check_2d_input(x: Any, n_in: int, who: str) -> None:
    """Raise ``ValueError`` unless ``x`` has shape ``(batch, n_in)`` (``TypeError`` for a
    non-array)."""
    check_array(x, who)
    if x.ndim != 2 or int(x.shape[1]) != n_in:
        raise ValueError(f"{who} expected input of shape (batch, {n_in}), got {shape_of(x)}")


class Dense(Layer):
    """Affine layer ``y = x Wᵀ + b``.

    Parameters
    ----------
    n_in, n_out : int
    rng : numpy.random.Generator or int or None
    dtype : numpy dtype, default float64
    init : {"he", "glorot"}
        Weight initialisation; the bias starts at zero.

    Attributes
    ----------
    W : array, shape (n_out, n_in)
    b : array, shape (n_out,)
    """

    _param_names = ("W", "b")
    has_weight = True

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        rng: np.random.Generator | int | None = None,
        dtype: DTypeLike = np.float64,
        init: str = "he",
    ) -> None:
        super().__init__()
        self.n_in, self.n_out = check_size(n_in, "n_in"), check_size(n_out, "n_out")
        self.W = dense_init(n_in, n_out, as_rng(rng), dtype, init)
        self.b = np.zeros(n_out, dtype=dtype)

    def forward(self, x: Any) -> Any:
        """``y = x Wᵀ + b``.

        Parameters
        ----------
        x : array, shape (batch, n_in)

        Returns
        -------
        y : array, shape (batch, n_out)
        """
        check_2d_input(x, self.n_in, "Dense")
        self._cache = {"x": x}
        y = _ops.matmul(x, self.W.T)
        y += self.b  # in place: the product is a fresh array
        return y

    skips_input_grad = True

    def backward(self, dy: Any, input_grad: bool = True) -> Any:
        """Fill ``grads() = {"W": dyᵀ x, "b": Σ_batch dy}`` and return ``dx = dy W``.

        Parameters
        ----------
        dy : array, shape (batch, n_out)
        input_grad : bool
            False: skip ``dx`` and return None.

        Returns
        -------
        dx : array, shape (batch, n_in)
        """
        x = self._cached()["x"]
        xp = aa.array_namespace(dy)
        if shape_of(dy) != (int(x.shape[0]), self.n_out):
            raise ValueError(
                f"Dense.backward expected dy of shape {(int(x.shape[0]), self.n_out)}, "
                f"got {shape_of(dy)}"
            )
        self._grads = {"W": _ops.matmul(dy.T, x), "b": xp.sum(dy, axis=0)}
        return _ops.matmul(dy, self.W) if input_grad else None

    def __repr__(self) -> str:
        return f"Dense({self.n_in}, {self.n_out})"


class Flatten(Layer):
    """Reshape ``(batch, d1, d2, ...)`` to ``(batch, d1*d2*...)`` (C order)."""

    def forward(self, x: Any) -> Any:
        """
        Parameters
        ----------
        x : array, shape (batch, ...)

        Returns
        -------
        y : array, shape (batch, prod(...))
        """
        check_array(x, "Flatten")
        if x.ndim < 2:
            raise ValueError(f"Flatten expected input with ndim >= 2, got shape {shape_of(x)}")
        xp = aa.array_namespace(x)
        self._cache = {"shape": shape_of(x), "x": x}
        return xp.reshape(x, (int(x.shape[0]), -1))

    def backward(self, dy: Any) -> Any:
        """
        Parameters
        ----------
        dy : array, shape (batch, prod(...))

        Returns
        -------
        dx : array, shape (batch, ...)
        """
        shape = self._cached()["shape"]
        xp = aa.array_namespace(dy)
        dx = xp.reshape(dy, shape)
        x = self._cached()["x"]
        if type(x) is np.ndarray and type(dx) is np.ndarray and dx.strides != x.strides:
            # in the memory layout of x (the (C, H, W, N) buffers of the convolutions), so that
            # the layers below work on arrays of one layout
            out = np.empty_like(x, dtype=dx.dtype)
            out[...] = dx
            return out
        return dx
