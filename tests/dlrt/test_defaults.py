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
    assert (cfg.init_core, cfg.rank, cfg.finetune_epochs) == ("svd", 500, 0)


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
