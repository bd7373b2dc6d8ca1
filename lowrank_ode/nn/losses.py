"""Losses: :class:`SoftmaxCrossEntropy` (from logits) and :class:`MSELoss`.

A loss has ``forward(prediction, target) -> float`` (caching what its gradient needs) and
``backward() -> d loss / d prediction``.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import device as _device

from .. import _array_api as aa
from .base import shape_of

__all__ = ["SoftmaxCrossEntropy", "MSELoss", "log_softmax"]


def log_softmax(logits: Any) -> Any:
    """Row-wise ``log softmax``, stable for huge logits and accurate for saturated rows.

    With ``z = logits − max`` (so ``z ≤ 0``), ``log Σ exp z = log1p(s)`` where ``s`` sums
    ``exp z`` over every entry but the (first) row maximum; this keeps full relative accuracy of
    ``−log p`` even when the loss is ``1e-12`` (``log(1 + s)`` would round ``s`` away).

    Parameters
    ----------
    logits : array, shape (batch, n_classes)

    Returns
    -------
    logp : array, shape (batch, n_classes)
    """
    xp = aa.array_namespace(logits)
    z = logits - xp.max(logits, axis=1, keepdims=True)
    classes = xp.arange(int(logits.shape[1]), device=_device(logits))
    is_max = xp.argmax(z, axis=1)[:, None] == classes[None, :]
    e = xp.where(is_max, xp.zeros_like(z), xp.exp(z))
    return z - xp.log1p(xp.sum(e, axis=1, keepdims=True))


class SoftmaxCrossEntropy:
    """Mean cross-entropy of the softmax of ``logits`` against integer labels.

    ``L = −(1/B) Σ_i log softmax(logits_i)[labels_i]``, computed from the logits with the
    max-shift (no overflow for huge logits); ``dL/dlogits = (softmax(logits) − onehot) / B``.
    """

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def forward(self, logits: Any, labels: Any) -> float:
        """
        Parameters
        ----------
        logits : array, shape (batch, n_classes)
        labels : integer array, shape (batch,), values in ``[0, n_classes)``

        Returns
        -------
        loss : float
        """
        for name, a in (("logits", logits), ("labels", labels)):
            if not hasattr(a, "ndim"):
                raise TypeError(
                    f"SoftmaxCrossEntropy expected an array for {name}, got {type(a).__name__}"
                )
        xp = aa.array_namespace(logits, labels)
        if logits.ndim != 2:
            raise ValueError(
                f"SoftmaxCrossEntropy expected logits of shape (batch, n_classes), "
                f"got {shape_of(logits)}"
            )
        b, c = shape_of(logits)
        if b == 0 or c == 0:
            raise ValueError(
                f"SoftmaxCrossEntropy expected a non-empty batch of logits, got shape {(b, c)}"
            )
        if shape_of(labels) != (b,):
            raise ValueError(
                f"SoftmaxCrossEntropy expected labels of shape ({b},), got {shape_of(labels)}"
            )
        if not xp.isdtype(labels.dtype, "integral"):
            raise ValueError(
                f"SoftmaxCrossEntropy expected integer labels, got dtype {labels.dtype}"
            )
        lo, hi = int(xp.min(labels)), int(xp.max(labels))
        if lo < 0 or hi >= c:
            raise ValueError(
                f"SoftmaxCrossEntropy expected labels in [0, {c}), got values in [{lo}, {hi}]"
            )
        logp = log_softmax(logits)
        classes = xp.arange(c, device=_device(labels))
        onehot = xp.astype(labels[:, None] == classes[None, :], logits.dtype)
        self._cache = {"logp": logp, "onehot": onehot}
        return float(-xp.sum(onehot * logp) / b)

    def backward(self) -> Any:
        """
        Returns
        -------
        dlogits : array, shape (batch, n_classes)
        """
        cache = _cached(self, "SoftmaxCrossEntropy")
        xp = aa.array_namespace(cache["logp"])
        logp, onehot = cache["logp"], cache["onehot"]
        # softmax − onehot, with the label entry p_y − 1 written as −Σ_{j≠y} p_j (no cancellation)
        p_other = xp.exp(logp) * (1 - onehot)
        g = p_other - onehot * xp.sum(p_other, axis=1, keepdims=True)
        return g / int(logp.shape[0])

    def __call__(self, logits: Any, labels: Any) -> float:
        return self.forward(logits, labels)


class MSELoss:
    """Mean squared error over all entries, ``L = mean((pred − target)²)`` (PyTorch convention).

    ``dL/dpred = 2 (pred − target) / pred.size``.
    """

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def forward(self, pred: Any, target: Any) -> float:
        """
        Parameters
        ----------
        pred : array, any shape
        target : array, same shape as pred

        Returns
        -------
        loss : float
        """
        for name, a in (("pred", pred), ("target", target)):
            if not hasattr(a, "ndim"):
                raise TypeError(f"MSELoss expected an array for {name}, got {type(a).__name__}")
        xp = aa.array_namespace(pred, target)
        if shape_of(pred) != shape_of(target):
            raise ValueError(
                f"MSELoss expected target of shape {shape_of(pred)}, got {shape_of(target)}"
            )
        if _size(pred) == 0:
            raise ValueError(f"MSELoss expected a non-empty pred, got shape {shape_of(pred)}")
        r = pred - target
        self._cache = {"r": r}
        return float(xp.sum(r * r) / _size(r))

    def backward(self) -> Any:
        """
        Returns
        -------
        dpred : array, same shape as pred
        """
        r = _cached(self, "MSELoss")["r"]
        return r * (2.0 / _size(r))

    def __call__(self, pred: Any, target: Any) -> float:
        return self.forward(pred, target)


def _cached(loss: Any, who: str) -> dict[str, Any]:
    if not loss._cache:
        raise RuntimeError(f"{who}.backward called before forward")
    return loss._cache


def _size(x: Any) -> int:
    n = 1
    for s in x.shape:
        n *= int(s)
    return n
