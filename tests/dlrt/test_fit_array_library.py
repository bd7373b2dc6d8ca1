"""``Trainer(array_library=...)``: whole runs (``fit``, evaluation, prediction, checkpoints) with
every array in another library give the NumPy run's numbers, with no implicit host copy.

The library under test is array-api-strict (the CPU check of the generic path);
``LOWRANK_ODE_TEST_NAMESPACE=cupy`` runs the same tests with CuPy on a GPU
(``benchmarks/gpu_check.py``).
"""

from __future__ import annotations

import json
import os
import sys
import types

import numpy as np
import pytest

from lowrank_ode._array_api import to_numpy
from lowrank_ode.dlrt import TrainConfig, Trainer, train
from lowrank_ode.dlrt.train import METHODS
from lowrank_ode.exceptions import ArrayLibraryUnavailable

LIBRARY = os.environ.get("LOWRANK_ODE_TEST_NAMESPACE", "array_api_strict")
xps = pytest.importorskip(
    LIBRARY if LIBRARY == "array_api_strict" else f"array_api_compat.{LIBRARY}"
)
ARRAY = type(xps.asarray(1.0))
#: the history entries that are numbers of the run (``seconds`` is a timing)
NUMBERS = ("train_loss", "train_accuracy", "test_accuracy", "compression_eval", "compression_train")
EXACT = ("epoch", "ranks", "params_eval", "params_train")


def _data(model: str, n: int, n_test: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    shape = (n, 784) if model == "mlp" else (n, 1, 28, 28)
    x = rng.random(shape)
    y = rng.integers(0, 10, n)
    return x, y, x[:n_test], y[:n_test]


def _mlp(method: str, **kw) -> TrainConfig:
    finetune = 0 if method in ("dense", "dense-truncate") else 1
    base = dict(
        model="mlp",
        widths=(784, 12, 12, 10),
        method=method,
        rank=4,
        tau=0.2,
        epochs=1,
        finetune_epochs=finetune,
        batch_size=16,
        dtype="float64",
    )
    return TrainConfig(**{**base, **kw})


def _plain(obj) -> bool:
    """True when ``obj`` holds only JSON's Python types (no array or NumPy scalar)."""
    if isinstance(obj, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in obj.items())
    if isinstance(obj, list):
        return all(_plain(v) for v in obj)
    return obj is None or type(obj) in (bool, int, float, str)


def _assert_same_run(ref: Trainer, dev: Trainer, res_ref: dict, res_dev: dict) -> None:
    """Losses, accuracies, ranks, counts and parameters of the two runs agree to 1e-10."""
    assert res_dev["array_library"] == LIBRARY and res_ref["array_library"] == "numpy"
    assert _plain(res_dev["history"]) and _plain(res_dev["ranks"])
    json.dumps(res_dev)
    assert len(res_dev["history"]) == len(res_ref["history"])
    for h_dev, h_ref in zip(res_dev["history"], res_ref["history"], strict=True):
        for k in EXACT:
            assert h_dev[k] == h_ref[k], k
        for k in NUMBERS:
            assert h_dev[k] == pytest.approx(h_ref[k], rel=1e-10, abs=1e-12), k
    p_ref, p_dev = ref.model.params(), dev.model.params()
    assert set(p_ref) == set(p_dev)
    for k, v in p_dev.items():
        assert isinstance(v, ARRAY), k  # the parameters stayed in the library
        a, b = to_numpy(v), p_ref[k]
        assert a.shape == b.shape, k
        assert np.linalg.norm(a - b) <= 1e-10 * max(np.linalg.norm(b), 1.0), k


def _fit_both(cfg: TrainConfig, data) -> tuple[Trainer, Trainer, dict, dict]:
    ref, dev = Trainer(cfg, data), Trainer(cfg, data, array_library=LIBRARY)
    return ref, dev, ref.fit(), dev.fit()


@pytest.mark.usefixtures("no_implicit_host_copy")
@pytest.mark.parametrize("method", list(METHODS))
def test_mlp_fit_matches_numpy(method):
    """One epoch (three batches, the last one short) and a fine-tuning epoch; evaluation on 8
    test images."""
    ref, dev, res_ref, res_dev = _fit_both(_mlp(method), _data("mlp", 40, 8))
    _assert_same_run(ref, dev, res_ref, res_dev)
    # the data set was moved once, and the trainer computes on the moved copy
    assert all(isinstance(a, ARRAY) for a in dev.device_data)


@pytest.mark.usefixtures("no_implicit_host_copy")
@pytest.mark.parametrize("method", [m for m in METHODS if m != "dense-truncate"])
def test_lenet5_fit_matches_numpy(method):
    finetune = 1 if method == "dlrt-adaptive" else 0
    cfg = TrainConfig(
        model="lenet5",
        method=method,
        rank=3,
        tau=0.2,
        epochs=1,
        finetune_epochs=finetune,
        batch_size=3,
        optimizer="momentum",
        dtype="float64",
    )
    ref, dev, res_ref, res_dev = _fit_both(cfg, _data("lenet5", 4, 3))
    _assert_same_run(ref, dev, res_ref, res_dev)


@pytest.mark.usefixtures("no_implicit_host_copy")
def test_predict_and_evaluate_on_the_device():
    ref, dev, *_ = _fit_both(_mlp("dlrt-adaptive", finetune_epochs=0), _data("mlp", 32, 20))
    x_te = ref.data[2]
    want = ref.predict(x_te, batch=8)
    got_host = dev.predict(x_te, batch=8)  # NumPy in, NumPy out (an explicit copy)
    assert isinstance(got_host, np.ndarray) and np.array_equal(got_host, want)
    got_dev = dev.predict(dev.device_data[2], batch=8)  # library in, library out
    assert isinstance(got_dev, ARRAY) and np.array_equal(to_numpy(got_dev), want)
    acc = dev.evaluate()
    assert type(acc) is float and acc == ref.evaluate()


@pytest.mark.usefixtures("no_implicit_host_copy")
def test_checkpoint_and_resume_equal_an_uninterrupted_run(tmp_path):
    """Adam state and changing ranks: the resumed run continues bit for bit; the checkpoint is
    written from host copies and loads into a trainer of either library."""
    cfg2 = _mlp("dlrt-adaptive", optimizer="adam", lr=0.05, epochs=2, finetune_epochs=1)
    cfg1 = _mlp("dlrt-adaptive", optimizer="adam", lr=0.05, epochs=1, finetune_epochs=0)
    data = _data("mlp", 40, 8)
    whole = Trainer(cfg2, data, array_library=LIBRARY)
    res_whole = whole.fit()
    ck = tmp_path / "ck.npz"
    Trainer(cfg1, data, checkpoint=ck, array_library=LIBRARY).fit()
    with np.load(ck, allow_pickle=False) as z:  # plain host arrays: loads without pickle
        assert all(z[k].dtype != object for k in z.files)
    resumed = Trainer.load(ck, data, cfg2, array_library=LIBRARY)
    assert resumed.epoch == 1
    assert all(isinstance(v, ARRAY) for v in resumed.model.params().values())
    for st in resumed.optimizer.state.values():
        assert all(isinstance(M, ARRAY) for bufs in st.buffers for M in bufs)
    res_resumed = resumed.fit()
    drop = ("seconds",)
    strip = [{k: v for k, v in h.items() if k not in drop} for h in res_resumed["history"]]
    assert strip == [{k: v for k, v in h.items() if k not in drop} for h in res_whole["history"]]
    for k, v in whole.model.params().items():
        assert np.array_equal(to_numpy(resumed.model.params()[k]), to_numpy(v)), k
    # the same checkpoint resumed with NumPy continues the same run, up to rounding
    on_host = Trainer.load(ck, data, cfg2)
    res_host = on_host.fit()
    _assert_same_run(on_host, resumed, res_host, res_resumed)


def test_unknown_array_library_is_named():
    cfg, data = _mlp("dlrt"), _data("mlp", 16, 4)
    with pytest.raises(ValueError, match=r"array_library must be one of .*got 'torch'"):
        Trainer(cfg, data, array_library="torch")
    with pytest.raises(TypeError, match="array_library must be a string"):
        train(cfg, data, array_library=None)


def test_missing_cupy_or_gpu_is_a_clear_error(monkeypatch):
    cfg, data = _mlp("dlrt"), _data("mlp", 16, 4)
    monkeypatch.setitem(sys.modules, "cupy", None)  # as if CuPy were not installed
    with pytest.raises(ArrayLibraryUnavailable, match=r"array_library='cupy' needs CuPy.*not in"):
        Trainer(cfg, data, array_library="cupy")

    def no_device():
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    runtime = types.SimpleNamespace(getDeviceCount=no_device)
    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime))
    monkeypatch.setitem(sys.modules, "cupy", fake)  # CuPy installed, no GPU visible
    with pytest.raises(ArrayLibraryUnavailable, match=r"array_library='cupy': CuPy sees no GPU"):
        train(cfg, data, array_library="cupy")
    assert issubclass(ArrayLibraryUnavailable, ImportError)


def test_trainer_pickles_with_any_library():
    """The namespace is looked up from ``array_library``, not stored: a trainer pickles."""
    import pickle

    tr = Trainer(_mlp("dlrt"), _data("mlp", 16, 4), array_library=LIBRARY)
    copy = pickle.loads(pickle.dumps(tr))
    assert copy.xp is tr.xp and copy.array_library == LIBRARY
