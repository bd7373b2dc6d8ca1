"""Sphinx extension: the method guide's comparison table, generated at build time.

Every row comes from the integrator class itself (``name``, ``order``, ``rank_adaptive``) and
from a small measured run of it (single-threaded, seconds in total):

* the empirical order against the projected ODE (the KLW problem of
  :func:`lowrank_ode.testing.check_integrator_order`);
* robustness to small singular values (:func:`lowrank_ode.testing.check_robustness`: passes or
  not, and the ratio of the largest to the smallest error over σ_min = 1e-2 … 1e-11);
* right-hand-side evaluations per step with RK4 and with Euler sub-steps — with Euler sub-steps
  every evaluation is at a point computed from the previous ones, so the count is the number of
  rounds that must run one after the other (1: every sub-step can run in parallel);
* the widest basis the step works with (columns of U or V handed to the problem), as a multiple
  of the rank r, and the peak of ``tracemalloc`` over one step of the factored heat equation
  (n = m = 2000, r = 10) — the memory columns.

The table is written to ``_generated/method_guide_table.md``, which ``method_guide.md`` includes.
"""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

METHODS = ["direct", "ksl", "strang", "bug", "rabug", "parallel", "midpoint"]
N, RANK = 2000, 10


class _Counter:
    """Wrap a problem's ``at``: count evaluations and record the widest basis handed to them."""

    def __init__(self, problem: Any) -> None:
        self.evaluations = 0
        self.widest = 0
        original = problem.at

        def at(t: float, blocks: Any) -> Any:
            self.evaluations += 1
            return _CountingEvaluation(original(t, blocks), self)

        problem.at = at


class _CountingEvaluation:
    def __init__(self, evaluation: Any, counter: _Counter) -> None:
        self._evaluation = evaluation
        self._counter = counter

    def _seen(self, *bases: Any) -> None:
        for B in bases:
            self._counter.widest = max(self._counter.widest, int(B.shape[1]))

    def right(self, i: int, V: Any) -> Any:
        self._seen(V)
        return self._evaluation.right(i, V)

    def left(self, i: int, U: Any) -> Any:
        self._seen(U)
        return self._evaluation.left(i, U)

    def galerkin(self, i: int, U: Any, V: Any) -> Any:
        self._seen(U, V)
        return self._evaluation.galerkin(i, U, V)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._evaluation, name)


def _one_step(method: str, substep: str) -> tuple[int, int, int]:
    """Evaluations of one step, the widest basis, and the tracemalloc peak in bytes."""
    from lowrank_ode.integrators import METHODS as REGISTRY
    from lowrank_ode.problems import LyapunovProblem

    P = LyapunovProblem(N, N)
    Y0 = P.initial(rank=RANK)
    integrator = REGISTRY[method](substep=substep)
    integrator.step(P, 0.0, Y0, 1e-3)  # warm-up: imports and caches are not counted
    counter = _Counter(P)
    tracemalloc.start()
    integrator.step(P, 0.0, Y0, 1e-3)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return counter.evaluations, counter.widest, peak


def build_table() -> str:
    """The comparison table (MyST markdown), one row per method of :data:`METHODS`."""
    from lowrank_ode import testing
    from lowrank_ode.integrators import METHODS as REGISTRY

    lines = [
        "| method | class | order (declared) | order (measured) "
        "| robust to small σ (max/min error) | rank adaptive | evaluations per step (RK4) "
        "| sequential rounds (Euler) | widest evaluated basis | peak memory per step |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in METHODS:
        cls = REGISTRY[name]
        slope, _ = testing.check_integrator_order(cls(), expected=cls.order, tol=np.inf)
        try:
            with np.errstate(all="ignore"):
                errs = testing.check_robustness(cls())
            robust = f"yes ({max(errs) / min(errs):.1f})"
        except (AssertionError, ArithmeticError, ValueError):
            robust = "**no**"
        evals_rk4, widest, peak = _one_step(name, "rk4")
        evals_euler, _, _ = _one_step(name, "euler")
        lines.append(
            f"| `{name}` | {{class}}`~lowrank_ode.integrators.{cls.__name__}` | {cls.order} "
            f"| {slope:.2f} | {robust} | {'yes' if cls.rank_adaptive else 'no'} | {evals_rk4} "
            f"| {evals_euler} | {widest / RANK:g} r | {peak / 2**20:.1f} MB |"
        )
    return "\n".join(lines) + "\n"


def write_table(app: Any) -> None:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    out = Path(app.srcdir) / "_generated"
    out.mkdir(parents=True, exist_ok=True)
    target = out / "method_guide_table.md"
    text = build_table()
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", write_table)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
