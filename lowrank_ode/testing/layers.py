"""Checkers for layers: finite-difference gradient checks (NumPy, float64).

Two checks of a gradient ``g`` of a scalar function ``f`` at ``θ`` in a direction ``d``:

* :func:`directional_error` — relative error between the central difference
  ``(f(θ + h d) − f(θ − h d)) / 2h`` and ``<g, d>``;
* :func:`taylor_slope` — the slope of ``log |f(θ + εd) − f(θ) − ε<g, d>|`` against ``log ε`` over
  ``ε = 1e-2 … 1e-4``, which is 2 when ``g`` is the gradient (and 1 when it is not).

:func:`gradient_check` runs both along two random directions; :func:`layer_gradient_report` runs
it for the input and every parameter of a layer with the scalar test functional
``J(y) = <w, y> + ½‖y‖²`` of the layer output (quadratic, so even a linear layer has a non-zero
second-order Taylor remainder).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "directional_error",
    "taylor_slope",
    "gradient_check",
    "layer_gradient_report",
    "check_layer_gradients",
]


def directional_error(
    f: Callable[[np.ndarray], float],
    theta: np.ndarray,
    g: np.ndarray,
    d: np.ndarray,
    h: float = 1e-5,
) -> float:
    """Relative error of the central difference of ``f`` along ``d`` against ``<g, d>``.

    The denominator is ``max(|<g, d>|, |fd|, 1e-3 |f(θ)|, 1e-300)``.  The floor ``1e-3 |f(θ)|``
    accounts for round-off: the central difference carries an absolute error of about
    ``ε_mach |f| / h ≈ 2e-11 |f|``, so a derivative much smaller than ``|f|`` cannot be resolved
    to a relative ``1e-6``; below the floor the check is an absolute one at ``~50×`` round-off.
    """
    f0 = f(theta)
    fd = (f(theta + h * d) - f(theta - h * d)) / (2 * h)
    an = float(np.sum(g * d))
    return abs(fd - an) / max(abs(an), abs(fd), 1e-3 * abs(f0), 1e-300)


def taylor_slope(
    f: Callable[[np.ndarray], float],
    theta: np.ndarray,
    g: np.ndarray,
    d: np.ndarray,
    eps: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Fitted slope of ``log R(ε)``, ``R(ε) = |f(θ + εd) − f(θ) − ε<g, d>|``, against ``log ε``.

    Remainders below the round-off floor ``1e-13 (1 + |f(θ)|)`` are dropped from the fit; if fewer
    than three points remain, the model is affine along ``d`` to round-off and ``2.0`` is returned
    (the first-order term is then exact, which is what the check is after).

    Returns
    -------
    slope : float
    remainders : ndarray, shape (len(eps),)
    """
    eps = np.logspace(-2, -4, 5) if eps is None else np.asarray(eps)
    f0 = f(theta)
    an = float(np.sum(g * d))
    rem = np.array([abs(f(theta + e * d) - f0 - e * an) for e in eps])
    keep = rem > 1e-13 * (1 + abs(f0))
    if keep.sum() < 3:
        return 2.0, rem
    slope = float(np.polyfit(np.log(eps[keep]), np.log(rem[keep]), 1)[0])
    return slope, rem


def layer_gradient_report(
    layer: Any,
    x: np.ndarray,
    rng: np.random.Generator,
    names: list[str] | None = None,
    direction: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, tuple[float, float]]:
    """Check ``backward`` of ``layer`` at ``x``: ``{"x" | param name: (rel err, Taylor slope)}``.

    Parameters
    ----------
    layer : Layer
    x : ndarray
        Input of the layer (float64).
    rng : numpy.random.Generator
    names : list of str, optional
        Parameters to check (default: every key of ``layer.grads()``).
    direction : callable, optional
        ``direction(a)`` returns a perturbation direction shaped like ``a`` (default: standard
        normal scaled to unit max-norm).  Each entry is checked along two directions with
        :func:`gradient_check`.
    """
    y = layer.forward(x)
    w = rng.standard_normal(y.shape)

    def J(out: np.ndarray) -> float:
        return float(np.sum(w * out) + 0.5 * np.sum(out * out))

    dx = layer.backward(w + y)
    grads = {k: np.array(v, copy=True) for k, v in layer.grads().items()}
    base = {k: np.array(v, copy=True) for k, v in layer.params().items()}
    report: dict[str, tuple[float, float]] = {}

    def f_x(xx: np.ndarray) -> float:
        return J(layer.forward(xx))

    report["x"] = gradient_check(f_x, x, dx, rng, direction=direction)
    for name in names if names is not None else list(grads):

        def f_p(p: np.ndarray, name: str = name) -> float:
            layer.set_params({name: p})
            out = J(layer.forward(x))
            layer.set_params({name: base[name]})
            return out

        report[name] = gradient_check(f_p, base[name], grads[name], rng, direction=direction)
    return report


def _unit(a: np.ndarray) -> np.ndarray:
    return a / max(float(np.max(np.abs(a))), 1e-300)


def gradient_check(
    f: Callable[[np.ndarray], float],
    theta: np.ndarray,
    g: np.ndarray,
    rng: np.random.Generator,
    n_directions: int = 2,
    direction: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[float, float]:
    """Both checks of ``g ≈ ∇f(θ)``: ``(worst rel err, Taylor slope closest to 2)``.

    Each check runs along ``n_directions`` random directions (standard normal scaled to unit
    max-norm unless ``direction`` is given).  The directional error reported is the *largest*
    one.  The Taylor slope reported is the one *closest to 2*: for a non-quadratic ``f`` the
    ``ε²`` term of the remainder can nearly cancel against the ``ε³`` term along an unlucky
    direction (about 1e-3 of random directions for ``tanh``), which bends the fitted slope
    although ``g`` is right; a wrong ``g`` gives slope ≈ 1 along *every* direction, so taking
    the best of two keeps the test's power.
    """
    direction = direction or (lambda a: _unit(rng.standard_normal(np.shape(a))))
    errs, slopes = [], []
    for _ in range(n_directions):
        d = direction(theta)
        errs.append(directional_error(f, theta, g, d))
        slopes.append(taylor_slope(f, theta, g, d)[0])
    return max(errs), min(slopes, key=lambda s: abs(s - 2.0))


def check_layer_gradients(
    layer: Any,
    x: Any,
    *,
    rng: Any = 0,
    names: list[str] | None = None,
    rtol: float = 1e-6,
    slope: tuple[float, float] = (1.7, 2.3),
    direction: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, tuple[float, float]]:
    """Assert that ``layer.backward`` returns the true gradients (finite-difference checks).

    Wraps :func:`layer_gradient_report`: with the scalar functional
    J(y) = ⟨w, y⟩ + ½‖y‖² of the layer output y = ``layer.forward(x)``, the gradient of the
    input (the value ``backward`` returns) and of every parameter in ``layer.grads()`` is
    checked along two random directions by

    * the central difference: relative error against ⟨g, d⟩ below ``rtol``;
    * the Taylor remainder ``|J(θ + εd) − J(θ) − ε⟨g, d⟩|``, whose fitted slope in ε must lie in
      ``slope`` — it is 2 for the right gradient and 1 for a wrong one.

    The layer needs the interface of :class:`lowrank_ode.nn.Layer`: ``forward(x)``,
    ``backward(dy) -> dx``, ``params()``, ``grads()`` and ``set_params(dict)``.  For a
    factorized layer, ``grads()`` holds what it exposes (``"S"`` and ``"b"`` for
    :class:`~lowrank_ode.nn.LowRankDense`).

    Parameters
    ----------
    layer : Layer
        In float64.
    x : array
        Input (float64; keep piecewise-linear layers away from their kinks).
    rng : numpy.random.Generator or int
        Random directions and the weight ``w`` of J.
    names : list of str, optional
        Parameters to check (default: every key of ``layer.grads()``).
    rtol : float
        Bound on the directional-derivative error.
    slope : (float, float)
        Open interval for the Taylor slope.
    direction : callable, optional
        ``direction(a)`` → perturbation direction shaped like ``a``.

    Returns
    -------
    dict
        ``{"x" | parameter name: (relative error, Taylor slope)}``.

    Raises
    ------
    AssertionError
        Listing every gradient that fails, with both measurements.
    """
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    x = np.asarray(x)
    if x.dtype != np.float64:
        raise ValueError(f"gradient checks need float64 input, got {x.dtype}")
    report = layer_gradient_report(layer, x, gen, names=names, direction=direction)
    bad = []
    for key, (err, s) in report.items():
        if not (err < rtol and slope[0] < s < slope[1]):
            what = (
                "input gradient (the value of backward)" if key == "x" else f"gradient of {key!r}"
            )
            bad.append(
                f"{what}: directional-derivative rel. error {err:.2e} (must be < {rtol:g}), "
                f"Taylor slope {s:.2f} (must be in ({slope[0]:g}, {slope[1]:g}); "
                "2 means right, 1 means wrong)"
            )
    if bad:
        raise AssertionError(
            f"{type(layer).__name__}: wrong gradients for x of shape {x.shape}:\n  "
            + "\n  ".join(bad)
        )
    return report
