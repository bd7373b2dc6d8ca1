"""The network loss as a factored right-hand side: W' = −∇ℒ(W) for every weight at once.

DLRT (Schotthöfer et al., NeurIPS 2022) is a BUG-family integrator applied to this problem with
an optimizer as the sub-step solver.  A point is the list of blocks

    [LowRank(U, S, V) of each low-rank layer, …, every other parameter as a dense array …]

(the dense output layer, the biases, the weights of dense layers).  ``at(t, blocks)`` runs ONE
forward/backward pass at the blocks on the current mini-batch — in a working copy of the
network, so the model itself only changes through ``load`` — and returns an evaluation whose
products are those of the layers' gradients G = ∂ℒ/∂W = δᵀX, negated:

    right(i, V) = −G V,   left(i, U) = −Gᵀ U,   galerkin(i, U, V) = −Uᵀ G V,   full(j) = −∂ℒ/∂θ_j,

each O(batch·r·(n + m)); the n × m gradient is never formed.  With an Euler-type sub-step (SGD,
momentum, Adam) the K- and L-steps of BUG share the evaluation at W₀, so a fixed-rank DLRT step
costs two passes; the rank-adaptive step's S-step starts at W₀ itself (its augmented bases
contain U₀ and V₀) and reuses that evaluation too, so it costs one pass, as does the parallel
(single-pass) step.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import Any

from .._array_api import array_namespace, svd
from ..lowrank import LowRank
from ..nn.base import Sequential
from ..nn.losses import SoftmaxCrossEntropy
from ..nn.lowrank_layers import LowRankLayer
from ..problems.base import Evaluation, Problem

__all__ = ["NetworkFlow", "VanillaFlow", "NetworkEvaluation"]


class NetworkEvaluation(Evaluation):
    """The negative gradient at one point, answered from snapshots of the layers' caches."""

    def __init__(self, layers: list[Any], free_grads: list[Any], loss: float, accuracy: float):
        self.layers, self.free_grads = layers, free_grads
        self.loss, self.accuracy = loss, accuracy
        self.n_lr = len(layers)

    def right(self, i: int, V: Any) -> Any:  # noqa: D102
        return -self.layers[i].grad_right(V)

    def left(self, i: int, U: Any) -> Any:  # noqa: D102
        return -self.layers[i].grad_left(U)

    def galerkin(self, i: int, U: Any, V: Any) -> Any:  # noqa: D102
        return -self.layers[i].grad_galerkin(U, V)

    def full(self, i: int) -> Any:  # noqa: D102
        if i < self.n_lr:
            return -self.layers[i].grad_dense()
        return self.free_grads[i - self.n_lr]


class NetworkFlow(Problem):
    """Gradient flow of the mini-batch loss of ``model`` (see the module docstring).

    Parameters
    ----------
    model : Sequential
        Network with :class:`~lowrank_ode.nn.LowRankDense`/``LowRankConv2d`` and dense layers.
    loss : loss object, optional
        ``forward(prediction, target) -> float`` and ``backward()``; default softmax
        cross-entropy.

    Attributes
    ----------
    evaluations : list of (loss, accuracy)
        One entry per evaluation (forward/backward pass) since the last :meth:`set_batch`; the
        first is the value at the step's starting point.  The number of passes is counted by
        the integrator (:attr:`Integrator.n_evals <lowrank_ode.integrators.Integrator.n_evals>`).

    Notes
    -----
    :meth:`at` has no effect on ``model``: the passes run in a private working network whose
    layer objects are copies of the model's (the parameter arrays are shared until the first
    evaluation rebinds them — layers never write into a parameter array), so the model keeps
    its parameters and its caches however many evaluations a step makes.  Only :meth:`load`
    writes a point into the model (the trainer calls it with the result of each step).  The
    pass's loss and accuracy are appended to ``evaluations``, the flow's own record.  Each
    evaluation keeps shallow copies of the working low-rank layers, whose caches (the thin X
    and δ of that pass) later passes *rebind* (``forward`` and ``backward`` assign new arrays,
    never write into old ones), so an evaluation stays valid while the integrator makes further
    evaluations.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank_ode import LowRank
    >>> from lowrank_ode.dlrt import NetworkFlow
    >>> from lowrank_ode.nn import mlp
    >>> model = mlp((6, 5, 3), low_rank=True, rank=2, rng=0)
    >>> flow = NetworkFlow(model)
    >>> flow.set_batch(np.ones((4, 6)), np.array([0, 1, 2, 0]))
    >>> U0 = model.low_rank_layers()[0].U
    >>> Y = flow.point()
    >>> Y[0] = LowRank(2 * Y[0].U, Y[0].S, Y[0].V)  # another point
    >>> G = flow.at(0.0, Y)  # one forward/backward pass there
    >>> G.right(0, Y[0].V).shape, len(flow.evaluations)
    ((5, 2), 1)
    >>> model.low_rank_layers()[0].U is U0  # the model is untouched
    True
    """

    def __init__(self, model: Sequential, loss: Any = None) -> None:
        self.model = model
        self.loss = loss if loss is not None else SoftmaxCrossEntropy()
        self.lr_layers = [m for m in model.layers if isinstance(m, LowRankLayer)]
        lr_prefixes = {f"{k}." for k, m in enumerate(model.layers) if isinstance(m, LowRankLayer)}
        self.free_keys = [
            k
            for k in model.params()
            if not (k[: k.index(".") + 1] in lr_prefixes and k.split(".")[-1] in ("U", "S", "V"))
        ]
        self.x: Any = None
        self.y: Any = None
        self.evaluations: list[tuple[float, float]] = []
        self._net, self._net_lr = _working_copy(model)

    # ---------------------------------------------------------------- points
    def set_batch(self, x: Any, y: Any) -> None:
        """Use the mini-batch ``(x, y)`` for the following evaluations."""
        self.x, self.y = x, y
        self.evaluations = []

    def point(self) -> list[Any]:
        """The model's current parameters as a list of blocks."""
        params = self.model.params()
        return [LowRank(m.U, m.S, m.V) for m in self.lr_layers] + [
            params[k] for k in self.free_keys
        ]

    def load(self, blocks: Sequence[Any]) -> None:
        """Write ``blocks`` into the model (ranks may change)."""
        self._write(self.model, self.lr_layers, blocks)

    def _write(self, net: Sequential, lr_layers: list[Any], blocks: Sequence[Any]) -> None:
        n = len(lr_layers)
        if len(blocks) != n + len(self.free_keys):
            raise ValueError(
                f"expected {n} low-rank and {len(self.free_keys)} dense blocks, got {len(blocks)}"
            )
        for m, Y in zip(lr_layers, blocks[:n], strict=True):
            m.set_factors(Y.U, Y.S, Y.V)
        net.set_params(dict(zip(self.free_keys, blocks[n:], strict=True)))

    # ---------------------------------------------------------------- evaluation
    def _forward_backward(self) -> tuple[float, float]:
        """One forward/backward pass of the working network on the current batch."""
        if self.x is None:
            raise RuntimeError("call set_batch(x, y) before evaluating the flow")
        out = self._net.forward(self.x)
        loss = float(self.loss.forward(out, self.y))
        self._net.backward(self.loss.backward(), input_grad=False)  # no dℒ/dx needed
        acc = _accuracy(out, self.y)
        self.evaluations.append((loss, acc))
        return loss, acc

    def forward_backward(self) -> tuple[float, float]:
        """Deprecated: one pass at the model's current point; use :meth:`at`."""
        warnings.warn(
            "NetworkFlow.forward_backward is deprecated and will be removed in the next release; "
            "use NetworkFlow.at(t, flow.point()), which returns the evaluation",
            DeprecationWarning,
            stacklevel=2,
        )
        self._write(self._net, self._net_lr, self.point())
        return self._forward_backward()

    def at(self, t: float, blocks: Sequence[Any]) -> NetworkEvaluation:
        """One forward/backward pass at ``blocks`` (in the working network); the negative
        gradient there.  The model is not touched (class notes)."""
        self._write(self._net, self._net_lr, blocks)
        loss, acc = self._forward_backward()
        grads = self._net.grads()
        # shallow copies keep this pass's cached (X, δ): a later pass rebinds, never mutates them
        layers = [copy.copy(m) for m in self._net_lr]
        return NetworkEvaluation(layers, [-grads[k] for k in self.free_keys], loss, acc)


class VanillaFlow(NetworkFlow):
    """Gradient flow of the plain factorization W = U Vᵀ (the "vanilla" baseline).

    Every parameter is a dense block: (U, V) of each factorized layer — with S frozen at I — and
    the rest; the update is plain gradient descent on U and V (∂ℒ/∂U = G V, ∂ℒ/∂V = Gᵀ U).

    The start splits each factorization evenly between the factors, as the paper's baseline
    does (official code: ``UV_vanilla/Linear_layer_lr_new_vanilla.py``): with the SVD
    S = P Σ Qᵀ of the core, U ← U P Σ^{1/2} and V ← V Q Σ^{1/2}, so that U Vᵀ = U₀ S Vᵀ₀ and
    both factors carry the small singular values — the case DLRT is robust to and this
    baseline is not.  A model whose cores are already the identity (a restored checkpoint) is
    left as it is.
    """

    def __init__(self, model: Sequential, loss: Any = None) -> None:
        super().__init__(model, loss)
        for m in self.lr_layers:  # balanced split W = (U P Σ^½)(V Q Σ^½)ᵀ, S = I from now on
            eye = _eye_like(m.S)
            xp = array_namespace(m.S)
            if bool(xp.all(m.S == eye)):
                continue
            P, sigma, Q = svd(m.S, xp=xp)
            root = xp.sqrt(sigma)
            m.set_factors((m.U @ P) * root, eye, (m.V @ Q) * root)
        self._net, self._net_lr = _working_copy(model)

    def point(self) -> list[Any]:  # noqa: D102
        params = self.model.params()
        uv = [a for m in self.lr_layers for a in (m.U, m.V)]
        return uv + [params[k] for k in self.free_keys]

    def _write(self, net: Sequential, lr_layers: list[Any], blocks: Sequence[Any]) -> None:
        n = 2 * len(lr_layers)
        for j, (m, m_model) in enumerate(zip(lr_layers, self.lr_layers, strict=True)):
            m.set_factors(blocks[2 * j], m_model.S, blocks[2 * j + 1])  # S = I of the model
        net.set_params(dict(zip(self.free_keys, blocks[n:], strict=True)))

    def at(self, t: float, blocks: Sequence[Any]) -> Evaluation:  # noqa: D102
        self._write(self._net, self._net_lr, blocks)
        loss, acc = self._forward_backward()
        grads = self._net.grads()
        g: list[Any] = []
        for m in self._net_lr:
            dU, dV = m.vanilla_grads(m.U, m.V)
            g += [-dU, -dV]
        g += [-grads[k] for k in self.free_keys]
        return NetworkEvaluation([], g, loss, acc)


def _working_copy(model: Sequential) -> tuple[Sequential, list[Any]]:
    """A network with its own layer objects (empty caches) sharing the model's parameter arrays,
    and its low-rank layers: the flow's evaluations run there, never in the model."""
    net = copy.copy(model)
    net.layers = [copy.copy(m) for m in model.layers]
    for m in net.layers:
        m._cache, m._grads = {}, {}
    return net, [m for m in net.layers if isinstance(m, LowRankLayer)]


def _eye_like(S: Any) -> Any:
    from .._array_api import array_namespace, eye_like

    return eye_like(S.shape[0], S, xp=array_namespace(S))


def _accuracy(logits: Any, y: Any) -> float:
    from .._array_api import array_namespace

    xp = array_namespace(logits)
    if logits.ndim != 2 or y.ndim != 1:
        return float("nan")
    return float(xp.mean(xp.astype(xp.argmax(logits, axis=1) == y, xp.float64)))
