"""Sub-step solvers: integrate the small K-, L- and S-equations X' = f(t, X) over one step.

A state ``X`` is a tuple of arrays (one per block).  A solver is called as
``solver(f, t0, X0, h, f0=None, key=None, basis=None)`` and returns X(t0 + h); ``h`` may be
negative (the backward S-step of projector splitting).  ``f0`` is f(t0, X0) when the integrator
already has it — the K- and L-steps of BUG share one evaluation at Y₀, so with explicit Euler
one right-hand-side evaluation serves both.  ``key`` names the sub-problem (a
:class:`SubProblem`) and ``basis`` gives, for each state entry X_j, the pair ``(P_j, Q_j)``
(``None`` for an identity) in which it represents the full-space matrix P_j X_j Q_jᴴ — K = U S
lives in (I, V₀), L in (I, U₀), S in (U, V).  Solvers that keep state between steps (the
optimizers of DLRT) use them to carry their state through a change of basis; the solvers here
ignore both.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

import numpy as np

from ._array_api import array_namespace, to_numpy

__all__ = ["SubstepSolver", "SubProblem", "Euler", "RK4", "Exact", "get_substep"]


class SubProblem(str, Enum):
    """The sub-problems an integrator hands to its sub-step solver (the ``key`` of a call).

    A solver that keeps state between steps (momentum, Adam) keeps one state per sub-problem.
    The members compare equal to their values (``SubProblem.K == "K"``), which are also the
    keys under which checkpoints store optimizer state.
    """

    #: K-step, K = U S in the bases (I, V₀)
    K = "K"
    #: L-step, L = V Sᴴ in the bases (I, U₀)
    L = "L"
    #: Galerkin S-step, S in the bases (U, V) — BUG's S-step and the fixed-basis fine-tuning
    S = "S"
    #: backward S-step of projector splitting (integrated from t₁ back to t₀)
    S_BACKWARD = "S-"
    #: the coupled (U, S, V) system of the Koch–Lubich factor ODEs
    USV = "USV"
    #: the dense ODE of the full-rank reference
    FULL = "full"

    __hash__ = str.__hash__  # a member and its value are the same dictionary key

    def __str__(self) -> str:
        return self.value


State = tuple
RHS = Callable[[float, State], State]


def axpy(a: float, X: State, Y: State) -> State:
    """``Y + a X`` for tuples of arrays (one temporary per entry; the same bits)."""
    return tuple(_axpy(a, x, y) for x, y in zip(X, Y, strict=True))


def _axpy(a: float, x: Any, y: Any) -> Any:
    """y + a x as (a x) += y: IEEE addition commutes, so the bits are those of y + a x."""
    z = a * x
    if z.dtype != y.dtype or z.shape != y.shape:
        return y + z  # promotion or broadcasting: out of place
    z += y
    return z


def _rk4_update(x: Any, dt: float, k1: Any, k2: Any, k3: Any, k4: Any) -> Any:
    """x + (dt/6)(k1 + 2k2 + 2k3 + k4), evaluated in that order with two temporaries."""
    if not (x.dtype == k1.dtype == k2.dtype == k3.dtype == k4.dtype):
        return x + (dt / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
    if not (x.shape == k1.shape == k2.shape == k3.shape == k4.shape):
        return x + (dt / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
    acc = 2 * k2
    acc += k1  # k1 + 2k2 (addition commutes: the same bits)
    two = 2 * k3
    acc += two
    acc += k4
    acc *= dt / 6
    acc += x
    return acc


class SubstepSolver:
    """Base class: ``__call__(f, t0, X0, h, f0=None, key=None) -> X(t0 + h)``.

    Attributes
    ----------
    order : int
        Classical order of the solver (``None`` for exact solvers).
    name : str
    """

    order: int | None = None
    name: str = ""

    def __call__(
        self,
        f: RHS,
        t0: float,
        X0: State,
        h: float,
        f0: State | None = None,
        key: Any = None,
        basis: Any = None,
    ) -> State:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Euler(SubstepSolver):
    """Explicit Euler: X₁ = X₀ + h f(t₀, X₀) (one evaluation; one SGD step in DLRT)."""

    order = 1
    name = "euler"

    def __call__(self, f, t0, X0, h, f0=None, key=None, basis=None):  # noqa: D102
        k1 = f(t0, X0) if f0 is None else f0
        return axpy(h, k1, X0)


class RK4(SubstepSolver):
    """Classical fourth-order Runge–Kutta, with ``n_steps`` equal inner steps per call.

    Parameters
    ----------
    n_steps : int
        Number of RK4 steps per sub-step (default 1).
    """

    order = 4
    name = "rk4"

    def __init__(self, n_steps: int = 1) -> None:
        if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
            raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
        self.n_steps = int(n_steps)

    def __repr__(self) -> str:
        return f"RK4(n_steps={self.n_steps})"

    def __call__(self, f, t0, X0, h, f0=None, key=None, basis=None):  # noqa: D102
        dt = h / self.n_steps
        X, t = X0, t0
        for j in range(self.n_steps):
            k1 = f0 if (j == 0 and f0 is not None) else f(t, X)
            k2 = f(t + dt / 2, axpy(dt / 2, k1, X))
            k3 = f(t + dt / 2, axpy(dt / 2, k2, X))
            k4 = f(t + dt, axpy(dt, k3, X))
            X = tuple(
                _rk4_update(x, dt, a, b, c, d)
                for x, a, b, c, d in zip(X, k1, k2, k3, k4, strict=True)
            )
            t = t + dt
        return X


#: Default cap on the unknowns of an :class:`Exact` sub-problem: the probed matrix is d × d and
#: ``expm`` costs O(d³) — at d = 3000, 72 MB and seconds per sub-step, the end of "small".
EXACT_MAX_SIZE = 3000


class Exact(SubstepSolver):
    """Exact flow of an affine autonomous sub-problem X' = 𝓛X + c by the matrix exponential.

    The linear map is assembled by probing f with unit vectors (``d`` evaluations for a state
    of ``d`` entries) and exponentiated with :func:`scipy.linalg.expm` on the host, so this is
    for small sub-problems (``d ≤ max_size``) and NumPy-convertible arrays: teaching, exactness
    and conservation tests.  The problem must declare ``linear = True``.
    """

    order = None
    name = "exact"

    def __init__(self, max_size: int = EXACT_MAX_SIZE) -> None:
        if isinstance(max_size, bool) or not isinstance(max_size, (int, np.integer)):
            raise ValueError(f"max_size must be a positive integer, got {max_size!r}")
        if max_size < 1:
            raise ValueError(f"max_size must be a positive integer, got {max_size!r}")
        self.max_size = int(max_size)

    def __call__(self, f, t0, X0, h, f0=None, key=None, basis=None):  # noqa: D102
        from scipy.linalg import expm

        xp = array_namespace(*X0)
        shapes = [x.shape for x in X0]
        sizes = [int(np.prod(s)) for s in shapes]
        d = sum(sizes)
        if d > self.max_size:
            raise ValueError(
                f"Exact sub-step: the sub-problem has {d} unknowns > max_size={self.max_size}; "
                "use RK4(n_steps=...) for large problems"
            )
        x0 = np.concatenate([to_numpy(x).ravel() for x in X0])

        def unflat(v: np.ndarray) -> State:
            out, k = [], 0
            for s, z, ref in zip(shapes, sizes, X0, strict=True):
                out.append(
                    xp.asarray(np.ascontiguousarray(v[k : k + z].reshape(s)), dtype=ref.dtype)
                )
                k += z
            return tuple(out)

        def unflat_as(v: np.ndarray) -> State:
            out, k = [], 0
            for sh, z in zip(shapes, sizes, strict=True):
                out.append(xp.asarray(np.ascontiguousarray(v[k : k + z].reshape(sh))))
                k += z
            return tuple(out)

        def flat(X: State) -> np.ndarray:
            return np.concatenate([to_numpy(x).ravel() for x in X])

        c = flat(f(t0, unflat(np.zeros(d, dtype=x0.dtype))))
        cols = []
        for j in range(d):
            e = np.zeros(d, dtype=x0.dtype)
            e[j] = 1
            cols.append(flat(f(t0, unflat(e))) - c)
        # like RK4, a complex right-hand side makes a real state complex (never drop Im)
        dtype = np.result_type(x0.dtype, c.dtype, *(col.dtype for col in cols))
        M = np.zeros((d + 1, d + 1), dtype=dtype)
        for j, col in enumerate(cols):
            M[:d, j] = col
        M[:d, d] = c
        x1 = (expm(h * M) @ np.append(x0, 1))[:d]
        if not np.iscomplexobj(M):
            x1 = x1.real  # a real affine flow stays real
        return unflat_as(x1.astype(np.result_type(x0.dtype, dtype), copy=False))


_SOLVERS = {"euler": Euler, "rk4": RK4, "exact": Exact}


def get_substep(substep: str | SubstepSolver) -> SubstepSolver:
    """Resolve ``"euler" | "rk4" | "exact"`` or pass a :class:`SubstepSolver` through."""
    if isinstance(substep, SubstepSolver):
        return substep
    if isinstance(substep, str) and substep.lower() in _SOLVERS:
        return _SOLVERS[substep.lower()]()
    raise ValueError(
        f"substep must be one of {sorted(_SOLVERS)} or a SubstepSolver, got {substep!r}"
    )
