"""The network loss as a factored right-hand side: W' = −∇ℒ(W) for every weight at once.

DLRT (Schotthöfer et al., NeurIPS 2022) is a BUG-family integrator applied to this problem with
an optimizer as the sub-step solver.  A point is the list of blocks

    [LowRank(U, S, V) of each low-rank layer, …, every other parameter as a dense array …]

(the dense output layer, the biases, the weights of dense layers).  ``at(t, blocks)`` loads the
blocks into the model, runs ONE forward/backward pass on the current mini-batch and returns an
evaluation whose products are those of the layers' gradients G = ∂ℒ/∂W = δᵀX, negated:

    right(i, V) = −G V,   left(i, U) = −Gᵀ U,   galerkin(i, U, V) = −Uᵀ G V,   full(j) = −∂ℒ/∂θ_j,

each O(batch·r·(n + m)); the n × m gradient is never formed.  With an Euler-type sub-step (SGD,
momentum, Adam) the K- and L-steps of BUG share the evaluation at W₀, so a fixed-rank DLRT step
costs two passes; the rank-adaptive step's S-step starts at W₀ itself (its augmented bases
contain U₀ and V₀) and reuses that evaluation too, so it costs one pass, as does the parallel
(single-pass) step.
"""

from __future__ import annotations

import copy
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
    What :meth:`at` changes besides returning an evaluation, and why it is safe:

    * the model holds the evaluated point's parameters afterwards — the layers compute with
      their own attributes, so a pass must load the point first.  Nothing reads the model's
      parameters between two evaluations of a step; after the step the trainer loads the
      result (:meth:`load`), so the model always ends a step at the new point;
    * the pass's loss and accuracy are appended to ``evaluations`` (the record above);
    * the evaluation keeps shallow copies of the low-rank layers, whose caches (the thin X and
      δ of this pass) later passes *rebind* (``forward`` and ``backward`` assign new arrays,
      never write into old ones), so an evaluation stays valid while the integrator makes
      further evaluations.
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
        n = len(self.lr_layers)
        if len(blocks) != n + len(self.free_keys):
            raise ValueError(
                f"expected {n} low-rank and {len(self.free_keys)} dense blocks, got {len(blocks)}"
            )
        for m, Y in zip(self.lr_layers, blocks[:n], strict=True):
            m.set_factors(Y.U, Y.S, Y.V)
        self.model.set_params(dict(zip(self.free_keys, blocks[n:], strict=True)))

    # ---------------------------------------------------------------- evaluation
    def forward_backward(self) -> tuple[float, float]:
        """One forward/backward pass on the current batch; returns (loss, accuracy)."""
        if self.x is None:
            raise RuntimeError("call set_batch(x, y) before evaluating the flow")
        out = self.model.forward(self.x)
        loss = float(self.loss.forward(out, self.y))
        self.model.backward(self.loss.backward(), input_grad=False)  # no dℒ/dx needed
        acc = _accuracy(out, self.y)
        self.evaluations.append((loss, acc))
        return loss, acc

    def at(self, t: float, blocks: Sequence[Any]) -> NetworkEvaluation:
        """Load ``blocks``, run one forward/backward pass, return the negative gradient."""
        self.load(blocks)
        loss, acc = self.forward_backward()
        grads = self.model.grads()
        # shallow copies keep this pass's cached (X, δ): a later pass rebinds, never mutates them
        # (see the class notes)
        layers = [copy.copy(m) for m in self.lr_layers]
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

    def point(self) -> list[Any]:  # noqa: D102
        params = self.model.params()
        uv = [a for m in self.lr_layers for a in (m.U, m.V)]
        return uv + [params[k] for k in self.free_keys]

    def load(self, blocks: Sequence[Any]) -> None:  # noqa: D102
        n = 2 * len(self.lr_layers)
        for j, m in enumerate(self.lr_layers):
            m.set_factors(blocks[2 * j], m.S, blocks[2 * j + 1])
        self.model.set_params(dict(zip(self.free_keys, blocks[n:], strict=True)))

    def at(self, t: float, blocks: Sequence[Any]) -> Evaluation:  # noqa: D102
        self.load(blocks)
        loss, acc = self.forward_backward()
        grads = self.model.grads()
        g: list[Any] = []
        for m in self.lr_layers:
            dU, dV = m.vanilla_grads(m.U, m.V)
            g += [-dU, -dV]
        g += [-grads[k] for k in self.free_keys]
        return NetworkEvaluation([], g, loss, acc)


def _eye_like(S: Any) -> Any:
    from .._array_api import array_namespace, eye_like

    return eye_like(S.shape[0], S, xp=array_namespace(S))


def _accuracy(logits: Any, y: Any) -> float:
    from .._array_api import array_namespace

    xp = array_namespace(logits)
    if logits.ndim != 2 or y.ndim != 1:
        return float("nan")
    return float(xp.mean(xp.astype(xp.argmax(logits, axis=1) == y, xp.float64)))
