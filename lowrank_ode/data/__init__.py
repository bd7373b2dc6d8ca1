"""Data loading: the IDX file format and the MNIST database.

Public API
----------
read_idx(path)
    Read an IDX file (gzipped or raw, detected from the content) into a
    NumPy array, validating its header and payload size.
write_idx(path, array, gzip=True)
    Write an array as an IDX file, atomically.
IDXFormatError
    ``ValueError`` subclass raised for malformed IDX/gzip/MNIST files.
``load_mnist(data_dir=None, *, subset=None, download=True, dtype=float64, flat=True)``
    Full MNIST from ``data_dir``, ``$LOWRANK_ODE_DATA`` or the pooch cache
    (downloading with pooch if allowed), as ``(x_train, y_train, x_test,
    y_test)`` with images in [0, 1] and int64 labels; ``subset="builtin"``
    gives the bundled subset.
``load_builtin_mnist(*, dtype=float64, flat=True)``
    The bundled, class-balanced subset (5000 train / 1000 test images).
``load_mnist_raw(data_dir=None, *, download=True)``
    Full MNIST as validated uint8 arrays.
MNISTNotFoundError
    ``FileNotFoundError`` subclass raised when MNIST is absent and cannot be
    downloaded.
MNISTSplits
    Named tuple ``(x_train, y_train, x_test, y_test)`` returned by the loaders.
"""

from .idx import IDXFormatError, read_idx, write_idx
from .mnist import (
    MNISTNotFoundError,
    MNISTSplits,
    load_builtin_mnist,
    load_mnist,
    load_mnist_raw,
    resolve_data_dir,
)

__all__ = [
    "IDXFormatError",
    "MNISTNotFoundError",
    "MNISTSplits",
    "load_builtin_mnist",
    "load_mnist",
    "load_mnist_raw",
    "read_idx",
    "resolve_data_dir",
    "write_idx",
]
