"""Layers with a factorised weight ``W = U S Vᵀ``: :class:`LowRankDense`, :class:`LowRankConv2d`.

The weight is not formed in ``forward``/``backward`` (unless that is cheaper, see below).  With
``X`` the layer's input matrix (the input itself, or its ``im2col`` patch matrix; rows × n_in)
and ``δ`` the output error (rows × n_out), the forward pass is ``Y = ((X V) Sᵀ) Uᵀ + b`` and the
weight gradient is ``G = ∂loss/∂W = δᵀ X`` (n_out × n_in).  After :meth:`LowRankLayer.backward`
the layer keeps the two thin matrices ``X`` and ``δ`` and exposes the products DLRT needs, each
in ``O(rows · k · (n_in + n_out))`` flops, never forming ``G``:

* ``grad_right(V) = G V``     — ``∂loss/∂K`` at ``W = K Vᵀ`` (K-step),
* ``grad_left(U) = Gᵀ U``     — ``∂loss/∂L`` at ``W = U Lᵀ`` (L-step),
* ``grad_galerkin(U, V) = Uᵀ G V`` — ``∂loss/∂S`` at ``W = U S Vᵀ`` (S-step),

for bases of any width ``k`` (so the augmented ``2r`` bases work).  The factors need not be
orthonormal: the K-step evaluates the network at ``U = K, S = I``.  The rank is whatever the
current factors say; ``forward`` always multiplies by the current ``U, S, V``.

When the weight is small next to the number of rows — the convolutions of LeNet-5, whose
``n_out × n_in`` kernels (20 × 25, 50 × 500) meet 10⁴–10⁵ patch rows per batch — the thin
products cost more than the weight itself, and the layer instead forms ``W = U S Vᵀ`` in the
forward pass and ``G = δᵀ X`` once in the backward pass, answering every product above from
``G`` (same values up to rounding).  :func:`dense_products_cheaper` decides per forward pass
from the flop counts; the attribute ``dense_products`` (``True``/``False``) overrides it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from .. import _array_api as aa
from . import _ops
from .base import Layer, as_rng, check_size, pair, shape_of
from .conv import (
    Conv2d,
    _check_conv_hyper,
    _check_dy,
    check_conv_input,
    col2im_t_product,
    cols_t_to_nchw,
    im2col_t,
    nchw_to_cols_t,
)
from .init import check_rank, lowrank_init
from .layers import Dense, check_2d_input

__all__ = ["LowRankLayer", "LowRankDense", "LowRankConv2d", "dense_products_cheaper"]


def dense_products_cheaper(rows: int, n_in: int, n_out: int, rank: int) -> bool:
    """Whether forming ``W`` and ``G = δᵀ X`` costs fewer flops than the thin products.

    Per forward/backward pass (multiply-adds, the ``n_in``-wide input-gradient product left out
    as it is needed either way):

    * dense: ``2 · rows · n_in · n_out`` (``X Wᵀ`` and ``δᵀ X``) plus ``6 · r · n_in · n_out``
      (forming ``W`` and the products of ``G`` with the rank-``r`` and augmented ``2r`` bases);
    * thin: ``4 · rows · r · (n_in + n_out)`` (``X V`` and ``δ U``, then ``δᵀ (X V)``,
      ``Xᵀ (δ U)`` and the augmented Galerkin product of a rank-adaptive step).

    Measured on float32 LeNet-5 shapes with one BLAS thread, the dense products are about 3×
    faster for the first convolution (rows = 73728, 25 → 20, r = 15), break even for the second
    one (rows = 8192, 500 → 50) near r = 10–20, and lose by 1.6–36× on the MLP layers (rows ≤ 256,
    500 × 500), where this rule keeps the thin products.

    Parameters
    ----------
    rows : int
        Rows of the layer input (batch size, times output pixels for a convolution).
    n_in, n_out : int
        Weight shape ``(n_out, n_in)``.
    rank : int
        Current rank (the larger side of a rectangular core).

    Returns
    -------
    bool
    """
    dense = 2 * rows * n_in * n_out + 6 * rank * n_in * n_out
    thin = 4 * rows * rank * (n_in + n_out)
    return dense < thin


def factored_param_count(n_out: int, n_in: int, r: int, kind: str = "eval") -> int:
    """Weight entries of an ``n_out × n_in`` weight factorized at rank ``r`` (bias excluded).

    ``"eval"`` ``r(n_in + n_out)``, ``"train"`` ``2r(n_in + n_out) + 4r²`` (the DLRT paper's
    conventions: the augmented bases and core), ``"stored"`` ``r(n_in + n_out) + r²``,
    ``"dense"`` ``n_in · n_out``.
    """
    n, m = n_out, n_in
    table = {
        "eval": r * (n + m),
        "train": 2 * r * (n + m) + 4 * r * r,
        "stored": r * (n + m) + r * r,
        "dense": n * m,
    }
    if kind not in table:
        raise ValueError(f"kind must be one of {sorted(table)}, got {kind!r}")
    return table[kind]


class LowRankLayer(Layer):
    """Common machinery of the factorised layers (not instantiated directly).

    Attributes
    ----------
    U : array, shape (n_out, r)
    S : array, shape (r, r)
    V : array, shape (n_in, r)
    b : array, shape (n_out,)
    """

    _param_names = ("U", "S", "V", "b")
    has_weight = True
    factorized = True
    n_in: int
    n_out: int
    #: ``None``: choose the dense or the thin products by :func:`dense_products_cheaper` at
    #: every forward pass; ``True``/``False``: always form (never form) ``W`` and ``G``
    dense_products: bool | None = None

    skips_input_grad = True

    def _init_factors(
        self,
        rank: int,
        rng: np.random.Generator | int | None,
        dtype: DTypeLike,
        init: str,
        singular_values: np.ndarray | None,
        decay: float | None,
    ) -> None:
        check_rank(rank, self.n_in, self.n_out)
        U, S, V = lowrank_init(
            self.n_in, self.n_out, rank, as_rng(rng), dtype, init, singular_values, decay
        )
        self.b = np.zeros(self.n_out, dtype=dtype)
        self.set_factors(U, S, V)

    # -- factors -------------------------------------------------------------------------
    @property
    def rank(self) -> int:
        """Current rank ``r`` (number of columns of ``U``)."""
        return int(self.U.shape[1])

    def set_factors(self, U: Any, S: Any, V: Any) -> None:
        """Replace the factors (any rank ``1 <= r <= min(n_in, n_out)``; need not be orthonormal).

        Parameters
        ----------
        U : array, shape (n_out, r)
        S : array, shape (r, r)
            May be rectangular, ``(r_U, r_V)`` with U of shape (n_out, r_U) and V of shape
            (n_in, r_V): the augmented bases of rank-adaptive DLRT are cut at n_out or n_in when
            2r exceeds them, and the network is then evaluated at the rectangular core.
        V : array, shape (n_in, r)

        Raises
        ------
        ValueError
            If the shapes do not fit together (the message gives expected and received shapes)
            or a rank is out of range.
        """
        su, ss, sv = shape_of(U), shape_of(S), shape_of(V)
        ok = len(su) == 2 and len(ss) == 2 and len(sv) == 2
        if ok:
            ok = su == (self.n_out, ss[0]) and sv == (self.n_in, ss[1])
        if not ok:
            raise ValueError(
                f"{type(self).__name__}.set_factors: expected U of shape (n_out, r) = "
                f"({self.n_out}, r), S (r, r), V (n_in, r) = ({self.n_in}, r) with a common r; "
                f"received U {su}, S {ss}, V {sv}"
            )
        if ss[0] == ss[1]:
            check_rank(su[1], self.n_in, self.n_out, f"{type(self).__name__} rank")
        elif not (1 <= ss[0] <= self.n_out and 1 <= ss[1] <= self.n_in):
            raise ValueError(
                f"{type(self).__name__}.set_factors: a rectangular core (r_U, r_V) = {ss} needs "
                f"1 <= r_U <= n_out = {self.n_out} and 1 <= r_V <= n_in = {self.n_in}"
            )
        self.U, self.S, self.V = U, S, V
        self._reset()

    def set_params(self, params: dict[str, Any]) -> None:
        """Set any of ``U, S, V, b``; the factors may change rank (validated together)."""
        unknown = set(params) - set(self._param_names)
        if unknown:
            raise ValueError(
                f"{type(self).__name__} has parameters {self._param_names}, got {sorted(unknown)}"
            )
        if "b" in params:
            if shape_of(params["b"]) != (self.n_out,):
                raise ValueError(
                    f"{type(self).__name__}.b: expected shape ({self.n_out},), "
                    f"got {shape_of(params['b'])}"
                )
            self.b = params["b"]
        if {"U", "S", "V"} & set(params):
            self.set_factors(
                params.get("U", self.U), params.get("S", self.S), params.get("V", self.V)
            )
        self._reset()

    def _reset(self) -> None:
        self._cache = {}
        self._grads = {}
        self._delta: Any = None
        self._DU: Any = None
        self._G: Any = None

    def dense_weight(self) -> Any:
        """``W = U S Vᵀ`` formed explicitly, shape ``(n_out, n_in)`` (tests / dense baselines)."""
        return _ops.matmul(_ops.matmul(self.U, self.S), self.V.T)

    # -- the matrix kernels shared by the dense and convolutional versions -------------------
    def _dense_path(self, rows: int) -> bool:
        if self.dense_products is not None:
            return bool(self.dense_products)
        return dense_products_cheaper(rows, self.n_in, self.n_out, max(shape_of(self.S)))

    def _forward_rows(self, X: Any) -> Any:
        self._delta = self._DU = self._G = None
        self._grads = {}
        if self._dense_path(int(X.shape[0])):
            W = self.dense_weight()
            self._cache = {"X": X, "W": W}
            Y = _ops.matmul(X, W.T)
        else:
            XV = _ops.matmul(X, self.V)
            self._cache = {"X": X, "XV": XV}
            Y = _ops.matmul(_ops.matmul(XV, self.S.T), self.U.T)
        Y += self.b  # in place: the product is a fresh array
        return Y

    def _forward_cols_t(self, Xt: Any) -> Any:
        """Channel-major :meth:`_forward_rows`: ``Yᵀ`` (n_out × rows) from ``Xᵀ``.

        The cached ``X`` is the transposed view ``(Xᵀ)ᵀ``; the products take it as it is.
        """
        xp = aa.array_namespace(Xt)
        X = Xt.T
        self._delta = self._DU = self._G = None
        self._grads = {}
        if self._dense_path(int(X.shape[0])):
            W = self.dense_weight()
            self._cache = {"X": X, "W": W}
            Yt = _ops.matmul(W, Xt)
        else:
            XV = _ops.matmul(X, self.V)
            self._cache = {"X": X, "XV": XV}
            Yt = _ops.matmul(_ops.matmul(self.U, self.S), XV.T)
        Yt += xp.reshape(self.b, (self.n_out, 1))  # in place: the product is a fresh array
        return Yt

    def _backward_rows(self, D: Any, factored: bool = False, input_grad: bool = True) -> Any:
        """Keep ``δ = D``, fill the gradients, return ``dX = ((δ U) S) Vᵀ``.

        With ``factored``, return ``dXᵀ`` as two factors ``(A, B)``, ``dXᵀ = A B``:
        ``(V, Sᵀ (δU)ᵀ)`` or, with the dense products, ``(Wᵀ, δᵀ)`` (for
        :func:`~lowrank_ode.nn.conv.col2im_t_product`).
        """
        xp = aa.array_namespace(D)
        self._delta = D
        W = self._cache.get("W")
        if W is not None:  # dense products: G = δᵀ X once, every product from it
            G = _ops.matmul(D.T, self._cache["X"])
            self._G = G  # rebound, never mutated, like δU below
            self._grads = {
                "S": _ops.matmul(_ops.matmul(self.U.T, G), self.V),
                "b": xp.sum(D, axis=0),
            }
            if not input_grad:
                return None
            return (W.T, D.T) if factored else _ops.matmul(D, W)
        DU = _ops.matmul(D, self.U)  # rows × r, kept for grad_left / grad_galerkin at U
        self._DU = DU  # rebound, never mutated: shallow copies keep their own pass's δU
        self._grads = {
            "S": _ops.matmul(DU.T, self._cache["XV"]),  # Uᵀ G V = (δU)ᵀ (XV)
            "b": xp.sum(D, axis=0),
        }
        if not input_grad:
            return None
        if factored:  # dXᵀ = V (Sᵀ (δU)ᵀ)
            return self.V, _ops.matmul(self.S.T, DU.T)
        return _ops.matmul(_ops.matmul(DU, self.S), self.V.T)

    def _thin(self) -> tuple[Any, Any]:
        if self._delta is None or "X" not in self._cache:
            raise RuntimeError(
                f"{type(self).__name__}: call forward and backward before asking for gradients"
            )
        return self._cache["X"], self._delta

    def _check_basis(self, A: Any, n: int, name: str, who: str) -> None:
        if A.ndim != 2 or int(A.shape[0]) != n:
            raise ValueError(
                f"{type(self).__name__}.{who}: expected {name} of shape ({n}, k), got {shape_of(A)}"
            )

    # -- gradient products ------------------------------------------------------------------
    def grad_right(self, V: Any) -> Any:
        """``G V = δᵀ (X V)``: ``∂loss/∂K`` for ``W = K Vᵀ``.

        Parameters
        ----------
        V : array, shape (n_in, k)

        Returns
        -------
        GV : array, shape (n_out, k)
        """
        self._check_basis(V, self.n_in, "V", "grad_right")
        X, D = self._thin()
        if self._G is not None:
            return _ops.matmul(self._G, V)
        XV = self._cache["XV"] if V is self.V else _ops.matmul(X, V)
        return _ops.matmul(D.T, XV)

    def grad_left(self, U: Any) -> Any:
        """``Gᵀ U = Xᵀ (δ U)``: ``∂loss/∂L`` for ``W = U Lᵀ``.

        Parameters
        ----------
        U : array, shape (n_out, k)

        Returns
        -------
        GtU : array, shape (n_in, k)
        """
        self._check_basis(U, self.n_out, "U", "grad_left")
        X, D = self._thin()
        if self._G is not None:
            return _ops.matmul(self._G.T, U)
        DU = self._DU if U is self.U else _ops.matmul(D, U)
        return _ops.matmul(X.T, DU)

    def grad_galerkin(self, U: Any, V: Any) -> Any:
        """``Uᵀ G V = (δ U)ᵀ (X V)``: ``∂loss/∂S`` for ``W = U S Vᵀ``.

        Parameters
        ----------
        U : array, shape (n_out, k)
        V : array, shape (n_in, l)

        Returns
        -------
        UtGV : array, shape (k, l)
        """
        self._check_basis(U, self.n_out, "U", "grad_galerkin")
        self._check_basis(V, self.n_in, "V", "grad_galerkin")
        X, D = self._thin()
        if self._G is not None:
            return _ops.matmul(_ops.matmul(U.T, self._G), V)
        XV = self._cache["XV"] if V is self.V else _ops.matmul(X, V)
        DU = self._DU if U is self.U else _ops.matmul(D, U)
        return _ops.matmul(DU.T, XV)

    def grad_dense(self) -> Any:
        """``G = δᵀ X`` formed explicitly, shape ``(n_out, n_in)`` (tests / dense baselines)."""
        X, D = self._thin()
        return self._G if self._G is not None else _ops.matmul(D.T, X)

    def vanilla_grads(self, U: Any, V: Any) -> tuple[Any, Any]:
        """Gradients of the plain factorisation ``W = U Vᵀ``: ``(∂/∂U, ∂/∂V) = (G V, Gᵀ U)``.

        Parameters
        ----------
        U : array, shape (n_out, k)
        V : array, shape (n_in, k)

        Returns
        -------
        dU : array, shape (n_out, k)
        dV : array, shape (n_in, k)
        """
        return self.grad_right(V), self.grad_left(U)

    def grads(self) -> dict[str, Any]:
        """``{"S": Uᵀ G V, "b": ∂loss/∂b}`` at the current factors (after :meth:`backward`).

        ``U`` and ``V`` have no entry: DLRT updates them through :meth:`grad_right` /
        :meth:`grad_left`; plain-factorisation training uses :meth:`vanilla_grads`.
        """
        return dict(self._grads)

    def param_count(self, kind: str = "eval") -> int:
        """Weight entries without the bias: ``"eval"`` ``r(n_in + n_out)``, ``"train"``
        ``2r(n_in + n_out) + 4r²`` (the DLRT paper's conventions), ``"stored"``
        ``r(n_in + n_out) + r²``, ``"dense"`` ``n_in · n_out``."""
        return factored_param_count(self.n_out, self.n_in, self.rank, kind)


class LowRankDense(LowRankLayer):
    """Fully connected layer with factorised weight: ``y = ((x V) Sᵀ) Uᵀ + b``, ``W = U S Vᵀ``.

    Parameters
    ----------
    n_in, n_out : int
    rank : int
        ``1 <= rank <= min(n_in, n_out)``.
    rng : numpy.random.Generator or int or None
    dtype : numpy dtype, default float64
    init : {"he", "glorot"}
        Dense initialisation whose truncated SVD gives the factors
        (:func:`lowrank_ode.nn.init.lowrank_init`).
    singular_values : ndarray, shape (rank,), optional
        Prescribed diagonal of ``S``.
    decay : float, optional
        Draw ``S = diag(|N(0,1)| sorted · decay**(-k))``.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        rank: int,
        *,
        rng: np.random.Generator | int | None = None,
        dtype: DTypeLike = np.float64,
        init: str = "he",
        singular_values: np.ndarray | None = None,
        decay: float | None = None,
    ) -> None:
        super().__init__()
        self.n_in, self.n_out = check_size(n_in, "n_in"), check_size(n_out, "n_out")
        self._init_factors(rank, rng, dtype, init, singular_values, decay)

    def forward(self, x: Any) -> Any:
        """
        Parameters
        ----------
        x : array, shape (batch, n_in)

        Returns
        -------
        y : array, shape (batch, n_out)
        """
        check_2d_input(x, self.n_in, "LowRankDense")
        return self._forward_rows(x)

    def backward(self, dy: Any, input_grad: bool = True) -> Any:
        """Keep ``δ = dy``, fill ``grads()`` (``S``, ``b``) and return ``dx = ((δ U) S) Vᵀ``.

        Parameters
        ----------
        dy : array, shape (batch, n_out)
        input_grad : bool
            False: skip ``dx`` and return None.

        Returns
        -------
        dx : array, shape (batch, n_in)
        """
        if "X" not in self._cache:
            raise RuntimeError("LowRankDense.backward called before forward")
        _check_dy(dy, (int(self._cache["X"].shape[0]), self.n_out), "LowRankDense")
        return self._backward_rows(dy, input_grad=input_grad)

    def to_dense(self) -> Dense:
        """A :class:`~lowrank_ode.nn.layers.Dense` layer with ``W = U S Vᵀ`` and the same bias."""
        layer = Dense(self.n_in, self.n_out, rng=0)  # W is overwritten below
        layer.W, layer.b = self.dense_weight(), self.b
        return layer

    def __repr__(self) -> str:
        return f"LowRankDense({self.n_in}, {self.n_out}, rank={self.rank})"


class LowRankConv2d(LowRankLayer):
    """Convolution with factorised matricised kernel ``W_mat = U S Vᵀ`` (``n_in = c_in*kh*kw``).

    Forward: ``Y = ((X V) Sᵀ) Uᵀ + b`` with ``X = im2col(x)`` (shape ``(N*Ho*Wo, c_in*kh*kw)``),
    reshaped to ``(N, c_out, Ho, Wo)``; see :mod:`lowrank_ode.nn.conv` for the orderings.  It is
    computed transposed, ``Yᵀ = (U S) (X V)ᵀ`` from ``Xᵀ = im2col_t(x)`` (or ``W Xᵀ`` with the
    dense products), so the output is an NCHW view of a ``(c_out, Ho, Wo, N)`` buffer.

    Parameters
    ----------
    c_in, c_out : int
    kernel_size : int or (int, int)
    rank : int
        ``1 <= rank <= min(c_out, c_in*kh*kw)``.
    stride, padding : int or (int, int)
    rng, dtype, init, singular_values, decay
        As for :class:`LowRankDense`.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int | tuple[int, int],
        rank: int,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        *,
        rng: np.random.Generator | int | None = None,
        dtype: DTypeLike = np.float64,
        init: str = "he",
        singular_values: np.ndarray | None = None,
        decay: float | None = None,
    ) -> None:
        super().__init__()
        self.c_in, self.c_out = check_size(c_in, "c_in"), check_size(c_out, "c_out")
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.padding = pair(padding, "padding")
        _check_conv_hyper(self.c_in, self.c_out, self.kernel_size, self.stride, self.padding)
        self.n_in = self.c_in * self.kernel_size[0] * self.kernel_size[1]
        self.n_out = self.c_out
        self._init_factors(rank, rng, dtype, init, singular_values, decay)

    def forward(self, x: Any) -> Any:
        """
        Parameters
        ----------
        x : array, shape (N, c_in, H, W)

        Returns
        -------
        y : array, shape (N, c_out, Ho, Wo)
        """
        ho, wo = check_conv_input(
            x, self.c_in, self.kernel_size, self.stride, self.padding, "LowRankConv2d"
        )
        xp = aa.array_namespace(x)
        Yt = self._forward_cols_t(im2col_t(x, self.kernel_size, self.stride, self.padding))
        self._cache["x_shape"] = shape_of(x)
        self._cache["out"] = (ho, wo)
        return cols_t_to_nchw(Yt, int(x.shape[0]), ho, wo, xp=xp)

    def backward(self, dy: Any, input_grad: bool = True) -> Any:
        """Keep ``δ`` (the rows of ``dy``), fill ``grads()`` and return ``dx``.

        Parameters
        ----------
        dy : array, shape (N, c_out, Ho, Wo)
        input_grad : bool
            False: skip ``dx`` and return None.

        Returns
        -------
        dx : array, shape (N, c_in, H, W)
        """
        xp = aa.array_namespace(dy)
        if "X" not in self._cache:
            raise RuntimeError("LowRankConv2d.backward called before forward")
        x_shape, (ho, wo) = self._cache["x_shape"], self._cache["out"]
        _check_dy(dy, (x_shape[0], self.c_out, ho, wo), "LowRankConv2d")
        D = nchw_to_cols_t(dy, xp=xp).T  # δ as a view of δᵀ (im2col_t column order)
        factors = self._backward_rows(D, factored=True, input_grad=input_grad)
        if factors is None:
            return None
        A, B = factors
        return col2im_t_product(A, B, x_shape, self.kernel_size, self.stride, self.padding)

    def to_dense(self) -> Conv2d:
        """A :class:`~lowrank_ode.nn.conv.Conv2d` with kernel ``reshape(U S Vᵀ)``, same bias."""
        xp = aa.array_namespace(self.U)
        layer = Conv2d(self.c_in, self.c_out, self.kernel_size, self.stride, self.padding, rng=0)
        kh, kw = self.kernel_size
        layer.W = xp.reshape(self.dense_weight(), (self.c_out, self.c_in, kh, kw))
        layer.b = self.b
        return layer

    def __repr__(self) -> str:
        return (
            f"LowRankConv2d({self.c_in}, {self.c_out}, kernel_size={self.kernel_size}, "
            f"rank={self.rank}, stride={self.stride}, padding={self.padding})"
        )
