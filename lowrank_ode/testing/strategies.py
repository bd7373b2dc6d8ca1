"""Hypothesis strategies and the deterministic builders behind them.

Every strategy draws *parameters* (sizes, rank, decay, dtype, seed) and builds arrays through a
seeded :class:`numpy.random.Generator`, never raw float entries, so failures shrink to readable
cases.  ``hypothesis`` is imported only when a strategy is built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._array_api import to_numpy
from ..lowrank import LowRank

__all__ = [
    "DTYPES",
    "PointSpec",
    "make_point",
    "point_specs",
    "lowrank_points",
    "polynomial_rank_r_problem",
    "make_tangent_vector",
    "tangent_vectors",
    "tangent_pairs",
    "PROBLEM_KINDS",
    "ProblemSpec",
    "ProblemCase",
    "make_problem",
    "problem_specs",
    "problems",
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
    from ..problems.klw import ExplicitProblem

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


def make_tangent_vector(
    Y: LowRank, seed: int, *, scale: float = 1.0, factored: bool = False
) -> Any:
    """A random tangent vector ΔY = P(Y)Z at ``Y`` (Z Gaussian, seeded).

    Parameters
    ----------
    Y : LowRank
        Base point with orthonormal ``U`` and ``V`` (NumPy arrays).
    seed : int
        Seed of the Gaussian matrix ``Z`` (complex Gaussian for complex ``Y``).
    scale : float
        The result is scaled to Frobenius norm ``scale`` (a zero projection stays zero).
    factored : bool
        Return the factored projection (:class:`~lowrank_ode.LowRank` of rank ≤ 2r) instead
        of a dense ``n × m`` array.  Z is then drawn as a rank-``r`` factored matrix, so nothing
        ``n × m`` is formed.

    Returns
    -------
    ndarray, shape (n, m), or LowRank
        ``P(Y)Z / ‖P(Y)Z‖_F · scale``, computed with :func:`~lowrank_ode.tangent_project`.

    Notes
    -----
    Every tangent vector at Y = U S Vᴴ has the form ΔY = U ΔS Vᴴ + ΔU S Vᴴ + U S ΔVᴴ with
    UᴴΔU = 0 = VᴴΔV (the Koch–Lubich gauge), and P(Y) is the orthogonal projection onto that
    space, so ``P(Y) ΔY = ΔY`` (see :func:`check_in_tangent_space`).
    """
    from ..manifold import tangent_project

    rng = np.random.default_rng(seed)
    n, m = Y.shape
    dt = np.dtype(to_numpy(Y.S).dtype)

    def gauss(*s: int) -> np.ndarray:
        G = rng.standard_normal(s)
        return (G + 1j * rng.standard_normal(s) if dt.kind == "c" else G).astype(dt)

    if factored:
        r = Y.rank
        Z = LowRank(np.linalg.qr(gauss(n, r))[0], gauss(r, r), np.linalg.qr(gauss(m, r))[0])
        T = tangent_project(Y, Z)
        nrm = float(np.linalg.norm(to_numpy(T.S)))
        return LowRank(T.U, T.S * (scale / nrm), T.V) if nrm > 0 else T
    T = tangent_project(Y, gauss(n, m))
    nrm = float(np.linalg.norm(to_numpy(T)))
    return T * (scale / nrm) if nrm > 0 else T


def tangent_vectors(Y: LowRank, *, factored: bool = False) -> Any:
    """Hypothesis strategy of tangent vectors at the fixed point ``Y`` (unit Frobenius norm).

    Draws a seed (and a scale exponent in [−6, 0]) and calls :func:`make_tangent_vector`.

    Examples
    --------
    >>> from hypothesis import given
    >>> Y = make_point(PointSpec(6, 5, 2, 1e-3, "float64", 0))
    >>> @given(dY=tangent_vectors(Y))
    ... def test_projection_is_identity_on_tangents(dY):
    ...     check_in_tangent_space(Y, dY)
    """
    from hypothesis import strategies as st

    return st.builds(
        lambda seed, e: make_tangent_vector(Y, seed, scale=10.0**e, factored=factored),
        st.integers(0, 2**31 - 1),
        st.floats(-6.0, 0.0),
    )


def tangent_pairs(*, factored: bool = False, **point_kwargs: Any) -> Any:
    """Hypothesis strategy of pairs ``(Y, ΔY)``: a random point and a tangent vector at it.

    Parameters
    ----------
    factored : bool
        Draw ΔY as a factored :class:`~lowrank_ode.LowRank` (see :func:`make_tangent_vector`).
    **point_kwargs
        Options of :func:`point_specs` (sizes, dtypes, smallest singular-value ratio, …).
    """
    from hypothesis import strategies as st

    @st.composite
    def draw(d: Any) -> tuple[LowRank, Any]:
        Y = make_point(d(point_specs(**point_kwargs)))
        seed = d(st.integers(0, 2**31 - 1))
        e = d(st.floats(-6.0, 0.0))
        return Y, make_tangent_vector(Y, seed, scale=10.0**e, factored=factored)

    return draw()


PROBLEM_KINDS = ("klw", "lyapunov", "schrodinger")


@dataclass(frozen=True)
class ProblemSpec:
    """Parameters of a built-in test problem (what :func:`problem_specs` draws and shrinks).

    Attributes
    ----------
    kind : {"klw", "lyapunov", "schrodinger"}
        :class:`~lowrank_ode.problems.KLWProblem`,
        :class:`~lowrank_ode.problems.LyapunovProblem` or
        :class:`~lowrank_ode.problems.SchrodingerProblem`.
    n, m : int
        Matrix size (``n == m`` for KLW and Schrödinger).
    rank : int
        Rank of the initial value.
    seed : int
    decay : float
        KLW: σ_r / σ_1 of the rank-r part of D (geometric singular values from 1).
    eps : float
        KLW: size of the full-rank perturbation (the best-approximation error is about ε).
    nu_x, nu_y : float
        Lyapunov: diffusion coefficients.
    variant : {"ckl2022", "cekl2024"}
        Schrödinger: the variant (see :class:`~lowrank_ode.problems.SchrodingerProblem`).
    """

    kind: str
    n: int
    m: int
    rank: int
    seed: int
    decay: float = 1e-3
    eps: float = 0.0
    nu_x: float = 1.0
    nu_y: float = 1.0
    variant: str = "ckl2022"


@dataclass
class ProblemCase:
    """A built-in problem, its initial value and its full-rank reference solution.

    Attributes
    ----------
    spec : ProblemSpec
    problem : MatrixODE
        The right-hand side (factored products; pass it to :func:`~lowrank_ode.solve`, to an
        integrator's ``step`` or to your own step function).
    Y0 : LowRank
        Initial value of rank ``spec.rank`` with orthonormal factors.
    """

    spec: ProblemSpec
    problem: Any
    Y0: LowRank

    def reference(self, t: float) -> np.ndarray:
        """The solution A(t) of the *full* (not low-rank) matrix ODE, dense.

        For ``"lyapunov"`` and ``"schrodinger"`` A(0) = Y0 (exact sine-transform solution,
        resp. a tight DOP853 solve); for ``"klw"`` A(t) is the prescribed KLW matrix, whose
        best rank-r approximation at t = 0 is Y0 (the difference is of size ε plus the tail of
        D beyond the rank).
        """
        kind, P = self.spec.kind, self.problem
        if kind == "klw":
            return np.asarray(P.exact(t))
        if kind == "lyapunov":
            return np.asarray(P.exact(t, self.Y0))
        return np.asarray(P.reference(t, self.Y0))


def make_problem(spec: ProblemSpec) -> ProblemCase:
    """Build the :class:`ProblemCase` described by ``spec`` (deterministic in ``spec.seed``)."""
    from ..problems import KLWProblem, LyapunovProblem, SchrodingerProblem

    r = spec.rank
    if spec.kind == "klw":
        if spec.m != spec.n:
            raise ValueError(f"KLW problems are square, got n={spec.n}, m={spec.m}")
        sv = np.geomspace(1.0, spec.decay, r) if r > 1 else np.ones(1)
        P = KLWProblem(spec.n, singular_values=sv, eps=spec.eps, seed=spec.seed)
        return ProblemCase(spec, P, P.initial(r))
    if spec.kind == "lyapunov":
        P = LyapunovProblem(spec.n, spec.m, nu_x=spec.nu_x, nu_y=spec.nu_y)
        return ProblemCase(spec, P, P.initial(r))
    if spec.kind == "schrodinger":
        if spec.m != spec.n:
            raise ValueError(f"Schrödinger problems are square, got n={spec.n}, m={spec.m}")
        P = SchrodingerProblem(spec.n, variant=spec.variant)
        return ProblemCase(spec, P, P.initial(seed=spec.seed, rank=r))
    raise ValueError(f"kind must be one of {PROBLEM_KINDS}, got {spec.kind!r}")


def problem_specs(
    kinds: Sequence[str] = PROBLEM_KINDS,
    min_size: int = 3,
    max_size: int = 12,
    max_rank: int | None = None,
    min_decay: float = 1e-12,
) -> Any:
    """Hypothesis strategy of :class:`ProblemSpec` (see :func:`problems`)."""
    from hypothesis import strategies as st

    kinds = tuple(kinds)
    if not kinds or any(k not in PROBLEM_KINDS for k in kinds):
        raise ValueError(f"kinds must be a non-empty subset of {PROBLEM_KINDS}, got {kinds}")
    if "schrodinger" in kinds and (min_size < 3 or max_size < 4):
        raise ValueError("Schrödinger problems need min_size >= 3 and max_size >= 4")
    if not 1 <= min_size <= max_size:
        raise ValueError(f"need 1 <= min_size <= max_size, got {min_size}, {max_size}")

    @st.composite
    def draw(d: Any) -> ProblemSpec:
        kind = d(st.sampled_from(kinds))
        n = d(st.integers(min_size, max_size))
        if kind == "schrodinger":  # the grid x_j, j = -N/2 … N/2-1, needs an even N
            n = min(n + n % 2, max_size - max_size % 2)
        m = d(st.integers(min_size, max_size)) if kind == "lyapunov" else n
        cap = min(n, m) if max_rank is None else max(1, min(n, m, max_rank))
        r = d(st.integers(1, cap))
        seed = d(st.integers(0, 2**31 - 1))
        if kind == "klw":
            e = d(st.floats(np.log10(min_decay), 0.0))
            eps = d(st.sampled_from((0.0, 1e-8, 1e-4, 1e-2)))
            return ProblemSpec(kind, n, n, r, seed, decay=float(10.0**e), eps=eps)
        if kind == "lyapunov":
            nx = d(st.floats(0.1, 1.0))
            ny = d(st.floats(0.1, 1.0))
            return ProblemSpec(kind, n, m, r, seed, nu_x=nx, nu_y=ny)
        variant = d(st.sampled_from(("ckl2022", "cekl2024")))
        return ProblemSpec(kind, n, n, r, seed, variant=variant)

    return draw()


def problems(**kwargs: Any) -> Any:
    """Hypothesis strategy of :class:`ProblemCase`: built-in problems with random parameters.

    * ``"klw"`` — :class:`~lowrank_ode.problems.KLWProblem` (real, F = Ȧ(t) independent of Y):
      random n, rank r, σ_r/σ_1 ∈ [``min_decay``, 1], ε ∈ {0, 1e-8, 1e-4, 1e-2}, seed;
      Y0 = best rank-r approximation of A(0);
    * ``"lyapunov"`` — :class:`~lowrank_ode.problems.LyapunovProblem` (real, linear, n ≠ m
      allowed): random n, m, ν_x, ν_y ∈ [0.1, 1], rank; Y0 = ``initial(rank)``;
    * ``"schrodinger"`` — :class:`~lowrank_ode.problems.SchrodingerProblem` (complex,
      norm-conserving): random even N ≥ 4, variant, rank, seed; Y0 = ``initial(seed, rank)``.

    Parameters
    ----------
    **kwargs
        ``kinds`` (subset of the three names), ``min_size`` (≥ 3 with Schrödinger),
        ``max_size`` (≥ 4 with Schrödinger), ``max_rank``, ``min_decay`` — see
        :func:`problem_specs`.

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> @settings(max_examples=10, deadline=None)
    ... @given(case=problems(max_size=8))
    ... def test_my_step(case):
    ...     check_step_invariants(my_step, case.problem, case.Y0, 0.05)
    """
    return problem_specs(**kwargs).map(make_problem)
