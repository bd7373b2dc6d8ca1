"""Reading and writing IDX files (the format of the MNIST database).

An IDX file is a big-endian binary array: a 4-byte magic number ``00 00 TT NN``
where ``TT`` is the element type code and ``NN`` the number of dimensions,
followed by ``NN`` big-endian ``uint32`` dimension sizes and then the elements
in C order, big-endian. Files may be gzip-compressed; compression is detected
from the gzip magic bytes ``1f 8b``, never from the file name.

Type codes
----------
====== =========
code   dtype
====== =========
0x08   uint8
0x09   int8
0x0B   int16
0x0C   int32
0x0D   float32
0x0E   float64
====== =========

This module never uses :mod:`pickle`.
"""

from __future__ import annotations

import gzip as _gzip
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._io import atomic_open

__all__ = ["IDXFormatError", "IDX_DTYPES", "read_idx", "write_idx", "idx_magic"]

GZIP_MAGIC = b"\x1f\x8b"

#: Map from IDX type code to the (big-endian) NumPy dtype of the payload.
IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# (kind, itemsize) -> type code, used to pick the code when writing.
_CODE_BY_KIND: dict[tuple[str, int], int] = {
    (dt.kind, dt.itemsize): code for code, dt in IDX_DTYPES.items()
}

_MAX_DIM = 2**32 - 1


class IDXFormatError(ValueError):
    """Raised when a file is not a well-formed IDX file (or gzip stream).

    Messages name the file, the offending field, and the expected and found
    values, e.g. ``"t.idx: payload size: expected 784 bytes (dims (1, 28, 28),
    uint8), found 700 bytes"``.
    """


def idx_magic(array: np.ndarray) -> int:
    """Return the IDX magic number that describes ``array``.

    Parameters
    ----------
    array : numpy.ndarray
        Array with one of the supported dtypes (see module docstring).

    Returns
    -------
    int
        ``(type_code << 8) | ndim``, e.g. 2051 for a 3-d ``uint8`` array
        (MNIST images) and 2049 for a 1-d ``uint8`` array (MNIST labels).

    Raises
    ------
    TypeError
        If the dtype has no IDX type code.
    """
    return (_type_code(array.dtype) << 8) | array.ndim


def _type_code(dtype: npt.DTypeLike) -> int:
    dt = np.dtype(dtype)
    try:
        return _CODE_BY_KIND[(dt.kind, dt.itemsize)]
    except KeyError:
        supported = ", ".join(str(d.newbyteorder("=")) for d in IDX_DTYPES.values())
        raise TypeError(
            f"dtype {dt} cannot be stored in an IDX file; supported dtypes: {supported}"
        ) from None


def _read_bytes(path: Path) -> bytes:
    """Return the (decompressed, if gzipped) content of ``path``."""
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        if head != GZIP_MAGIC:
            return f.read()
        try:
            with _gzip.GzipFile(fileobj=f, mode="rb") as g:
                return g.read()
        except (_gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise IDXFormatError(
                f"{path}: gzip stream: expected a valid gzip stream (file starts with gzip "
                f"magic 1f 8b), found a corrupt or truncated one ({type(exc).__name__}: {exc})"
            ) from exc


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, gzipped or raw, into a NumPy array.

    Parameters
    ----------
    path : str or os.PathLike
        File to read. Gzip compression is detected from the magic bytes
        ``1f 8b``; the file extension is ignored.

    Returns
    -------
    numpy.ndarray
        A new, writable, C-contiguous array in native byte order, with the
        shape given by the header and the dtype given by the type code.

    Raises
    ------
    IDXFormatError
        If the gzip stream is corrupt, the header is truncated, the magic
        number's first two bytes are not zero, the type code is unknown, the
        number of dimensions is zero, or the payload is not exactly
        ``prod(dims) * itemsize`` bytes (truncated or trailing data).
    FileNotFoundError, OSError
        If the file cannot be opened or read.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "a.idx")
    >>> write_idx(p, np.arange(6, dtype=np.int16).reshape(2, 3))
    >>> read_idx(p)
    array([[0, 1, 2],
           [3, 4, 5]], dtype=int16)
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise IDXFormatError(
            f"{path}: header: expected at least 4 bytes of magic number, found {len(data)} bytes"
        )
    if data[0] != 0 or data[1] != 0:
        raise IDXFormatError(
            f"{path}: magic: expected first two bytes 0x00 0x00, "
            f"found 0x{data[0]:02x} 0x{data[1]:02x} (not an IDX file)"
        )
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise IDXFormatError(f"{path}: dtype code: expected one of {known}, found 0x{code:02X}")
    if ndim == 0:
        raise IDXFormatError(f"{path}: ndim: expected at least 1, found 0")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise IDXFormatError(
            f"{path}: dims: expected {ndim} big-endian uint32 sizes ({header_len} header bytes), "
            f"found only {len(data)} bytes in the file"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    be_dtype = IDX_DTYPES[code]
    count = 1
    for d in dims:
        count *= d  # Python int: no overflow
    expected = count * be_dtype.itemsize
    found = len(data) - header_len
    if found != expected:
        what = "truncated payload" if found < expected else "trailing bytes after payload"
        raise IDXFormatError(
            f"{path}: payload size ({what}): expected {expected} bytes "
            f"(dims {dims}, {be_dtype.newbyteorder('=')}), found {found} bytes"
        )
    arr = np.frombuffer(data, dtype=be_dtype, count=count, offset=header_len).reshape(dims)
    return arr.astype(be_dtype.newbyteorder("="), copy=True)


def write_idx(path: str | os.PathLike[str], array: npt.ArrayLike, gzip: bool = True) -> None:
    """Write an array to an IDX file, atomically.

    The data are written to a temporary file in the destination directory,
    synced to disk and moved into place with :func:`os.replace`, so readers
    never see a partially written file.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file. Its name does not affect the format.
    array : array_like
        Data with dtype uint8, int8, int16, int32, float32 or float64 (any
        byte order) and at least one dimension, each of size < 2**32.
    gzip : bool, default True
        Gzip-compress the file (with a zero timestamp and no embedded file
        name, so the output is reproducible).

    Raises
    ------
    TypeError
        If the dtype has no IDX type code.
    ValueError
        If the array is 0-dimensional, has more than 255 dimensions, or a
        dimension does not fit in uint32.
    """
    path = Path(path)
    arr = np.asarray(array)
    code = _type_code(arr.dtype)
    if arr.ndim == 0 or arr.ndim > 255:
        raise ValueError(f"IDX arrays need 1 to 255 dimensions, got ndim={arr.ndim}")
    if any(d > _MAX_DIM for d in arr.shape):
        raise ValueError(f"IDX dimensions must be < 2**32, got shape {arr.shape}")
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(arr, dtype=IDX_DTYPES[code]).tobytes()

    with atomic_open(path, "wb") as f:
        if gzip:
            with _gzip.GzipFile(filename="", fileobj=f, mode="wb", mtime=0) as g:
                g.write(header)
                g.write(payload)
        else:
            f.write(header)
            f.write(payload)
