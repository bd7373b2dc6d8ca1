"""The resumable grid runner (serial) and its Dask path against a real local scheduler."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from lowrank_ode.dlrt import TrainConfig, Trainer
from lowrank_ode.dlrt.cli import load_data
from studies import _runner, mnist_dlrt, mnist_robustness
from studies._runner import GRID_KEY, run_grid, run_id, train_command

ROOT = Path(__file__).resolve().parents[2]
TINY = dict(model="mlp", widths=(784, 16, 10), optimizer="adam", lr=5e-3, batch_size=256)
TINY.update(finetune_epochs=0, init_core="svd", dtype="float64")  # the runs these tests expect


def tiny_grid(epochs: int = 2) -> dict[str, TrainConfig]:
    """Three small runs named as the quick MNIST grid (its checks apply to them)."""
    return {
        "mlp_dense": TrainConfig(**TINY, method="dense", epochs=epochs),
        "mlp_rank20": TrainConfig(**TINY, method="dlrt", rank=4, epochs=epochs),
        "mlp_tau0.2": TrainConfig(**TINY, method="dlrt-adaptive", tau=0.2, rank=8, epochs=epochs),
    }


def numbers(run: dict) -> dict:
    """A stored run without its timings and provenance (what must agree between two runs)."""
    out = {k: v for k, v in run.items() if k not in _runner.volatile_keys()}
    out["history"] = [{k: v for k, v in h.items() if k != "seconds"} for h in run["history"]]
    return out


def stored(folder: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json") if p.stem != GRID_KEY}


# ----------------------------------------------------------------------------- commands
@pytest.mark.parametrize("quick", [True, False])
def test_train_command_round_trips(quick):
    """Every grid run's stored command names every field and parses back to the run's config."""
    from lowrank_ode.cli import build_parser
    from lowrank_ode.dlrt.cli import config_from_args

    grids = {**mnist_dlrt.configs(quick), **mnist_robustness.configs(quick)}
    for cfg in grids.values():
        cmd = train_command(cfg, "builtin")
        words = shlex.split(cmd)
        assert words[:2] == ["lowrank-ode", "train"] and words[-2:] == ["--data", "builtin"]
        args = build_parser().parse_args(words[1:])
        assert config_from_args(args) == cfg, cmd
        # written out in full: the command keeps its meaning when a default changes
        for flag in ("--model", "--method", "--epochs", "--lr", "--dtype", "--init"):
            assert flag in words, (cmd, flag)
    assert len(grids) >= 4


def test_train_command_names_fields_without_a_default_meaning():
    cmd = shlex.split(train_command(TrainConfig(momentum=0.5, optimizer="momentum"), "builtin"))
    assert cmd[cmd.index("--momentum") + 1] == "0.5"


def test_run_id_is_stable_and_config_specific():
    a, b = TrainConfig(seed=0), TrainConfig(seed=1)
    assert run_id(a, "builtin") == run_id(TrainConfig(seed=0), "builtin")
    assert len({run_id(a, "builtin"), run_id(b, "builtin"), run_id(a, "/data/mnist")}) == 3


# ----------------------------------------------------------------------------- serial runner
@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The tiny grid run serially (the reference of the Dask tests)."""
    out = tmp_path_factory.mktemp("serial")
    res = run_grid(tiny_grid(), out, "builtin", progress=False)
    assert res[GRID_KEY]["state"] == "complete"
    return stored(out)


def test_serial_runs_store_command_code_history(serial):
    assert set(serial) == set(tiny_grid())
    for name, run in serial.items():
        cfg = tiny_grid()[name]
        assert run["command"] == train_command(cfg, "builtin")
        assert run["run_id"] == run_id(cfg, "builtin")
        assert run["code"] and run["resumed_from"] == 0
        assert run["threads"]["threads"] == 1  # one BLAS thread, as on a Dask worker
        assert [h["epoch"] for h in run["history"]] == [1, 2]
        assert TrainConfig(**{**run["config"], "widths": tuple(run["config"]["widths"])}) == cfg


@pytest.mark.parametrize("name", ["mlp_rank20", "mlp_tau0.2"])
def test_stored_command_reproduces_the_run(tmp_path, serial, name):
    """Running a stored run's command gives its numbers (the runner adds only provenance)."""
    from lowrank_ode.cli import main

    words = shlex.split(serial[name]["command"])
    path = tmp_path / "run.json"
    assert main([*words[1:], "--json", str(path), "--quiet"]) == 0
    again = json.loads(path.read_text())
    stored_run = {k: v for k, v in numbers(serial[name]).items() if k in again}
    assert set(numbers(again)) <= set(numbers(serial[name]))
    assert numbers(again) == stored_run


def test_resume_from_checkpoint_gives_the_same_numbers(tmp_path, serial):
    """A run stopped after epoch 1 resumes from its checkpoint to the uninterrupted numbers."""
    name, cfg = "mlp_tau0.2", tiny_grid()["mlp_tau0.2"]
    ckpt = _runner._checkpoint(tmp_path, name, cfg, "builtin")
    tr = Trainer(cfg, load_data("builtin", "mlp"), checkpoint=ckpt)
    tr.run_epoch()  # "killed" after one epoch: only the checkpoint is left
    assert ckpt.exists() and not (tmp_path / f"{name}.json").exists()
    res = run_grid({name: cfg}, tmp_path, "builtin", progress=False)
    assert res[name]["resumed_from"] == 1
    assert numbers(res[name]) == numbers(serial[name])
    assert not ckpt.exists()  # removed once the result is stored


def test_damaged_checkpoint_is_moved_aside(tmp_path, serial):
    name, cfg = "mlp_dense", tiny_grid()["mlp_dense"]
    ckpt = _runner._checkpoint(tmp_path, name, cfg, "builtin")
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"not an npz file")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        res = run_grid({name: cfg}, tmp_path, "builtin", progress=False)
    assert res[name]["resumed_from"] == 0
    assert numbers(res[name]) == numbers(serial[name])
    assert ckpt.with_name(ckpt.name + ".corrupt").read_bytes() == b"not an npz file"


def test_partial_grid_is_reported_and_resumed(tmp_path, monkeypatch):
    grid = tiny_grid(epochs=1)
    real = _runner.run_one
    calls: list[str] = []

    def flaky(name, *args, **kw):
        calls.append(name)
        if name == "mlp_rank20":
            raise RuntimeError("worker lost")
        return real(name, *args, **kw)

    monkeypatch.setattr(_runner, "run_one", flaky)
    res = run_grid(grid, tmp_path, "builtin", progress=False)
    assert list(res) == ["mlp_dense", "mlp_tau0.2", GRID_KEY]  # the grid order, no failed run
    status = json.loads((tmp_path / "_grid.json").read_text())
    assert status["state"] == res[GRID_KEY]["state"] == "partial"
    assert status["finished"] == 2 and status["total"] == 3
    assert status["pending"] == ["mlp_rank20"] and "worker lost" in status["errors"]["mlp_rank20"]
    assert mnist_dlrt.table(res).startswith("**PARTIAL GRID: 2 of 3 runs finished**")
    with pytest.raises(RuntimeError, match="grid partial: 2 of 3"):
        mnist_dlrt.require_complete(res)

    monkeypatch.setattr(_runner, "run_one", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    calls.clear()
    res = run_grid(grid, tmp_path, "builtin", progress=False)
    assert calls == ["mlp_rank20"]  # the finished runs are skipped
    assert res[GRID_KEY]["state"] == "complete"
    assert "PARTIAL" not in mnist_dlrt.table(res)


def test_changed_config_is_not_taken_as_finished(tmp_path, monkeypatch):
    grid = {"mlp_dense": TrainConfig(**TINY, method="dense", epochs=1)}
    run_grid(grid, tmp_path, "builtin", progress=False)
    longer = {"mlp_dense": replace(grid["mlp_dense"], epochs=2)}

    def interrupted(*args, **kw):
        status = json.loads((tmp_path / "_grid.json").read_text())
        assert status["state"] == "partial"  # on disk while the run is missing
        raise KeyboardInterrupt

    monkeypatch.setattr(_runner, "run_one", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_grid(longer, tmp_path, "builtin", progress=False)
    assert json.loads((tmp_path / "_grid.json").read_text())["state"] == "partial"
    monkeypatch.undo()
    res = run_grid(longer, tmp_path, "builtin", progress=False)
    assert len(res["mlp_dense"]["history"]) == 2


def test_console_script_finds_the_studies_outside_the_checkout(tmp_path):
    """``lowrank-ode reproduce`` run from any folder imports the checkout's studies package."""
    import subprocess
    import sys

    code = (
        "import sys; sys.path = [p for p in sys.path if p not in ('', '.')]; "
        "from lowrank_ode.cli import _import_studies; print(_import_studies().__name__)"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "studies"


def test_cli_options_are_checked(capsys):
    from lowrank_ode.cli import main

    assert main(["reproduce", "mnist_dlrt", "--quick", "--workers", "0"]) == 2
    assert "--workers must be a positive integer, got 0" in capsys.readouterr().err
    assert main(["reproduce", "--workers", "2", "--scheduler", "tcp://x:1"]) == 2


# ----------------------------------------------------------------------------- Dask
def test_workers_cli_matches_serial(tmp_path, monkeypatch, serial):
    """`lowrank-ode reproduce mnist_dlrt --quick --workers 2`: a local cluster of two worker
    processes stores the serial numbers, one file per run."""
    pytest.importorskip("distributed")
    from lowrank_ode.cli import main

    monkeypatch.setattr(mnist_dlrt, "configs", lambda quick, epochs=None: tiny_grid())
    assert (
        main(["reproduce", "mnist_dlrt", "--quick", "--out", str(tmp_path), "--workers", "2"]) == 0
    )
    runs = stored(tmp_path / "mnist_quick")
    assert set(runs) == set(serial)
    for name in serial:
        assert runs[name]["threads"]["threads"] == 1
        assert numbers(runs[name]) == numbers(serial[name]), name
    assert json.loads((tmp_path / "mnist_quick" / "_grid.json").read_text())["state"] == "complete"


@contextlib.contextmanager
def _dask_cluster(folder: Path, n_workers: int):
    """``dask scheduler`` and ``dask worker --nworkers N --nthreads 1`` started as on a cluster
    (command line, separate processes, the checkout on PYTHONPATH); yields the address."""
    import subprocess
    import sys

    bindir = Path(sys.executable).parent
    dask = str(bindir / "dask") if (bindir / "dask").exists() else "dask"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    file = folder / "scheduler.json"
    common = ["--no-dashboard"]
    sched = subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file", str(file)]
        + common,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers = None
    try:
        deadline = time.monotonic() + 30
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = subprocess.Popen(
            [dask, "worker", "--scheduler-file", str(file), "--nworkers", str(n_workers)]
            + ["--nthreads", "1", *common],
            env=env,
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        yield json.loads(file.read_text())["address"]
    finally:
        for proc in (workers, sched):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()


def test_scheduler_with_killed_worker_loses_and_duplicates_nothing(tmp_path, monkeypatch, serial):
    """``dask scheduler`` and ``dask worker --nworkers 2`` started by hand on localhost, the grid
    sent with ``reproduce --scheduler``; one worker process is killed (SIGKILL) in the middle of
    a run: the scheduler re-runs the task, which resumes from the run's checkpoint; every run is
    stored once, with the serial numbers."""
    pytest.importorskip("distributed")
    from dask.distributed import Client

    from lowrank_ode.cli import main

    grid = {k: replace(v, epochs=4) for k, v in tiny_grid().items()}
    monkeypatch.setattr(mnist_dlrt, "configs", lambda quick, epochs=None: grid)
    out = tmp_path / "mnist_quick"
    with _dask_cluster(tmp_path, n_workers=2) as address, Client(address) as client:
        client.wait_for_workers(2, timeout=60)
        argv = ["reproduce", "mnist_dlrt", "--quick", "--out", str(tmp_path)]
        argv += ["--scheduler", address]
        rc: list[int] = []
        thread = threading.Thread(target=lambda: rc.append(main(argv)))
        thread.start()
        killed = None
        deadline = time.monotonic() + 40
        while killed is None and time.monotonic() < deadline and thread.is_alive():
            for ckpt in (out / "checkpoints").glob("*.npz"):
                name = ckpt.name.split(".")[0]
                key = f"lowrank-ode-run-{name}-{run_id(grid[name], 'builtin')}"
                busy = [w for w, keys in client.processing().items() if key in keys]
                if busy and not (out / f"{name}.json").exists():
                    pid = client.run(os.getpid, workers=busy)[busy[0]]
                    os.kill(pid, signal.SIGKILL)
                    killed = name
                    break
            time.sleep(0.02)
        thread.join(timeout=60)
    assert killed is not None, "no run was caught mid-training"
    assert rc == [0]
    runs = stored(out)
    assert set(runs) == set(grid)  # nothing lost
    assert not list((out / "checkpoints").glob("*.npz"))
    assert runs[killed]["resumed_from"] >= 1  # the re-run resumed from the checkpoint
    for run in runs.values():
        assert [h["epoch"] for h in run["history"]] == [1, 2, 3, 4]  # no epoch twice
    ref = run_grid(grid, tmp_path / "serial", "builtin", progress=False)
    for name in grid:
        assert numbers(runs[name]) == numbers(ref[name]), name


def test_core_package_does_not_import_dask():
    import subprocess
    import sys

    code = (
        "import sys, lowrank_ode, lowrank_ode.dlrt, lowrank_ode.cli; print('dask' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
