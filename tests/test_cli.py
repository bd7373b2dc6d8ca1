"""Smoke tests of the command line on tiny data (no network, no full MNIST)."""

import json
import sys

import numpy as np
import pytest

from lowrank_ode.cli import main
from lowrank_ode.data import write_idx


def _tiny_mnist(directory, n_train=64, n_test=32, seed=0):
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = (rng.random((n, 28, 28)) * 60).astype(np.uint8)
        images[np.arange(n), labels * 2, :] = 255  # a learnable stripe per class
        write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", labels)


def test_train_cli_on_tiny_idx_dataset(tmp_path, capsys):
    _tiny_mnist(tmp_path)
    out = tmp_path / "res.json"
    ck = tmp_path / "ck.npz"
    rc = main(
        [
            "train",
            "--data",
            str(tmp_path),
            "--widths",
            "784,32,16,10",
            "--rank",
            "8",
            "--method",
            "dlrt-adaptive",
            "--tau",
            "0.1",
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--finetune-epochs",
            "0",
            "--json",
            str(out),
            "--checkpoint",
            str(ck),
            "--quiet",
        ]
    )
    assert rc == 0
    res = json.loads(out.read_text())
    for key in (
        "test_accuracy",
        "ranks",
        "compression_eval",
        "compression_train",
        "seconds_per_epoch",
        "history",
    ):
        assert key in res
    assert len(res["history"]) == 2 and ck.exists()
    printed = capsys.readouterr().out
    assert "test%" in printed and "ranks" in printed
    # resuming a finished run trains nothing more and reports the same history
    args = [
        "train",
        "--data",
        str(tmp_path),
        "--widths",
        "784,32,16,10",
        "--rank",
        "8",
        "--method",
        "dlrt-adaptive",
        "--tau",
        "0.1",
        "--batch-size",
        "16",
        "--finetune-epochs",
        "0",
        "--json",
        str(out),
        "--checkpoint",
        str(ck),
        "--resume",
        "--quiet",
    ]
    assert main(args + ["--epochs", "2"]) == 0
    assert json.loads(out.read_text())["history"] == res["history"]
    # extending the run by one epoch continues from the checkpoint
    assert main(args + ["--epochs", "3"]) == 0
    hist = json.loads(out.read_text())["history"]
    assert len(hist) == 3 and hist[:2] == res["history"]
    with pytest.raises(SystemExit) as info:  # a bad argument: one line on stderr, exit 2
        main(args + ["--epochs", "3", "--tau", "0.2"])
    assert info.value.code == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "cannot resume" in err and "tau=0.2 differs" in err


def test_demo_cli_quick(tmp_path):
    assert main(["demo", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "demo.json").read_text())
    assert (tmp_path / "demo.png").stat().st_size > 0
    # robust methods sit near the best approximation; the direct factor ODE does not beat them
    assert max(res["bug"]["error"]) < 10 * res["best_approximation"]


def test_train_cli_init_option(tmp_path):
    """--init product reaches TrainConfig.init_core (stored in the JSON's config)."""
    _tiny_mnist(tmp_path)
    out = tmp_path / "res.json"
    argv = ["train", "--data", str(tmp_path), "--widths", "784,32,10", "--rank", "8"]
    argv += ["--epochs", "1", "--finetune-epochs", "0", "--batch-size", "16"]
    argv += ["--init", "product", "--quiet"]
    assert main(argv + ["--json", str(out)]) == 0
    cfg = json.loads(out.read_text())["config"]
    assert cfg["init_core"] == "product"
    assert cfg["method"] == "dlrt-adaptive" and cfg["tau"] == 0.11  # the documented default
    with pytest.raises(SystemExit):
        main(argv[:-3] + ["--init", "zeros"])


def _subparsers():
    import argparse

    from lowrank_ode.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices


def test_every_cli_option_has_a_help_line_and_shows_its_default():
    import argparse

    for name, sp in _subparsers().items():
        text = "".join(sp.format_help().split())  # argparse wraps lines, also at hyphens
        for action in sp._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            where = f"lowrank-ode {name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help, f"{where} has no help line"
            assert "".join(action.help.split()) in text, f"{where}: help line not shown"
            if action.option_strings and "(default:" not in action.help:
                shown = f"(default:{action.default})"
                assert shown in text, f"{where}: --help does not show {shown}"
            elif action.option_strings:  # a model-dependent default, stated in words
                assert action.default is None, f"{where}: states a default beside {action.default}"


def test_reproduce_help_lists_every_study():
    studies = pytest.importorskip("studies")
    text = _subparsers()["reproduce"].format_help()
    for name in studies.STUDIES:
        assert name in text, f"reproduce --help does not list the study {name!r}"


def test_train_cli_array_library(tmp_path, capsys, monkeypatch, no_implicit_host_copy):
    """--array-library array_api_strict on the bundled data gives the NumPy run's numbers and
    records the library; an unknown or unusable library stops with exit status 2, naming it."""
    argv = ["train", "--data", "builtin", "--widths", "784,16,10", "--rank", "4", "--tau", "0.2"]
    argv += ["--epochs", "1", "--finetune-epochs", "1", "--batch-size", "1000"]
    argv += ["--dtype", "float64", "--quiet"]
    runs = {}
    for library in ("numpy", "array_api_strict"):
        out = tmp_path / f"{library}.json"
        assert main([*argv, "--array-library", library, "--json", str(out)]) == 0
        runs[library] = json.loads(out.read_text())
    strict, ref = runs["array_api_strict"], runs["numpy"]
    assert strict["array_library"] == "array_api_strict" and ref["array_library"] == "numpy"
    assert strict["config"] == ref["config"]  # the library is not part of the run's definition
    for h_st, h_np in zip(strict["history"], ref["history"], strict=True):
        assert h_st["ranks"] == h_np["ranks"]
        for key in ("train_loss", "train_accuracy", "test_accuracy"):
            assert h_st[key] == pytest.approx(h_np[key], rel=1e-10), key
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([*argv, "--array-library", "torch"])
    assert info.value.code == 2 and "invalid choice: 'torch'" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "cupy", None)  # as if CuPy were not installed
    with pytest.raises(SystemExit) as info:
        main([*argv, "--array-library", "cupy"])
    err = capsys.readouterr().err.replace("\n", " ")
    assert info.value.code == 2 and "--array-library cupy needs CuPy" in err
