"""Resumable runner of the training grids (MNIST studies): serial, or on a Dask cluster.

A *grid* is a ``{name: TrainConfig}`` mapping; each run is an independent unit with a stable id
(a hash of its configuration and data source).  A run

* checkpoints after every epoch to ``<out>/checkpoints/<name>.<id>.npz`` (atomic ``.npz``
  written by :class:`lowrank_ode.dlrt.Trainer`) and resumes from it when started again;
* when finished, writes ``<out>/<name>.json`` atomically — the result, the per-epoch history,
  the exact ``lowrank-ode train`` command that reproduces it, the code version and the BLAS
  thread setting — and then removes its checkpoint.

:func:`run_grid` skips runs whose JSON holds the same configuration, resumes the others, and
writes ``<out>/_grid.json`` saying how many runs are finished: a grid with a missing or failed
run is reported as ``"partial"``, never as complete.  With ``workers`` or ``scheduler`` the runs
are tasks on a ``dask.distributed`` cluster (the ``[distributed]`` extra, imported only here and
only then); a task lost with its worker is re-run by the scheduler and resumes from the run's
last checkpoint, and since a run's result is one file named after it, a run is neither lost nor
stored twice.  Every worker must see ``out`` and the data directory at the same paths (shared
storage) and must be able to import this ``studies`` package (start it in, or with
``PYTHONPATH`` set to, the source checkout).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shlex
import socket
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lowrank_ode.dlrt import TrainConfig, train
from lowrank_ode.dlrt.cli import train_command as cli_train_command

from ._common import code_version, study_config

__all__ = [
    "run_id",
    "train_command",
    "run_one",
    "run_grid",
    "grid_status",
    "runs_of",
    "GRID_KEY",
    "volatile_keys",
]

#: Key of the grid status inside a study's results dict (not a run).
GRID_KEY = "_grid"


def run_id(cfg: TrainConfig, data: str) -> str:
    """Stable id of a run: 12 hex digits of the SHA-256 of its configuration and data source.

    Parameters
    ----------
    cfg : TrainConfig
        The run's configuration.
    data : str
        ``"builtin"`` or the MNIST directory (only the kind, bundled or full, enters the id).
    """
    kind = "builtin" if data == "builtin" else "full"
    text = json.dumps({"config": asdict(cfg), "data": kind}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def train_command(cfg: TrainConfig, data: str) -> str:
    """The ``lowrank-ode train`` command line that reproduces ``cfg`` on ``data``, every option
    written out (:func:`lowrank_ode.dlrt.cli.train_command` with ``full=True``), so that it
    keeps its meaning when a default changes."""
    return shlex.join(cli_train_command(cfg, data=data, full=True))


#: Result keys (and history keys) that differ between two runs of the same configuration.
VOLATILE = ("wall_seconds", "seconds_per_epoch", "code", "threads", "worker", "resumed_from")


def volatile_keys() -> tuple[str, ...]:
    """Keys of a stored run that record timing or provenance, not numbers (``seconds`` in the
    history too): two runs of one configuration agree on everything else."""
    return VOLATILE


@functools.lru_cache(maxsize=4)
def _load(data: str, model: str) -> Any:
    from lowrank_ode.dlrt.cli import load_data

    return load_data(data, model)


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _checkpoint(out: Path, name: str, cfg: TrainConfig, data: str) -> Path:
    return out / "checkpoints" / f"{name}.{run_id(cfg, data)}.npz"


def _checkpoint_epoch(path: Path) -> int:
    """Epochs stored in the checkpoint at ``path`` (0 when there is none).

    An unreadable checkpoint (a damaged file: the trainer writes them atomically) is moved
    aside to ``<path>.corrupt`` with a warning, and the run starts from scratch.
    """
    if not path.exists():
        return 0
    import zipfile

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            return int(json.loads(str(z["meta"]))["epoch"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        warnings.warn(
            f"checkpoint {path} is unreadable ({type(exc).__name__}: {exc}); moved to {aside}, "
            "the run starts from scratch",
            RuntimeWarning,
            stacklevel=3,
        )
        return 0


def run_one(
    name: str,
    cfg: TrainConfig,
    out: str | Path,
    data: str,
    threads: int | None = 1,
    progress: bool = False,
) -> dict[str, Any]:
    """Train one run of a grid (resuming from its checkpoint) and store its result.

    This is the unit of work that :func:`run_grid` runs in the calling process or sends to a
    Dask worker; it is idempotent: run twice, it trains once and stores one file.

    Parameters
    ----------
    name : str
        Run name; the result is ``out/<name>.json``.
    cfg : TrainConfig
        The configuration.
    out : str or Path
        The grid's folder (shared by every worker of a cluster).
    data : str
        ``"builtin"`` (bundled subset) or an MNIST IDX directory.
    threads : int, optional
        BLAS thread policy of this run (:mod:`lowrank_ode._threads`; default 1, as on a Dask
        worker, so that a run gives the same numbers wherever it runs); ``None``: ``"auto"``.
    progress : bool
        tqdm bar over the batches.

    Returns
    -------
    dict
        The stored result.
    """
    out = Path(out)
    path = out / f"{name}.json"
    saved = _saved(path, cfg)
    if saved is not None:
        return saved
    ckpt = _checkpoint(out, name, cfg, data)
    start = _checkpoint_epoch(ckpt)
    t0 = time.perf_counter()
    res = train(
        cfg,
        _load(data, cfg.model),
        checkpoint=ckpt,
        resume=ckpt.exists(),  # train() refuses to resume from a missing checkpoint
        progress=progress,
        threads="auto" if threads is None else threads,  # recorded in res["threads"]
    )
    res["wall_seconds"] = time.perf_counter() - t0
    res["data"] = "bundled subset (5000/1000)" if data == "builtin" else "full MNIST (60000/10000)"
    # full MNIST: the command reads the files from LOWRANK_ODE_DATA (`--data ""`), not from
    # this machine's path
    res["command"] = train_command(cfg, "builtin" if data == "builtin" else "")
    res["run_id"] = run_id(cfg, data)
    res["code"] = code_version()
    res["worker"] = socket.gethostname()
    res["resumed_from"] = start  # epochs taken from a checkpoint (0: trained from scratch)
    res = json.loads(json.dumps(res))  # what is stored is what is returned (lists, not tuples)
    _write_json(path, res)
    ckpt.unlink(missing_ok=True)
    return res


def _saved(path: Path, cfg: TrainConfig) -> dict[str, Any] | None:
    """The stored result at ``path`` when it was trained with ``cfg``, else ``None``."""
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return saved if _same_config(saved.get("config"), cfg) else None


def _same_config(saved: dict | None, cfg: TrainConfig) -> bool:
    """Saved run has ``cfg``'s settings (fields added since it was saved take their defaults)."""
    if not isinstance(saved, dict):
        return False
    full = {**json.loads(json.dumps(asdict(study_config()))), **saved}
    full["widths"] = tuple(full["widths"])
    return full == asdict(cfg)


def grid_status(cfgs: Mapping[str, TrainConfig], results: Mapping[str, Any]) -> dict[str, Any]:
    """``{"state": "complete" | "partial", "finished": k, "total": n, "pending": [...]}``."""
    pending = [k for k in cfgs if not isinstance(results.get(k), dict)]
    return {
        "state": "partial" if pending else "complete",
        "finished": len(cfgs) - len(pending),
        "total": len(cfgs),
        "pending": pending,
    }


def runs_of(results: Mapping[str, Any]) -> dict[str, Any]:
    """The runs of a study's results dict (without the grid status)."""
    return {k: v for k, v in results.items() if k != GRID_KEY and isinstance(v, dict)}


def _report(name: str, res: dict[str, Any]) -> None:
    print(
        f"{name}: test acc {100 * res['test_accuracy']:.2f} %, ranks {res['ranks']}, "
        f"c.r. eval {res['compression_eval']:.2f} %, {res['wall_seconds']:.0f} s",
        flush=True,
    )


def run_grid(
    cfgs: Mapping[str, TrainConfig],
    out: str | Path,
    data: str,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    threads: int | None = 1,
    on_result: Callable[[str, dict], None] | None = None,
) -> dict[str, Any]:
    """Run every unfinished run of a grid; return ``{name: result, "_grid": status}``.

    Parameters
    ----------
    cfgs : mapping of str to TrainConfig
        The grid.
    out : str or Path
        Folder of the runs' JSON files and checkpoints.
    data : str
        ``"builtin"`` or an MNIST IDX directory.
    workers : int, optional
        Run on a ``dask.distributed.LocalCluster`` of this many single-threaded worker
        processes.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``) to send the runs to.
    progress : bool
        A bar counting finished runs.
    threads : int, optional
        BLAS threads of each run in this process (default 1; ``None``: the process setting).
        Dask workers always use 1: a matrix product split over several threads may round
        differently, so one thread everywhere makes serial and distributed runs agree bit for
        bit.
    on_result : callable, optional
        Called as ``on_result(name, result)`` when a run finishes (in this process).

    Returns
    -------
    dict
        The results of the finished runs and, under ``"_grid"``, :func:`grid_status`; a run
        that raised is left out (and its error printed), so the grid is then ``"partial"``.
    """
    if workers is not None and scheduler is not None:
        raise ValueError("give either workers or scheduler, not both")
    if workers is not None and (
        isinstance(workers, bool) or int(workers) != workers or workers < 1
    ):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if data != "builtin":
        data = str(Path(data).resolve())
    results: dict[str, Any] = {}
    todo: dict[str, TrainConfig] = {}
    for name, cfg in cfgs.items():
        saved = _saved(out / f"{name}.json", cfg)
        if saved is not None:
            results[name] = saved
        else:
            todo[name] = cfg
    errors: dict[str, str] = {}
    # the status on disk says "partial" while runs are missing, even if this call is stopped
    _write_status(out, grid_status(cfgs, results), errors)

    def done(name: str, res: dict[str, Any]) -> None:
        results[name] = res
        _report(name, res)
        if on_result is not None:
            on_result(name, res)

    if todo and workers is None and scheduler is None:
        bar = _bar(len(cfgs), len(results), progress)
        for name, cfg in todo.items():
            try:
                res = run_one(name, cfg, out, data, threads, progress and sys.stderr.isatty())
            except Exception as exc:  # a failed run leaves the grid partial, others go on
                errors[name] = f"{type(exc).__name__}: {exc}"
                print(f"{name}: FAILED ({errors[name]})", file=sys.stderr, flush=True)
            else:
                done(name, res)
            bar.update(1)
        bar.close()
    elif todo:
        _run_dask(
            todo,
            out,
            data,
            workers,
            scheduler,
            _bar(len(cfgs), len(results), progress),
            done,
            errors,
        )
    results = {k: results[k] for k in cfgs if k in results}  # the grid's order
    status = _write_status(out, grid_status(cfgs, results), errors)
    results[GRID_KEY] = status
    return results


def _write_status(out: Path, status: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """Write ``out/_grid.json`` (the status, the errors of failed runs, the code version)."""
    status = {**status, "errors": dict(errors)}
    _write_json(out / f"{GRID_KEY}.json", {**status, "code": code_version()})
    return status


def _bar(total: int, initial: int, progress: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="runs", unit="run", disable=not progress)


def _run_dask(
    todo: Mapping[str, TrainConfig],
    out: Path,
    data: str,
    workers: int | None,
    scheduler: str | None,
    bar: Any,
    done: Callable[[str, dict], None],
    errors: dict[str, str],
) -> None:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise ImportError(
            "running a grid on Dask needs the 'distributed' extra: "
            "pip install 'lowrank-ode[distributed]'"
        ) from exc
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        futures = {}
        for name, cfg in todo.items():
            # the key names the run: one task per run on the scheduler, even from two clients
            key = f"lowrank-ode-run-{name}-{run_id(cfg, data)}"
            fut = client.submit(run_one, name, cfg, str(out), data, 1, key=key, pure=False)
            futures[fut] = name
        for fut in as_completed(list(futures)):
            name = futures[fut]
            try:
                res = fut.result()
            except Exception as exc:
                errors[name] = f"{type(exc).__name__}: {exc}"
                print(f"{name}: FAILED ({errors[name]})", file=sys.stderr, flush=True)
            else:
                done(name, res)
            bar.update(1)
    finally:
        bar.close()
        client.close()
        if cluster is not None:
            cluster.close()
