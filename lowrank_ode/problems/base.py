"""Right-hand sides dY/dt = F(t, Y) in the factored form the integrators use.

The integrators never ask for F(t, Y) as an ``n × m`` matrix.  They *evaluate* the problem once
at a point, ``G = F.at(t, blocks)``, and then ask the evaluation ``G`` for the thin products

* ``G.right(i, V)``       = F_i(t, Y) V          (n × k)  — the K-step,
* ``G.left(i, U)``        = F_i(t, Y)ᴴ U         (m × k)  — the L-step,
* ``G.galerkin(i, U, V)`` = Uᴴ F_i(t, Y) V       (k × k)  — the S-step,
* ``G.full(i)``           = F_i(t, Y)            (dense; only for "free" dense blocks).

One evaluation is one right-hand-side call: a neural network does one forward/backward pass per
``at`` and answers all products from the cached activations, and a problem with a factored
structure (Lyapunov, Schrödinger) answers them in O((n + m) r²) work.

A point is a list of *blocks*: :class:`~lowrank_ode.LowRank` factorizations (the outer factors may
be non-orthonormal, e.g. ``K V₀ᴴ`` is passed as ``LowRank(K, I, V₀)``) and plain arrays for
blocks that are not low-rank (biases and dense layers in DLRT).  A single-matrix problem is the
one-block case; :class:`MatrixODE` is its base class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .._array_api import array_namespace, ct
from ..exceptions import NumericalBreakdown
from ..lowrank import LowRank
from ..substep import SubProblem

#: The right-hand side f(t, X) -> X' of a sub-problem, on a tuple of states (one per block).
ReducedRHS = Callable[[float, tuple], tuple]

__all__ = ["Evaluation", "Problem", "MatrixODE", "FunctionODE", "as_problem"]


class Evaluation:
    """The right-hand side evaluated at one point; answers thin products (see module docstring).

    Subclasses override what they can do cheaply.  The defaults fall back on :meth:`full`.
    """

    def full(self, i: int) -> Any:
        """F_i(t, Y) as a dense array (shape of block ``i``)."""
        raise NotImplementedError

    def right(self, i: int, V: Any) -> Any:
        """F_i(t, Y) V for ``V`` of shape (m, k)."""
        return self.full(i) @ V

    def left(self, i: int, U: Any) -> Any:
        """F_i(t, Y)ᴴ U for ``U`` of shape (n, k)."""
        xp = array_namespace(U)
        return ct(self.full(i), xp=xp) @ U

    def galerkin(self, i: int, U: Any, V: Any) -> Any:
        """Uᴴ F_i(t, Y) V, shape (k_U, k_V)."""
        xp = array_namespace(U, V)
        return ct(U, xp=xp) @ self.right(i, V)


class Problem:
    """Base of all right-hand sides: ``at(t, blocks) -> Evaluation``.

    Attributes
    ----------
    linear : bool
        True when F(t, Y) = 𝓛(Y) + C is affine in Y and independent of t (enables the
        :class:`~lowrank_ode.substep.Exact` sub-step solver).
    """

    linear: bool = False

    def at(self, t: float, blocks: Sequence[Any]) -> Evaluation:
        """Evaluate the right-hand side at time ``t`` and the point ``blocks``."""
        raise NotImplementedError

    def reduced(self, key: SubProblem, basis: Sequence[tuple[Any, Any]]) -> ReducedRHS | None:
        """The right-hand side of one sub-problem, with its reduced operators formed once.

        An integrator asks for it once per sub-step, before the sub-step solver runs; the
        returned ``f(t, X) -> tuple`` must equal the generic sub-problem built from :meth:`at`
        (to rounding) and is called at every stage.  ``key`` and ``basis`` are those handed to
        the sub-step solver (:mod:`lowrank_ode.substep`): one pair ``(P, Q)`` per low-rank
        block, with orthonormal columns, in which the state X stands for P X Qᴴ —

        * ``SubProblem.K``, basis ``(None, V₀)``:  K' = F(t, K V₀ᴴ) V₀;
        * ``SubProblem.L``, basis ``(None, U₀)``:  L' = F(t, U₀ Lᴴ)ᴴ U₀;
        * ``SubProblem.S`` and ``S_BACKWARD``, basis ``(U, V)``:  S' = Uᴴ F(t, U S Vᴴ) V.

        It is asked only for points without dense blocks.  Return ``None`` (the default) to
        let the integrator fall back on the generic path; see
        :class:`~lowrank_ode.problems.AffineMatrixODE` for the affine problems.

        Parameters
        ----------
        key : SubProblem
            Which sub-problem.
        basis : sequence of (P, Q)
            The fixed bases of the sub-problem, one pair per low-rank block.

        Returns
        -------
        callable or None
            ``f(t, X)`` on the tuple of states, or ``None``.

        Examples
        --------
        >>> import numpy as np
        >>> from lowrank_ode.problems import LyapunovProblem
        >>> from lowrank_ode.substep import SubProblem
        >>> P = LyapunovProblem(30)
        >>> Y = P.initial(rank=3)
        >>> f = P.reduced(SubProblem.S, [(Y.U, Y.V)])  # Uᴴ A U, Vᴴ B V, Uᴴ C₁, Vᴴ C₂ once
        >>> (Sdot,) = f(0.0, (Y.S,))  # then r × r products only
        >>> bool(np.allclose(Sdot, P.at(0.0, [Y]).galerkin(0, Y.U, Y.V)))
        True
        """
        return None


class MatrixODE(Problem):
    """A single-matrix problem dY/dt = F(t, Y), Y ∈ ℂ^{n×m}.

    Subclasses implement :meth:`dense` (F on a dense matrix, used by the full-rank reference and
    as fallback) and, to avoid ever forming an ``n × m`` matrix, the factored products
    :meth:`right`, :meth:`left` and :meth:`galerkin`, each receiving the point ``Y`` as a
    :class:`~lowrank_ode.LowRank` (outer factors not necessarily orthonormal).

    Attributes
    ----------
    shape : (int, int)
        ``(n, m)``.

    Examples
    --------
    A problem that only answers the thin products: ``F(t, Y) = A Y`` with a fixed matrix ``A``.

    >>> import numpy as np
    >>> import lowrank_ode as lo
    >>> from lowrank_ode.problems import MatrixODE
    >>> class LeftMultiply(MatrixODE):
    ...     linear = True
    ...     def __init__(self, A, m):
    ...         self.A, self.shape = A, (A.shape[0], m)
    ...     def right(self, t, Y, V):  # F V = A U S (Vᴴ V)
    ...         return self.A @ (Y.U @ (Y.S @ (Y.V.conj().T @ V)))
    ...     def left(self, t, Y, U):  # Fᴴ U = V Sᴴ Uᴴ Aᴴ U
    ...         return Y.V @ (Y.S.conj().T @ (Y.U.conj().T @ (self.A.conj().T @ U)))
    >>> A = -np.eye(30)
    >>> Y0 = lo.LowRank.from_dense(np.outer(np.ones(30), np.ones(20)), rank=1)
    >>> sol = lo.solve(LeftMultiply(A, 20), Y0, (0.0, 1.0), h=0.1, method="bug")
    >>> round(sol.y[-1].norm() / Y0.norm(), 4)  # e^{-1}
    0.3679
    """

    shape: tuple[int, int]

    def dense(self, t: float, A: Any) -> Any:
        """F(t, A) for a dense ``A`` of shape (n, m)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement dense()")

    def right(self, t: float, Y: LowRank, V: Any) -> Any:
        """F(t, Y) V.  Default: forms F(t, Y) densely."""
        return self.dense(t, Y.to_dense()) @ V

    def left(self, t: float, Y: LowRank, U: Any) -> Any:
        """F(t, Y)ᴴ U.  Default: forms F(t, Y) densely."""
        xp = array_namespace(U)
        return ct(self.dense(t, Y.to_dense()), xp=xp) @ U

    def galerkin(self, t: float, Y: LowRank, U: Any, V: Any) -> Any:
        """Uᴴ F(t, Y) V.  Default: ``Uᴴ (F V)``."""
        xp = array_namespace(U, V)
        return ct(U, xp=xp) @ self.right(t, Y, V)

    # the block protocol, one block
    def at(self, t: float, blocks: Sequence[Any]) -> Evaluation:
        """Evaluate at the one-block point ``[Y]``."""
        if len(blocks) != 1:
            raise ValueError(
                f"{type(self).__name__} is a single-matrix problem, got {len(blocks)} blocks"
            )
        return _MatrixEvaluation(self, t, blocks[0])


class _MatrixEvaluation(Evaluation):
    """Evaluation of a :class:`MatrixODE`; forms F densely at most once, only if needed."""

    def __init__(self, problem: MatrixODE, t: float, Y: Any) -> None:
        self.problem, self.t, self.Y = problem, t, Y
        self._F: Any = None

    def full(self, i: int) -> Any:
        if self._F is None:
            Y = self.Y
            self._F = self.problem.dense(self.t, Y.to_dense() if isinstance(Y, LowRank) else Y)
        return self._F

    def right(self, i: int, V: Any) -> Any:
        if self._F is None and type(self.problem).right is not MatrixODE.right:
            return self.problem.right(self.t, self.Y, V)
        return self.full(i) @ V

    def left(self, i: int, U: Any) -> Any:
        if self._F is None and type(self.problem).left is not MatrixODE.left:
            return self.problem.left(self.t, self.Y, U)
        xp = array_namespace(U)
        return ct(self.full(i), xp=xp) @ U

    def galerkin(self, i: int, U: Any, V: Any) -> Any:
        if self._F is None and type(self.problem).galerkin is not MatrixODE.galerkin:
            return self.problem.galerkin(self.t, self.Y, U, V)
        xp = array_namespace(U, V)
        return ct(U, xp=xp) @ self.right(i, V)


class FunctionODE(MatrixODE):
    """Wrap a plain callable ``f(t, Y_dense) -> array (n, m)`` as a :class:`MatrixODE`.

    Every evaluation forms the dense matrix: fine for small problems and for teaching; write a
    :class:`MatrixODE` with factored products for large ones.  Pass ``linear=True`` when
    f(t, Y) = 𝓛(Y) + C is affine and independent of t (enables ``substep="exact"``).
    """

    def __init__(
        self,
        f: Callable[[float, Any], Any],
        shape: tuple[int, int] | None = None,
        linear: bool = False,
    ) -> None:
        self.linear = bool(linear)
        if not callable(f):
            raise TypeError(f"F must be callable or a Problem, got {type(f).__name__}")
        self.f = f
        if shape is not None:
            self.shape = tuple(shape)

    def dense(self, t: float, A: Any) -> Any:
        out = self.f(t, A)
        if getattr(out, "shape", None) != tuple(A.shape):
            raise ValueError(
                f"F(t, Y) must return an array of shape {tuple(A.shape)}, "
                f"got {getattr(out, 'shape', type(out))}"
            )
        xp = array_namespace(out)
        if not bool(xp.all(xp.isfinite(out))):
            raise NumericalBreakdown(f"F(t={t:.6g}, Y) contains NaN or inf values")
        return out


def as_problem(F: Any) -> Problem:
    """Return ``F`` if it is a :class:`Problem`, else wrap a callable in :class:`FunctionODE`."""
    if isinstance(F, Problem):
        return F
    if callable(F):
        return FunctionODE(F)
    raise TypeError(f"F must be a Problem or a callable f(t, Y) -> array, got {type(F).__name__}")
