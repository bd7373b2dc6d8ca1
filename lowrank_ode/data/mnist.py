"""Loading the MNIST database of handwritten digits.

Two sources are supported:

* the full database (60,000 training and 10,000 test images) from the four
  canonical IDX files, found in a directory or downloaded with :mod:`pooch`
  (:func:`load_mnist`);
* a small class-balanced subset bundled with the package, usable offline
  (:func:`load_builtin_mnist`, or ``load_mnist(subset="builtin")``).

MNIST is by Yann LeCun, Corinna Cortes and Christopher J. C. Burges and is
licensed CC BY-SA 3.0; see ``MNIST_ATTRIBUTION.md`` in this package.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from .idx import IDXFormatError, idx_magic, read_idx

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable  # Python >= 3.11; typing only

__all__ = [
    "ENV_VAR",
    "FILES",
    "MIRRORS",
    "MNISTNotFoundError",
    "MNISTSplits",
    "default_data_dir",
    "find_mnist_files",
    "load_builtin_mnist",
    "load_mnist",
    "load_mnist_raw",
    "resolve_data_dir",
]

#: Environment variable naming the directory that holds (or receives) MNIST.
ENV_VAR = "LOWRANK_ODE_DATA"

#: Canonical file stems (without ``.gz``) for each array, in return order.
FILES: dict[str, str] = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

#: Public mirrors, tried in order. All serve the canonical ``.gz`` files.
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

#: MD5 of the canonical ``.gz`` files served by the mirrors (pooch format).
#: These pin downloads only: locally re-gzipped copies have other hashes.
MIRROR_HASHES: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "md5:d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "md5:9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "md5:ec29112dd5afa0611ce80d1b7f02629c",
}

IMAGE_MAGIC = 2051  # uint8, 3 dims
LABEL_MAGIC = 2049  # uint8, 1 dim
IMAGE_SHAPE = (28, 28)
N_CLASSES = 10

BUILTIN_FILE = "mnist_subset.npz"


class MNISTNotFoundError(FileNotFoundError):
    """Raised when the MNIST files are absent and could not be downloaded."""


class MNISTSplits(NamedTuple):
    """The four MNIST arrays; unpacks like ``(x_train, y_train, x_test, y_test)``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def default_data_dir() -> Path:
    """Return the per-user cache directory used when nothing else is given.

    Returns
    -------
    pathlib.Path
        ``pooch.os_cache("lowrank_ode") / "mnist"`` (e.g.
        ``~/.cache/lowrank_ode/mnist`` on Linux). It need not exist.
    """
    import pooch

    return Path(pooch.os_cache("lowrank_ode")) / "mnist"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the directory in which to look for (and download) MNIST.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Explicit directory; wins if given.

    Returns
    -------
    pathlib.Path
        ``data_dir`` if given, else the value of the environment variable
        ``LOWRANK_ODE_DATA`` if set and non-empty, else
        :func:`default_data_dir`. ``~`` is expanded.
    """
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    return default_data_dir()


def find_mnist_files(directory: str | os.PathLike[str]) -> dict[str, Path] | None:
    """Locate the four canonical MNIST files in ``directory``.

    Each file may be gzipped or raw, named ``<stem>`` or ``<stem>.gz``
    (e.g. ``train-images-idx3-ubyte.gz``); compression is detected from the
    content when read. A ``mnist/`` subdirectory is also searched, so that
    ``LOWRANK_ODE_DATA`` may point at a general data root.

    Parameters
    ----------
    directory : str or os.PathLike
        Directory to search.

    Returns
    -------
    dict of str to pathlib.Path, or None
        Keys ``x_train``, ``y_train``, ``x_test``, ``y_test``; ``None`` if
        any file is missing from both locations (files are never mixed
        across the two locations).
    """
    directory = Path(directory)
    for d in (directory, directory / "mnist"):
        found: dict[str, Path] = {}
        for key, stem in FILES.items():
            for name in (stem + ".gz", stem):
                if (d / name).is_file():
                    found[key] = d / name
                    break
        if len(found) == len(FILES):
            return found
    return None


def _download(directory: Path) -> dict[str, Path]:
    """Fetch the missing canonical ``.gz`` files into ``directory`` with pooch."""
    try:
        import pooch
    except ImportError as exc:  # pragma: no cover - pooch is a dependency
        raise RuntimeError(f"pooch is not installed ({exc})") from exc

    paths: dict[str, Path] = {}
    for key, stem in FILES.items():
        fname = stem + ".gz"
        present = [directory / n for n in (fname, stem) if (directory / n).is_file()]
        if present:  # keep what the user has; never re-download over it
            paths[key] = present[0]
            continue
        errors = []
        for mirror in MIRRORS:
            try:
                got = pooch.retrieve(
                    url=mirror + fname,
                    known_hash=MIRROR_HASHES[fname],
                    fname=fname,
                    path=directory,
                    progressbar=False,
                )
            except Exception as exc:  # network, HTTP, hash mismatch, permissions...
                errors.append(f"{mirror}{fname}: {type(exc).__name__}: {exc}")
                continue
            paths[key] = Path(got)
            break
        else:
            raise RuntimeError("; ".join(errors))
    return paths


def _check_magic(path: Path, arr: np.ndarray, expected: int, what: str) -> None:
    try:
        found: Any = idx_magic(arr)
    except TypeError:
        found = f"dtype {arr.dtype}"
    if found != expected:
        raise IDXFormatError(
            f"{path}: magic: expected {expected} (uint8 {what}), found {found} "
            f"({arr.dtype}, {arr.ndim} dims)"
        )


def _validate_pair(
    images: np.ndarray,
    labels: np.ndarray,
    image_path: str | os.PathLike[str],
    label_path: str | os.PathLike[str],
) -> None:
    """Check MNIST image/label arrays (magic, image shape, counts, label range)."""
    _check_magic(Path(image_path), images, IMAGE_MAGIC, "images, 3 dims")
    _check_magic(Path(label_path), labels, LABEL_MAGIC, "labels, 1 dim")
    if images.shape[1:] != IMAGE_SHAPE:
        raise IDXFormatError(
            f"{image_path}: image shape: expected N x 28 x 28, "
            f"found {' x '.join(map(str, images.shape))}"
        )
    if images.shape[0] != labels.shape[0]:
        raise IDXFormatError(
            f"{image_path}, {label_path}: counts: expected as many labels as images "
            f"({images.shape[0]} images), found {labels.shape[0]} labels"
        )
    if labels.size and labels.max() >= N_CLASSES:
        bad = np.flatnonzero(labels >= N_CLASSES)
        raise IDXFormatError(
            f"{label_path}: label range: expected labels in 0..{N_CLASSES - 1}, "
            f"found {labels[bad[0]]} at index {bad[0]} ({bad.size} out of range)"
        )


def load_mnist_raw(
    data_dir: str | os.PathLike[str] | None = None, *, download: bool = True
) -> MNISTSplits:
    """Load the full MNIST database as raw, validated ``uint8`` arrays.

    Parameters
    ----------
    data_dir, download
        As in :func:`load_mnist`.

    Returns
    -------
    MNISTSplits
        ``x_train`` (N, 28, 28) uint8, ``y_train`` (N,) uint8, ``x_test``
        (M, 28, 28) uint8, ``y_test`` (M,) uint8.

    Raises
    ------
    MNISTNotFoundError
        If the files are missing and download is disabled or fails.
    IDXFormatError
        If a file is malformed (see :func:`load_mnist`).
    """
    directory = resolve_data_dir(data_dir)
    files = find_mnist_files(directory)
    if files is None:
        hint = (
            f"MNIST not found in {directory}; set {ENV_VAR} or pass data_dir "
            f"(expected files {', '.join(s + '[.gz]' for s in FILES.values())}); "
        )
        offline = ' load_mnist(subset="builtin") gives a small bundled subset offline'
        if not download:
            raise MNISTNotFoundError(hint + "download disabled (download=False);" + offline)
        try:
            files = _download(directory)
        except Exception as exc:
            raise MNISTNotFoundError(hint + f"download failed: {exc};" + offline) from exc

    arrays = {key: read_idx(path) for key, path in files.items()}
    for split in ("train", "test"):
        _validate_pair(
            arrays[f"x_{split}"],
            arrays[f"y_{split}"],
            files[f"x_{split}"],
            files[f"y_{split}"],
        )
    return MNISTSplits(**arrays)


def _to_output(splits: MNISTSplits, dtype: npt.DTypeLike, flat: bool) -> MNISTSplits:
    dt = np.dtype(dtype)
    if not np.issubdtype(dt, np.floating):
        raise ValueError(f"dtype must be a floating-point dtype, got {dt}")
    shape = (-1, IMAGE_SHAPE[0] * IMAGE_SHAPE[1]) if flat else (-1, 1, *IMAGE_SHAPE)

    def images(x: np.ndarray) -> np.ndarray:
        out = x.reshape(shape).astype(dt)
        out /= 255
        return out

    return MNISTSplits(
        images(splits.x_train),
        splits.y_train.astype(np.int64),
        images(splits.x_test),
        splits.y_test.astype(np.int64),
    )


def load_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    subset: Literal["builtin"] | None = None,
    download: bool = True,
    dtype: npt.DTypeLike = np.float64,
    flat: bool = True,
) -> MNISTSplits:
    """Load MNIST as floating-point images in [0, 1] and int64 labels.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        Directory holding the four canonical IDX files
        (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
        optionally with ``.gz``; a ``mnist/`` subdirectory is also searched).
        If omitted, the environment variable ``LOWRANK_ODE_DATA`` is used,
        else the pooch cache directory (:func:`default_data_dir`).
    subset : {None, "builtin"}, default None
        ``None`` loads the full database. ``"builtin"`` loads the small
        subset bundled with the package (see :func:`load_builtin_mnist`);
        no directory is searched and nothing is downloaded.
    download : bool, default True
        If the files are missing, fetch the canonical ``.gz`` files with
        :mod:`pooch` from :data:`MIRRORS` into the resolved directory,
        verifying their pinned MD5 checksums.
    dtype : dtype-like, default numpy.float64
        Floating-point dtype of the images.
    flat : bool, default True
        Return images as (N, 784) if True, else as (N, 1, 28, 28) (channel
        first, for convolutional networks).

    Returns
    -------
    MNISTSplits
        Named tuple ``(x_train, y_train, x_test, y_test)``. Images have
        shape (N, 784) or (N, 1, 28, 28), dtype ``dtype``, values in [0, 1]
        (``pixel / 255``); labels have shape (N,), dtype int64, values 0..9.
        For the full database N = 60000 train and 10000 test.

    Raises
    ------
    MNISTNotFoundError
        (a :class:`FileNotFoundError`) if the files are missing and
        ``download`` is False or the download fails; the message names the
        directory searched and the download error.
    IDXFormatError
        (a :class:`ValueError`) if a file is malformed: bad IDX structure,
        image magic not 2051 or images not N x 28 x 28, label magic not 2049,
        image and label counts differing, or labels outside 0..9.
    ValueError
        If ``subset`` is not None/"builtin", ``data_dir`` is combined with
        ``subset="builtin"``, or ``dtype`` is not floating point.

    Examples
    --------
    >>> x_train, y_train, x_test, y_test = load_mnist(subset="builtin")
    >>> x_train.shape, y_train.dtype
    ((5000, 784), dtype('int64'))
    """
    if subset is not None:
        if subset != "builtin":
            raise ValueError(f'subset must be None or "builtin", got {subset!r}')
        if data_dir is not None:
            raise ValueError('data_dir cannot be combined with subset="builtin"')
        return load_builtin_mnist(dtype=dtype, flat=flat)
    return _to_output(load_mnist_raw(data_dir, download=download), dtype, flat)


def _builtin_resource() -> Traversable:
    """Return the packaged subset file (a hook the tests can replace)."""
    return resources.files(__package__).joinpath(BUILTIN_FILE)


def _load_builtin_raw() -> tuple[MNISTSplits, dict[str, np.ndarray]]:
    """Load and validate the bundled subset; return uint8 splits and metadata."""
    ref = _builtin_resource()
    with resources.as_file(ref) as path, np.load(path, allow_pickle=False) as npz:
        content = {k: npz[k] for k in npz.files}
    required = {"x_train", "y_train", "x_test", "y_test"}
    missing = required - content.keys()
    if missing:
        raise IDXFormatError(f"{ref}: keys: expected {sorted(required)}, missing {sorted(missing)}")
    for key in required:
        if content[key].dtype != np.uint8:
            raise IDXFormatError(f"{ref}: {key} dtype: expected uint8, found {content[key].dtype}")
    splits = MNISTSplits(**{k: content.pop(k) for k in FILES})
    for split in ("train", "test"):
        _validate_pair(
            getattr(splits, f"x_{split}"),
            getattr(splits, f"y_{split}"),
            f"{ref}[x_{split}]",
            f"{ref}[y_{split}]",
        )
    return splits, content


def load_builtin_mnist(*, dtype: npt.DTypeLike = np.float64, flat: bool = True) -> MNISTSplits:
    """Load the class-balanced MNIST subset bundled with the package.

    The subset holds 5000 training images (500 per class) drawn from the
    MNIST training set and 1000 test images (100 per class) drawn from the
    MNIST test set, selected with a seeded :class:`numpy.random.Generator`
    by :mod:`lowrank_ode.data.make_subset` and kept in original file order.
    The source indices and seed are recorded in ``MNIST_ATTRIBUTION.md`` and
    in the ``.npz`` file itself. It works offline and needs no download.

    Parameters
    ----------
    dtype : dtype-like, default numpy.float64
        Floating-point dtype of the images.
    flat : bool, default True
        Images as (N, 784) if True, else (N, 1, 28, 28).

    Returns
    -------
    MNISTSplits
        ``(x_train, y_train, x_test, y_test)`` with images in [0, 1] and
        int64 labels, as in :func:`load_mnist`.

    Raises
    ------
    IDXFormatError
        If the bundled file is damaged (wrong keys, dtypes, shapes or labels).
    """
    splits, _ = _load_builtin_raw()
    return _to_output(splits, dtype, flat)
