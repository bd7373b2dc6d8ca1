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

__all__ = [
    "conv_output_size",
    "im2col",
    "im2col_t",
    "col2im",
    "col2im_t",
    "col2im_t_product",
    "Conv2d",
    "check_conv_input",
]


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


def im2col_t(
    x: Any,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
) -> Any:
    """Transposed patch matrix of an NCHW batch, batch index innermost.

    Row ``(c*kh + p)*kw + q`` (channel ``c``, kernel offset ``(p, q)``, as in :func:`im2col`)
    holds the input values of every output pixel, column ``(i*Wo + j)*N + n`` for pixel
    ``(i, j)`` of image ``n``: the columns of ``im2col(x)ᵀ`` in the order ``(i, j, n)`` instead
    of ``(n, i, j)``.  The layers compute in this layout — ``Yᵀ = W_mat Xᵀ`` is a
    ``(c_out, Ho, Wo, N)`` buffer — and pass on NCHW views of ``(C, H, W, N)`` buffers, so that
    each kernel offset's slice is copied in runs of ``Wo·N`` contiguous values (``Wo`` for the
    NCHW order), pooling and ReLU walk long contiguous runs, and no layer transposes a batch.
    An input in another memory layout is first copied to ``(C, H, W, N)`` (NumPy).

    Parameters
    ----------
    x : array, shape (N, C, H, W)
    kernel_size, stride, padding : int or (int, int)

    Returns
    -------
    Xt : array, shape (C*kh*kw, Ho*Wo*N)
    """
    xp = aa.array_namespace(x)
    (kh, kw), (sh, sw), (ph, pw) = _geometry(kernel_size, stride, padding)
    ho, wo = check_conv_input(x, int(x.shape[1]), (kh, kw), (sh, sw), (ph, pw), "im2col_t")
    n, c, h, w = shape_of(x)
    xc = xp.permute_dims(x, (1, 2, 3, 0))  # (C, H, W, N): a view, contiguous for our outputs
    if type(xc) is np.ndarray:
        xc = np.ascontiguousarray(xc)  # no copy unless x came in another layout (the data)
    if ph or pw:
        xpad = xp.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=x.dtype, device=_device(x))
        xpad[:, ph : ph + h, pw : pw + w, :] = xc
        xc = xpad
    slices = [
        xc[:, _offset_slice(p, ho, sh), _offset_slice(q, wo, sw), :]
        for p in range(kh)
        for q in range(kw)
    ]
    cols = xp.stack(slices, axis=1)  # (C, kh*kw, Ho, Wo, N): one copy, the reshape is free
    return xp.reshape(cols, (c * kh * kw, ho * wo * n))


def cols_t_to_nchw(Yt: Any, n: int, ho: int, wo: int, *, xp: Any) -> Any:
    """``(C, Ho*Wo*N)`` columns (:func:`im2col_t` order) to an ``(N, C, Ho, Wo)`` view."""
    return xp.permute_dims(xp.reshape(Yt, (int(Yt.shape[0]), ho, wo, n)), (3, 0, 1, 2))


def nchw_to_cols_t(y: Any, *, xp: Any) -> Any:
    """``(N, C, Ho, Wo)`` batch to ``(C, Ho*Wo*N)`` columns; free for a ``(C, H, W, N)`` buffer."""
    n, c, ho, wo = shape_of(y)
    return xp.reshape(xp.permute_dims(y, (1, 2, 3, 0)), (c, ho * wo * n))


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
    numpy = type(out) is np.ndarray
    for p in range(kh):
        for q in range(kw):
            idx = (slice(None), slice(None), _offset_slice(p, ho, sh), _offset_slice(q, wo, sw))
            if numpy:  # in place: one read and one write of the slice
                view = out[idx]
                view += c6[:, p, q, :, :, :]
            else:
                out[idx] = out[idx] + c6[:, p, q, :, :, :]
    if ph or pw:
        out = out[:, :, ph : ph + h, pw : pw + w]
    return xp.permute_dims(out, (1, 0, 2, 3))


def col2im_t_product(
    A: Any,
    B: Any,
    x_shape: tuple[int, int, int, int],
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
) -> Any:
    """Adjoint of :func:`im2col_t` applied to ``A @ B``, without forming the product.

    The input gradient of a convolution is this adjoint of ``W_matᵀ δᵀ`` (of ``V (Sᵀ (δU)ᵀ)``
    for a factorised kernel), columns in :func:`im2col_t` order.  Its rows for kernel offset
    ``(p, q)`` are ``A_pq B`` with ``A_pq`` the ``C`` rows of ``A`` at that offset; each such
    ``(C, Ho*Wo*N)`` block is computed and added into its strided slice at once, so the large
    product never makes a round trip through memory.  Equals :func:`col2im_t` of ``A @ B`` with
    its columns reordered from ``(i, j, n)`` to ``(n, i, j)``, up to rounding.

    Parameters
    ----------
    A : array, shape (C*kh*kw, k)
    B : array, shape (k, Ho*Wo*N)
    x_shape : (N, C, H, W)
    kernel_size, stride, padding : int or (int, int)

    Returns
    -------
    x : array, shape (N, C, H, W)
        A permuted view of a ``(C, H, W, N)`` buffer.
    """
    xp = aa.array_namespace(A, B)
    n, c, h, w = (int(s) for s in x_shape)
    (kh, kw), (sh, sw), (ph, pw) = _geometry(kernel_size, stride, padding)
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    k = int(A.shape[1]) if A.ndim == 2 else -1
    if shape_of(A) != (c * kh * kw, k) or shape_of(B) != (k, ho * wo * n):
        raise ValueError(
            f"col2im_t_product expected A of shape {(c * kh * kw, 'k')} and B of shape "
            f"{('k', ho * wo * n)}, got {shape_of(A)} and {shape_of(B)}"
        )
    A4 = xp.reshape(A, (c, kh, kw, k))
    out = xp.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=B.dtype, device=_device(B))
    numpy = type(out) is np.ndarray
    for p in range(kh):
        for q in range(kw):
            idx = (slice(None), _offset_slice(p, ho, sh), _offset_slice(q, wo, sw), slice(None))
            block = xp.reshape(_ops.matmul(A4[:, p, q, :], B), (c, ho, wo, n))
            if numpy:  # in place: one read and one write of the slice
                view = out[idx]
                view += block
            else:
                out[idx] = out[idx] + block
    if ph or pw:
        out = out[:, ph : ph + h, pw : pw + w, :]
    return xp.permute_dims(out, (3, 0, 1, 2))


def _geometry(
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int],
    padding: int | tuple[int, int],
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    return pair(kernel_size, "kernel_size"), pair(stride, "stride"), pair(padding, "padding")


class Conv2d(Layer):
    """2-D convolution, NCHW, through ``im2col``: ``Y = im2col(x) W_matᵀ + b``.

    Computed as ``Yᵀ = W_mat Xᵀ`` with ``Xᵀ = im2col_t(x)``; the output is an NCHW view of a
    ``(c_out, Ho, Wo, N)`` buffer (see :func:`im2col_t`).

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
    has_weight = True

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
        Xt = im2col_t(x, self.kernel_size, self.stride, self.padding)
        self._cache = {"Xt": Xt, "x_shape": shape_of(x), "out": (ho, wo)}
        Yt = _ops.matmul(self.W_mat, Xt)  # Yᵀ = W_mat Xᵀ: a (c_out, Ho, Wo, N) buffer
        Yt += xp.reshape(self.b, (self.n_out, 1))  # in place: the product is a fresh array
        return cols_t_to_nchw(Yt, int(x.shape[0]), ho, wo, xp=xp)

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
        Xt, x_shape, (ho, wo) = cache["Xt"], cache["x_shape"], cache["out"]
        _check_dy(dy, (x_shape[0], self.c_out, ho, wo), "Conv2d")
        Dt = nchw_to_cols_t(dy, xp=xp)  # δᵀ
        gW = _ops.matmul(Dt, Xt.T)
        self._grads = {"W": xp.reshape(gW, shape_of(self.W)), "b": xp.sum(Dt, axis=1)}
        if not input_grad:
            return None
        # dx = col2im_t(W_matᵀ δᵀ), one kernel offset at a time
        return col2im_t_product(
            self.W_mat.T, Dt, x_shape, self.kernel_size, self.stride, self.padding
        )

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
