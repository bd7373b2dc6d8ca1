"""Every study configuration is one ``lowrank-ode train`` command that parses back to itself."""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict

import numpy as np
import pytest

from lowrank_ode.cli import build_parser, main
from lowrank_ode.data import write_idx
from lowrank_ode.dlrt import TrainConfig
from lowrank_ode.dlrt.cli import config_from_args, train_command


def _parse_back(argv: list[str]) -> TrainConfig:
    assert argv[:2] == ["lowrank-ode", "train"]
    return config_from_args(build_parser().parse_args(argv[1:]))


def _study_configs() -> dict[str, TrainConfig]:
    from studies import mnist_dlrt, mnist_robustness

    cfgs: dict[str, TrainConfig] = {}
    for quick in (True, False):
        for mod in (mnist_dlrt, mnist_robustness):
            for name, cfg in mod.configs(quick).items():
                cfgs[f"{mod.__name__}:{'quick' if quick else 'full'}:{name}"] = cfg
    return cfgs


STUDY_CONFIGS = _study_configs()


@pytest.mark.parametrize("name", sorted(STUDY_CONFIGS))
def test_study_config_round_trips(name):
    """Rendering a study's TrainConfig and parsing the command back gives the same config."""
    cfg = STUDY_CONFIGS[name]
    argv = train_command(cfg, data="")
    assert _parse_back(argv) == cfg
    assert shlex.split(shlex.join(argv)) == argv  # survives the shell


@pytest.mark.parametrize(
    "cfg",
    [
        TrainConfig(),
        TrainConfig(method="dlrt-adaptive", tau=None, atol=0.5, max_rank=30, min_rank=2),
        TrainConfig(method="dlrt", tau=None, rank=7, optimizer="momentum", momentum=0.5),
        TrainConfig(model="lenet5", method="vanilla", rank=20, decay=2.0, lr=0.01, epochs=20),
        TrainConfig(init_core="product", init_std=0.01, dtype="float32", lr=3e-5, seed=4),
        TrainConfig(method="dense", widths=(784, 64, 10), finetune_epochs=3, batch_size=32),
    ],
)
def test_hand_configs_round_trip(cfg):
    assert _parse_back(train_command(cfg)) == cfg


def test_command_names_only_what_differs_from_the_cli_defaults():
    cfg = TrainConfig(model="lenet5", method="dlrt", rank=20, epochs=2, decay=10.0)
    argv = train_command(cfg, data="builtin", extra=("--json", "out.json"))
    # fixed-rank methods take no tau; epochs differ from the default 20, the rest is default
    assert argv == [
        "lowrank-ode",
        "train",
        "--model",
        "lenet5",
        "--method",
        "dlrt",
        "--rank",
        "20",
        "--epochs",
        "2",
        "--decay",
        "10.0",
        "--data",
        "builtin",
        "--json",
        "out.json",
    ]


def test_inexpressible_config_is_refused():
    cfg = TrainConfig()
    cfg.momentum = None  # no command line sets it back to None
    with pytest.raises(ValueError, match="momentum"):
        train_command(cfg)


def test_decay_option_reaches_the_run(tmp_path):
    """``--decay`` prescribes the initial spectrum: a 1-epoch run stores it in its config."""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 64), ("t10k", 32)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = (rng.random((n, 28, 28)) * 255).astype(np.uint8)
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels)
    out = tmp_path / "res.json"
    cfg = TrainConfig(
        method="dlrt", widths=(784, 32, 10), rank=8, epochs=1, batch_size=16, decay=10.0
    )
    argv = train_command(cfg, data=str(tmp_path), extra=("--json", str(out), "--quiet"))
    assert main(argv[1:]) == 0
    saved = json.loads(out.read_text())["config"]
    assert saved["decay"] == 10.0
    saved["widths"] = tuple(saved["widths"])
    assert saved == asdict(cfg)
