"""Fixtures for the data-layer tests: tiny MNIST-like IDX directories."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lowrank_ode.data import write_idx

MakeMnistDir = Callable[..., Path]


@pytest.fixture
def make_mnist_dir(tmp_path: Path) -> MakeMnistDir:
    """Return a factory writing four tiny canonical MNIST files into a directory.

    The factory takes ``n_train``, ``n_test``, ``gzip`` and ``subdir`` and
    returns the directory; the arrays written are attached as
    ``factory.arrays`` (uint8).
    """

    def factory(
        n_train: int = 20, n_test: int = 10, *, gzip: bool = True, subdir: str = "mnist_tiny"
    ) -> Path:
        rng = np.random.default_rng(1234)
        d = tmp_path / subdir
        d.mkdir(parents=True, exist_ok=True)
        arrays = {
            "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
            "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            "t10k-labels-idx1-ubyte": (np.arange(n_test)[::-1] % 10).astype(np.uint8),
        }
        # Make sure 0 and 255 occur so the [0, 1] scaling is checked at both ends.
        arrays["train-images-idx3-ubyte"][0, 0, :2] = (0, 255)
        for stem, arr in arrays.items():
            write_idx(d / (stem + (".gz" if gzip else "")), arr, gzip=gzip)
        factory.arrays = arrays  # type: ignore[attr-defined]
        return d

    return factory


@pytest.fixture(autouse=True)
def _no_env_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's LOWRANK_ODE_DATA from leaking into the tests."""
    monkeypatch.delenv("LOWRANK_ODE_DATA", raising=False)
