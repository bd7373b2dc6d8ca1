"""Small synthetic data and configurations shared by the DLRT tests."""

import numpy as np

from lowrank_ode.dlrt import TrainConfig


def tiny_data(n_train=96, n_test=40, d=20, classes=4, seed=0):
    """A linearly separable-ish synthetic problem (no network, no MNIST needed)."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((classes, d))
    x = rng.standard_normal((n_train + n_test, d))
    y = np.argmax(x @ W.T + 0.3 * rng.standard_normal((n_train + n_test, classes)), axis=1)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def tiny_cfg(**kw):
    base = dict(
        widths=(20, 16, 12, 4), rank=6, epochs=1, batch_size=32, lr=0.05, optimizer="sgd", tau=0.1
    )
    base.update(dtype="float64", init_core="svd", finetune_epochs=0)
    base.update(kw)
    return TrainConfig(**base)
