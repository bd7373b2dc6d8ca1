"""Shared fixtures of the reliability suite: tiny synthetic data and configurations."""

import numpy as np
import pytest

from lowrank_ode.dlrt import TrainConfig


def make_data(n_train=96, n_test=40, d=20, classes=4, seed=0):
    """A small separable-ish classification problem (no MNIST needed)."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((classes, d))
    x = rng.standard_normal((n_train + n_test, d))
    y = np.argmax(x @ W.T + 0.3 * rng.standard_normal((n_train + n_test, classes)), axis=1)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def make_cfg(**kw):
    base = dict(
        widths=(20, 16, 12, 4), rank=6, epochs=1, batch_size=32, lr=0.05, optimizer="sgd", tau=0.1
    )
    base.update(dtype="float64", init_core="svd", finetune_epochs=0)
    base.update(kw)
    return TrainConfig(**base)


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
