"""Public testing tools: hypothesis strategies and checkers for integrators (and layers).

Import them to property-test your own integrator the way the library tests its own::

    from hypothesis import given
    from lowrank_ode.testing import lowrank_points, check_orthonormal, empirical_order

Every strategy draws *parameters* (sizes, rank, decay, dtype, seed) and builds arrays through a
seeded :class:`numpy.random.Generator`, never raw float entries, so failures shrink to readable
cases.  Every checker raises :class:`AssertionError` with a message that says what was expected
and what was measured.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._array_api import to_numpy
from .lowrank import LowRank, orthonormality_error

__all__ = [
    "PointSpec",
    "point_specs",
    "lowrank_points",
    "make_point",
    "polynomial_rank_r_problem",
    "check_orthonormal",
    "empirical_order",
    "check_order",
    "check_exactness",
    "check_descent",
    "dense_error",
]

DTYPES = ("float64", "complex128")


@dataclass(frozen=True)
class PointSpec:
    """Parameters of a random low-rank point (what hypothesis draws and shrinks)."""

    n: int
    m: int
    rank: int
    decay: float  # σ_r / σ_1 (geometric decay from 1 down to this)
    dtype: str
    seed: int


def make_point(spec: PointSpec) -> LowRank:
    """The :class:`LowRank` described by ``spec``: σ_j geometric from 1 to ``spec.decay``."""
    r = spec.rank
    sv = np.geomspace(1.0, spec.decay, r) if r > 1 else np.ones(1)
    return LowRank.random((spec.n, spec.m), r, spec.seed, singular_values=sv, dtype=spec.dtype)


def point_specs(
    min_size: int = 1,
    max_size: int = 12,
    dtypes: Sequence[str] = DTYPES,
    min_decay: float = 1e-14,
    distinct: bool = True,
) -> Any:
    """Hypothesis strategy of :class:`PointSpec`: n ≠ m (when ``distinct``), 1 ≤ r ≤ min(n, m)."""
    from hypothesis import assume
    from hypothesis import strategies as st

    @st.composite
    def draw(d: Any) -> PointSpec:
        n = d(st.integers(min_size, max_size))
        m = d(st.integers(min_size, max_size))
        if distinct:
            assume(n != m)
        r = d(st.integers(1, min(n, m)))
        e = d(st.floats(np.log10(min_decay), 0.0))
        dtype = d(st.sampled_from(tuple(dtypes)))
        seed = d(st.integers(0, 2**31 - 1))
        return PointSpec(n, m, r, float(10.0**e), dtype, seed)

    return draw()


def lowrank_points(**kwargs: Any) -> Any:
    """Hypothesis strategy of :class:`LowRank` points (see :func:`point_specs` for options)."""
    return point_specs(**kwargs).map(make_point)


def polynomial_rank_r_problem(spec: PointSpec) -> tuple[Any, Callable[[float], np.ndarray]]:
    """F = Ȧ(t) for A(t) = (U₀ + tU₁)(S₀ + tS₁)(V₀ + tV₁)ᴴ, of rank ≤ r for all t.

    A(t) is a cubic polynomial in t, so RK4 (exact for cubics in t when F does not depend on Y)
    makes the K-, L-, S-steps of projector splitting and BUG exact: the integrators must
    reproduce A(tₙ) to round-off (Lubich–Oseledets 2014, Thm. 4.1; Ceruti–Lubich 2022, Thm. 4).
    Returns ``(problem, A)``.
    """
    from .problems.klw import ExplicitProblem

    rng = np.random.default_rng(spec.seed + 1)
    dt = np.dtype(spec.dtype)
    Y0 = make_point(spec)
    n, m, r = spec.n, spec.m, spec.rank

    def g(*s: int) -> np.ndarray:
        G = rng.standard_normal(s)
        return (G + 1j * rng.standard_normal(s) if dt.kind == "c" else G).astype(dt) * 0.3

    U0, S0, V0 = Y0.U, Y0.S, Y0.V
    U1, S1, V1 = g(n, r), g(r, r), g(m, r)

    def A(t: float) -> np.ndarray:
        return (U0 + t * U1) @ (S0 + t * S1) @ (V0 + t * V1).conj().T

    def Adot(t: float) -> np.ndarray:
        U, S, V = U0 + t * U1, S0 + t * S1, V0 + t * V1
        return U1 @ S @ V.conj().T + U @ S1 @ V.conj().T + U @ S @ V1.conj().T

    return ExplicitProblem(A, Adot), A


def check_orthonormal(Y: LowRank, tol: float = 1e-12) -> None:
    """Assert ‖UᴴU − I‖₂ ≤ tol and ‖VᴴV − I‖₂ ≤ tol."""
    for name, A in (("U", Y.U), ("V", Y.V)):
        e = orthonormality_error(A)
        if not e <= tol:
            raise AssertionError(
                f"{name} is not orthonormal: ‖{name}ᴴ{name} − I‖ = {e:.3e} > {tol:g}"
            )


def dense_error(Y: Any, A: Any, relative: bool = False) -> float:
    """‖Y − A‖_F for LowRank or dense ``Y`` and dense ``A`` (host computation)."""
    Yd = to_numpy(Y.to_dense() if isinstance(Y, LowRank) else Y)
    Ad = to_numpy(A)
    e = float(np.linalg.norm(Yd - Ad))
    return e / float(np.linalg.norm(Ad)) if relative else e


def empirical_order(hs: Sequence[float], errors: Sequence[float]) -> float:
    """Least-squares slope of log(error) against log(h)."""
    hs, errors = np.asarray(hs, float), np.asarray(errors, float)
    if hs.shape != errors.shape or hs.size < 2:
        raise ValueError("hs and errors must have the same length >= 2")
    if np.any(errors <= 0) or not np.all(np.isfinite(errors)):
        raise AssertionError(f"errors must be finite and positive to fit an order, got {errors}")
    return float(np.polyfit(np.log(hs), np.log(errors), 1)[0])


def check_order(
    run: Callable[[float], Any],
    reference: Any,
    hs: Sequence[float],
    expected: float,
    tol: float = 0.3,
    relative: bool = False,
) -> tuple[float, list[float]]:
    """Assert the fitted order of ``run(h)`` (final states) against ``reference`` is ≈ expected.

    Parameters
    ----------
    run : callable h -> LowRank or dense array
        Integrates to the final time with step ``h``.
    reference : array
        Dense reference solution at the final time.
    hs : sequence of float
        At least four step sizes.
    expected, tol : float
        Passes when ``|slope − expected| ≤ tol``.

    Returns
    -------
    (slope, errors)
    """
    if len(hs) < 4:
        raise ValueError(f"check_order needs at least 4 step sizes, got {len(hs)}")
    errors = [dense_error(run(h), reference, relative) for h in hs]
    p = empirical_order(hs, errors)
    if not abs(p - expected) <= tol:
        pairs = ", ".join(f"h={h:.3g}: {e:.3e}" for h, e in zip(hs, errors, strict=True))
        raise AssertionError(
            f"empirical order {p:.2f}, expected {expected} ± {tol} (errors {pairs})"
        )
    return p, errors


def check_exactness(run: Callable[[], Any], exact: Any, tol: float) -> float:
    """Assert that ``run()`` reproduces ``exact`` to relative Frobenius error ``tol``."""
    e = dense_error(run(), exact, relative=True)
    if not e <= tol:
        raise AssertionError(f"not exact: relative error {e:.3e} > {tol:g}")
    return e


def check_descent(values: Sequence[float], slack: float = 0.0) -> None:
    """Assert f(Yₙ₊₁) ≤ f(Yₙ) + slack for every step of a gradient-flow trajectory."""
    v = np.asarray(values, float)
    inc = np.diff(v)
    bad = np.nonzero(inc > slack)[0]
    if bad.size:
        k = int(bad[0])
        raise AssertionError(
            f"no descent at step {k}: f went from {v[k]:.6e} to {v[k + 1]:.6e} "
            f"(increase {inc[k]:.3e} > slack {slack:.3e}); {bad.size} such steps"
        )
