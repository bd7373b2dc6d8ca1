"""The command line under bad arguments: one argparse-style line, exit 2, never a traceback.

Run as a subprocess, as a user would.
"""

import subprocess
import sys

import pytest


def _train(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "lowrank_ode", "train", "--quiet", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def _assert_usage_error(proc, *fragments):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("lowrank-ode train: error: "), proc.stderr
    for f in fragments:
        assert f in last, (f, last)
    assert proc.stdout == ""  # nothing ran


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["--widths", "abc"], ["--widths", "'abc'"]),
        (["--widths", "784"], ["--widths", "'784'"]),
        (["--widths", "784,0,10"], ["--widths", "'784,0,10'"]),
        (["--model", "lenet5", "--widths", "784,10"], ["--widths", "--model lenet5"]),
        (["--resume"], ["--resume needs --checkpoint"]),
        (["--resume", "--checkpoint", "nope.npz"], ["--resume", "'nope.npz' does not exist"]),
        (["--json", "/proc/x.json"], ["--json", "'/proc/x.json'", "not writable"]),
        (["--checkpoint", "/proc/ck.npz"], ["--checkpoint", "'/proc/ck.npz'", "not writable"]),
        (["--json", "."], ["--json", "folder '.'"]),
        (["--tau", "2"], ["tau must satisfy 0 <= tau < 1, got 2.0"]),
        (["--lr", "-1"], ["lr must be a finite number > 0, got -1.0"]),
        (["--lr", "nan"], ["lr must be a finite number > 0, got nan"]),
        (["--epochs", "-1"], ["epochs must be an integer >= 0, got -1"]),
        (["--rank", "0"], ["rank must be an integer >= 1, got 0"]),
        (["--batch-size", "0"], ["batch_size must be an integer >= 1, got 0"]),
        (["--rank", "two"], ["--rank", "'two'"]),
        (["--method", "sgd"], ["--method", "'sgd'"]),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, args, fragments):
    _assert_usage_error(_train(*args, cwd=tmp_path), *fragments)


def test_outputs_checked_before_training(tmp_path, tiny_mnist):
    """A bad --json is refused before the first step: no checkpoint gets written."""
    ck = tmp_path / "ck.npz"
    proc = _train(
        "--data",
        str(tiny_mnist),
        "--widths",
        "784,16,10",
        "--rank",
        "4",
        "--epochs",
        "1",
        "--checkpoint",
        str(ck),
        "--json",
        "/proc/out.json",
    )
    _assert_usage_error(proc, "--json")
    assert not ck.exists()


def test_corrupt_checkpoint_on_resume(tmp_path, tiny_mnist):
    ck = tmp_path / "ck.npz"
    ck.write_bytes(b"garbage")
    proc = _train(
        "--data",
        str(tiny_mnist),
        "--widths",
        "784,16,10",
        "--rank",
        "4",
        "--checkpoint",
        str(ck),
        "--resume",
    )
    _assert_usage_error(proc, "not a readable .npz file")


def test_divergence_exits_1_with_one_line(tmp_path, tiny_mnist):
    ck = tmp_path / "ck.npz"
    proc = _train(
        "--data",
        str(tiny_mnist),
        "--widths",
        "784,16,10",
        "--rank",
        "4",
        "--epochs",
        "2",
        "--optimizer",
        "sgd",
        "--lr",
        "1e6",
        "--batch-size",
        "16",
        "--checkpoint",
        str(ck),
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "lowrank-ode train: error:" in proc.stderr and "lr=1000000.0" in proc.stderr
    assert not ck.exists()  # diverged in the first epoch: nothing good to keep
