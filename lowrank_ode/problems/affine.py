"""Affine problems F(Y) = Σ_k A_k Y B_kᴴ + C and their reduced sub-problem operators.

For such an F the K-, L- and S-equations of the integrators are affine too, with operators that
depend only on the fixed bases of the sub-step (Lubich & Oseledets 2014, Sec. 3; Ceruti &
Lubich 2022, Sec. 3), so they are formed once per sub-step instead of once per stage:

* K-step, basis V₀:  K' = Σ_k A_k K (V₀ᴴB_kV₀)ᴴ + C V₀;
* L-step, basis U₀:  L' = Σ_k B_k L (U₀ᴴA_kU₀)ᴴ + Cᴴ U₀;
* S-step, bases U, V:  S' = Σ_k (UᴴA_kU) S (VᴴB_kV)ᴴ + Uᴴ C V  (r × r only).

A stage of the K-step then costs one application of each A_k to an n × r matrix plus r × r
products; a stage of the S-step costs O(r³).  The bases have orthonormal columns (V₀ᴴV₀ = I),
which removes the identity factors of the terms with B_k = I (K-step) or A_k = I (L-step).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .._array_api import array_namespace, ct
from ..lowrank import LowRank
from ..substep import SubProblem
from .base import MatrixODE, ReducedRHS

__all__ = ["AffineMatrixODE", "SylvesterProblem"]

#: A linear operator on thin matrices, X ↦ A X (a new array); ``None`` is the identity.
Operator = Callable[[Any], Any] | None


class AffineMatrixODE(MatrixODE):
    """Base of the affine autonomous problems F(Y) = Σ_k A_k Y B_kᴴ + C.

    A subclass declares its structure with :meth:`terms` (the pairs (A_k, B_k), each a callable
    X ↦ A_k X on thin matrices or ``None`` for the identity) and :meth:`forcing` (the products
    V ↦ C V and U ↦ Cᴴ U, or ``None``), and inherits :meth:`reduced`, which hands the
    integrators the sub-problem operators of the module docstring once per sub-step.  It keeps
    (or writes) its own :meth:`~MatrixODE.right`, :meth:`~MatrixODE.left` and
    :meth:`~MatrixODE.dense` for the generic path; the defaults here are built from the terms.

    Examples
    --------
    F(Y) = −Y + C with a rank-1 C:

    >>> import numpy as np
    >>> from lowrank_ode.problems import AffineMatrixODE
    >>> from lowrank_ode.substep import SubProblem
    >>> class Relax(AffineMatrixODE):
    ...     def __init__(self, c1, c2):
    ...         self.c1, self.c2, self.shape = c1, c2, (c1.shape[0], c2.shape[0])
    ...     def terms(self):
    ...         return [(lambda X: -X, None)]
    ...     def forcing(self):
    ...         return (lambda V: self.c1 @ (self.c2.T @ V), lambda U: self.c2 @ (self.c1.T @ U))
    >>> P = Relax(np.ones((6, 1)), np.ones((5, 1)))
    >>> V0 = np.linalg.qr(np.ones((5, 2)) + np.eye(5, 2))[0]
    >>> f = P.reduced(SubProblem.K, [(None, V0)])
    >>> K = np.zeros((6, 2))
    >>> bool(np.allclose(f(0.0, (K,))[0], P.dense(0.0, K @ V0.T) @ V0))
    True
    """

    linear = True

    def terms(self) -> Sequence[tuple[Operator, Operator]]:
        """The pairs (A_k, B_k) of F(Y) = Σ_k A_k Y B_kᴴ + C (``None``: the identity)."""
        raise NotImplementedError

    def forcing(self) -> tuple[Callable[[Any], Any], Callable[[Any], Any]] | None:
        """``(V ↦ C V, U ↦ Cᴴ U)`` for the constant part C, or ``None`` when C = 0."""
        return None

    # ------------------------------------------------------------------ generic path
    def dense(self, t: float, A: Any) -> Any:
        """Σ_k A_k Y B_kᴴ + C on a dense Y (C from ``C I``)."""
        xp = array_namespace(A)
        out = None
        for Ak, Bk in self.terms():
            Z = A if Ak is None else Ak(A)
            Z = Z if Bk is None else ct(Bk(ct(Z, xp=xp)), xp=xp)  # Z B_kᴴ = (B_k Zᴴ)ᴴ
            out = Z if out is None else out + Z
        c = self.forcing()
        if c is not None:
            out = out + c[0](xp.eye(A.shape[1], dtype=A.dtype))
        return out

    def right(self, t: float, Y: LowRank, V: Any) -> Any:
        """F(Y) V = Σ_k A_k X S (B_k Z)ᴴ V + C V for Y = X S Zᴴ."""
        xp = array_namespace(V)
        X, S, Z = Y.U, Y.S, Y.V
        out = None
        for Ak, Bk in self.terms():
            W = ct(Z if Bk is None else Bk(Z), xp=xp) @ V
            T = X @ (S @ W)
            T = T if Ak is None else Ak(T)
            out = T if out is None else out + T
        c = self.forcing()
        return out if c is None else out + c[0](V)

    def left(self, t: float, Y: LowRank, U: Any) -> Any:
        """F(Y)ᴴ U = Σ_k B_k Z Sᴴ (A_k X)ᴴ U + Cᴴ U for Y = X S Zᴴ."""
        xp = array_namespace(U)
        X, S, Z = Y.U, Y.S, Y.V
        out = None
        for Ak, Bk in self.terms():
            W = ct(X if Ak is None else Ak(X), xp=xp) @ U
            T = Z @ (ct(S, xp=xp) @ W)
            T = T if Bk is None else Bk(T)
            out = T if out is None else out + T
        c = self.forcing()
        return out if c is None else out + c[1](U)

    # ------------------------------------------------------------------ reduced path
    def reduced(self, key: SubProblem, basis: Sequence[tuple[Any, Any]]) -> ReducedRHS | None:
        """The K-, L- or S-equation with its operators formed once (see the module docstring).

        One call of the returned ``f`` is one evaluation (:attr:`Integrator.n_evals
        <lowrank_ode.integrators.Integrator.n_evals>` counts it like one ``at``).
        """
        if len(basis) != 1:
            return None
        P, Q = basis[0]
        terms = list(self.terms())
        c = self.forcing()
        if key == SubProblem.K and P is None:  # K' = Σ A_k K (Qᴴ B_k Q)ᴴ + C Q
            return _factor_rhs(terms, Q, None if c is None else c[0](Q))
        if key == SubProblem.L and P is None:  # the K-step of Fᴴ: (A_k, B_k) → (B_k, A_k)
            swapped = [(Bk, Ak) for Ak, Bk in terms]
            return _factor_rhs(swapped, Q, None if c is None else c[1](Q))
        if key in (SubProblem.S, SubProblem.S_BACKWARD) and P is not None:
            return _core_rhs(terms, P, Q, None if c is None else ct(P, xp=_xp(P)) @ c[0](Q))
        return None


def _xp(A: Any) -> Any:
    return array_namespace(A)


def _project(Op: Operator, W: Any) -> Any:
    """Wᴴ Op W (r × r); ``None`` for the identity (Wᴴ W = I)."""
    return None if Op is None else ct(W, xp=_xp(W)) @ Op(W)


def _add(M: Any, N: Any) -> Any:
    return N if M is None else M + N


def _factor_rhs(terms: list[tuple[Operator, Operator]], W: Any, c: Any) -> ReducedRHS:
    """X' = Σ_k A_k X (Wᴴ B_k W)ᴴ + c: the K-step (the L-step with the terms swapped)."""
    xp = _xp(W)
    left_only: list[Operator] = []  # A_k with B_k = I: X ↦ A_k X
    right_sum = None  # Σ (Wᴴ B_k W)ᴴ over the terms with A_k = I
    mixed: list[tuple[Callable[[Any], Any], Any]] = []
    for Ak, Bk in terms:
        M = _project(Bk, W)
        Mh = None if M is None else ct(M, xp=xp)
        if Mh is None:
            left_only.append(Ak)
        elif Ak is None:
            right_sum = _add(right_sum, Mh)
        else:
            mixed.append((Ak, Mh))
    n_identity = sum(A is None for A in left_only)
    if n_identity:  # Σ over the terms Y itself: a multiple of the identity, folded in
        ident = n_identity * xp.eye(W.shape[1], dtype=W.dtype)
        right_sum = _add(right_sum, ident)
        left_only = [A for A in left_only if A is not None]

    def f(t: float, X: tuple) -> tuple:
        (K,) = X
        out = None
        if right_sum is not None:
            out = K @ right_sum
        for Ak in left_only:
            out = Ak(K) if out is None else _iadd(out, Ak(K))
        for Ak, Mh in mixed:
            out = Ak(K @ Mh) if out is None else _iadd(out, Ak(K @ Mh))
        if c is not None:
            out = xp.zeros_like(K) + c if out is None else _iadd(out, c)
        return (out,)

    return f


def _core_rhs(terms: list[tuple[Operator, Operator]], U: Any, V: Any, c: Any) -> ReducedRHS:
    """S' = Σ_k (UᴴA_kU) S (VᴴB_kV)ᴴ + Uᴴ C V, all products r × r."""
    xp = _xp(U)
    left_sum = None  # Σ UᴴA_kU over B_k = I
    right_sum = None  # Σ (VᴴB_kV)ᴴ over A_k = I
    mixed = []
    for Ak, Bk in terms:
        A_, B_ = _project(Ak, U), _project(Bk, V)
        if B_ is None and A_ is None:
            left_sum = _add(left_sum, xp.eye(U.shape[1], dtype=U.dtype))
        elif B_ is None:
            left_sum = _add(left_sum, A_)
        elif A_ is None:
            right_sum = _add(right_sum, ct(B_, xp=xp))
        else:
            mixed.append((A_, ct(B_, xp=xp)))

    def f(t: float, X: tuple) -> tuple:
        (S,) = X
        out = None
        if left_sum is not None:
            out = left_sum @ S
        if right_sum is not None:
            out = S @ right_sum if out is None else _iadd(out, S @ right_sum)
        for A_, Bh in mixed:
            out = A_ @ (S @ Bh) if out is None else _iadd(out, A_ @ (S @ Bh))
        if c is not None:
            out = xp.zeros_like(S) + c if out is None else _iadd(out, c)
        return (out,)

    return f


def _iadd(out: Any, X: Any) -> Any:
    """``out + X``, in place when the dtypes allow (``out`` is always a fresh array here)."""
    if out.dtype == X.dtype or array_namespace(out).result_type(out.dtype, X.dtype) == out.dtype:
        out += X
        return out
    return out + X


class SylvesterProblem(AffineMatrixODE):
    r"""F(Y) = A Y + Y Bᴴ + C₁C₂ᴴ with matrices (dense or sparse) or operators A, B.

    Parameters
    ----------
    A : array (n, n), scipy.sparse matrix or callable X ↦ A X
        Left operator.
    B : array (m, m), scipy.sparse matrix or callable X ↦ B X
        Right operator (F contains Y Bᴴ; for a real B that is Y Bᵀ).
    C1, C2 : array, shape (n, c) and (m, c), optional
        Factors of the constant part C = C₁C₂ᴴ (none: C = 0).
    shape : (int, int), optional
        ``(n, m)``; required when A or B is a callable.

    Examples
    --------
    The linear form Ẏ = W₁Y + Y + YW₂ᵀ of the Kieri–Lubich–Walach test (A = W₁ + I, B = W₂):

    >>> import numpy as np
    >>> import lowrank_ode as lo
    >>> from lowrank_ode.problems import KLWProblem, SylvesterProblem
    >>> K = KLWProblem(20, seed=0)
    >>> P = SylvesterProblem(K.W1 + np.eye(20), K.W2)
    >>> sol = lo.solve(P, K.initial(rank=4), (0.0, 0.5), h=0.05, method="bug")
    >>> best = np.linalg.svd(K.exact(0.5), compute_uv=False)[4:]
    >>> error = np.linalg.norm(sol.y[-1].to_dense() - K.exact(0.5))
    >>> bool(error < 1.5 * np.linalg.norm(best))  # close to the best rank-4 error
    True
    """

    def __init__(
        self,
        A: Any,
        B: Any,
        C1: Any = None,
        C2: Any = None,
        shape: tuple[int, int] | None = None,
    ) -> None:
        if (C1 is None) != (C2 is None):
            raise ValueError("give both C1 and C2 or neither")
        if shape is None:
            if callable(A) or callable(B):
                raise ValueError("shape is required when A or B is a callable")
            shape = (int(A.shape[0]), int(B.shape[0]))
        n, m = self.shape = (int(shape[0]), int(shape[1]))
        for name, M, k in (("A", A, n), ("B", B, m)):
            if not callable(M) and tuple(M.shape) != (k, k):
                raise ValueError(f"{name} must have shape ({k}, {k}), got {tuple(M.shape)}")
        if C1 is not None and (C1.shape[0] != n or C2.shape[0] != m or C1.shape[1] != C2.shape[1]):
            raise ValueError(
                f"C1, C2 must have shapes (n={n}, c) and (m={m}, c), got {C1.shape}, {C2.shape}"
            )
        self.A, self.B, self.C1, self.C2 = A, B, C1, C2
        self._ops = (_as_operator(A), _as_operator(B))

    def terms(self) -> list[tuple[Operator, Operator]]:  # noqa: D102
        opA, opB = self._ops
        return [(opA, None), (None, opB)]

    def forcing(self) -> tuple[Callable[[Any], Any], Callable[[Any], Any]] | None:  # noqa: D102
        if self.C1 is None:
            return None
        C1, C2 = self.C1, self.C2
        return (lambda V: C1 @ (ct(C2, xp=_xp(C2)) @ V), lambda U: C2 @ (ct(C1, xp=_xp(C1)) @ U))


def _as_operator(M: Any) -> Callable[[Any], Any]:
    """X ↦ M X for a matrix (dense or scipy.sparse) or a callable."""
    if callable(M):
        return M
    return lambda X: M @ X
