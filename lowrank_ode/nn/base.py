"""Layer base class, :class:`Sequential`, and shared validation helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

__all__ = ["Layer", "Sequential", "as_rng", "pair", "check_size"]


def as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A :class:`numpy.random.Generator` from a generator, a seed, or ``None`` (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def check_size(value: Any, name: str, low: int = 1) -> int:
    """``value`` as an ``int`` ≥ ``low``.

    ``TypeError`` unless an integer (2.7 is not a layer size), ``ValueError`` when below ``low``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    """Normalise an ``int`` or a pair of ints to a pair, validating it (``TypeError`` on
    non-integers such as 2.5)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        items = value
    else:
        items = (value, value)
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    return (int(items[0]), int(items[1]))


def check_array(x: Any, who: str) -> None:
    """``TypeError`` unless ``x`` is an array (lists and scalars are not converted silently)."""
    if not hasattr(x, "ndim") or not hasattr(x, "shape"):
        raise TypeError(f"{who} expected an array as input, got {type(x).__name__}")


def shape_of(x: Any) -> tuple[int, ...]:
    """The shape of an array as a plain tuple (for messages and comparisons)."""
    return tuple(int(s) for s in x.shape)


class Layer:
    """Base class of all layers.

    Subclasses implement :meth:`forward` and :meth:`backward` and list their parameter attribute
    names in ``_param_names``.  ``forward`` *replaces* ``self._cache`` (never appends to it), and
    ``backward`` replaces ``self._grads``.
    """

    _param_names: tuple[str, ...] = ()
    #: ``backward(dy, input_grad=False)`` fills the parameter gradients and skips ``dx``
    skips_input_grad: bool = False
    #: the layer has a weight matrix (dense, convolutional, factorised); see ``n_in``, ``n_out``
    has_weight: bool = False
    #: the weight is factorised as ``U S Vᵀ`` (:class:`~lowrank_ode.nn.LowRankLayer`)
    factorized: bool = False

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}
        self._grads: dict[str, Any] = {}

    # -- interface -------------------------------------------------------------------------
    def forward(self, x: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dy: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _cached(self) -> dict[str, Any]:
        """The cache of the last :meth:`forward`; ``RuntimeError`` when there was none."""
        if not self._cache:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._cache

    def __call__(self, x: Any) -> Any:
        return self.forward(x)

    def params(self) -> dict[str, Any]:
        """Parameters as a dict ``name -> array`` (the arrays themselves, not copies)."""
        return {name: getattr(self, name) for name in self._param_names}

    def grads(self) -> dict[str, Any]:
        """Gradients of the loss w.r.t. the parameters, filled by the last :meth:`backward`."""
        return dict(self._grads)

    def set_params(self, params: dict[str, Any]) -> None:
        """Replace some or all parameters; shapes must match the current ones.

        Raises
        ------
        ValueError
            On an unknown name or a shape mismatch (the message names expected and received).
        """
        for name, value in params.items():
            if name not in self._param_names:
                raise ValueError(
                    f"{type(self).__name__} has parameters {self._param_names}, got {name!r}"
                )
            old = getattr(self, name)
            if shape_of(value) != shape_of(old):
                raise ValueError(
                    f"{type(self).__name__}.{name}: expected shape {shape_of(old)}, "
                    f"got {shape_of(value)}"
                )
        for name, value in params.items():
            setattr(self, name, value)
        self._cache = {}
        self._grads = {}

    def map_params(self, fn: Callable[[Any], Any]) -> None:
        """Apply ``fn`` to every parameter (e.g. ``array_api_strict.asarray`` or a dtype cast)."""
        if self._param_names:
            self.set_params({k: fn(v) for k, v in self.params().items()})

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Sequential(Layer):
    """A chain of layers: ``forward`` in order, ``backward`` in reverse order.

    Parameters and gradients are exposed with keys ``"<index>.<name>"``.

    Parameters
    ----------
    layers : iterable of Layer
    """

    def __init__(self, layers: Iterable[Layer]) -> None:
        super().__init__()
        self.layers: list[Layer] = list(layers)

    def forward(self, x: Any) -> Any:
        """Run every layer in order."""
        check_array(x, "Sequential")
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dy: Any, input_grad: bool = True) -> Any:
        """Back-propagate ``dy`` (gradient w.r.t. the output) through all layers; return ``dx``.

        With ``input_grad=False`` a first weight layer fills its parameter gradients but skips
        ``dx`` (nobody needs the gradient w.r.t. the data), and ``None`` is returned.
        """
        first = self.layers[0] if self.layers else None
        for layer in reversed(self.layers):
            if layer is first and not input_grad and getattr(layer, "skips_input_grad", False):
                layer.backward(dy, input_grad=False)
                return None
            dy = layer.backward(dy)
        return dy

    def params(self) -> dict[str, Any]:
        return {
            f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params().items()
        }

    def grads(self) -> dict[str, Any]:
        return {
            f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.grads().items()
        }

    def set_params(self, params: dict[str, Any]) -> None:
        per_layer: dict[int, dict[str, Any]] = {}
        for key, value in params.items():
            idx, _, name = key.partition(".")
            if not idx.isdigit() or not 0 <= int(idx) < len(self.layers):
                raise ValueError(
                    f"parameter key must be '<layer index>.<name>' with index < "
                    f"{len(self.layers)}, "
                    f"got {key!r}"
                )
            per_layer.setdefault(int(idx), {})[name] = value
        for idx, sub in per_layer.items():
            self.layers[idx].set_params(sub)

    def map_params(self, fn: Callable[[Any], Any]) -> None:
        for layer in self.layers:
            layer.map_params(fn)

    def low_rank_layers(self) -> list[Layer]:
        """The layers with a factorised weight ``U S Vᵀ`` (``LowRankDense``, ``LowRankConv2d``)."""
        return [layer for layer in self.layers if layer.factorized]

    def weight_layers(self) -> list[Layer]:
        """All layers with a weight matrix (dense, convolutional, low-rank), in order."""
        return [layer for layer in self.layers if layer.has_weight]

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential([\n  {inner}\n])"
