"""BLAS thread policy: validation, what each policy sets, restoration, and what results record."""

import inspect
import json

import numpy as np
import pytest

import lowrank_ode as lo
from lowrank_ode._threads import _belongs_to, _is_numpys, blas_threads, check_threads, thread_info
from lowrank_ode.dlrt import TrainConfig, train
from lowrank_ode.problems import LyapunovProblem


def _pools():
    import scipy.linalg  # noqa: F401  (load SciPy's BLAS as the policy does)
    from threadpoolctl import ThreadpoolController

    return [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]


@pytest.mark.parametrize("bad", [0, -1, 1.5, "two", "", None, True, "0"])
def test_check_threads_refuses(bad):
    with pytest.raises(ValueError, match=f"threads must be 'auto' or an integer >= 1, got {bad!r}"):
        check_threads(bad)


def test_check_threads_accepts():
    assert check_threads("auto") == "auto"
    assert check_threads("3") == 3 and check_threads(np.int64(2)) == 2


@pytest.mark.parametrize("threads", ["auto", 1, 2])
def test_policy_sets_pools_and_restores(threads):
    before = [lib.num_threads for lib in _pools()]
    with blas_threads(threads) as info:
        assert info["threads"] == threads
        for lib, was in zip(_pools(), before):
            if _is_numpys(lib):
                want = was if threads == "auto" else threads
            elif _belongs_to(lib, "scipy"):
                want = 1  # SciPy's BLAS never runs beside NumPy's on several threads
            else:
                want = lib.num_threads
            assert lib.num_threads == want, (lib.filepath, lib.num_threads, want)
    assert [lib.num_threads for lib in _pools()] == before
    assert thread_info()["threads"] is None  # outside any block: no policy in force


def test_numpys_blas_is_found():
    assert sum(_is_numpys(lib) for lib in _pools()) == 1


def test_entry_points_take_threads():
    import studies

    for fn in (lo.solve, train, studies.reproduce):
        assert "threads" in inspect.signature(fn).parameters, fn


def _tiny():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 30))
    y = np.argmax(x[:, :4], axis=1)
    return x[:160], y[:160], x[160:], y[160:]


def test_results_record_threads_and_repeat_exactly():
    """The policy in force is stored; under one policy a run repeats bit for bit.  (Different
    thread counts may round differently: OpenBLAS splits a GEMM between its threads.)"""
    cfg = TrainConfig(widths=(30, 24, 24, 4), rank=8, epochs=2, finetune_epochs=1, batch_size=16)
    one = train(cfg, _tiny(), threads=1)
    two = train(cfg, _tiny(), threads=2)
    again = train(cfg, _tiny(), threads=2)
    assert one["threads"]["threads"] == 1 and two["threads"]["threads"] == 2
    numpys = [b for b in two["threads"]["blas"] if b["library"] == "numpy"]
    assert numpys and numpys[0]["num_threads"] == 2
    json.dumps(one)  # JSON-able
    strip = lambda r: [{k: v for k, v in h.items() if k != "seconds"} for h in r["history"]]
    assert strip(two) == strip(again)


def test_solve_repeats_exactly_under_a_policy():
    P = LyapunovProblem(60, 50)
    Y0 = P.initial(rank=4)
    a = lo.solve(P, Y0, (0, 0.05), 0.01, method="rabug", rtol=1e-6, threads=2).y[-1]
    b = lo.solve(P, Y0, (0, 0.05), 0.01, method="rabug", rtol=1e-6, threads=2).y[-1]
    assert np.array_equal(a.to_dense(), b.to_dense())


def test_cli_threads_option(tmp_path, capsys):
    from lowrank_ode.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train", "--threads", "zero"])
    assert exc.value.code == 2
    assert "--threads" in capsys.readouterr().err


def test_policy_sees_scipys_blas_before_it_is_loaded():
    """In a fresh process the library does not load SciPy's BLAS until its first QR/SVD; the
    policy must still set that pool (else it starts on all cores and fights NumPy's)."""
    import subprocess
    import sys

    code = (
        "from lowrank_ode._threads import blas_threads\n"
        "with blas_threads('auto') as info:\n"
        "    print(len(info['blas']), sorted(b['num_threads'] for b in info['blas'])[0])\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.endswith("NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    n_pools, fewest = int(out[0]), int(out[1])
    if n_pools > 1:
        assert fewest == 1
