"""2-D convolution (NCHW) through vectorised ``im2col`` / ``col2im``.

Conventions
-----------
* Images are ``(N, C, H, W)``; a kernel is ``(c_out, c_in, kh, kw)``; this is cross-correlation
  (no kernel flip), as in every deep-learning library.
* ``im2col`` returns the patch matrix ``X`` of shape ``(N*Ho*Wo, C*kh*kw)``: row
  ``(n*Ho + i)*Wo + j`` is the patch of output pixel ``(i, j)`` of image ``n``; column
  ``(c*kh + p)*kw + q`` is channel ``c``, kernel offset ``(p, q)`` — the C-order flattening of
  ``(C, kh, kw)``.  The kernel matricises the same way: ``W_mat = reshape(W, (c_out, c_in*kh*kw))``,
  and the convolution is ``Y = X W_matᵀ + b`` reshaped to ``(N, c_out, Ho, Wo)``.
* Both maps loop only over the ``kh*kw`` kernel offsets, taking strided slices of the whole batch
  (no loop over images or pixels), so they use only array-API operations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import device as _device
from array_api_compat import is_numpy_namespace
from numpy.typing import DTypeLike

from .. import _array_api as aa
from . import _ops
from .base import Layer, as_rng, check_array, check_size, pair, shape_of
from .init import dense_init

__all__ = ["conv_output_size", "im2col", "col2im", "col2im_t", "Conv2d", "check_conv_input"]


def conv_output_size(size: int, k: int, stride: int, padding: int) -> int:
    """Output length ``(size + 2·padding − k) // stride + 1`` of a strided window along one axis."""
    return (size + 2 * padding - k) // stride + 1


def _offset_slice(offset: int, n_out: int, stride: int) -> slice:
    """Slice picking ``offset, offset + stride, …`` (``n_out`` entries), never out of bounds."""
    return slice(offset, offset + stride * (n_out - 1) + 1, stride)


def _pad(x: Any, ph: int, pw: int, *, xp: Any) -> Any:
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = shape_of(x)
    xpad = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype, device=_device(x))
    xpad[:, :, ph : ph + h, pw : pw + w] = x
    return xpad


def check_conv_input(
    x: Any,
    c_in: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    who: str,
) -> tuple[int, int]:
    """Validate an NCHW input for a sliding window; return the output size ``(Ho, Wo)``."""
    check_array(x, who)
    if x.ndim != 4:
        raise ValueError(f"{who} expected input of shape (N, {c_in}, H, W), got {shape_of(x)}")
    if int(x.shape[1]) != c_in:
        raise ValueError(
            f"{who} expected {c_in} input channels (shape (N, {c_in}, H, W)), "
            f"got {int(x.shape[1])} (input shape {shape_of(x)})"
        )
    h, w = int(x.shape[2]), int(x.shape[3])
    hp, wp = h + 2 * padding[0], w + 2 * padding[1]
    if hp < kernel[0] or wp < kernel[1]:
        raise ValueError(
            f"{who}: kernel {kernel} larger than the padded input {(hp, wp)} "
            f"(input shape {shape_of(x)}, padding {padding})"
        )
    return (
        conv_output_size(h, kernel[0], stride[0], padding[0]),
        conv_output_size(w, kernel[1], stride[1], padding[1]),
    )


def im2col(
    x: Any,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
) -> Any:
    """Patch matrix of an NCHW batch (see the module docstring for the row/column order).

    Parameters
    ----------
    x : array, shape (N, C, H, W)
    kernel_size, stride, padding : int or (int, int)

    Returns
    -------
    X : array, shape (N*Ho*Wo, C*kh*kw)
    """
    xp = aa.array_namespace(x)
    (kh, kw), (sh, sw), (ph, pw) = _geometry(kernel_size, stride, padding)
    ho, wo = check_conv_input(x, int(x.shape[1]), (kh, kw), (sh, sw), (ph, pw), "im2col")
    n, c = int(x.shape[0]), int(x.shape[1])
    if is_numpy_namespace(xp):  # fast path: one gather from a strided window view (2-5x)
        win = np.lib.stride_tricks.sliding_window_view(_pad(x, ph, pw, xp=xp), (kh, kw), (2, 3))
        win = win[:, :, ::sh, ::sw].transpose(0, 2, 3, 1, 4, 5)  # (N, Ho, Wo, C, kh, kw)
        return np.ascontiguousarray(win).reshape(n * ho * wo, c * kh * kw)
    xpad = xp.permute_dims(_pad(x, ph, pw, xp=xp), (0, 2, 3, 1))  # NHWC view
    slices = [
        xpad[:, _offset_slice(p, ho, sh), _offset_slice(q, wo, sw), :]
        for p in range(kh)
        for q in range(kw)
    ]
    # one copy, straight into the final layout (N, Ho, Wo, C, kh*kw): the reshape is free
    cols = xp.stack(slices, axis=-1)
    return xp.reshape(cols, (n * ho * wo, c * kh * kw))


def col2im(
    cols: Any,
    x_shape: tuple[int, int, int, int],
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
) -> Any:
    """Adjoint of :func:`im2col`: scatter-add the patches back to an image batch.

    ``<im2col(x), Y> = <x, col2im(Y)>`` for all ``x``, ``Y``.  Overlapping patches are summed by a
    loop over the ``kh*kw`` kernel offsets, each adding one strided slice of the whole batch.

    Parameters
    ----------
    cols : array, shape (N*Ho*Wo, C*kh*kw)
    x_shape : (N, C, H, W)
    kernel_size, stride, padding : int or (int, int)

    Returns
    -------
    x : array, shape (N, C, H, W)
    """
    n, c, h, w = (int(s) for s in x_shape)
    (kh, kw), (sh, sw), (ph, pw) = _geometry(kernel_size, stride, padding)
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    expected = (n * ho * wo, c * kh * kw)
    if shape_of(cols) != expected:
        raise ValueError(f"col2im expected cols of shape {expected}, got {shape_of(cols)}")
    return col2im_t(cols.T, x_shape, kernel_size, stride, padding)


def col2im_t(
    cols_t: Any,
    x_shape: tuple[int, int, int, int],
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
) -> Any:
    """:func:`col2im` of a *transposed* patch matrix: ``col2im_t(Xᵀ) = col2im(X)``.

    The layers compute the input gradient directly as ``dXᵀ = W_matᵀ δᵀ`` (a contiguous
    ``(C*kh*kw, N*Ho*Wo)`` array, i.e. ``(C, kh, kw, N, Ho, Wo)`` in C order), so that each kernel
    offset ``(p, q)`` reads one contiguous block; this is about twice as fast as scattering the
    row-major patch matrix, whose per-offset slices are strided gathers.

    Parameters
    ----------
    cols_t : array, shape (C*kh*kw, N*Ho*Wo)
    x_shape : (N, C, H, W)
    kernel_size, stride, padding : int or (int, int)

    Returns
    -------
    x : array, shape (N, C, H, W)
        A permuted view of a ``(C, N, H, W)`` buffer.
    """
    xp = aa.array_namespace(cols_t)
    n, c, h, w = (int(s) for s in x_shape)
    (kh, kw), (sh, sw), (ph, pw) = _geometry(kernel_size, stride, padding)
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    expected = (c * kh * kw, n * ho * wo)
    if shape_of(cols_t) != expected:
        raise ValueError(f"col2im_t expected cols_t of shape {expected}, got {shape_of(cols_t)}")
    c6 = xp.reshape(cols_t, (c, kh, kw, n, ho, wo))
    out = xp.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=cols_t.dtype, device=_device(cols_t))
    for p in range(kh):
        for q in range(kw):
            idx = (slice(None), slice(None), _offset_slice(p, ho, sh), _offset_slice(q, wo, sw))
            out[idx] = out[idx] + c6[:, p, q, :, :, :]
    if ph or pw:
        out = out[:, :, ph : ph + h, pw : pw + w]
    return xp.permute_dims(out, (1, 0, 2, 3))


def _geometry(
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int],
    padding: int | tuple[int, int],
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    return pair(kernel_size, "kernel_size"), pair(stride, "stride"), pair(padding, "padding")


def rows_to_nchw(Y: Any, n: int, ho: int, wo: int, *, xp: Any) -> Any:
    """``(N*Ho*Wo, C)`` rows (im2col order) to an ``(N, C, Ho, Wo)`` batch."""
    return xp.permute_dims(xp.reshape(Y, (n, ho, wo, int(Y.shape[1]))), (0, 3, 1, 2))


def nchw_to_rows(y: Any, *, xp: Any) -> Any:
    """``(N, C, Ho, Wo)`` batch to ``(N*Ho*Wo, C)`` rows (im2col order); inverse of the above."""
    n, c, ho, wo = shape_of(y)
    return xp.reshape(xp.permute_dims(y, (0, 2, 3, 1)), (n * ho * wo, c))


class Conv2d(Layer):
    """2-D convolution, NCHW, through ``im2col``: ``Y = im2col(x) W_matᵀ + b``.

    Parameters
    ----------
    c_in, c_out : int
    kernel_size : int or (int, int)
    stride : int or (int, int), default 1
    padding : int or (int, int), default 0
        Zero padding on each side.
    rng : numpy.random.Generator or int or None
    dtype : numpy dtype, default float64
    init : {"he", "glorot"}
        With fan-in ``c_in*kh*kw``; the bias starts at zero.

    Attributes
    ----------
    W : array, shape (c_out, c_in, kh, kw)
        The kernel; ``W_mat`` is its C-order matricisation, shape ``(c_out, c_in*kh*kw)``.
    b : array, shape (c_out,)
    """

    _param_names = ("W", "b")

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        *,
        rng: np.random.Generator | int | None = None,
        dtype: DTypeLike = np.float64,
        init: str = "he",
    ) -> None:
        super().__init__()
        self.c_in, self.c_out = check_size(c_in, "c_in"), check_size(c_out, "c_out")
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.padding = pair(padding, "padding")
        _check_conv_hyper(self.c_in, self.c_out, self.kernel_size, self.stride, self.padding)
        kh, kw = self.kernel_size
        self.n_in, self.n_out = self.c_in * kh * kw, self.c_out
        W = dense_init(self.n_in, self.n_out, as_rng(rng), dtype, init)
        self.W = np.reshape(W, (self.c_out, self.c_in, kh, kw))
        self.b = np.zeros(self.c_out, dtype=dtype)

    @property
    def W_mat(self) -> Any:
        """Matricised kernel, shape ``(c_out, c_in*kh*kw)`` (C order)."""
        xp = aa.array_namespace(self.W)
        return xp.reshape(self.W, (self.n_out, self.n_in))

    def forward(self, x: Any) -> Any:
        """
        Parameters
        ----------
        x : array, shape (N, c_in, H, W)

        Returns
        -------
        y : array, shape (N, c_out, Ho, Wo)
            ``Ho = (H + 2·ph − kh) // sh + 1``, likewise ``Wo``.
        """
        ho, wo = check_conv_input(
            x, self.c_in, self.kernel_size, self.stride, self.padding, "Conv2d"
        )
        xp = aa.array_namespace(x)
        X = im2col(x, self.kernel_size, self.stride, self.padding)
        self._cache = {"X": X, "x_shape": shape_of(x), "out": (ho, wo)}
        Y = _ops.matmul(X, self.W_mat.T)
        Y += self.b  # in place: the product is a fresh array
        return rows_to_nchw(Y, int(x.shape[0]), ho, wo, xp=xp)

    skips_input_grad = True

    def backward(self, dy: Any, input_grad: bool = True) -> Any:
        """Fill ``grads()`` (``W`` as a 4-D kernel gradient, ``b``) and return ``dx``.

        Parameters
        ----------
        dy : array, shape (N, c_out, Ho, Wo)
        input_grad : bool
            False: skip ``dx`` and return None.

        Returns
        -------
        dx : array, shape (N, c_in, H, W)
        """
        cache = self._cached()
        xp = aa.array_namespace(dy)
        X, x_shape, (ho, wo) = cache["X"], cache["x_shape"], cache["out"]
        _check_dy(dy, (x_shape[0], self.c_out, ho, wo), "Conv2d")
        D = nchw_to_rows(dy, xp=xp)
        gW = _ops.matmul(D.T, X)
        self._grads = {"W": xp.reshape(gW, shape_of(self.W)), "b": xp.sum(D, axis=0)}
        if not input_grad:
            return None
        dXt = _ops.matmul(self.W_mat.T, D.T)  # (dX)ᵀ, contiguous for col2im_t
        return col2im_t(dXt, x_shape, self.kernel_size, self.stride, self.padding)

    def __repr__(self) -> str:
        return (
            f"Conv2d({self.c_in}, {self.c_out}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding})"
        )


def _check_conv_hyper(
    c_in: int,
    c_out: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
) -> None:
    if c_in < 1 or c_out < 1:
        raise ValueError(f"channels must be positive, got c_in={c_in}, c_out={c_out}")
    if min(kernel) < 1 or min(stride) < 1 or min(padding) < 0:
        raise ValueError(
            f"need kernel_size >= 1, stride >= 1, padding >= 0; got kernel_size={kernel}, "
            f"stride={stride}, padding={padding}"
        )


def _check_dy(dy: Any, expected: tuple[int, ...], who: str) -> None:
    if shape_of(dy) != tuple(expected):
        raise ValueError(
            f"{who}.backward expected dy of shape {tuple(expected)}, got {shape_of(dy)}"
        )
