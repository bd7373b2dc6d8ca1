"""Max and average pooling (NCHW, no padding), vectorised over the batch and the pixels.

Both loop only over the ``k*k`` window offsets, taking one strided slice of the whole batch per
offset (array-API slicing), exactly as :func:`lowrank_ode.nn.conv.im2col` does.  Overlapping
windows (``stride < k``) are supported: gradients of overlapping windows add up.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import device as _device

from .. import _array_api as aa
from .base import Layer, check_array, pair, shape_of
from .conv import _check_dy, _offset_slice, check_conv_input

__all__ = ["MaxPool2d", "AvgPool2d"]


class _Pool2d(Layer):
    def __init__(
        self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None
    ) -> None:
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else pair(stride, "stride")
        if min(self.kernel_size) < 1 or min(self.stride) < 1:
            raise ValueError(
                f"need kernel_size >= 1 and stride >= 1, got kernel_size={self.kernel_size}, "
                f"stride={self.stride}"
            )

    def _windows(self, x: Any) -> tuple[list[Any], list[tuple[slice, ...]], tuple[int, int]]:
        who = type(self).__name__
        check_array(x, who)
        if x.ndim != 4:
            raise ValueError(f"{who} expected input of shape (N, C, H, W), got {shape_of(x)}")
        ho, wo = check_conv_input(x, int(x.shape[1]), self.kernel_size, self.stride, (0, 0), who)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        idx = [
            (slice(None), slice(None), _offset_slice(p, ho, sh), _offset_slice(q, wo, sw))
            for p in range(kh)
            for q in range(kw)
        ]
        return [x[i] for i in idx], idx, (ho, wo)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kernel_size={self.kernel_size}, stride={self.stride})"


class MaxPool2d(_Pool2d):
    """Max pooling over ``k×k`` windows; ``stride`` defaults to ``k``.

    The gradient of each window goes to its first maximal entry (row-major within the window).
    Caches the input and the output (references, no copies); the backward pass finds the
    maxima again by comparison.  2×2 windows with stride 2 that tile a NumPy input take a
    faster route: pair maxima along the rows, then along the columns (also cached).

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
    """

    def forward(self, x: Any) -> Any:
        """
        Parameters
        ----------
        x : array, shape (N, C, H, W)

        Returns
        -------
        y : array, shape (N, C, Ho, Wo), ``Ho = (H − kh) // sh + 1``
        """
        wins, _, (ho, wo) = self._windows(x)
        if type(x) is np.ndarray and self._halving(x, ho, wo):
            # 2×2 windows tiling x: the maximum of each horizontal pair (a strided pass that
            # NumPy runs as one long loop), then of each vertical pair of those
            xw = np.maximum(x[..., 0::2], x[..., 1::2])
            y = np.maximum(xw[..., 0::2, :], xw[..., 1::2, :])
            self._cache = {"x": x, "y": y, "xw": xw}
            return y
        xp = aa.array_namespace(x)
        y = wins[0]
        for w in wins[1:]:  # element-wise maxima of strided views: no stacked copy
            y = xp.maximum(y, w)
        self._cache = {"x": x, "y": y}
        return y

    def _halving(self, x: Any, ho: int, wo: int) -> bool:
        """Whether the windows are 2×2 with stride 2 and tile ``x`` exactly."""
        return (
            self.kernel_size == (2, 2)
            and self.stride == (2, 2)
            and shape_of(x)[2:] == (2 * ho, 2 * wo)
        )

    def backward(self, dy: Any) -> Any:
        """
        Parameters
        ----------
        dy : array, shape (N, C, Ho, Wo)

        Returns
        -------
        dx : array, shape (N, C, H, W)
        """
        cache = self._cached()
        xp = aa.array_namespace(dy)
        x, y = cache["x"], cache["y"]
        _check_dy(dy, shape_of(y), "MaxPool2d")
        if "xw" in self._cache and type(dy) is np.ndarray:
            return _maxpool2_backward(x, self._cache["xw"], dy)
        wins, idx, _ = self._windows(x)
        if type(x) is np.ndarray and type(dy) is np.ndarray and self._disjoint():
            return _maxpool_backward_disjoint(x, y, dy, wins, idx)
        dx = xp.zeros(shape_of(x), dtype=dy.dtype, device=_device(dy))
        free = xp.ones(shape_of(y), dtype=xp.bool, device=_device(dy))  # no maximum routed yet
        for w, i in zip(wins, idx, strict=True):  # row-major offsets: first maximum wins
            hit = (w == y) & free
            free = free & ~hit
            dx[i] = dx[i] + dy * xp.astype(hit, dy.dtype)  # a 0/1 product: branch-free
        return dx

    def _disjoint(self) -> bool:
        """Whether the windows do not overlap (``stride >= kernel`` along both axes)."""
        return all(s >= k for s, k in zip(self.stride, self.kernel_size, strict=True))


def _maxpool2_backward(x: np.ndarray, xw: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """NumPy gradient of 2×2 / stride-2 max pooling from the pair maxima of the forward pass.

    The first maximum of a window in row-major order lies in the top row if the top pair's
    maximum is ≥ the bottom pair's, and within its row on the left if the left entry is ≥ the
    right one; routing ``dy`` by these two comparisons writes every entry of ``dx`` once.
    Same values as the generic loop for finite inputs (a window holding NaN routes its
    gradient to one entry instead of none).
    """
    top = xw[..., 0::2, :] >= xw[..., 1::2, :]  # the top row holds the first maximum
    left = x[..., 0::2] >= x[..., 1::2]  # the left entry of each pair is its first maximum
    rows = np.empty_like(xw, dtype=dy.dtype)  # dy routed to the row of each window
    np.multiply(dy, top, out=rows[..., 0::2, :])
    np.multiply(dy, ~top, out=rows[..., 1::2, :])
    dx = np.empty_like(x, dtype=dy.dtype)
    np.multiply(rows, left, out=dx[..., 0::2])
    np.multiply(rows, ~left, out=dx[..., 1::2])
    return dx


def _maxpool_backward_disjoint(
    x: np.ndarray,
    y: np.ndarray,
    dy: np.ndarray,
    wins: list[np.ndarray],
    idx: list[tuple[slice, ...]],
) -> np.ndarray:
    """NumPy max-pool gradient for non-overlapping windows, written in place.

    Every entry of ``dx`` lies in at most one window, so each offset's slice of ``dx`` is
    written once (``dy`` times the 0/1 mask of the first maximum), with no read-modify-write
    and no temporaries beyond the masks.  ``dx`` takes the memory layout of ``x`` (so a
    channels-last view stays channels-last).  Same values as the generic loop.
    """
    dx = np.zeros_like(x, dtype=dy.dtype)
    free: np.ndarray | None = None  # None: every window still free
    last = len(wins) - 1
    for k, (w, i) in enumerate(zip(wins, idx, strict=True)):
        hit = w == y
        if free is not None:
            hit &= free
        if k < last:
            if free is None:
                free = ~hit
            else:
                free &= ~hit
        np.multiply(dy, hit, out=dx[i])
    return dx


class AvgPool2d(_Pool2d):
    """Average pooling over ``k×k`` windows; ``stride`` defaults to ``k``.

    Parameters
    ----------
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
    """

    def forward(self, x: Any) -> Any:
        """
        Parameters
        ----------
        x : array, shape (N, C, H, W)

        Returns
        -------
        y : array, shape (N, C, Ho, Wo)
        """
        wins, _, out = self._windows(x)
        self._cache = {"x_shape": shape_of(x), "out": out}
        acc = wins[0]
        for w in wins[1:]:
            acc = acc + w
        return acc / len(wins)

    def backward(self, dy: Any) -> Any:
        """
        Parameters
        ----------
        dy : array, shape (N, C, Ho, Wo)

        Returns
        -------
        dx : array, shape (N, C, H, W)
        """
        cache = self._cached()
        xp = aa.array_namespace(dy)
        x_shape, (ho, wo) = cache["x_shape"], cache["out"]
        _check_dy(dy, (x_shape[0], x_shape[1], ho, wo), "AvgPool2d")
        dx = xp.zeros(x_shape, dtype=dy.dtype, device=_device(dy))
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        g = dy / (kh * kw)
        for p in range(kh):
            for q in range(kw):
                idx = (slice(None), slice(None), _offset_slice(p, ho, sh), _offset_slice(q, wo, sw))
                dx[idx] = dx[idx] + g
        return dx
