"""Hostile input to DLRT: configurations, data, divergence, output paths, checkpoints, resume."""

import json
import math
import os
import zipfile

import numpy as np
import pytest
from dlrt_helpers import tiny_cfg as make_cfg
from dlrt_helpers import tiny_data as make_data

from lowrank_ode.dlrt import TrainConfig, Trainer, TrainingDiverged, train
from lowrank_ode.exceptions import NumericalBreakdown

# ------------------------------------------------------------------ configuration


def test_numpy_scalars_are_accepted_and_stored_as_json_numbers():
    cfg = make_cfg(lr=np.float32(0.01), rank=np.int64(5), tau=np.float64(0.1))
    assert isinstance(cfg.lr, float) and isinstance(cfg.rank, int)
    assert np.isclose(cfg.lr, 0.01)
    json.dumps(cfg.__dict__)  # JSON-able: checkpoints and --json outputs store it


@pytest.mark.parametrize(
    "kw,exc,match",
    [
        ({"tau": "0.1"}, TypeError, r"tau must be a real number or None, got '0.1'"),
        ({"lr": "1e-3"}, TypeError, r"lr must be a real number, got '1e-3'"),
        ({"rank": 2.5}, TypeError, r"rank must be an integer, got 2.5"),
        ({"widths": ("a", 4)}, TypeError, r"widths must be a sequence of integers, got \('a', 4\)"),
        ({"widths": "20,4"}, TypeError, r"widths must be a sequence of integers, got '20,4'"),
        ({"model": 3}, TypeError, r"model must be a string, got 3"),
        ({"optimizer": "rmsprop"}, ValueError, r"optimizer must be one of .* got 'rmsprop'"),
        ({"divergence_factor": 0.5}, ValueError, r"divergence_factor must be a number > 1 .* 0.5"),
        ({"max_rank": 0, "min_rank": 1}, ValueError, r"max_rank must be >= min_rank=1, got 0"),
        ({"atol": float("nan"), "tau": None}, ValueError, r"atol must be a finite number >= 0"),
        ({"decay": float("inf")}, ValueError, r"decay must be > 0 and finite, got inf"),
        ({"lr": float("nan")}, ValueError, r"lr must be a finite number > 0, got nan"),
    ],
)
def test_bad_config_fields(kw, exc, match):
    with pytest.raises(exc, match=match):
        make_cfg(**kw)


def test_lenet5_refuses_widths():
    with pytest.raises(ValueError, match=r"widths applies to model 'mlp' only.*\(784, 10\)"):
        TrainConfig(model="lenet5", widths=(784, 10))


# ------------------------------------------------------------------ data
@pytest.mark.parametrize(
    "mutate,exc,match",
    [
        (lambda d: (d[0][:0], d[1][:0], d[2], d[3]), ValueError, r"x_train holds 0 images"),
        (lambda d: (d[0], d[1], d[2][:0], d[3][:0]), ValueError, r"x_test holds 0 images"),
        (lambda d: (d[0], d[1].astype(float), d[2], d[3]), TypeError, r"y_train .* float64"),
        (lambda d: (d[0][:, :5], d[1], d[2], d[3]), ValueError, r"x_train must have shape"),
        (lambda d: (d[0], d[1][:5], d[2], d[3]), ValueError, r"y_train has shape \(5,\)"),
        (lambda d: (list(d[0]), d[1], d[2], d[3]), TypeError, r"x_train must be a NumPy array"),
        (lambda d: d[:3], TypeError, r"data must be a tuple .* of length 3"),
    ],
)
def test_bad_data_is_refused_before_training(mutate, exc, match):
    with pytest.raises(exc, match=match):
        Trainer(make_cfg(), mutate(make_data()))


def test_nan_pixel_is_named():
    x, y, xt, yt = make_data()
    x = x.copy()
    x[7, 3] = np.nan
    with pytest.raises(
        ValueError, match=r"x_train contains NaN or inf \(first at index \(7, 3\)\)"
    ):
        Trainer(make_cfg(), (x, y, xt, yt))


# ------------------------------------------------------------------ divergence
def test_finite_divergence_stops_training_and_keeps_the_checkpoint(tmp_path):
    ck = tmp_path / "ck.npz"
    tr = Trainer(make_cfg(epochs=2), make_data(), checkpoint=ck)
    tr.run_epoch()
    saved = ck.read_bytes()
    tr.cfg.lr = 1e6  # the second epoch diverges (finite but huge losses)
    with np.errstate(all="ignore"):
        with pytest.raises(
            TrainingDiverged, match=r"exceeds divergence_factor=100 times the first"
        ):
            tr.run_epoch()
    assert ck.read_bytes() == saved  # the last good checkpoint is untouched
    assert Trainer.load(ck, make_data()).epoch == 1


def test_divergence_from_the_start_with_sgd_lr_1e6():
    cfg = make_cfg(method="dlrt-adaptive", lr=1e6, epochs=1)
    with np.errstate(all="ignore"):
        with pytest.raises(TrainingDiverged, match=r"lr=1000000.0") as info:
            train(cfg, make_data())
    assert isinstance(info.value, NumericalBreakdown) and isinstance(info.value, ArithmeticError)


def test_divergence_rule_can_be_switched_off(data):
    on = Trainer(make_cfg(method="dense"), data)
    off = Trainer(make_cfg(method="dense", divergence_factor=None), data)
    for tr in (on, off):
        tr.step(data[0][:32], data[1][:32])
    assert on._loss_limit == pytest.approx(100 * on.initial_loss)
    assert off._loss_limit == math.inf  # only NaN/inf stops this run
    off.step(data[0][:32] * 1e3, data[1][:32])  # a huge but finite loss passes
    with pytest.raises(TrainingDiverged, match="exceeds divergence_factor"):
        on.step(data[0][:32] * 1e3, data[1][:32])


def test_resumed_run_keeps_its_first_loss(tmp_path):
    ck = tmp_path / "ck.npz"
    tr = Trainer(make_cfg(epochs=1), make_data(), checkpoint=ck)
    tr.run_epoch()
    back = Trainer.load(ck, make_data())
    assert back.initial_loss == tr.initial_loss
    assert back._loss_limit == pytest.approx(100 * tr.initial_loss)


def test_genuine_value_error_in_a_step_is_not_a_divergence(data):
    tr = Trainer(make_cfg(), data)

    class Broken:
        def step(self, F, t, Y, h):
            F.evaluations.append((float("nan"), 0.0))
            raise ValueError("a bug, not a breakdown")

    with pytest.raises(ValueError, match="a bug, not a breakdown"):
        tr.step(data[0][:8], data[1][:8], Broken())


# ------------------------------------------------------------------ output paths
@pytest.mark.parametrize("where", ["proc", "folder", "file_as_parent"])
def test_unwritable_checkpoint_is_refused_before_the_first_step(tmp_path, where):
    bad = {
        "proc": "/proc/ck.npz",
        "folder": str(tmp_path),
        "file_as_parent": str(tmp_path / "plain.txt" / "ck.npz"),
    }[where]
    (tmp_path / "plain.txt").write_text("x")
    with pytest.raises(ValueError, match=r"checkpoint .*(not writable|must be a file path)"):
        Trainer(make_cfg(), make_data(), checkpoint=bad)


# ------------------------------------------------------------------ resume
def test_resume_without_checkpoint(data):
    with pytest.raises(
        ValueError, match=r"resume=True needs a checkpoint path, got checkpoint=None"
    ):
        train(make_cfg(), data, resume=True)


def test_resume_from_missing_checkpoint(tmp_path, data):
    missing = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match=r"cannot resume: checkpoint .*nope.npz"):
        train(make_cfg(), data, checkpoint=missing, resume=True)


def test_interrupt_and_resume_is_faithful(tmp_path, data, monkeypatch):
    """A run interrupted in its second epoch resumes from epoch 1 to the same final weights."""
    cfg = dict(epochs=2, optimizer="adam", lr=0.01)
    ref = Trainer(make_cfg(**cfg), data)
    ref.fit()
    ck = tmp_path / "ck.npz"
    tr = Trainer(make_cfg(**cfg), data, checkpoint=ck)
    tr.run_epoch()
    calls = []

    def interrupted(*a, **k):
        calls.append(1)
        raise KeyboardInterrupt

    monkeypatch.setattr(tr, "step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tr.run_epoch()
    monkeypatch.undo()
    res = train(make_cfg(**cfg), data, checkpoint=ck, resume=True)
    assert [h["epoch"] for h in res["history"]] == [1, 2]
    back = Trainer.load(ck, data)
    for k, v in ref.model.params().items():
        assert np.array_equal(v, back.model.params()[k]), k


# ------------------------------------------------------------------ corrupted checkpoints
@pytest.fixture
def checkpoint(tmp_path):
    ck = tmp_path / "ck.npz"
    tr = Trainer(make_cfg(optimizer="adam", lr=0.01), make_data(), checkpoint=ck)
    tr.run_epoch()
    with np.load(ck, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return ck, arrays


def _rewrite(path, arrays):
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _meta(arrays, **changes):
    meta = json.loads(str(arrays["meta"]))
    meta.update(changes)
    return {**arrays, "meta": np.asarray(json.dumps(meta))}


@pytest.mark.parametrize(
    "change,match",
    [
        ({"epoch": "abc"}, r"epoch must be an integer, got 'abc'"),
        ({"epoch": -5}, r"epoch must be >= 0, got -5"),
        ({"epoch": 3}, r"history must hold one record per epoch \(3\), got 1"),
        ({"history": "notalist"}, r"history must be a list of records, got 'notalist'"),
        ({"format": "other/9"}, r"format must be 'lowrank_ode.dlrt.checkpoint/1', got 'other/9'"),
        ({"config": [1, 2]}, r"config must be a JSON object, got \[1, 2\]"),
        ({"initial_loss": "x"}, r"initial_loss must be a finite number or null, got 'x'"),
    ],
)
def test_corrupt_metadata_is_refused(checkpoint, change, match):
    ck, arrays = checkpoint
    _rewrite(ck, _meta(arrays, **change))
    with pytest.raises(ValueError, match=rf"corrupt metadata: {match}"):
        Trainer.load(ck, make_data())


def _one(arrays, prefix):
    return sorted(k for k in arrays if k.startswith(prefix))[0]


@pytest.mark.parametrize("what", ["buffer", "count", "n"])
def test_deleted_optimizer_entry_is_named(checkpoint, what):
    ck, arrays = checkpoint
    key = _one(arrays, "opt|").split("|")[1]
    name = {"buffer": f"opt|{key}|buf1|0", "count": f"opt|{key}|count", "n": f"opt|{key}|n"}[what]
    del arrays[name]
    _rewrite(ck, arrays)
    short = name.split("|", 1)[1]
    with pytest.raises(ValueError, match=rf"{'missing|unexpected' if what == 'n' else short}"):
        Trainer.load(ck, make_data())


def test_wrong_shaped_optimizer_buffer_is_named(checkpoint):
    ck, arrays = checkpoint
    key = _one(arrays, "opt|").split("|")[1]
    name = f"opt|{key}|buf0|0"
    arrays[name] = np.zeros((3, 2))
    arrays[f"opt|{key}|buf1|0"] = np.zeros((3, 2))
    _rewrite(ck, arrays)
    with pytest.raises(ValueError, match=rf"{key}\|(buf0\||P\||Q\|)0"):
        Trainer.load(ck, make_data())


def test_unexpected_optimizer_entry_is_named(checkpoint):
    ck, arrays = checkpoint
    arrays["opt|K|extra"] = np.zeros(2)
    _rewrite(ck, arrays)
    with pytest.raises(ValueError, match=r"unexpected optimizer state entries \['K\|extra'\]"):
        Trainer.load(ck, make_data())


def test_whole_optimizer_key_deleted_is_named(checkpoint):
    ck, arrays = checkpoint
    key = _one(arrays, "opt|").split("|")[1]
    arrays = {k: v for k, v in arrays.items() if not k.startswith(f"opt|{key}|")}
    _rewrite(ck, arrays)
    with pytest.raises(ValueError, match=rf"optimizer state \['{key}'\] missing"):
        Trainer.load(ck, make_data())


@pytest.mark.parametrize(
    "value,match",
    [
        (lambda a: a.astype(str), r"must be a floating-point array .* got dtype <U"),
        (lambda a: np.full_like(a, np.nan), r"contains NaN or inf"),
        (lambda a: a.astype(np.int64), r"must be a floating-point array .* got dtype int64"),
    ],
)
def test_bad_parameter_arrays_are_named(checkpoint, value, match):
    ck, arrays = checkpoint
    name = _one(arrays, "param|")
    arrays[name] = value(arrays[name])
    _rewrite(ck, arrays)
    with pytest.raises(ValueError, match=rf"parameter '{name.split('|', 1)[1]}' {match}"):
        Trainer.load(ck, make_data())


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_damaged_checkpoint_file(checkpoint, damage):
    ck, _ = checkpoint
    raw = ck.read_bytes()
    ck.write_bytes(
        {"truncated": raw[: len(raw) // 2], "garbage": b"not a zip", "empty": b""}[damage]
    )
    with pytest.raises(ValueError, match=r"is not a readable .npz file"):
        Trainer.load(ck, make_data())


def test_checkpoint_without_meta(checkpoint):
    ck, arrays = checkpoint
    del arrays["meta"]
    _rewrite(ck, arrays)
    with pytest.raises(ValueError, match=r"has no 'meta' entry"):
        Trainer.load(ck, make_data())


def test_pickled_object_is_never_loaded(checkpoint):
    ck, arrays = checkpoint
    arrays["meta"] = np.array([{"x": 1}], dtype=object)
    with open(ck, "wb") as fh:
        np.savez(fh, **arrays)
    with pytest.raises(ValueError, match=r"not a readable .npz file|corrupt metadata"):
        Trainer.load(ck, make_data())


def test_interrupted_save_leaves_no_partial_checkpoint(tmp_path, monkeypatch):
    ck = tmp_path / "ck.npz"
    tr = Trainer(make_cfg(), make_data(), checkpoint=ck)
    tr.run_epoch()
    saved = ck.read_bytes()

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        tr.save(ck)
    assert ck.read_bytes() == saved
    assert sorted(os.listdir(tmp_path)) == ["ck.npz"]
    assert zipfile.is_zipfile(ck)
