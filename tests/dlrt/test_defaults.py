"""Defaults are the paper's recipe per model, and the CLI shows them."""

import subprocess
import sys

import pytest

from lowrank_ode.dlrt import PAPER_DEFAULTS, TrainConfig


def test_mlp_defaults_are_table_1_recipe():
    cfg = TrainConfig()
    assert (cfg.model, cfg.method, cfg.tau) == ("mlp", "dlrt-adaptive", 0.11)
    assert (cfg.optimizer, cfg.lr, cfg.batch_size) == ("adam", 1e-3, 256)
    assert (cfg.rank, cfg.init_core, cfg.dtype) == (100, "product", "float32")
    assert (cfg.epochs, cfg.finetune_epochs) == (20, 5)


def test_lenet_defaults_are_the_official_lenet_recipe():
    cfg = TrainConfig(model="lenet5")
    assert (cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs) == ("sgd", 0.05, 128, 20)
    assert (cfg.init_core, cfg.rank, cfg.finetune_epochs) == ("halfnormal", 500, 0)
    assert (cfg.max_rank_fraction, cfg.min_rank) == (0.5, 2)


def test_lenet_adaptive_starts_at_the_official_half_rank():
    """Official layers: start rank and cap ⌊min(n, m)/2⌋ (10, 25, 250) for the adaptive method,
    min(rank, n, m) for the fixed-rank ones; half-normal spectrum on Haar bases."""
    import numpy as np

    from lowrank_ode.dlrt.train import build_model

    model = build_model(TrainConfig(model="lenet5", method="dlrt-adaptive", dtype="float64"))
    layers = model.low_rank_layers()
    assert [m.U.shape[1] for m in layers] == [10, 25, 250]
    for m in layers:
        r = m.U.shape[1]
        np.testing.assert_allclose(m.U.T @ m.U, np.eye(r), atol=1e-12)
        np.testing.assert_allclose(m.V.T @ m.V, np.eye(r), atol=1e-12)
        s = np.diag(m.S)
        assert np.all(s[:-1] >= s[1:]) and s[-1] > 0
        assert np.count_nonzero(m.S - np.diag(s)) == 0
    fixed = build_model(TrainConfig(model="lenet5", method="dlrt", rank=20, dtype="float64"))
    assert [m.U.shape[1] for m in fixed.low_rank_layers()] == [20, 20, 20]
    capped = TrainConfig(model="lenet5", method="dlrt-adaptive", max_rank_fraction=1.0)
    assert [m.U.shape[1] for m in build_model(capped).low_rank_layers()] == [20, 50, 500]


def test_lenet_adaptive_ranks_never_exceed_the_cap():
    """The truncation of the adaptive step keeps every layer within ⌊0.5·min(n, m)⌋ even with a
    tolerance that would keep every direction (τ = 0)."""
    import numpy as np

    from lowrank_ode.dlrt import Trainer

    rng = np.random.default_rng(0)
    x = rng.random((64, 1, 28, 28))
    y = rng.integers(0, 10, 64)
    cfg = TrainConfig(
        model="lenet5", method="dlrt-adaptive", tau=0.0, epochs=1, batch_size=32, dtype="float64"
    )
    tr = Trainer(cfg, (x, y, x[:16], y[:16]), progress=False)
    tr.fit()
    assert [m.U.shape[1] for m in tr.model.low_rank_layers()] == [10, 25, 250]


@pytest.mark.parametrize("method", ["dense", "dlrt", "vanilla", "dlrt-single-pass"])
def test_only_the_adaptive_method_gets_tau_and_finetuning(method):
    cfg = TrainConfig(method=method)
    assert cfg.tau is None and cfg.finetune_epochs == 0


def test_explicit_values_win_and_are_stored():
    cfg = TrainConfig(model="lenet5", optimizer="adam", lr=1e-3, finetune_epochs=2)
    assert (cfg.optimizer, cfg.lr, cfg.finetune_epochs) == ("adam", 1e-3, 2)
    assert TrainConfig(**cfg.__dict__) == cfg  # resolved values round-trip (checkpoints)


def test_every_model_default_is_resolved():
    for model in PAPER_DEFAULTS:
        cfg = TrainConfig(model=model)
        assert all(v is not None for k, v in cfg.__dict__.items() if k in PAPER_DEFAULTS[model])


def test_cli_help_shows_defaults():
    out = subprocess.run(
        [sys.executable, "-m", "lowrank_ode", "train", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for text in ("MLP 256, LeNet-5 128", "MLP 1e-3, LeNet-5 0.05", "default: float32", "--threads"):
        assert text in " ".join(out.split()), text
