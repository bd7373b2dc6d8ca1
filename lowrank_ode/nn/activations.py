"""Element-wise activations: :class:`ReLU`, :class:`LeakyReLU`, :class:`Tanh`."""

from __future__ import annotations

from typing import Any

from .. import _array_api as aa
from .base import Layer

__all__ = ["ReLU", "LeakyReLU", "Tanh", "get_activation"]


class ReLU(Layer):
    """``y = max(x, 0)``; the derivative at 0 is taken as 0.  Caches the boolean mask ``x > 0``."""

    def forward(self, x: Any) -> Any:
        """
        Parameters
        ----------
        x : array, any shape

        Returns
        -------
        y : array, same shape as x
        """
        xp = aa.array_namespace(x)
        mask = x > 0
        self._cache = {"mask": mask}
        return xp.where(mask, x, 0.0)  # a Python scalar: no zeros array to allocate

    def backward(self, dy: Any) -> Any:
        """``dx = dy · [x > 0]``."""
        xp = aa.array_namespace(dy)
        return xp.where(self._cache["mask"], dy, 0.0)


class LeakyReLU(Layer):
    """``y = x`` for ``x > 0`` and ``alpha · x`` otherwise.

    Parameters
    ----------
    alpha : float, default 0.01
    """

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x: Any) -> Any:
        """
        Parameters
        ----------
        x : array, any shape

        Returns
        -------
        y : array, same shape as x
        """
        xp = aa.array_namespace(x)
        mask = x > 0
        self._cache = {"mask": mask}
        return xp.where(mask, x, self.alpha * x)

    def backward(self, dy: Any) -> Any:
        """``dx = dy`` where ``x > 0``, ``alpha · dy`` elsewhere."""
        xp = aa.array_namespace(dy)
        return xp.where(self._cache["mask"], dy, self.alpha * dy)

    def __repr__(self) -> str:
        return f"LeakyReLU({self.alpha})"


class Tanh(Layer):
    """``y = tanh(x)``; caches ``y`` (``dy/dx = 1 − y²``)."""

    def forward(self, x: Any) -> Any:
        """
        Parameters
        ----------
        x : array, any shape

        Returns
        -------
        y : array, same shape as x
        """
        xp = aa.array_namespace(x)
        y = xp.tanh(x)
        self._cache = {"y": y}
        return y

    def backward(self, dy: Any) -> Any:
        """``dx = dy · (1 − y²)``."""
        y = self._cache["y"]
        return dy * (1 - y * y)


def get_activation(name: str) -> Layer:
    """A fresh activation layer by name: ``"relu"``, ``"tanh"``, ``"leaky_relu"``."""
    table = {"relu": ReLU, "tanh": Tanh, "leaky_relu": LeakyReLU}
    if name not in table:
        raise ValueError(f"activation must be one of {sorted(table)}, got {name!r}")
    return table[name]()
