"""Public testing tools: hypothesis strategies and checkers for integrators (and layers).

Import them to property-test your own integrator the way the library tests its own::

    from hypothesis import given
    from lowrank_ode.testing import lowrank_points, check_orthonormal, empirical_order

Every strategy draws *parameters* (sizes, rank, decay, dtype, seed) and builds arrays through a
seeded :class:`numpy.random.Generator`, never raw float entries, so failures shrink to readable
cases.  Every checker raises :class:`AssertionError` with a message that says what was expected
and what was measured.

Overview
--------
Strategies (need ``hypothesis``) and the deterministic builders behind them:

* :func:`point_specs` / :func:`make_point` / :func:`lowrank_points` — random rank-r points;
* :func:`tangent_vectors`, :func:`tangent_pairs` / :func:`make_tangent_vector` — tangent vectors
  P(Y)Z at a point (:func:`~lowrank_ode.tangent_project`);
* :func:`problems`, :func:`problem_specs` / :func:`make_problem` — the built-in problems
  (KLW, Lyapunov, Schrödinger) with random parameters and an initial value.

Checkers for *your own* integrator — an :class:`~lowrank_ode.integrators.Integrator` instance,
a method name, or a plain function ``step(F, t, Y, h) -> LowRank`` (see :func:`as_step`):

* :func:`check_step_invariants` — shapes, rank, dtype, finiteness, orthonormal factors, purity;
* :func:`check_order` (with :func:`integrate`) and :func:`check_integrator_order` — empirical
  order of convergence;
* :func:`check_robustness` — error independent of the smallest singular value;
* :func:`check_exactness`, :func:`check_descent`, :func:`check_orthonormal`.

And for a layer of :mod:`lowrank_ode.nn` (or any object with the same interface):
:func:`check_layer_gradients` (finite differences and Taylor remainders).

The package has three modules — :mod:`~lowrank_ode.testing.strategies`,
:mod:`~lowrank_ode.testing.integrators` and :mod:`~lowrank_ode.testing.layers` — whose public
names are all importable from ``lowrank_ode.testing`` itself.  The library never imports this
package: it is for test-suites (``hypothesis`` is needed by the strategies only).
"""

from ..lowrank import dense_error
from .integrators import (
    ROBUSTNESS_SIGMAS,
    StepFunction,
    as_step,
    check_descent,
    check_exactness,
    check_in_tangent_space,
    check_integrator_order,
    check_order,
    check_orthonormal,
    check_robustness,
    check_step_invariants,
    empirical_order,
    integrate,
)
from .layers import check_layer_gradients
from .strategies import (
    DTYPES as DTYPES,
)
from .strategies import (
    PROBLEM_KINDS as PROBLEM_KINDS,
)
from .strategies import (
    PointSpec,
    ProblemCase,
    ProblemSpec,
    lowrank_points,
    make_point,
    make_problem,
    make_tangent_vector,
    point_specs,
    polynomial_rank_r_problem,
    problem_specs,
    problems,
    tangent_pairs,
    tangent_vectors,
)

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
    # tangent vectors and built-in problems (strategies and builders)
    "make_tangent_vector",
    "tangent_vectors",
    "tangent_pairs",
    "check_in_tangent_space",
    "ProblemSpec",
    "ProblemCase",
    "make_problem",
    "problem_specs",
    "problems",
    # checkers for user integrators and layers
    "StepFunction",
    "as_step",
    "integrate",
    "check_step_invariants",
    "check_robustness",
    "check_integrator_order",
    "check_layer_gradients",
    "ROBUSTNESS_SIGMAS",
]
