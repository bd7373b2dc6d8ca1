"""The time loop: ``solve(F, Y0, t_span, h, method=...) -> Solution``."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._array_api import array_namespace
from .exceptions import NumericalBreakdown
from .integrators import METHODS, Integrator
from .lowrank import LowRank, orthonormality_error
from .problems.base import Evaluation, Problem, as_problem
from .substep import Exact, SubstepSolver
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
        Number of right-hand-side evaluations (calls of ``F.at``; one network forward/backward
        pass each in DLRT).
    n_steps : int
    method : str
    """

    t: np.ndarray
    y: list[Any]
    ranks: np.ndarray
    n_evals: int
    n_steps: int
    method: str
    integrator: Integrator | None = field(default=None, repr=False)


class CountingProblem(Problem):
    """Wraps a problem and counts its evaluations ``at(t, blocks)``."""

    def __init__(self, F: Problem) -> None:
        self.F = F
        self.linear = F.linear
        self.count = 0

    def at(self, t: float, blocks: Sequence[Any]) -> Evaluation:  # noqa: D102
        self.count += 1
        return self.F.at(t, blocks)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.F, name)


def make_integrator(
    method: str | Integrator,
    substep: str | SubstepSolver = "rk4",
    rtol: float | None = None,
    atol: float | None = None,
    max_rank: int | None = None,
    min_rank: int = 1,
    norm: str = "fro",
) -> Integrator:
    """Build the integrator named ``method`` with its sub-step solver and truncation rule."""
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
        if not cls.rank_adaptive and cls.name != "full":
            raise ValueError(
                f"method {method!r} has fixed rank: rtol/atol/max_rank/min_rank/norm apply to "
                f"{sorted(k for k, c in METHODS.items() if c.rank_adaptive)}"
            )
        trunc = Truncation(rtol=rtol, atol=atol, min_rank=min_rank, max_rank=max_rank, norm=norm)
    return cls(substep=substep, truncation=trunc)


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
            tol = 1e-6 if b.dtype in (xp.float32, xp.complex64) else 1e-10
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


def _ranks(blocks: list[Any]) -> list[int]:
    return [b.rank for b in blocks if isinstance(b, LowRank)]


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
    method : {"full", "direct", "ksl", "strang", "bug", "rabug", "parallel", "midpoint"}
        Or an :class:`~lowrank_ode.integrators.Integrator` instance.
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
    """
    Fp = CountingProblem(as_problem(F))
    integ = make_integrator(method, substep, rtol, atol, max_rank, min_rank, norm)
    if isinstance(integ.substep, Exact) and not Fp.linear:
        raise ValueError(
            f"substep='exact' needs an affine autonomous problem (F.linear = True); "
            f"{type(Fp.F).__name__} has linear = False"
        )
    if isinstance(integ.substep, Exact) and not integ.affine_substeps:
        raise ValueError(
            f"substep='exact' cannot be used with method {integ.name!r}: its sub-problem is "
            "nonlinear even for a linear F"
        )
    blocks = _check_point(Y0, getattr(Fp.F, "shape", None))
    if free := [i for i, b in enumerate(blocks) if not isinstance(b, LowRank)]:
        if not integ.supports_free_blocks:
            raise ValueError(f"method {integ.name!r} does not support dense blocks (got {free})")
    try:
        t0, tf = (float(s) for s in t_span)
    except (TypeError, ValueError):
        raise ValueError(f"t_span must be a pair of numbers (t0, tf), got {t_span!r}") from None
    if not (math.isfinite(t0) and math.isfinite(tf)) or tf <= t0:
        raise ValueError(f"t_span must satisfy t0 < tf (finite), got {t_span!r}")
    if (
        isinstance(h, bool)
        or not isinstance(h, numbers.Real)
        or not (math.isfinite(h) and h > 0)
    ):
        raise ValueError(f"h must be a finite number > 0, got {h!r}")
    if not isinstance(save_every, (int, np.integer)) or save_every < 1:
        raise ValueError(f"save_every must be a positive integer, got {save_every!r}")
    if max_steps is not None and (
        isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1
    ):
        raise ValueError(f"max_steps must be a positive integer or None, got {max_steps!r}")
    n_steps = _step_count(t0, tf, float(h), max_steps, t_span)
    single = isinstance(Y0, LowRank)
    ts, ys, ranks = [t0], [Y0], [_ranks(blocks)]
    t, Y = t0, blocks
    steps = range(n_steps)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=f"{integ.name}", unit="step")
    for k in steps:
        hk = min(h, tf - t) if k == n_steps - 1 else h
        Y = integ.step_blocks(Fp, t, Y, hk)
        t = t0 + (k + 1) * h if k < n_steps - 1 else tf
        _check_step(Y, t, k, integ.name)
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
        n_evals=Fp.count,
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
    if max_steps is not None and ratio - 1e-10 > max_steps:
        raise ValueError(
            f"t_span={t_span!r} with h={h!r} needs {ratio:.4g} steps > "
            f"max_steps={max_steps}; increase h or pass a larger max_steps"
        )
    if max(abs(t0), abs(tf)) + h == max(abs(t0), abs(tf)):
        raise ValueError(
            f"h={h!r} is below the resolution of the times in t_span={t_span!r}: "
            "t + h == t, the time would not advance"
        )
    return max(1, math.ceil(ratio - 1e-10))


def _check_step(Y: list[Any], t: float, k: int, name: str) -> None:
    for b in Y:
        arrays = (b.U, b.S, b.V) if isinstance(b, LowRank) else (b,)
        for A in arrays:
            xp = array_namespace(A)
            if not bool(xp.all(xp.isfinite(A))):
                raise NumericalBreakdown(
                    f"non-finite values (NaN or inf) after step {k + 1} (t = {t:.6g}) of method "
                    f"{name!r}: F returned NaN/inf or the method broke down"
                )
