"""A point on the manifold of rank-r matrices, stored as ``Y = U S Vᴴ`` (V, never Vᴴ)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._array_api import array_namespace, ct, eye_like, qr_pos, svd, to_numpy
from ._array_api import check_finite as _finite
from .truncation import Truncation

__all__ = ["LowRank", "orthonormality_error", "dense_error"]


def orthonormality_error(U: Any) -> float:
    """‖UᴴU − I‖₂ (spectral norm) for a matrix with orthonormal columns ``U``."""
    xp = array_namespace(U)
    r = U.shape[1]
    E = ct(U, xp=xp) @ U - eye_like(r, U, xp=xp)
    if r == 0:
        return 0.0
    return float(xp.max(xp.linalg.svdvals(E)))


#: Default ‖UᴴU − I‖₂ of ``LowRank(..., check_orthonormal=True)``: loose enough for factors
#: computed in float32 or passed through a file (≈ 1e-7 · √n), tight enough to reject factors
#: that are not orthonormal.  (:func:`~lowrank_ode.solve` checks initial values by dtype:
#: ``solve.ORTH_TOL_INITIAL``.)
ORTH_TOL = 1e-8


def dense_error(Y: Any, A: Any, relative: bool = False) -> float:
    """‖Y − A‖_F for a :class:`LowRank` or dense ``Y`` and a dense ``A`` (on the host).

    Forms ``Y`` densely: for small problems, errors against reference solutions.  With
    ``relative``, divided by ‖A‖_F.
    """
    import numpy as np

    Yd = to_numpy(Y.to_dense() if isinstance(Y, LowRank) else Y)
    Ad = to_numpy(A)
    e = float(np.linalg.norm(Yd - Ad))
    return e / float(np.linalg.norm(Ad)) if relative else e


class LowRank:
    """Factored matrix ``Y = U S Vᴴ`` of shape ``(n, m)`` and rank ``r``.

    Parameters
    ----------
    U : array, shape (n, r)
        Left factor; orthonormal columns on the manifold (``check_orthonormal=True`` verifies).
    S : array, shape (r, r)
        Core matrix; general (not necessarily diagonal).  Inside augmented integrator steps the
        core may be rectangular, ``(k_U, k_V)``, when the augmented bases are cut at n or m.
    V : array, shape (m, r)
        Right factor (stored untransposed); orthonormal columns on the manifold.
    check_orthonormal : bool
        Verify ‖UᴴU − I‖, ‖VᴴV − I‖ ≤ ``orth_tol`` and raise ``ValueError`` otherwise.
    check_finite : bool
        Verify that no factor holds NaN or inf.
    orth_tol : float
        Tolerance of ``check_orthonormal``.

    Raises
    ------
    ValueError
        When a factor is not 2-D, the shapes do not match, the rank exceeds ``min(n, m)``, or a
        requested check fails.

    Notes
    -----
    Inside the integrators the same container also carries *factored evaluation points* whose
    outer factors are not orthonormal, e.g. ``K V₀ᴴ = LowRank(K, I, V₀)``; the conventions
    (conjugate transposes, V untransposed) are the same.  For complex dtypes ``ᴴ`` is the
    conjugate transpose; for real ones it is the transpose.

    Examples
    --------
    >>> import numpy as np
    >>> from lowrank_ode import LowRank
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((6, 3)) @ rng.standard_normal((3, 5))  # rank 3
    >>> Y = LowRank.from_dense(A, rank=3)
    >>> Y
    LowRank(shape=(6, 5), rank=3, dtype=float64)
    >>> bool(np.allclose(Y.to_dense(), A)), bool(np.allclose(Y.U.T @ Y.U, np.eye(3)))
    (True, True)
    >>> Y.U.shape, Y.S.shape, Y.V.shape  # Y = U S Vᴴ; V is stored, not Vᴴ
    ((6, 3), (3, 3), (5, 3))
    """

    __slots__ = ("U", "S", "V")

    def __init__(
        self,
        U: Any,
        S: Any,
        V: Any,
        *,
        check_orthonormal: bool = False,
        check_finite: bool = False,
        orth_tol: float = ORTH_TOL,
    ) -> None:
        for name, A in (("U", U), ("S", S), ("V", V)):
            if getattr(A, "ndim", None) != 2:
                raise ValueError(
                    f"{name} must be a 2-D array, got shape {getattr(A, 'shape', type(A))}"
                )
        U, S, V = _common_dtype(U, S, V)
        ru, rv = S.shape
        if U.shape[1] != ru:
            raise ValueError(f"U must have shape (n, {ru}) to match S, got {tuple(U.shape)}")
        if V.shape[1] != rv:
            raise ValueError(f"V must have shape (m, {rv}) to match S, got {tuple(V.shape)}")
        if ru > U.shape[0] or rv > V.shape[0]:
            raise ValueError(
                f"rank r={max(ru, rv)} exceeds min(n, m)={min(U.shape[0], V.shape[0])} "
                f"for shape ({U.shape[0]}, {V.shape[0]})"
            )
        self.U, self.S, self.V = U, S, V
        if not (check_finite or check_orthonormal):
            return  # the integrators build one of these per stage: no namespace lookup
        xp = array_namespace(U, S, V)
        if check_finite:
            for name, A in (("U", U), ("S", S), ("V", V)):
                _finite(A, name, xp=xp)
        if check_orthonormal:
            for name, A in (("U", U), ("V", V)):
                e = orthonormality_error(A)
                if not e <= orth_tol:
                    raise ValueError(
                        f"{name} must have orthonormal columns: ‖{name}ᴴ{name} − I‖ = {e:.3e} "
                        f"> {orth_tol:g}"
                    )

    # ------------------------------------------------------------------ properties
    @property
    def shape(self) -> tuple[int, int]:
        """``(n, m)``."""
        return (int(self.U.shape[0]), int(self.V.shape[0]))

    @property
    def rank(self) -> int:
        """The number of columns ``r`` of ``U`` and ``V`` (min of both for a rectangular core)."""
        return int(min(self.S.shape))

    @property
    def dtype(self) -> Any:
        """Dtype of the core ``S``."""
        return self.S.dtype

    @property
    def xp(self) -> Any:
        """The array namespace of the factors."""
        return array_namespace(self.U, self.S, self.V)

    def __repr__(self) -> str:
        return f"LowRank(shape={self.shape}, rank={self.rank}, dtype={self.dtype})"

    # ------------------------------------------------------------------ conversions
    def to_dense(self) -> Any:
        """The ``n × m`` matrix ``U S Vᴴ`` (forms the full matrix: use for small problems only)."""
        xp = self.xp
        return (self.U @ self.S) @ ct(self.V, xp=xp)

    def singular_values(self) -> Any:
        """Singular values of ``Y`` (those of ``S``; exact when U and V are orthonormal).

        Raises ``ValueError`` when ``S`` holds NaN or inf (its singular values are undefined).
        """
        xp = self.xp
        _finite(self.S, "S", xp=xp)
        return xp.linalg.svdvals(self.S)

    def norm(self) -> float:
        """Frobenius norm ‖Y‖_F = ‖S‖_F (for orthonormal U, V); ``ValueError`` on NaN/inf in S."""
        xp = self.xp
        _finite(self.S, "S", xp=xp)
        return float(xp.sqrt(xp.sum(xp.abs(self.S) ** 2)))

    @classmethod
    def from_dense(
        cls,
        A: Any,
        rank: int | None = None,
        rtol: float | None = None,
        atol: float | None = None,
        **truncation: Any,
    ) -> LowRank:
        """Best approximation of ``A`` (truncated SVD) with a fixed ``rank`` or tolerances.

        Parameters
        ----------
        A : array, shape (n, m)
        rank : int, optional
            Keep exactly this rank (``1 ≤ rank ≤ min(n, m)``).
        rtol, atol : float, optional
            Tolerances of :class:`~lowrank_ode.truncation.Truncation` (used when ``rank`` is None).
        **truncation
            ``min_rank``, ``max_rank``, ``norm`` of :class:`Truncation`.
        """
        if getattr(A, "ndim", None) != 2:
            raise ValueError(f"A must be a 2-D array, got shape {getattr(A, 'shape', None)}")
        xp = array_namespace(A)
        A = _as_floating(A, "A", xp=xp)
        _finite(A, "A", xp=xp)
        P, sigma, Q = svd(A, xp=xp)
        k = sigma.shape[0]
        if rank is not None:
            _check_rank(rank, min(A.shape))
            if rtol is not None or atol is not None:
                raise ValueError("give either rank or rtol/atol, not both")
            r = rank
        else:
            r = Truncation(rtol=rtol, atol=atol, **truncation).rank(sigma, shape=tuple(A.shape))
        r = min(r, k)
        S = xp.astype(_diag(sigma[:r], xp=xp), A.dtype)
        return cls(P[:, :r], S, Q[:, :r])

    # ------------------------------------------------------------------ operations
    def truncate(self, rule: Truncation | None = None, *, rank: int | None = None) -> LowRank:
        """SVD of the core and truncation: ``Y ≈ (U P_r) Σ_r (V Q_r)ᴴ``.

        Exactly one of ``rule`` (a :class:`Truncation`) and ``rank`` must be given.  The result
        has a diagonal non-negative core.

        Parameters
        ----------
        rule : Truncation, optional
            Choose the rank from the singular values of ``S``.
        rank : int, optional
            Keep exactly this many singular values (1 ≤ rank ≤ current rank).

        Returns
        -------
        LowRank
            The truncated factorization ``(U P_r, Σ_r, V Q_r)``.

        Raises
        ------
        ValueError
            When both or neither of ``rule`` and ``rank`` are given, or ``rank`` is out of range.
        """
        xp = self.xp
        P, sigma, Q = svd(self.S, xp=xp)
        if (rule is None) == (rank is None):
            raise ValueError("truncate needs exactly one of rule and rank")
        if rank is not None:
            _check_rank(rank, self.rank)
            r = rank
        else:
            r = rule.rank(sigma, shape=(self.U.shape[0], self.V.shape[0]))
        S = xp.astype(_diag(sigma[:r], xp=xp), self.S.dtype)
        return LowRank(self.U @ P[:, :r], S, self.V @ Q[:, :r])

    def orthonormalize(self) -> LowRank:
        """Same matrix with orthonormal outer factors: ``U = Q₁R₁, V = Q₂R₂, S ← R₁ S R₂ᴴ``."""
        xp = self.xp
        Qu, Ru = qr_pos(self.U, xp=xp)
        Qv, Rv = qr_pos(self.V, xp=xp)
        return LowRank(Qu, Ru @ self.S @ ct(Rv, xp=xp), Qv)

    def astype(self, dtype: Any) -> LowRank:
        """Cast all factors to ``dtype``."""
        xp = self.xp
        return LowRank(xp.astype(self.U, dtype), xp.astype(self.S, dtype), xp.astype(self.V, dtype))

    def to_numpy(self) -> LowRank:
        """Copy the factors to host NumPy arrays."""
        return LowRank(to_numpy(self.U), to_numpy(self.S), to_numpy(self.V))

    @classmethod
    def random(
        cls,
        shape: tuple[int, int],
        rank: int,
        rng: Any = None,
        *,
        singular_values: Any = None,
        dtype: Any = None,
        xp: Any = None,
    ) -> LowRank:
        """A random point: Haar-like orthonormal U, V (QR of Gaussians) and diagonal S.

        Parameters
        ----------
        shape : (n, m)
        rank : int
        rng : numpy.random.Generator or int seed
        singular_values : array_like, shape (rank,), optional
            Diagonal of S (default: 2⁻ʲ, j = 0 … r−1).
        dtype : dtype, optional
            float64 by default; complex dtypes draw complex Gaussian factors.
        xp : namespace, optional
            Array namespace for the result (default NumPy).
        """
        n, m = shape
        _check_rank(rank, min(n, m))
        rng = np.random.default_rng(rng)
        dt = np.dtype(dtype) if dtype is not None else np.dtype(np.float64)
        if dt.char not in "fdFD":
            raise TypeError(
                f"dtype must be float32, float64, complex64 or complex128, got {dt.name}"
            )

        def gauss(*s: int) -> np.ndarray:
            G = rng.standard_normal(s)
            if dt.kind == "c":
                G = G + 1j * rng.standard_normal(s)
            return G.astype(dt)

        sv = 2.0 ** -np.arange(rank) if singular_values is None else np.asarray(singular_values)
        if sv.shape != (rank,):
            raise ValueError(f"singular_values must have shape ({rank},), got {sv.shape}")
        xnp = array_namespace(np.zeros(1))
        U, _ = qr_pos(gauss(n, rank), xp=xnp)
        V, _ = qr_pos(gauss(m, rank), xp=xnp)
        S = np.diag(sv).astype(dt)
        if xp is not None:
            U, S, V = (xp.asarray(np.ascontiguousarray(A)) for A in (U, S, V))
        return cls(U, S, V)


_KINDS = "fdFD"  # the LAPACK dtypes: float32, float64, complex64, complex128


def _as_floating(A: Any, name: str, *, xp: Any) -> Any:
    """``A`` itself for a LAPACK dtype; integer and boolean arrays promoted to float64 (as
    NumPy's linear algebra does); ``TypeError`` naming ``name`` for any other dtype."""
    dt = A.dtype
    if type(A) is np.ndarray:
        if dt.char in _KINDS:
            return A
        if dt.kind in "biu":
            return A.astype(np.float64)
    else:
        half = getattr(xp, "float16", None)
        if xp.isdtype(dt, ("real floating", "complex floating")) and not (
            half is not None and dt == half
        ):
            return A
        if xp.isdtype(dt, ("integral", "bool")):
            return xp.astype(A, xp.float64)
    raise TypeError(
        f"{name} must have dtype float32, float64, complex64 or complex128 (integers are "
        f"promoted to float64), got {dt}"
    )


def _common_dtype(U: Any, S: Any, V: Any) -> tuple[Any, Any, Any]:
    """The one dtype rule of :class:`LowRank`: all three factors share ``result_type(U, S, V)``.

    Integer and boolean factors are promoted to float64, float16 and non-numeric dtypes
    raise ``TypeError``.  Factors that already share a LAPACK dtype pass through untouched.
    """
    dU, dS, dV = (getattr(A, "dtype", None) for A in (U, S, V))
    if dU is None or dS is None or dV is None:
        return U, S, V  # not arrays: the shape checks name them
    if dU == dS == dV and type(S) is np.ndarray and dS.char in _KINDS:
        return U, S, V  # the common case, without further inspection
    xp = array_namespace(U, S, V)
    U, S, V = (_as_floating(A, n, xp=xp) for A, n in ((U, "U"), (S, "S"), (V, "V")))
    dt = xp.result_type(U.dtype, S.dtype, V.dtype)
    return tuple(A if A.dtype == dt else xp.astype(A, dt) for A in (U, S, V))


def _diag(d: Any, *, xp: Any) -> Any:
    r = d.shape[0]
    return xp.eye(r, dtype=d.dtype) * d[None, :] if r else xp.zeros((0, 0), dtype=d.dtype)


def _check_rank(rank: Any, bound: int) -> None:
    if isinstance(rank, bool) or not hasattr(rank, "__index__"):
        raise TypeError(f"rank must be an integer, got {rank!r}")
    if not 1 <= int(rank) <= bound:
        raise ValueError(f"rank must satisfy 1 <= rank <= {bound} (= min(n, m)), got {rank}")
