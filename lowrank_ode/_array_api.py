"""Array-namespace helpers: every numerical routine of the library goes through these.

The idiom is array-api-compat's: ``xp = array_namespace(*arrays)`` at the top of a public
function, and private helpers take ``xp`` as a keyword.  No global backend state: NumPy arrays
give NumPy, CuPy arrays give CuPy, array-api-strict arrays give array-api-strict (which the
test-suite uses to prove that no NumPy-only call leaks into the core).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import array_namespace as _array_namespace
from array_api_compat import is_numpy_namespace, to_device

__all__ = [
    "array_namespace",
    "ct",
    "qr_pos",
    "svd",
    "is_complex",
    "eye_like",
    "to_numpy",
    "check_finite",
    "ARRAY_LIBRARIES",
    "library_namespace",
]


def array_namespace(*arrays: Any) -> Any:
    """Return the (compat-wrapped) array namespace of ``arrays``, ignoring ``None`` and scalars."""
    numpy_only = False
    for a in arrays:  # the common case, all NumPy, without array-api-compat's inspection
        if type(a) is np.ndarray:
            numpy_only = True
        elif not (a is None or isinstance(a, (int, float, complex))):
            numpy_only = False
            break
    if numpy_only:
        return _NUMPY
    arrs = [a for a in arrays if a is not None and not isinstance(a, (int, float, complex))]
    return _array_namespace(*arrs)


_NUMPY = _array_namespace(np.empty(0))


def is_complex(A: Any, *, xp: Any) -> bool:
    """True when ``A`` has a complex floating dtype."""
    if type(A) is np.ndarray:
        return A.dtype.kind == "c"  # xp.isdtype costs ~2 µs a call
    return xp.isdtype(A.dtype, "complex floating")


def ct(A: Any, *, xp: Any) -> Any:
    """Conjugate transpose ``Aᴴ`` of a 2-D array (plain transpose for real dtypes)."""
    At = A.T
    return xp.conj(At) if is_complex(A, xp=xp) else At


def eye_like(r: int, A: Any, *, xp: Any) -> Any:
    """The ``r × r`` identity with the dtype and device of ``A``."""
    return xp.eye(r, dtype=A.dtype, device=getattr(A, "device", None))


def qr_pos(A: Any, *, xp: Any = None) -> tuple[Any, Any]:
    """Reduced QR ``A = Q R`` with ``diag(R)`` real and non-negative, so the factors are unique.

    Parameters
    ----------
    A : array, shape (n, k)
        ``Q`` has ``min(n, k)`` columns.
    xp : namespace, optional
        Array namespace (default: that of ``A``).

    Returns
    -------
    Q : array, shape (n, k), orthonormal columns
    R : array, shape (k, k), upper triangular with real non-negative diagonal
    """
    xp = array_namespace(A) if xp is None else xp
    if _lapack_ready(A):
        Q, R = _qr_lapack(A)
    else:
        Q, R = xp.linalg.qr(A, mode="reduced")
    d = xp.linalg.diagonal(R)
    absd = xp.abs(d)
    one = xp.ones_like(absd)
    # phase = d/|d| where d != 0, else 1 (works for real and complex dtypes)
    safe = xp.where(absd > 0, absd, one)
    phase = xp.where(absd > 0, d / xp.astype(safe, d.dtype), xp.astype(one, d.dtype))
    Q = Q * phase[None, :]
    R = R * xp.conj(phase)[:, None] if is_complex(A, xp=xp) else R * phase[:, None]
    return Q, R


def _lapack_ready(A: Any) -> bool:
    """True for a non-empty 2-D NumPy matrix of a LAPACK dtype (float32/64, complex64/128)."""
    return type(A) is np.ndarray and A.dtype.char in "fdFD" and A.ndim == 2 and min(A.shape) > 0


_LAPACK: dict[tuple[str, str], Any] = {}
_LWORK: dict[tuple, int] = {}


def _lapack(name: str, char: str) -> Any:
    """The LAPACK routine ``name`` (without type prefix) for dtype character ``char``."""
    f = _LAPACK.get((name, char))
    if f is None:
        from scipy.linalg import lapack

        f = _LAPACK[(name, char)] = lapack.get_lapack_funcs((name,), (np.empty(0, char),))[0]
    return f


def _workspace(kind: str, char: str, n: int, k: int, query: Any) -> int:
    """LAPACK's optimal workspace size for ``kind`` on an ``n × k`` matrix (asked once, kept)."""
    key = (kind, char, n, k)
    lw = _LWORK.get(key)
    if lw is None:
        lw = _LWORK[key] = max(int(query()), 1)
    return lw


def _qr_lapack(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reduced QR of a NumPy matrix by LAPACK ``geqrf`` + ``orgqr``/``ungqr`` (Householder).

    Computed in the working precision of ``A`` (``numpy.linalg.qr`` computes single precision
    in double and rounds back, twice the cost), with LAPACK's optimal workspaces, and without
    NumPy's per-call wrapping, which costs 2–5× the factorization of the thin matrices of the
    integrators (n × 20).
    """
    char = A.dtype.char
    n, k = A.shape
    m = min(n, k)
    geqrf = _lapack("geqrf", char)
    orgqr = _lapack("ungqr" if char in "FD" else "orgqr", char)

    def query() -> int:
        lw1 = geqrf(np.zeros((n, k), char), lwork=-1)[2][0].real
        lw2 = orgqr(np.zeros((n, m), char), np.zeros(m, char), lwork=-1)[1][0].real
        return int(max(lw1, lw2))

    lw = _workspace("qr", char, n, k, query)
    qr, tau, _, info = geqrf(A, lwork=lw)
    if info != 0:  # pragma: no cover - only on an illegal argument
        raise np.linalg.LinAlgError(f"LAPACK geqrf failed (info={info})")
    R = np.triu(qr[:m, :])
    Q, _, info = orgqr(qr[:, :m], tau[:m], lwork=lw, overwrite_a=True)
    if info != 0:  # pragma: no cover
        raise np.linalg.LinAlgError(f"LAPACK orgqr/ungqr failed (info={info})")
    # C order, as NumPy returns them: the layout of a GEMM operand changes its rounding
    return np.ascontiguousarray(Q), np.ascontiguousarray(R)


def _svd_lapack(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD ``(P, σ, Qᴴ)`` of a NumPy matrix by LAPACK ``gesdd``, in working precision.

    Falls back to the QR-iteration driver ``gesvd`` when divide and conquer does not converge
    (it occasionally fails on finite single-precision matrices).
    """
    char = A.dtype.char
    n, k = A.shape
    gesdd = _lapack("gesdd", char)
    lw_query = _lapack("gesdd_lwork", char)
    lw = _workspace(
        "svd", char, n, k, lambda: lw_query(n, k, compute_uv=1, full_matrices=0)[0].real
    )
    P, sigma, Qh, info = gesdd(A, compute_uv=1, full_matrices=0, lwork=lw)
    if info > 0:
        import scipy.linalg

        P, sigma, Qh = scipy.linalg.svd(
            A, full_matrices=False, lapack_driver="gesvd", check_finite=False
        )
    elif info < 0:  # pragma: no cover - only on an illegal argument
        raise np.linalg.LinAlgError(f"LAPACK gesdd failed (info={info})")
    return np.ascontiguousarray(P), sigma, np.ascontiguousarray(Qh)  # C order, as NumPy's


def svd(A: Any, *, xp: Any) -> tuple[Any, Any, Any]:
    """Thin SVD ``A = P diag(σ) Qᴴ``; returns ``(P, σ, Q)`` with ``Q`` (not ``Qᴴ``).

    NumPy matrices go to LAPACK ``gesdd`` directly (working precision, see :func:`_svd_lapack`),
    other namespaces to ``xp.linalg.svd``.  Divide and conquer occasionally fails to converge on
    finite single-precision matrices; NumPy inputs then fall back to the QR-iteration driver
    ``gesvd``.  A matrix with NaN/inf entries, or a factorization that fails, raises
    :class:`~lowrank_ode.exceptions.NumericalBreakdown`.
    """
    from .exceptions import NumericalBreakdown

    if not bool(xp.all(xp.isfinite(A))):
        raise NumericalBreakdown(f"svd: the {tuple(A.shape)} matrix has NaN or inf entries")
    try:
        if _lapack_ready(A):
            P, sigma, Qh = _svd_lapack(A)
        else:
            P, sigma, Qh = xp.linalg.svd(A, full_matrices=False)
    except np.linalg.LinAlgError as exc:
        raise NumericalBreakdown(f"svd of the {tuple(A.shape)} matrix failed: {exc}") from exc
    return P, sigma, ct(Qh, xp=xp)


def to_numpy(A: Any) -> np.ndarray:
    """Copy any array-API array to a NumPy array on the host."""
    if isinstance(A, np.ndarray):
        return A
    xp = array_namespace(A)
    if is_numpy_namespace(xp):
        return np.asarray(A)
    if hasattr(A, "get"):  # CuPy
        return A.get()
    try:  # an explicit host copy through DLPack (array-api-strict, PyTorch CPU tensors, …)
        return np.from_dlpack(A).copy()
    except (TypeError, ValueError, RuntimeError, BufferError, AttributeError):
        pass
    try:
        return np.asarray(to_device(A, "cpu"))
    except Exception:  # noqa: BLE001 - array-api-strict and friends
        return np.asarray(A)


def check_finite(A: Any, name: str, *, xp: Any) -> None:
    """Raise ``ValueError`` naming ``name`` when ``A`` holds NaN or inf."""
    if not bool(xp.all(xp.isfinite(A))):
        raise ValueError(f"{name} contains NaN or inf values")


#: the array libraries a training run can compute with (``Trainer(array_library=...)``)
ARRAY_LIBRARIES = ("numpy", "cupy", "array_api_strict")


def library_namespace(name: Any, option: str = "array_library") -> Any:
    """The array namespace of the library called ``name`` (one of :data:`ARRAY_LIBRARIES`).

    ``"numpy"`` gives array-api-compat's NumPy namespace, ``"cupy"`` its CuPy namespace (after
    checking that CuPy is installed and sees a GPU), ``"array_api_strict"`` the strict reference
    implementation (NumPy underneath, on the CPU: the check of the generic code path).

    Parameters
    ----------
    name : str
        The library.
    option : str
        How the caller spells the option, for the messages (``"--array-library"`` on the CLI).

    Returns
    -------
    namespace
        Its ``asarray`` moves a NumPy array to the library (to the device for CuPy).

    Raises
    ------
    TypeError
        When ``name`` is not a string.
    ValueError
        When ``name`` is not one of :data:`ARRAY_LIBRARIES`.
    ArrayLibraryUnavailable
        When the library is not installed, or CuPy sees no GPU (the message names the option
        and the value).

    Examples
    --------
    >>> from lowrank_ode._array_api import library_namespace
    >>> xp = library_namespace("array_api_strict")
    >>> xp.asarray([1.0, 2.0]).shape
    (2,)
    """
    from .exceptions import ArrayLibraryUnavailable

    if not isinstance(name, str):
        raise TypeError(f"{option} must be a string, got {name!r}")
    if name not in ARRAY_LIBRARIES:
        raise ValueError(f"{option} must be one of {ARRAY_LIBRARIES}, got {name!r}")
    if name == "numpy":
        return _NUMPY
    given = f"{option} {name}" if option.startswith("-") else f"{option}={name!r}"
    if name == "array_api_strict":
        try:
            import array_api_strict
        except ImportError as exc:
            raise ArrayLibraryUnavailable(
                f"{given} needs array-api-strict, which is not installed "
                "(pip install array-api-strict)"
            ) from exc
        return array_api_strict
    try:
        import cupy
    except ImportError as exc:
        raise ArrayLibraryUnavailable(
            f"{given} needs CuPy, but CuPy is not installed: install it for your CUDA version "
            "(pip install 'lowrank-ode[gpu]' or cupy-cuda12x) on a machine with an NVIDIA GPU"
        ) from exc
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:  # noqa: BLE001 - CUDA driver errors have many types
        raise ArrayLibraryUnavailable(
            f"{given}: CuPy sees no GPU ({type(exc).__name__}: {exc})"
        ) from exc
    if count < 1:
        raise ArrayLibraryUnavailable(f"{given}: CuPy sees no GPU (device count 0)")
    import array_api_compat.cupy as xp

    return xp
