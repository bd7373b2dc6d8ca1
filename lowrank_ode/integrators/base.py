"""Base class of the integrators and the sub-steps they share (K-, L- and Galerkin S-steps).

The stepping contract (as in ``scipy.integrate.OdeSolver``: a public ``step`` around a private
``_step_impl``):

* :meth:`Integrator.step` is the one entry point — :func:`~lowrank_ode.solve` and the DLRT
  trainer both call it.  It validates the arguments (cheaply: types, block structure, the
  sub-step solver against the problem, a finite ``h``; nothing that costs a factorization),
  counts the evaluations of ``F`` in :attr:`Integrator.n_evals`, and checks that the result is
  finite (:class:`~lowrank_ode.exceptions.NumericalBreakdown` otherwise).
* A subclass declares ``name``, ``method_order`` (the order with exact sub-flows; ``None`` when
  the method has no splitting error, so that the sub-step solver alone sets the order),
  ``rank_adaptive``, ``accepts_truncation`` and ``supports_free_blocks``, and implements
  ``_step_impl(F, t, Y, h) -> list``: one step from ``t`` to ``t + h``.  ``Y`` is a list of
  blocks — :class:`~lowrank_ode.LowRank` with orthonormal U, V, or plain arrays for dense
  ("free") blocks — and ``F`` a :class:`~lowrank_ode.problems.Problem`.  The step is pure: it
  returns new blocks and never modifies its inputs.
* ``_step_impl`` evaluates the right-hand side only through ``F.at(t, blocks)`` and the thin
  products of the returned evaluation, so that no ``n × m`` matrix is formed, and integrates
  the K-, L- and S-equations with ``self.substep``, handing over ``f0`` when the evaluation at
  the initial value is already known (one evaluation serves K and L), the sub-problem
  (:class:`~lowrank_ode.substep.SubProblem`) and the ``basis`` of each state entry (see
  :mod:`lowrank_ode.substep`).

Notation (all papers): Y = U S Vᴴ, K = U S, L = V Sᴴ.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._array_api import array_namespace, ct, eye_like, qr_pos
from ..exceptions import NonFiniteStep
from ..lowrank import LowRank
from ..problems.base import Evaluation, Problem, as_problem
from ..substep import Exact, SubProblem, SubstepSolver, get_substep
from ..truncation import Truncation

__all__ = ["Integrator", "CountingProblem"]


def lowrank_indices(Y: Sequence[Any]) -> list[int]:
    """Indices of the :class:`LowRank` blocks of a point."""
    return [i for i, b in enumerate(Y) if isinstance(b, LowRank)]


def free_indices(Y: Sequence[Any]) -> list[int]:
    """Indices of the dense (free) blocks of a point."""
    return [i for i, b in enumerate(Y) if not isinstance(b, LowRank)]


class CountingProblem(Problem):
    """Wraps a problem and counts its evaluations ``at(t, blocks)`` in ``count``.

    :meth:`Integrator.step` hands its ``_step_impl`` the problem wrapped in one of these; the
    count of the step is added to :attr:`Integrator.n_evals`.
    """

    def __init__(self, F: Problem) -> None:
        self.F = F
        self.linear = F.linear
        self.count = 0

    def at(self, t: float, blocks: Sequence[Any]) -> Evaluation:  # noqa: D102
        self.count += 1
        return self.F.at(t, blocks)

    def reduced(self, key: SubProblem, basis: Sequence[tuple[Any, Any]]) -> Any:  # noqa: D102
        f = self.F.reduced(key, basis)
        if f is None:
            return None

        def counted(t: float, X: tuple) -> tuple:
            self.count += 1  # one stage of the reduced sub-problem is one evaluation
            return f(t, X)

        counted.uncounted = f  # type: ignore[attr-defined]  # for a stage already counted
        return counted

    def __getattr__(self, name: str) -> Any:
        return getattr(self.F, name)


class _Order:
    """``Integrator.order``: the method's order given its sub-step solver.

    On an instance: ``min(method_order, substep.order)`` (an exact sub-step leaves the method's
    order; a method without splitting error — ``method_order = None`` — takes the sub-step's;
    ``None`` when both are exact).  On the class: the same with the default RK4 sub-step.
    """

    def __get__(self, obj: Any, cls: type) -> int | None:
        mo = cls.method_order
        so = obj.substep.order if obj is not None else 4  # the default sub-step: RK4
        if so is None:
            return mo
        return so if mo is None else min(mo, so)


def _first_impl(obj: Integrator) -> Any:
    """The first ``_step_impl`` along the MRO that is not a legacy ``step_blocks`` override."""
    for klass in type(obj).__mro__:
        impl = klass.__dict__.get("_step_impl")
        if impl is not None and not getattr(impl, "_legacy_step_blocks", False):
            return impl.__get__(obj, type(obj))
    raise NotImplementedError(f"{type(obj).__name__} implements no _step_impl")


class Integrator:
    """One step of a dynamical low-rank integrator; see the module docstring for the contract.

    Parameters
    ----------
    substep : {"rk4", "euler", "exact"} or SubstepSolver
        Solver for the K-, L- and S-equations.
    truncation : Truncation, optional
        Rank selection of the methods that truncate (``accepts_truncation``: the rank-adaptive,
        parallel and midpoint BUG, and the full-rank reference).  ``None``: truncate back to
        the rank of the input (fixed rank).
    reduced : bool, default True
        Integrate the K-, L- and S-equations with the reduced operators of the problem when it
        offers them (:meth:`Problem.reduced <lowrank_ode.problems.Problem.reduced>`: formed once
        per sub-step); ``False`` always takes the generic path through ``F.at``.  Both give the
        same result up to rounding and the same :attr:`n_evals`.

    Attributes
    ----------
    order : int or None
        The method's order given its sub-step solver (see ``method_order``).
    n_evals : int
        Evaluations of the right-hand side made by :meth:`step` so far (one network
        forward/backward pass each in DLRT; one stage of a reduced sub-problem counts as one
        evaluation, as the call of ``F.at`` it replaces).
    """

    name: str = ""
    #: order with exact sub-flows; None: no splitting error (the sub-step sets the order)
    method_order: int | None = 1
    order = _Order()
    rank_adaptive: bool = False
    #: takes a ``truncation`` (the rank-adaptive methods, and "full step then truncate")
    accepts_truncation: bool = False
    supports_free_blocks: bool = False
    affine_substeps: bool = True  # sub-problems of an affine F are affine (Exact applies)

    def __init__(
        self,
        substep: str | SubstepSolver = "rk4",
        truncation: Truncation | None = None,
        *,
        reduced: bool = True,
    ) -> None:
        self.substep = get_substep(substep)
        self.reduced = bool(reduced)
        if truncation is not None and not isinstance(truncation, Truncation):
            raise TypeError(f"truncation must be a Truncation or None, got {truncation!r}")
        if truncation is not None and not self.accepts_truncation:
            raise ValueError(f"method {self.name!r} has fixed rank: it takes no truncation")
        self.truncation = truncation
        self.n_evals = 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        legacy = cls.__dict__.get("step_blocks")
        if legacy is not None and "_step_impl" not in cls.__dict__:
            warnings.warn(
                f"{cls.__name__} overrides step_blocks; implement _step_impl instead "
                "(step_blocks is deprecated and will be removed in the next release)",
                DeprecationWarning,
                stacklevel=2,
            )

            def _step_impl(self: Integrator, F: Problem, t: float, Y: list[Any], h: float):
                return legacy(self, F, t, Y, h)

            _step_impl._legacy_step_blocks = True  # type: ignore[attr-defined]
            cls._step_impl = _step_impl  # type: ignore[method-assign]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(substep={self.substep!r}, truncation={self.truncation!r})"

    # ------------------------------------------------------------------ public
    def step(self, F: Any, t: float, Y: LowRank | Sequence[Any], h: float) -> Any:
        """One step from ``t`` to ``t + h``.

        Parameters
        ----------
        F : Problem or callable ``f(t, Y_dense) -> array``
            Right-hand side.
        t : float
            Start time.
        Y : LowRank or list of blocks
            The point (orthonormal U, V; :func:`~lowrank_ode.solve` checks that of the initial
            value, and every step keeps it).
        h : float
            Step size (finite; may be negative).

        Returns
        -------
        LowRank or list of blocks
            Of the same kind as ``Y``.

        Raises
        ------
        ValueError, TypeError
            On a bad argument.
        NumericalBreakdown
            When the step produced NaN or inf.
        """
        F = as_problem(F)
        single = isinstance(Y, LowRank)
        blocks = [Y] if single else self._check_blocks(Y)
        if isinstance(h, bool) or not isinstance(h, numbers.Real) or not math.isfinite(h):
            raise ValueError(f"h must be a finite number, got {h!r}")
        self.check_problem(F)
        counted = CountingProblem(F)
        try:
            out = self._step_impl(counted, t, blocks, h)
        finally:
            self.n_evals += counted.count
        _check_finite_step(out, self.name, t, h)
        return out[0] if single else out

    def check_problem(self, F: Problem) -> None:
        """Raise ``ValueError`` when the sub-step solver cannot integrate this problem."""
        if isinstance(self.substep, Exact):
            if not F.linear:
                inner = F.F if isinstance(F, CountingProblem) else F
                raise ValueError(
                    f"substep='exact' needs an affine autonomous problem (F.linear = True); "
                    f"{type(inner).__name__} has linear = False"
                )
            if not self.affine_substeps:
                raise ValueError(
                    f"substep='exact' cannot be used with method {self.name!r}: its "
                    "sub-problem is nonlinear even for a linear F"
                )

    def _check_blocks(self, Y: Any) -> list[Any]:
        if not isinstance(Y, (list, tuple)) or not Y:
            raise TypeError(f"Y must be a LowRank or a non-empty list of blocks, got {Y!r}")
        blocks = list(Y)
        if not self.supports_free_blocks:
            if free := free_indices(blocks):
                raise ValueError(f"method {self.name!r} does not support dense blocks (got {free})")
        return blocks

    def _step_impl(self, F: Problem, t: float, Y: list[Any], h: float) -> list[Any]:
        """One step on a list of blocks (see the contract); implemented by subclasses."""
        raise NotImplementedError

    def step_blocks(self, F: Problem, t: float, Y: list[Any], h: float) -> list[Any]:
        """Deprecated: call :meth:`step` (or implement ``_step_impl`` in a subclass)."""
        warnings.warn(
            "Integrator.step_blocks is deprecated and will be removed in the next release; "
            "call step() (which takes a list of blocks too) or implement _step_impl",
            DeprecationWarning,
            stacklevel=2,
        )
        return _first_impl(self)(as_problem(F), t, list(Y), h)

    # ------------------------------------------------------------------ shared sub-steps
    def _substep(
        self,
        F: Problem,
        t: float,
        Y: list[Any],
        h: float,
        G0: Evaluation | None,
        *,
        key: SubProblem,
        with_free: bool,
        factor: Any,
        product: Any,
        X0: list[Any],
        basis: list[tuple[Any, Any]],
    ) -> tuple[list[Any], list[Any]]:
        """Integrate one sub-problem for every low-rank block (and the dense ones if asked).

        ``factor(j, X_j)`` is the point (a :class:`LowRank`) of low-rank block ``j`` for state
        ``X_j``; ``product(G, i, j)`` the thin product of evaluation ``G`` that drives it.
        Returns ``(X₁ of the low-rank blocks, θ₁ of the dense blocks)``.
        """
        idx, fidx = lowrank_indices(Y), (free_indices(Y) if with_free else [])
        n = len(idx)

        def point(X: tuple) -> list[Any]:
            pts = list(Y)
            for j, i in enumerate(idx):
                pts[i] = factor(j, X[j])
            for j, i in enumerate(fidx):
                pts[i] = X[n + j]
            return pts

        def contract(G: Evaluation) -> tuple:
            return tuple(product(G, i, j) for j, i in enumerate(idx)) + tuple(
                G.full(i) for i in fidx
            )

        def f(s: float, X: tuple) -> tuple:
            return contract(F.at(s, point(X)))

        if len(Y) == 1 and n == 1:  # one matrix: the same, without the loops over blocks

            def f(s: float, X: tuple) -> tuple:
                return (product(F.at(s, [factor(0, X[0])]), 0, 0),)

        X0t = tuple(X0) + tuple(Y[i] for i in fidx)
        basis_t = tuple(basis) + ((None, None),) * len(fidx)
        fr = F.reduced(key, basis_t) if self.reduced and len(idx) == len(Y) else None
        if fr is not None:  # reduced operators, formed once for all stages
            f = fr
            reuse = getattr(fr, "uncounted", None)  # the counted evaluation G0 at X0, reduced
            f0 = None if G0 is None else (reuse(t, X0t) if reuse else contract(G0))
        else:
            f0 = None if G0 is None else contract(G0)
        X1 = self.substep(f, t, X0t, h, f0=f0, key=key, basis=basis_t)
        return list(X1[:n]), list(X1[n:])

    def k_step(
        self,
        F: Problem,
        t: float,
        Y: list[Any],
        h: float,
        G0: Evaluation | None,
        with_free: bool = False,
    ) -> tuple[list[Any], list[Any]]:
        """K-step  K' = F(t, K V₀ᴴ) V₀,  K(t) = U₀S₀  (V₀ fixed), for every low-rank block.

        With ``with_free`` the dense blocks evolve with it (θ' = F_θ); returns ``(K₁, θ₁)``.
        """
        idx = lowrank_indices(Y)
        V0 = [Y[i].V for i in idx]
        K0 = [Y[i].U @ Y[i].S for i in idx]
        eye = _Identities(K0)  # the core I of K V₀ᴴ, formed once per sub-step
        return self._substep(
            F,
            t,
            Y,
            h,
            G0,
            key=SubProblem.K,
            with_free=with_free,
            factor=lambda j, K: LowRank(K, eye(j, K), V0[j]),
            product=lambda G, i, j: G.right(i, V0[j]),
            X0=K0,
            basis=[(None, V) for V in V0],
        )

    def l_step(
        self,
        F: Problem,
        t: float,
        Y: list[Any],
        h: float,
        G0: Evaluation | None,
        with_free: bool = False,
    ) -> tuple[list[Any], list[Any]]:
        """L-step  L' = F(t, U₀ Lᴴ)ᴴ U₀,  L(t) = V₀S₀ᴴ  (U₀ fixed), for every low-rank block.

        With ``with_free`` the dense blocks evolve with it (θ' = F_θ); returns ``(L₁, θ₁)``
        (θ₁ empty without), like :meth:`k_step`.
        """
        idx = lowrank_indices(Y)
        U0 = [Y[i].U for i in idx]
        L0 = [Y[i].V @ ct(Y[i].S, xp=_xp(Y[i].S)) for i in idx]
        eye = _Identities(L0)  # the core I of U₀ Lᴴ, formed once per sub-step
        L1, free = self._substep(
            F,
            t,
            Y,
            h,
            G0,
            key=SubProblem.L,
            with_free=with_free,
            factor=lambda j, L: LowRank(U0[j], eye(j, L), L),
            product=lambda G, i, j: G.left(i, U0[j]),
            X0=L0,
            basis=[(None, U) for U in U0],
        )
        return L1, free

    def galerkin_step(
        self,
        F: Problem,
        t: float,
        Y: list[Any],
        U: list[Any],
        V: list[Any],
        S0: list[Any],
        h: float,
        G0: Evaluation | None = None,
        with_free: bool = True,
        key: SubProblem = SubProblem.S,
    ) -> tuple[list[Any], list[Any]]:
        """Galerkin S-step  S' = Uᴴ F(t, U S Vᴴ) V  in fixed bases U, V from ``S0``.

        Dense blocks evolve with it (θ' = F_θ) when ``with_free``.  ``h < 0`` integrates
        backward in time (the S-step of projector splitting).  Returns ``(S₁, θ₁)``.
        """
        return self._substep(
            F,
            t,
            Y,
            h,
            G0,
            key=key,
            with_free=with_free,
            factor=lambda j, S: LowRank(U[j], S, V[j]),
            product=lambda G, i, j: G.galerkin(i, U[j], V[j]),
            X0=list(S0),
            basis=list(zip(U, V, strict=True)),
        )

    # ------------------------------------------------------------------ helpers
    def truncate(self, Y: LowRank, rank: int) -> LowRank:
        """Truncate an augmented factorization by ``self.truncation``, or to ``rank`` if None."""
        if self.truncation is None:
            return Y.truncate(rank=min(rank, Y.rank))
        return Y.truncate(self.truncation)


def _xp(A: Any) -> Any:
    return array_namespace(A)


class _Identities:
    """``eye(j, X)``: the identity core of block ``j`` for a stage value ``X``, kept per block
    (one per sub-step instead of one per stage; a new one only if X changes width or dtype)."""

    def __init__(self, X0: list[Any]) -> None:
        self.eyes = [eye_like(X.shape[1], X, xp=_xp(X)) for X in X0]

    def __call__(self, j: int, X: Any) -> Any:
        eye = self.eyes[j]
        if eye.dtype != X.dtype or eye.shape[0] != X.shape[1]:
            eye = self.eyes[j] = eye_like(X.shape[1], X, xp=_xp(X))
        return eye


def orth(A: Any) -> Any:
    """Orthonormal basis of the range of ``A`` (QR with positive diagonal; min(n, k) columns)."""
    Q, _ = qr_pos(A, xp=array_namespace(A))
    return Q


def change_core(U1: Any, U0: Any, S0: Any, V1: Any, V0: Any) -> Any:
    """(U₁ᴴU₀) S₀ (V₁ᴴV₀)ᴴ — the initial value of the Galerkin S-step in the new bases."""
    xp = array_namespace(U1, U0, S0)
    M = ct(U1, xp=xp) @ U0
    N = ct(V1, xp=xp) @ V0
    return M @ S0 @ ct(N, xp=xp)


#: Rank-revealing augmentation: a column ``a_j`` of ``[A | B]`` whose distance to the span of the
#: columns before it (``|R_jj|`` of the Householder QR) is at most
#: ``AUGMENT_RTOL · max(n, k) · eps · ‖a_j‖`` is numerically dependent and dropped.
AUGMENT_RTOL = 10.0


def augment(A: Any, B: Any) -> Any:
    """orth([A | B]): orthonormal basis of the span of both (at most n columns), rank-revealing.

    The Householder QR of ``[A | B]`` is kept as it is when every column is numerically
    independent of the ones before it (the full-rank case, bit-identical to a plain QR).  A
    column ``a_j`` with ``|R_jj| ≤ AUGMENT_RTOL · max(n, k) · eps · ‖a_j‖`` lies in the span of
    the columns before it up to round-off, and QR would complete the basis there with a
    direction fixed by rounding errors.  Such columns are dropped and the QR of the remaining
    ones recomputed, so that the basis (and every step built on it) depends continuously on
    ``A`` and ``B``.
    """
    xp = array_namespace(A, B)
    M = xp.concat([A, B], axis=1)
    eps = float(xp.finfo(M.dtype).eps)  # finfo of a complex dtype is its real part's
    while True:
        Q, R = qr_pos(M, xp=xp)
        n, k = M.shape
        if k == 0 or n == 0:
            return Q
        d = xp.abs(xp.linalg.diagonal(R))
        lead = R[:, : d.shape[0]]  # ‖a_j‖ = ‖R[:, j]‖ (Q orthonormal), a small matrix
        with np.errstate(over="ignore"):  # an overflow is caught and redone just below
            norms = xp.linalg.vector_norm(lead, axis=0)
        if not bool(xp.all(xp.isfinite(norms))):  # huge entries: the same norms, scaled
            top = xp.max(xp.abs(lead), axis=0)
            top = xp.where(top > 0, top, xp.ones_like(top))
            norms = top * xp.linalg.vector_norm(lead / top[None, :], axis=0)
            d = d / top
            norms = norms / top
        small = d <= (AUGMENT_RTOL * max(n, k) * eps) * norms
        if not bool(xp.any(small)):
            return Q
        keep = [j for j in range(k) if j >= d.shape[0] or not bool(small[j])]
        if not keep:  # every column is zero: the span is {0}
            return Q[:, :0]
        M = xp.take(M, xp.asarray(keep, dtype=xp.int64), axis=1)


def _check_finite_step(Y: list[Any], name: str, t: float, h: float) -> None:
    """Raise :class:`NumericalBreakdown` when a block of the step's result holds NaN or inf."""
    for b in Y:
        for A in (b.U, b.S, b.V) if isinstance(b, LowRank) else (b,):
            xp = array_namespace(A)
            if not bool(xp.all(xp.isfinite(A))):
                raise NonFiniteStep(
                    f"non-finite values (NaN or inf) after a step of method {name!r} from "
                    f"t = {t:.6g} with h = {h:.6g}: F returned NaN/inf or the method broke down"
                )
