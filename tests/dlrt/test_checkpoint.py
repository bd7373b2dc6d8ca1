"""Checkpoints of the trainer: atomic, unpickled, resumed bit for bit, kept on divergence."""

import json

import numpy as np
import pytest
from dlrt_helpers import tiny_cfg, tiny_data

from lowrank_ode.dlrt import TrainConfig, Trainer, TrainingDiverged


@pytest.mark.parametrize("optimizer", ["adam", "momentum", "sgd"])
def test_checkpoint_resume_is_bit_for_bit(tmp_path, optimizer):
    data = tiny_data()
    cfg = tiny_cfg(
        method="dlrt-adaptive",
        epochs=3,
        optimizer=optimizer,
        lr=1e-2 if optimizer != "sgd" else 0.05,
    )
    straight = Trainer(cfg, data)
    straight.fit()
    ck = tmp_path / "ck.npz"
    first = Trainer(TrainConfig(**{**cfg.__dict__, "epochs": 3}), data, checkpoint=ck)
    first.run_epoch()
    resumed = Trainer.load(ck, data, checkpoint=ck)
    assert resumed.epoch == 1
    resumed.fit()
    a, b = straight.model.params(), resumed.model.params()
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert straight.history[-1]["test_accuracy"] == resumed.history[-1]["test_accuracy"]


def test_checkpoint_is_atomic_and_unpickled(tmp_path):
    data = tiny_data()
    ck = tmp_path / "ck.npz"
    tr = Trainer(tiny_cfg(method="dlrt", optimizer="adam", lr=1e-2), data, checkpoint=ck)
    tr.run_epoch()
    with np.load(ck, allow_pickle=False) as z:  # loads without pickle
        meta = json.loads(str(z["meta"]))
    assert meta["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]  # no temp file left
    bad = tmp_path / "bad.npz"
    bad.write_bytes(ck.read_bytes()[:100])
    with pytest.raises(ValueError, match="not a readable .npz"):
        Trainer.load(bad, data)


def test_divergence_stops_with_clear_error_and_keeps_checkpoint(tmp_path):
    data = tiny_data()
    ck = tmp_path / "ck.npz"
    tr = Trainer(tiny_cfg(method="dlrt", epochs=3), data, checkpoint=ck)
    tr.run_epoch()
    before = ck.read_bytes()
    x_bad = data[0].copy()
    x_bad[5, 3] = np.nan  # a corrupt sample makes the loss NaN during epoch 2
    tr.data = (x_bad, *data[1:])
    with pytest.raises(TrainingDiverged, match="non-finite loss or parameters at epoch 2"):
        tr.run_epoch()
    assert ck.read_bytes() == before
    assert Trainer.load(ck, data).epoch == 1


def test_resume_after_the_ranks_changed(tmp_path):
    """A rank-adaptive run whose ranks fell below the start rank resumes from its checkpoint
    (the factor shapes in the file differ from those of a freshly built model)."""
    from lowrank_ode.dlrt import train

    data = tiny_data()
    cfg = tiny_cfg(method="dlrt-adaptive", init_core="product", rank=8, tau=0.3, epochs=1)
    ck = tmp_path / "ck.npz"
    first = train(cfg, data, checkpoint=ck)
    assert max(first["ranks"]) < 8  # the ranks changed, so the shapes in the file did
    longer = tiny_cfg(method="dlrt-adaptive", init_core="product", rank=8, tau=0.3, epochs=2)
    resumed = train(longer, data, checkpoint=ck, resume=True)
    straight = train(longer, data)
    strip = lambda h: {k: v for k, v in h.items() if k != "seconds"}
    assert strip(resumed["history"][0]) == strip(first["history"][0])
    assert resumed["ranks"] == straight["ranks"]
    assert strip(resumed["history"][-1]) == strip(straight["history"][-1])
