"""The integrator benchmark runs at tiny sizes and its two paths print the same errors."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(
    r"^(?P<method>[A-Za-z -]+?)\s+(?P<path>reduced|generic)\s+(?P<seconds>\S+)\s+"
    r"(?P<error>\S+)\s+(?P<rank>\d+)\s+(?P<evals>\d+)\s*(?P<diff>\S+)?$"
)


def _load():
    path = ROOT / "benchmarks/bench_integrators.py"
    spec = importlib.util.spec_from_file_location("bench_integrators", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # the dataclass looks its module up there
    spec.loader.exec_module(bench)
    return bench


def test_quick_benchmark_paths_agree(capsys):
    """``--quick``: every method of both experiments runs on both paths; the printed errors,
    ranks and evaluation counts of the reduced and generic paths agree, and so do the results
    (the printed distance)."""
    assert _load().main(["--quick", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "BLAS threads: policy 1" in out
    rows: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
    experiment = None
    for line in out.splitlines():
        if line.startswith(("toy", "Lyapunov")):
            experiment = line.split()[0]
        m = ROW.match(line)
        if m:
            rows.setdefault((experiment, m["method"].strip()), {})[m["path"]] = m.groupdict()
    assert len(rows) == 2 * 5
    for key, paths in rows.items():
        red, gen = paths["reduced"], paths["generic"]
        e_red, e_gen = float(red["error"]), float(gen["error"])
        assert abs(e_red - e_gen) <= 1e-7 * e_gen, key
        assert 0 < e_gen < 0.05, key
        assert (red["rank"], red["evals"]) == (gen["rank"], gen["evals"]), key
        assert float(red["diff"]) <= 1e-12, key
