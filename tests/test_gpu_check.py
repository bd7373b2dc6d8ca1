"""benchmarks/gpu_check.py: a clear stop without CuPy, and a CPU dry run of the whole script."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks/gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_without_cupy_it_stops_clearly(capsys):
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed here")
    assert _load().main([]) == 2
    err = capsys.readouterr().err
    assert "CuPy is not installed" in err and "nothing was checked" in err


def test_dry_run_prints_the_table(capsys):
    """The script end to end on array-api-strict (CPU), the test step left out."""
    assert (
        _load().main(["--array-library", "array_api_strict", "--skip-tests", "--repeats", "1"]) == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("## GPU check on CPU (array-api-strict dry run")
    assert "one DLRT epoch through Trainer.fit (MLP" in out and "rank 16: train step (ms)" in out
    assert "one DLRT epoch through Trainer.fit (LeNet-5" in out
    assert "width 64, batch 500, dense: predict step (ms)" in out
