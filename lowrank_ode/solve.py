"""The time loop: ``solve(F, Y0, t_span, h, method=...) -> Solution``."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._array_api import array_namespace
from ._threads import with_threads
from .exceptions import NumericalBreakdown
from .integrators import METHODS, Integrator, get_integrator
from .integrators.base import CountingProblem
from .lowrank import LowRank, orthonormality_error
from .problems.base import Problem, as_problem
from .substep import SubstepSolver
from .truncation import Truncation

__all__ = ["solve", "Solution", "make_integrator", "CountingProblem"]


@dataclass
class Solution:
    """Result of :func:`solve` (a plain record, like scipy's ``OdeResult``).

    Attributes
    ----------
    t : ndarray, shape (n_saved,)
        Times of the saved states.
    y : list of LowRank (or of block lists)
        States at ``t``; ``y[-1]`` is the final one.
    ranks : ndarray, shape (n_saved,) or (n_saved, n_blocks)
        Rank of each saved state.
    n_evals : int
        Number of right-hand-side evaluations (calls of ``F.at``), counted by
        :meth:`Integrator.step <lowrank_ode.integrators.Integrator.step>`.
    n_steps : int
        Number of steps taken (the last one shortened to end at ``tf``).
    method : str
        Name of the integrator.
    integrator : Integrator or None
        The integrator instance that made the steps.
    """

    t: np.ndarray
    y: list[Any]
    ranks: np.ndarray
    n_evals: int
    n_steps: int
    method: str
    integrator: Integrator | None = field(default=None, repr=False)


def make_integrator(
    method: str | Integrator,
    substep: str | SubstepSolver = "rk4",
    rtol: float | None = None,
    atol: float | None = None,
    max_rank: int | None = None,
    min_rank: int = 1,
    norm: str = "fro",
) -> Integrator:
    """Build the integrator named ``method`` with solve()'s truncation options.

    The options ``rtol, atol, max_rank, min_rank, norm`` make a
    :class:`~lowrank_ode.truncation.Truncation`; the name is resolved by
    :func:`lowrank_ode.integrators.get_integrator`.
    """
    if isinstance(method, Integrator):
        given = {
            k: v
            for k, v in (
                ("substep", substep if substep != "rk4" else None),
                ("rtol", rtol),
                ("atol", atol),
                ("max_rank", max_rank),
                ("min_rank", min_rank if min_rank != 1 else None),
                ("norm", norm if norm != "fro" else None),
            )
            if v is not None
        }
        if given:
            raise ValueError(
                f"method is an Integrator instance; configure it directly instead of passing "
                f"{sorted(given)} to solve (got {given})"
            )
        return method
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    cls = METHODS[method.lower()]
    trunc = None
    if (
        rtol is not None
        or atol is not None
        or max_rank is not None
        or min_rank != 1
        or (norm != "fro")
    ):
        if not cls.accepts_truncation:
            raise ValueError(
                f"method {method!r} has fixed rank: rtol/atol/max_rank/min_rank/norm apply to "
                f"{sorted(k for k, c in METHODS.items() if c.accepts_truncation)}"
            )
        trunc = Truncation(rtol=rtol, atol=atol, min_rank=min_rank, max_rank=max_rank, norm=norm)
    return get_integrator(method, substep, trunc)


def _check_point(Y0: Any, shape: tuple[int, int] | None) -> list[Any]:
    blocks = (
        [Y0] if isinstance(Y0, LowRank) else list(Y0) if isinstance(Y0, (list, tuple)) else None
    )
    if blocks is None or not blocks:
        raise TypeError(f"Y0 must be a LowRank or a list of blocks, got {type(Y0).__name__}")
    for k, b in enumerate(blocks):
        name = "Y0" if isinstance(Y0, LowRank) else f"Y0[{k}]"
        xp = array_namespace(b.S if isinstance(b, LowRank) else b)
        arrays = (("U", b.U), ("S", b.S), ("V", b.V)) if isinstance(b, LowRank) else (("", b),)
        for part, A in arrays:
            if not bool(xp.all(xp.isfinite(A))):
                raise ValueError(f"{name}{'.' + part if part else ''} contains NaN or inf values")
        if isinstance(b, LowRank):
            single = b.dtype in (xp.float32, xp.complex64)
            tol = ORTH_TOL_INITIAL_SINGLE if single else ORTH_TOL_INITIAL
            for part, A in (("U", b.U), ("V", b.V)):
                e = orthonormality_error(A)
                if not e <= tol:
                    raise ValueError(
                        f"{name}.{part} must have orthonormal columns: ‖{part}ᴴ{part} − I‖ = "
                        f"{e:.2e} > {tol:g} (use LowRank.orthonormalize())"
                    )
    if shape is not None and isinstance(Y0, LowRank) and tuple(Y0.shape) != tuple(shape):
        raise ValueError(f"Y0 has shape {Y0.shape} but the problem has shape {tuple(shape)}")
    return blocks


#: ‖UᴴU − I‖₂ accepted for the factors of an initial value (float64/complex128): QR or SVD
#: factors of any size in this library's range are orthonormal to ~1e-14, so 1e-10 only rejects
#: factors that are not orthonormal at all, while a defect this small cannot bias a step.
ORTH_TOL_INITIAL = 1e-10
#: The same for float32/complex64, whose QR factors are orthonormal to ~1e-7 (machine ε · √n).
ORTH_TOL_INITIAL_SINGLE = 1e-6
#: (tf − t0)/h is rounded before the ceiling: 0.7/0.1 = 7.000000000000001 must give 7 steps, not
#: 8 with a last step of length ~1e-16.  1e-10 is far above that rounding (a few ε · n_steps) and
#: far below a genuine fraction of a step.
STEP_COUNT_SLACK = 1e-10


def step_count(t0: float, tf: float, h: float) -> int:
    """Number of steps of size ``h`` over ``[t0, tf]`` (the last one shortened), at least one."""
    return max(1, math.ceil((tf - t0) / h - STEP_COUNT_SLACK))


def _ranks(blocks: list[Any]) -> list[int]:
    return [b.rank for b in blocks if isinstance(b, LowRank)]


@with_threads
def solve(
    F: Problem | Callable[[float, Any], Any],
    Y0: LowRank | Sequence[Any],
    t_span: tuple[float, float],
    h: float,
    method: str | Integrator = "bug",
    substep: str | SubstepSolver = "rk4",
    rtol: float | None = None,
    atol: float | None = None,
    max_rank: int | None = None,
    min_rank: int = 1,
    norm: str = "fro",
    save_every: int = 1,
    progress: bool = False,
    callback: Callable[[float, Any], None] | None = None,
    max_steps: int | None = 10**6,
) -> Solution:
    """Integrate dY/dt = F(t, Y) on the low-rank manifold from ``Y0`` over ``t_span``.

    Parameters
    ----------
    F : Problem or callable ``f(t, Y_dense) -> array (n, m)``
        Right-hand side.  A :class:`~lowrank_ode.problems.MatrixODE` with factored products
        never forms an ``n × m`` matrix; a plain callable is evaluated densely.
    Y0 : LowRank, shape (n, m), or list of blocks
        Initial value with orthonormal U, V.
    t_span : (t0, tf)
    h : float
        Step size (> 0); the last step is shortened to end at ``tf``.
    method : {"full", "direct", "ksl", "strang", "bug", "rabug", "parallel", "midpoint", \
"galerkin"}
        A name of :data:`lowrank_ode.integrators.METHODS` (the method guide of the
        documentation compares them), or an :class:`~lowrank_ode.integrators.Integrator`
        instance.
    substep : {"rk4", "euler", "exact"} or SubstepSolver
        Solver of the K-, L-, S-equations.
    rtol, atol, max_rank, min_rank, norm
        Truncation rule of the rank-adaptive methods (see
        :class:`~lowrank_ode.truncation.Truncation`).  Without any, the methods that augment
        truncate back to the current rank.
    save_every : int
        Keep every ``save_every``-th state (the final state is always kept).
    progress : bool
        Show a tqdm progress bar.
    callback : callable ``callback(t, Y)``, optional
        Called after every step.
    threads : "auto" or int, keyword-only
        BLAS thread policy while integrating (:mod:`lowrank_ode._threads`): ``"auto"`` keeps
        NumPy's BLAS on all cores and every other BLAS pool on one thread; ``N`` puts NumPy's
        on ``N`` threads.
    max_steps : int or None
        Refuse (``ValueError``, before the first step) a ``t_span`` and ``h`` that need more
        steps than this (default 10⁶); ``None`` for no limit.

    Returns
    -------
    Solution

    Raises
    ------
    ValueError
        On bad shapes, non-orthonormal factors, non-finite data, ``h ≤ 0``, more than
        ``max_steps`` steps, negative tolerances, unknown methods.
    TypeError
        When ``F`` is neither a problem nor a callable, or ``Y0`` is not a point.
    NumericalBreakdown
        When a step produces NaN/inf or a factorization fails
        (:class:`~lowrank_ode.exceptions.NumericalBreakdown`, an :class:`ArithmeticError`).

    Examples
    --------
    The heat equation in Lyapunov form, factored (no 100 × 100 matrix is formed), integrated by
    the rank-adaptive BUG integrator with an absolute tolerance:

    >>> import numpy as np
    >>> import lowrank_ode as lo
    >>> from lowrank_ode.problems import LyapunovProblem
    >>> P = LyapunovProblem(100, 100)
    >>> Y0 = P.initial(rank=5)
    >>> sol = lo.solve(P, Y0, (0.0, 0.1), h=0.01, method="rabug", atol=1e-8, max_rank=20)
    >>> sol.n_steps, sol.ranks[-1]
    (10, 6)
    >>> error = np.linalg.norm(sol.y[-1].to_dense() - P.exact(0.1, Y0))
    >>> bool(error < 1e-7)
    True

    A plain callable works with every method (evaluated densely):

    >>> sol = lo.solve(lambda t, Y: -Y, Y0, (0.0, 1.0), h=0.1, method="bug")
    >>> round(sol.y[-1].norm() / Y0.norm(), 4)  # e^{-1}
    0.3679
    """
    Fp = as_problem(F)
    integ = make_integrator(method, substep, rtol, atol, max_rank, min_rank, norm)
    integ.check_problem(Fp)
    blocks = _check_point(Y0, getattr(Fp, "shape", None))
    if free := [i for i, b in enumerate(blocks) if not isinstance(b, LowRank)]:
        if not integ.supports_free_blocks:
            raise ValueError(f"method {integ.name!r} does not support dense blocks (got {free})")
    try:
        t0, tf = (float(s) for s in t_span)
    except (TypeError, ValueError):
        raise ValueError(f"t_span must be a pair of numbers (t0, tf), got {t_span!r}") from None
    if not (math.isfinite(t0) and math.isfinite(tf)) or tf <= t0:
        raise ValueError(f"t_span must satisfy t0 < tf (finite), got {t_span!r}")
    if isinstance(h, bool) or not isinstance(h, numbers.Real) or not (math.isfinite(h) and h > 0):
        raise ValueError(f"h must be a finite number > 0, got {h!r}")
    if not isinstance(save_every, (int, np.integer)) or save_every < 1:
        raise ValueError(f"save_every must be a positive integer, got {save_every!r}")
    if max_steps is not None and (
        isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1
    ):
        raise ValueError(f"max_steps must be a positive integer or None, got {max_steps!r}")
    n_steps = _step_count(t0, tf, float(h), max_steps, t_span)
    single = isinstance(Y0, LowRank)
    evals_before = integ.n_evals
    ts, ys, ranks = [t0], [Y0], [_ranks(blocks)]
    t, Y = t0, blocks
    steps = range(n_steps)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=f"{integ.name}", unit="step")
    for k in steps:
        hk = min(h, tf - t) if k == n_steps - 1 else h
        try:
            Y = integ.step(Fp, t, Y, hk)
        except NumericalBreakdown as err:
            raise NumericalBreakdown(f"step {k + 1} of {n_steps}: {err}") from err
        t = t0 + (k + 1) * h if k < n_steps - 1 else tf
        if callback is not None:
            callback(t, Y[0] if single else Y)
        if (k + 1) % save_every == 0 or k == n_steps - 1:
            ts.append(t)
            ys.append(Y[0] if single else Y)
            ranks.append(_ranks(Y))
    r = np.asarray(ranks)
    return Solution(
        t=np.asarray(ts),
        y=ys,
        ranks=r[:, 0] if single else r,
        n_evals=integ.n_evals - evals_before,
        n_steps=n_steps,
        method=integ.name,
        integrator=integ,
    )


def _step_count(t0: float, tf: float, h: float, max_steps: int | None, t_span: Any) -> int:
    """Number of steps of size ``h`` over ``[t0, tf]``, checked before any work is done."""
    length = tf - t0
    if not math.isfinite(length):
        raise ValueError(f"t_span is too long: tf − t0 overflows, got t_span={t_span!r}")
    ratio = length / h
    if not math.isfinite(ratio):
        raise ValueError(
            f"h={h!r} is too small for t_span={t_span!r}: the number of steps overflows"
        )
    if max_steps is not None and ratio - STEP_COUNT_SLACK > max_steps:
        raise ValueError(
            f"t_span={t_span!r} with h={h!r} needs {ratio:.4g} steps > "
            f"max_steps={max_steps}; increase h or pass a larger max_steps"
        )
    if max(abs(t0), abs(tf)) + h == max(abs(t0), abs(tf)):
        raise ValueError(
            f"h={h!r} is below the resolution of the times in t_span={t_span!r}: "
            "t + h == t, the time would not advance"
        )
    return step_count(t0, tf, h)
