"""Reads the full MNIST files when available (skipped otherwise; never downloads).

Looked for, in order: ``$LOWRANK_ODE_DATA`` (as set when this module is
imported, since the other tests clear it) and ``../shared/data/mnist``
relative to the repository root.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from lowrank_ode.data import load_mnist
from lowrank_ode.data.mnist import find_mnist_files

REPO_ROOT = Path(__file__).resolve().parents[2]
CANDIDATES = [Path(p) for p in (os.environ.get("LOWRANK_ODE_DATA", "").strip(),) if p] + [
    REPO_ROOT.parent / "shared" / "data" / "mnist"
]

# Per-class counts of the canonical MNIST files (shared/data/mnist/README.md).
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _full_dir() -> Path:
    for d in CANDIDATES:
        if find_mnist_files(d) is not None:
            return d
    pytest.skip(
        "full MNIST files not found in "
        + " or ".join(str(d) for d in CANDIDATES)
        + " (set LOWRANK_ODE_DATA to a directory with the four canonical IDX files)"
    )


def test_full_mnist_counts() -> None:
    d = _full_dir()
    x_train, y_train, x_test, y_test = load_mnist(d, download=False, dtype=np.float32)
    assert x_train.shape == (60000, 784) and x_test.shape == (10000, 784)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert np.bincount(y_train, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test, minlength=10).tolist() == TEST_COUNTS
    assert sum(TRAIN_COUNTS) == 60000 and sum(TEST_COUNTS) == 10000


def test_builtin_subset_matches_full_files() -> None:
    d = _full_dir()
    from importlib import resources

    from lowrank_ode.data import load_mnist_raw

    full = load_mnist_raw(d, download=False)
    ref = resources.files("lowrank_ode.data") / "mnist_subset.npz"
    with resources.as_file(ref) as p, np.load(p, allow_pickle=False) as z:
        tr, te = z["train_indices"], z["test_indices"]
        np.testing.assert_array_equal(z["x_train"], full.x_train[tr])
        np.testing.assert_array_equal(z["y_train"], full.y_train[tr])
        np.testing.assert_array_equal(z["x_test"], full.x_test[te])
        np.testing.assert_array_equal(z["y_test"], full.y_test[te])
