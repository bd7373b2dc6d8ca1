"""Shared fixtures of the reliability suite: tiny synthetic data and configurations."""

import numpy as np
import pytest
from dlrt_helpers import tiny_cfg as make_cfg
from dlrt_helpers import tiny_data as make_data


@pytest.fixture
def data():
    return make_data()


@pytest.fixture
def cfg():
    return make_cfg


@pytest.fixture
def tiny_mnist(tmp_path):
    """A folder with four tiny IDX files in the MNIST layout (64 + 32 images)."""
    from lowrank_ode.data import write_idx

    rng = np.random.default_rng(0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    for prefix, n in (("train", 64), ("t10k", 32)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = (rng.random((n, 28, 28)) * 60).astype(np.uint8)
        images[np.arange(n), labels * 2, :] = 255
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder
