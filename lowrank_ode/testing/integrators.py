"""Checkers for integrators: invariants of one step, order, robustness, exactness, descent.

Each checker accepts an :class:`~lowrank_ode.integrators.Integrator` instance, a method name,
or a plain function ``step(F, t, Y, h) -> LowRank`` (see :func:`as_step`), and raises
:class:`AssertionError` with a message that says what was expected and what was measured.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._array_api import to_numpy
from ..lowrank import LowRank, dense_error, orthonormality_error
from ..solve import step_count

__all__ = [
    "ORTH_TOL",
    "check_orthonormal",
    "dense_error",
    "empirical_order",
    "check_order",
    "check_exactness",
    "check_descent",
    "check_in_tangent_space",
    "StepFunction",
    "as_step",
    "integrate",
    "check_step_invariants",
    "ROBUSTNESS_SIGMAS",
    "check_robustness",
    "check_integrator_order",
]

#: ‖UᴴU − I‖₂ a checker accepts for the factors of a step's result (float64/complex128).  A QR
#: or SVD leaves ~1e-15 on the matrices of these tests; 1e-12 leaves a thousandfold margin and
#: still catches a step that forgot to orthonormalize (typically ≥ 1e-3).  Use ~1e-5 in float32.
ORTH_TOL = 1e-12


def check_orthonormal(Y: LowRank, tol: float = ORTH_TOL) -> None:
    """Assert ‖UᴴU − I‖₂ ≤ tol and ‖VᴴV − I‖₂ ≤ tol."""
    for name, A in (("U", Y.U), ("V", Y.V)):
        e = orthonormality_error(A)
        if not e <= tol:
            raise AssertionError(
                f"{name} is not orthonormal: ‖{name}ᴴ{name} − I‖ = {e:.3e} > {tol:g}"
            )


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


def check_in_tangent_space(Y: LowRank, dY: Any, tol: float = 1e-10) -> float:
    """Assert that ``dY`` lies in the tangent space at ``Y``: ‖P(Y)dY − dY‖_F ≤ tol‖dY‖_F.

    Parameters
    ----------
    Y : LowRank
        Base point (orthonormal factors).
    dY : array, shape (n, m), or LowRank
        Candidate tangent vector.
    tol : float
        Relative tolerance.

    Returns
    -------
    float
        The relative residual.
    """
    from ..manifold import tangent_project

    D = to_numpy(dY.to_dense() if isinstance(dY, LowRank) else dY)
    P = to_numpy(tangent_project(Y, D))
    nrm = float(np.linalg.norm(D))
    res = float(np.linalg.norm(P - D)) / nrm if nrm > 0 else 0.0
    if not res <= tol:
        raise AssertionError(
            f"not a tangent vector at Y (rank {Y.rank}): ‖P(Y)dY − dY‖/‖dY‖ = {res:.3e} > {tol:g}"
        )
    return res


#: The signature of a plain step function: ``step(F, t, Y, h) -> LowRank``.
StepFunction = Callable[[Any, float, LowRank, float], LowRank]


def as_step(method_or_step: Any) -> StepFunction:
    """Normalize what a user passes to the checkers into ``step(F, t, Y, h) -> LowRank``.

    Parameters
    ----------
    method_or_step : Integrator, Integrator subclass, str, or callable
        * an :class:`~lowrank_ode.integrators.Integrator` instance — its
          :meth:`~lowrank_ode.integrators.Integrator.step` is used;
        * an ``Integrator`` subclass — instantiated with default arguments;
        * a method name of :func:`~lowrank_ode.solve` (``"bug"``, ``"ksl"``, …);
        * a plain function ``step(F, t, Y, h) -> LowRank``.  It receives the problem ``F`` as
          given to the checker (for the built-in problems a
          :class:`~lowrank_ode.problems.MatrixODE`: evaluate it with ``F.dense(t, A)`` or, without
          forming n × m matrices, ``G = F.at(t, [Y])`` and ``G.right(0, V)``, ``G.left(0, U)``,
          ``G.galerkin(0, U, V)``), the time, a :class:`~lowrank_ode.LowRank` with orthonormal
          factors and the step size.

    Returns
    -------
    callable
    """
    from ..integrators import Integrator
    from ..solve import make_integrator

    if isinstance(method_or_step, Integrator):
        return method_or_step.step
    if isinstance(method_or_step, type) and issubclass(method_or_step, Integrator):
        return method_or_step().step
    if isinstance(method_or_step, str):
        return make_integrator(method_or_step).step
    if callable(method_or_step):
        return method_or_step
    raise TypeError(
        "expected an Integrator, a method name or a function step(F, t, Y, h) -> LowRank, "
        f"got {type(method_or_step).__name__}"
    )


def _name(method_or_step: Any) -> str:
    from ..integrators import Integrator

    if isinstance(method_or_step, Integrator):
        return f"{type(method_or_step).__name__} ({method_or_step.name or 'unnamed'})"
    if isinstance(method_or_step, type):
        return method_or_step.__name__
    if isinstance(method_or_step, str):
        return f"method {method_or_step!r}"
    return getattr(method_or_step, "__qualname__", None) or repr(method_or_step)


def _as_lowrank(Z: Any, who: str) -> LowRank:
    if isinstance(Z, (list, tuple)) and len(Z) == 1 and isinstance(Z[0], LowRank):
        Z = Z[0]
    if not isinstance(Z, LowRank):
        raise TypeError(f"{who} must return a LowRank, got {type(Z).__name__}")
    return Z


def _all_finite(Y: LowRank) -> bool:
    return all(bool(np.all(np.isfinite(to_numpy(A)))) for A in (Y.U, Y.S, Y.V))


def integrate(
    method_or_step: Any,
    F: Any,
    Y0: LowRank,
    t_span: tuple[float, float],
    h: float,
) -> LowRank:
    """Integrate from ``t_span[0]`` to ``t_span[1]`` with step ``h`` (last step shortened).

    The time grid is that of :func:`~lowrank_ode.solve` (``t_k = t₀ + k h``), so for a library
    integrator the result equals ``solve(F, Y0, t_span, h, method=...).y[-1]``.

    Parameters
    ----------
    method_or_step : Integrator, str or callable
        See :func:`as_step`.
    F : Problem or callable
        Right-hand side, handed to the step unchanged.
    Y0 : LowRank
        Initial value.
    t_span : (t0, tf)
    h : float
        Step size > 0.

    Returns
    -------
    LowRank
        The final state.

    Raises
    ------
    TypeError
        When a step does not return a :class:`~lowrank_ode.LowRank`.
    NumericalBreakdown
        When a library integrator's step produces NaN or inf (raised by
        :meth:`Integrator.step <lowrank_ode.integrators.Integrator.step>`).
    FloatingPointError
        When a plain step function produces NaN or inf.
    """
    step = as_step(method_or_step)
    t0, tf = (float(s) for s in t_span)
    if not (h > 0 and tf > t0):
        raise ValueError(f"need h > 0 and t0 < tf, got h={h!r}, t_span={t_span!r}")
    n_steps = step_count(t0, tf, h)
    Y, t = Y0, t0
    for k in range(n_steps):
        hk = min(h, tf - t) if k == n_steps - 1 else h
        Y = _as_lowrank(step(F, t, Y, hk), _name(method_or_step))
        if not _all_finite(Y):
            raise FloatingPointError(
                f"{_name(method_or_step)} produced NaN/inf at step {k + 1} (t = {t + hk:.6g})"
            )
        t = t0 + (k + 1) * h if k < n_steps - 1 else tf
    return Y


def check_step_invariants(
    step: Any,
    F: Any,
    Y: LowRank,
    h: float,
    *,
    t: float = 0.0,
    orth_tol: float = ORTH_TOL,
    rank: int | None = None,
    check_dtype: bool = True,
    check_pure: bool = True,
) -> LowRank:
    """Assert the invariants of one step ``Y₁ = step(F, t, Y, h)``.

    Checked, in this order, each with its own message:

    1. the step returns a :class:`~lowrank_ode.LowRank` (a one-block list is accepted);
    2. its shape is ``Y.shape`` and its core is square, of rank 1 ≤ r₁ ≤ min(n, m), and equal
       to ``rank`` when given (pass ``rank=Y.rank`` for a fixed-rank method);
    3. U₁, S₁, V₁ are finite;
    4. U₁ and V₁ have orthonormal columns: ‖UᴴU − I‖₂, ‖VᴴV − I‖₂ ≤ ``orth_tol``;
    5. the dtype is that of ``Y`` (``check_dtype``);
    6. the input ``Y`` was not modified (``check_pure``): steps must be pure functions.

    Parameters
    ----------
    step : Integrator, str or callable
        See :func:`as_step`.
    F : Problem or callable
        Right-hand side.
    Y : LowRank
        Point to step from (orthonormal factors).
    h : float
        Step size.
    t : float
        Start time.
    orth_tol : float
        Orthonormality tolerance (use about 1e-5 for float32).
    rank : int, optional
        Expected rank of the result.
    check_dtype, check_pure : bool
        Enable checks 5 and 6.

    Returns
    -------
    LowRank
        The result of the step.

    Raises
    ------
    AssertionError
        When an invariant is violated, or the step raises (chained to the original error).
    """
    name = _name(step)
    fn = as_step(step)
    before = [to_numpy(A).copy() for A in (Y.U, Y.S, Y.V)] if check_pure else []
    try:
        out = fn(F, t, Y, h)
    except Exception as exc:  # an exception is a failed step: report it as such
        raise AssertionError(
            f"{name}: step(F, t={t:g}, Y, h={h:g}) raised {type(exc).__name__}: {exc}"
        ) from exc
    where = f"{name}: after one step (t={t:g}, h={h:g}, Y of shape {Y.shape}, rank {Y.rank})"
    try:
        Z = _as_lowrank(out, "the step")
    except TypeError as exc:
        raise AssertionError(f"{where}: {exc}") from None
    n, m = Y.shape
    if Z.shape != (n, m):
        raise AssertionError(f"{where}: result has shape {Z.shape}, expected {(n, m)}")
    ku, kv = (int(s) for s in Z.S.shape)
    if ku != kv:
        raise AssertionError(f"{where}: core S has shape {(ku, kv)}, expected a square core")
    if not 1 <= ku <= min(n, m):
        raise AssertionError(f"{where}: rank {ku} is outside [1, min(n, m) = {min(n, m)}]")
    if rank is not None and ku != rank:
        raise AssertionError(f"{where}: rank {ku}, expected rank {rank}")
    for part, A in (("U", Z.U), ("S", Z.S), ("V", Z.V)):
        if not bool(np.all(np.isfinite(to_numpy(A)))):
            raise AssertionError(f"{where}: {part} contains NaN or inf")
    try:
        check_orthonormal(Z, orth_tol)
    except AssertionError as exc:
        raise AssertionError(
            f"{where}: {exc} — the factors of a step must be orthonormal (QR or SVD them)"
        ) from None
    if check_dtype and Z.dtype != Y.dtype:
        raise AssertionError(f"{where}: dtype {Z.dtype}, expected {Y.dtype}")
    if check_pure:
        for part, A0, A in zip("USV", before, (Y.U, Y.S, Y.V), strict=True):
            if not np.array_equal(A0, to_numpy(A)):
                raise AssertionError(
                    f"{where}: the step modified its input Y.{part} in place (steps must be pure)"
                )
    return Z


#: Default smallest singular values of :func:`check_robustness`: 1e-2, 1e-3, …, 1e-11.
ROBUSTNESS_SIGMAS: tuple[float, ...] = tuple(10.0**-k for k in range(2, 12))


def check_robustness(
    method_or_step: Any,
    *,
    sigmas: Sequence[float] = ROBUSTNESS_SIGMAS,
    n: int = 20,
    rank: int = 4,
    h: float = 0.05,
    t_end: float = 0.5,
    eps: float = 1e-4,
    max_ratio: float = 3.0,
    max_error: float | None = 0.1,
    seed: int = 3,
) -> list[float]:
    """Assert that the error does not depend on the smallest singular value σ_min.

    For each σ_min in ``sigmas`` a KLW problem (:class:`~lowrank_ode.problems.KLWProblem`,
    F = Ȧ(t), A(t) = e^{tW₁} eᵗ D e^{tW₂}ᵀ) is set up with

        D = diag(σ₁, …, σ_r, ε, ε/2, ε/4, …),   σ₁ … σ_r geometric from 1 down to σ_min,

    and integrated from Y0 = diag(σ₁, …, σ_r) (the rank-r part of A(0), so σ_r(Y0) = σ_min
    exactly) to ``t_end`` with step ``h``, and compared with A(``t_end``).  The tail of size
    ``eps`` makes the problem genuinely not of rank r; it is orthogonal to the rank-r part, so
    it does not lift σ_r the way a random full-rank perturbation of size ε would (that floors
    σ_r(Y0) near ε and hides every σ_min below it).  A robust integrator (projector splitting,
    BUG and its variants: Kieri–Lubich–Walach 2016, Ceruti–Lubich 2022) has an error
    O(ε + h) with constants independent of σ_min, so

    * max/min of the errors over ``sigmas`` must be ≤ ``max_ratio``, and
    * every error must be ≤ ``max_error`` (catches a step that does nothing), unless None.

    An integrator that inverts S (the Koch–Lubich factor ODEs, ``"direct"``) needs h ≲ σ_min
    and fails: its error grows by orders of magnitude, or it breaks down.

    Parameters
    ----------
    method_or_step : Integrator, str or callable
        See :func:`as_step`; a plain function receives the ``KLWProblem``.
    sigmas : sequence of float
        Values of σ_min (default 1e-2 … 1e-11).
    n, rank, h, t_end, eps, seed
        The test problem and the step size.
    max_ratio : float
        Bound on max(error) / min(error).
    max_error : float or None
        Bound on every error.  The default fits the default problem: the initial error
        ‖Y0 − A(0)‖_F is 1.15 ε = 1.15e-4; with RK4 sub-steps KSL, Strang, BUG, rank-adaptive
        and midpoint BUG end with 1.2e-4 … 1.9e-4 and parallel BUG with up to 7.3e-4; BUG with
        explicit-Euler sub-steps ends with 2.9e-2; a step that does nothing with 0.84.

    Returns
    -------
    list of float
        The errors ‖Y_N − A(t_end)‖_F, one per σ_min.

    Raises
    ------
    AssertionError
        When the ratio or an error is too large, or the integration breaks down (an exception
        or NaN/inf), with the errors per σ_min in the message.
    """
    from ..problems import KLWProblem

    if len(sigmas) < 2:
        raise ValueError(f"need at least two values of σ_min, got {len(sigmas)}")
    errors: list[float] = []
    notes: list[str] = []
    if not 1 <= rank < n:
        raise ValueError(f"need 1 <= rank < n, got rank={rank}, n={n}")
    eye = np.eye(n)
    for s in sigmas:
        top = np.geomspace(1.0, float(s), rank)
        sv = np.concatenate([top, eps * 2.0 ** -np.arange(n - rank)])
        P = KLWProblem(n, singular_values=sv, seed=seed)
        Y0 = LowRank(eye[:, :rank].copy(), np.diag(top), eye[:, :rank].copy())
        try:
            with np.errstate(all="ignore"):  # overflow is the expected failure mode
                Y = integrate(method_or_step, P, Y0, (0.0, t_end), h)
            e = dense_error(Y, P.exact(t_end))
            errors.append(e if math.isfinite(e) else math.inf)
            notes.append(f"{e:.2e}")
        except Exception as exc:  # a breakdown is a failure of robustness
            errors.append(math.inf)
            msg = str(exc).splitlines()[0] if str(exc) else ""
            msg = msg if len(msg) <= 80 else msg[:79] + "…"
            notes.append(f"broke down ({type(exc).__name__}: {msg})")
    table = ", ".join(f"σ_min={s:.0e}: {v}" for s, v in zip(sigmas, notes, strict=True))
    setup = f"KLW problem n={n}, r={rank}, ε={eps:g}, h={h:g}, T={t_end:g}"
    lo, hi = min(errors), max(errors)
    ratio = hi / lo if lo > 0 else math.inf
    if not ratio <= max_ratio:
        raise AssertionError(
            f"{_name(method_or_step)} is not robust to small singular values: the error "
            f"depends on σ_min, max/min = {ratio:.3g} > {max_ratio:g} ({setup}; errors {table})"
        )
    if max_error is not None and not hi <= max_error:
        raise AssertionError(
            f"{_name(method_or_step)}: error {hi:.3e} > max_error {max_error:g} on the "
            f"{setup} (errors {table}); does the step move the solution at all?"
        )
    return errors


def check_integrator_order(
    method_or_step: Any,
    expected: float,
    *,
    tol: float = 0.15,
    hs: Sequence[float] = (0.1, 0.05, 0.025, 0.0125),
    F: Any = None,
    Y0: LowRank | None = None,
    t_end: float = 0.5,
    reference: Any = None,
) -> tuple[float, list[float]]:
    """Assert the empirical order of an integrator: :func:`check_order` on :func:`integrate`.

    Without ``F`` the problem is the one of the library's own order tests: the KLW matrix of
    size 24 with six singular values 2⁻¹ … 2⁻⁶, a full-rank perturbation ε = 1e-2 and
    Y0 = its best rank-6 approximation, T = ``t_end``.  The error is measured against the
    solution of the *projected* ODE dY/dt = P(Y)Ȧ(t) (computed with the Koch–Lubich factor
    ODEs and RK4 at h = 5e-3, well conditioned here), so the low-rank modelling error
    (about ε) cannot mask the order.

    Parameters
    ----------
    method_or_step : Integrator, str or callable
        See :func:`as_step`.
    expected : float
        Expected order; passes when ``|slope − expected| ≤ tol``.
    tol : float
    hs : sequence of float
        At least four step sizes.
    F, Y0, reference
        Your own problem, initial value and dense reference at ``t_end`` (all three or none).
    t_end : float

    Returns
    -------
    (slope, errors)
    """
    if F is None:
        if Y0 is not None or reference is not None:
            raise ValueError("give F, Y0 and reference together, or none of them")
        F, Y0, reference = _projected_klw(float(t_end))
    elif Y0 is None or reference is None:
        raise ValueError("with your own F, give Y0 and the dense reference solution too")
    try:
        return check_order(
            lambda h: integrate(method_or_step, F, Y0, (0.0, t_end), h),
            reference,
            list(hs),
            expected=expected,
            tol=tol,
        )
    except AssertionError as exc:
        raise AssertionError(f"{_name(method_or_step)}: {exc}") from None


_PROJECTED_CACHE: dict[float, tuple[Any, LowRank, np.ndarray]] = {}


def _projected_klw(T: float) -> tuple[Any, LowRank, np.ndarray]:
    if T not in _PROJECTED_CACHE:
        from ..integrators import Direct
        from ..problems import KLWProblem

        P = KLWProblem(24, singular_values=2.0 ** -np.arange(1, 7), eps=1e-2, seed=1)
        Y0 = P.initial(6)
        ref = integrate(Direct(), P, Y0, (0.0, T), 5e-3).to_dense()
        _PROJECTED_CACHE[T] = (P, Y0, np.asarray(ref))
    return _PROJECTED_CACHE[T]
