"""Build the bundled MNIST subset ``mnist_subset.npz`` and its attribution file.

Usage::

    python -m lowrank_ode.data.make_subset SRC_DIR [--n-train 5000] [--n-test 1000]
        [--seed 0] [--out PATH] [--attribution PATH]

``SRC_DIR`` must hold the four canonical MNIST IDX files (gzipped or raw).
The selection is class balanced: for each digit 0..9 in turn, first for the
training set and then for the test set, ``n // 10`` indices are drawn
without replacement from that class with a single
``numpy.random.default_rng(seed)``; the chosen indices are then sorted, so
the subset keeps the original file order. The ``.npz`` file (written with
:func:`numpy.savez_compressed`, no pickled objects) holds

============== ============== ===========================================
key            dtype, shape   content
============== ============== ===========================================
x_train        uint8 (n,28,28) training images
y_train        uint8 (n,)      training labels
x_test         uint8 (m,28,28) test images
y_test         uint8 (m,)      test labels
train_indices  int64 (n,)      indices into the full training files
test_indices   int64 (m,)      indices into the full test files
seed           int64 ()        the generator seed
============== ============== ===========================================
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .._io import atomic_open, write_text_atomic
from .mnist import FILES, N_CLASSES, find_mnist_files, load_mnist_raw

__all__ = ["balanced_indices", "build_subset", "main"]

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = PACKAGE_DIR / "mnist_subset.npz"
DEFAULT_ATTRIBUTION = PACKAGE_DIR / "MNIST_ATTRIBUTION.md"

#: MD5 of the *decompressed* canonical MNIST files.
DECOMPRESSED_MD5: dict[str, str] = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


def balanced_indices(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw a class-balanced, sorted set of indices.

    Parameters
    ----------
    labels : numpy.ndarray
        1-d array of labels in ``0..9``.
    n : int
        Total number of indices; must be a multiple of 10.
    rng : numpy.random.Generator
        Source of randomness; classes are drawn in order 0, 1, ..., 9.

    Returns
    -------
    numpy.ndarray
        Sorted int64 array of ``n`` distinct indices, ``n // 10`` per class.

    Raises
    ------
    ValueError
        If ``n`` is not a positive multiple of 10 or a class has too few
        examples.
    """
    if n <= 0 or n % N_CLASSES:
        raise ValueError(f"n must be a positive multiple of {N_CLASSES}, got {n}")
    per_class = n // N_CLASSES
    chosen = []
    for c in range(N_CLASSES):
        pool = np.flatnonzero(labels == c)
        if pool.size < per_class:
            raise ValueError(f"class {c}: need {per_class} examples, found {pool.size}")
        chosen.append(rng.choice(pool, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def _decompressed_md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as raw:
        is_gzip = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        f: BinaryIO = gzip.GzipFile(fileobj=raw, mode="rb") if is_gzip else raw
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _format_indices(indices: np.ndarray) -> str:
    return textwrap.fill(" ".join(map(str, indices.tolist())), width=100)


def build_subset(
    src_dir: str | os.PathLike[str],
    *,
    n_train: int = 5000,
    n_test: int = 1000,
    seed: int = 0,
    out: str | os.PathLike[str] = DEFAULT_OUT,
    attribution: str | os.PathLike[str] | None = DEFAULT_ATTRIBUTION,
) -> dict[str, np.ndarray]:
    """Select a class-balanced subset of MNIST and save it.

    Parameters
    ----------
    src_dir : str or os.PathLike
        Directory with the four canonical MNIST files (never downloads).
    n_train, n_test : int
        Subset sizes, multiples of 10.
    seed : int
        Seed of the :class:`numpy.random.Generator`.
    out : str or os.PathLike
        Destination ``.npz`` file (written atomically).
    attribution : str or os.PathLike or None
        Destination of the Markdown attribution/provenance file, or None to
        skip it.

    Returns
    -------
    dict of str to numpy.ndarray
        The arrays that were saved (see module docstring).
    """
    src = Path(src_dir)
    full = load_mnist_raw(src, download=False)
    files = find_mnist_files(src)
    assert files is not None  # load_mnist_raw succeeded
    checks = {}
    for key, stem in FILES.items():
        got = _decompressed_md5(files[key])
        checks[stem] = (got, got == DECOMPRESSED_MD5[stem])
        if got != DECOMPRESSED_MD5[stem]:
            print(
                f"warning: {files[key]}: decompressed md5 {got} differs from the canonical "
                f"{DECOMPRESSED_MD5[stem]}",
                file=sys.stderr,
            )

    rng = np.random.default_rng(seed)
    train_idx = balanced_indices(full.y_train, n_train, rng)
    test_idx = balanced_indices(full.y_test, n_test, rng)
    arrays = {
        "x_train": full.x_train[train_idx],
        "y_train": full.y_train[train_idx],
        "x_test": full.x_test[test_idx],
        "y_test": full.y_test[test_idx],
        "train_indices": train_idx,
        "test_indices": test_idx,
        "seed": np.array(seed, dtype=np.int64),
    }
    out = Path(out)
    with atomic_open(out, "wb") as f:
        np.savez_compressed(f, **arrays)

    if attribution is not None:
        md5_rows = "\n".join(
            f"| {stem} | {md5} | {'yes' if ok else 'NO'} |" for stem, (md5, ok) in checks.items()
        )
        command = (
            f"python -m lowrank_ode.data.make_subset SRC_DIR "
            f"--n-train {n_train} --n-test {n_test} --seed {seed}"
        )
        text = f"""\
# MNIST subset: attribution and provenance

`{out.name}` contains a subset of the **MNIST database of handwritten digits** by
Yann LeCun, Corinna Cortes and Christopher J. C. Burges
(<http://yann.lecun.com/exdb/mnist/>), licensed under the Creative Commons
Attribution-Share Alike 3.0 license (CC BY-SA 3.0,
<https://creativecommons.org/licenses/by-sa/3.0/>). The subset is a derivative
of MNIST and is distributed under the same license. The pixel values and labels
are unchanged; only a selection of the examples is included.

## Content

| key | dtype | shape | content |
|---|---|---|---|
| x_train | uint8 | ({n_train}, 28, 28) | training images, {n_train // N_CLASSES} per class |
| y_train | uint8 | ({n_train},) | training labels |
| x_test | uint8 | ({n_test}, 28, 28) | test images, {n_test // N_CLASSES} per class |
| y_test | uint8 | ({n_test},) | test labels |
| train_indices | int64 | ({n_train},) | indices into the 60,000 MNIST training examples |
| test_indices | int64 | ({n_test},) | indices into the 10,000 MNIST test examples |
| seed | int64 | () | generator seed ({seed}) |

Load it with `lowrank_ode.data.load_builtin_mnist()` or
`lowrank_ode.data.load_mnist(subset="builtin")`.

## How it was made

    {command}

with `numpy.random.default_rng({seed})` (NumPy {np.__version__}): for each digit
0, 1, ..., 9 in turn, {n_train // N_CLASSES} indices were drawn without
replacement from the training examples of that digit, then likewise
{n_test // N_CLASSES} per digit from the test examples (same generator); each
index set was then sorted, so the examples keep their original order.
Indices are 0-based positions in the canonical files
`train-images-idx3-ubyte` / `t10k-images-idx3-ubyte`.

Source files (MD5 of the decompressed content; "matches" compares with the
canonical values):

| file | md5 | matches |
|---|---|---|
{md5_rows}

## Training indices ({n_train})

```
{_format_indices(train_idx)}
```

## Test indices ({n_test})

```
{_format_indices(test_idx)}
```
"""
        write_text_atomic(attribution, text)
    return arrays


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; see the module docstring.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status (0 on success).
    """
    parser = argparse.ArgumentParser(
        prog="python -m lowrank_ode.data.make_subset",
        description="Build the bundled class-balanced MNIST subset.",
    )
    parser.add_argument("src_dir", help="directory with the four canonical MNIST IDX files")
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--attribution", default=str(DEFAULT_ATTRIBUTION))
    args = parser.parse_args(argv)
    arrays = build_subset(
        args.src_dir,
        n_train=args.n_train,
        n_test=args.n_test,
        seed=args.seed,
        out=args.out,
        attribution=args.attribution,
    )
    size = os.path.getsize(args.out)
    print(
        f"wrote {args.out} ({size} bytes): train {arrays['x_train'].shape}, "
        f"test {arrays['x_test'].shape}; attribution {args.attribution}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
