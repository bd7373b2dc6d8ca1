"""Neural networks from scratch with hand-written backward passes (no autograd).

Layer contract
--------------
Every layer (:class:`~lowrank_ode.nn.base.Layer`) has

* ``forward(x) -> y`` — computes the output and caches *only* what ``backward`` needs, replacing
  (never growing) ``self._cache``;
* ``backward(dy) -> dx`` — given ``dy = ∂loss/∂y`` (same shape as ``y``) returns ``∂loss/∂x``
  and fills the parameter gradients (``backward`` must follow the ``forward`` it differentiates);
* ``params() -> dict[str, array]``, ``grads() -> dict[str, array]`` (the gradients of the last
  ``backward``; for low-rank layers only ``"S"`` and ``"b"``, see below), and
  ``set_params(dict)`` (shape-checked; clears the caches), ``map_params(fn)`` (e.g.
  ``map_params(array_api_strict.asarray)`` or a dtype cast).

:class:`Sequential` chains layers with the same interface (parameter keys ``"<index>.<name>"``)
and lists its factorised layers with ``low_rank_layers()``.  Losses
(:class:`SoftmaxCrossEntropy`, :class:`MSELoss`) have ``forward(prediction, target) -> float``
and ``backward() -> ∂loss/∂prediction``.

Array namespaces
----------------
All numerical code goes through ``xp = array_namespace(x)`` and uses only array-API functions,
so the same layers run on NumPy, CuPy and ``array_api_strict`` arrays (parameters are created
as NumPy arrays; move them with ``map_params``).  Shapes: dense inputs ``(batch, n_in)``,
images NCHW ``(N, C, H, W)``.  ``im2col``/``col2im`` loop only over the ``kh·kw`` kernel offsets.
The convolutions compute transposed (``Yᵀ = W_mat Xᵀ`` from ``im2col_t``) and return NCHW
views of ``(C, H, W, N)`` buffers (batch index innermost), so no layer transposes a batch.

Weights and factorisations
--------------------------
* :class:`Dense`: ``y = x Wᵀ + b``, ``W`` of shape ``(n_out, n_in)``.
* :class:`Conv2d`: kernel ``W`` of shape ``(c_out, c_in, kh, kw)``, matricised in C order as
  ``W_mat`` of shape ``(c_out, c_in·kh·kw)``; ``y = im2col(x) W_matᵀ + b`` (reshaped to NCHW).
* :class:`LowRankDense`, :class:`LowRankConv2d`: ``W = U S Vᵀ`` with ``U (n_out, r)``,
  ``S (r, r)``, ``V (n_in, r)`` (``n_in = c_in·kh·kw`` for convolutions), not formed in
  ``forward``/``backward`` — ``y = ((X V) Sᵀ) Uᵀ + b`` — unless the weight is small next to
  the number of rows (``dense_products_cheaper``: LeNet-5's convolutions), when ``W`` and
  ``G = δᵀ X`` are formed once per pass as the cheaper way to the same products.  The factors
  need not be orthonormal (DLRT evaluates the net at ``K Vᵀ``, i.e. ``U = K, S = I``), and the
  rank is whatever the factors given to ``set_factors`` say.  After ``backward`` the layer keeps
  the thin ``X`` (input or im2col matrix) and ``δ`` (output error rows) defining
  ``G = ∂loss/∂W = δᵀ X`` and offers ``grad_right(V) = G V``, ``grad_left(U) = Gᵀ U``,
  ``grad_galerkin(U, V) = Uᵀ G V`` for bases of any width, ``vanilla_grads(U, V)`` and
  ``grad_dense()`` (tests only); ``grads()`` gives ``{"S": Uᵀ G V, "b": ∂loss/∂b}`` at the
  current factors.

Bad input (wrong shapes, channel mismatch, rank outside ``[1, min(n_in, n_out)]``) raises
``ValueError`` naming the expected and the received value.
"""

from __future__ import annotations

from .activations import LeakyReLU, ReLU, Tanh, get_activation
from .base import Layer, Sequential
from .conv import Conv2d, col2im, conv_output_size, im2col
from .init import (
    decaying_singular_values,
    dense_init,
    glorot_uniform,
    he_normal,
    lowrank_init,
)
from .layers import Dense, Flatten
from .losses import MSELoss, SoftmaxCrossEntropy, log_softmax
from .lowrank_layers import LowRankConv2d, LowRankDense, LowRankLayer
from .models import compression_rate, count_params, lenet5, mlp
from .pool import AvgPool2d, MaxPool2d

__all__ = [
    "Layer",
    "Sequential",
    "Dense",
    "Flatten",
    "Conv2d",
    "im2col",
    "col2im",
    "conv_output_size",
    "MaxPool2d",
    "AvgPool2d",
    "ReLU",
    "LeakyReLU",
    "Tanh",
    "get_activation",
    "SoftmaxCrossEntropy",
    "MSELoss",
    "log_softmax",
    "LowRankLayer",
    "LowRankDense",
    "LowRankConv2d",
    "he_normal",
    "glorot_uniform",
    "dense_init",
    "lowrank_init",
    "decaying_singular_values",
    "mlp",
    "lenet5",
    "count_params",
    "compression_rate",
]
