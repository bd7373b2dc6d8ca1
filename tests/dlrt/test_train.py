"""The trainer (lowrank_ode.dlrt.train): descent, truncation, fine-tuning, initializations,
configurations and divergence."""

import numpy as np
import pytest
from dlrt_helpers import tiny_cfg, tiny_data

from lowrank_ode.dlrt import TrainConfig, Trainer, TrainingDiverged
from lowrank_ode.exceptions import NumericalBreakdown


@pytest.mark.parametrize("method,slack", [("dlrt", 0.0), ("dlrt-adaptive", 1e-3), ("ksl", 0.0)])
def test_full_batch_descent(method, slack):
    """Full-batch SGD with a small learning rate: the loss decreases at every step (the adaptive
    method up to the truncation term βϑ)."""
    x, y, xt, yt = tiny_data()
    tr = Trainer(tiny_cfg(method=method, lr=0.1, tau=0.02, batch_size=len(x)), (x, y, xt, yt))
    losses = [tr.step(x, y) for _ in range(40)]
    assert np.all(np.diff(losses) <= slack), np.diff(losses)
    assert losses[-1] < 0.9 * losses[0]


def test_adaptive_tau_zero_augments_to_2r():
    """A criterion that never fires keeps the augmented rank 2r (capped by min(n, m))."""
    data = tiny_data()
    tr = Trainer(tiny_cfg(method="dlrt-adaptive", tau=0.0, rank=3), data)
    tr.step(data[0][:32], data[1][:32])
    assert tr.ranks() == [6, 6]
    tr.step(data[0][:32], data[1][:32])
    assert tr.ranks() == [12, 12]  # min(n_in, n_out) = min(20, 16) and min(16, 12)


def test_adaptive_ranks_shrink_and_forward_runs_at_current_rank():
    data = tiny_data()
    tr = Trainer(tiny_cfg(method="dlrt-adaptive", tau=0.3, rank=6, decay=2.0), data)
    tr.step(data[0][:32], data[1][:32])
    ranks = tr.ranks()
    assert all(r < 6 for r in ranks)
    tr.model.forward(data[0][:5])
    for m, r in zip(tr.flow.lr_layers, ranks):
        assert m.U.shape[1] == m.S.shape[0] == m.V.shape[1] == r
        assert m._cache["XV"].shape == (5, r)  # the forward really runs at rank r


def test_bad_config():
    with pytest.raises(ValueError, match="method must be one of"):
        TrainConfig(method="nope")
    with pytest.raises(ValueError, match="lr must be a finite number > 0, got -1"):
        TrainConfig(lr=-1)
    with pytest.raises(ValueError, match="tau must satisfy"):
        TrainConfig(tau=1.5)


def test_finetune_freezes_bases():
    data = tiny_data()
    tr = Trainer(tiny_cfg(method="dlrt-adaptive", epochs=1, finetune_epochs=1), data)
    tr.run_epoch()
    U = [m.U.copy() for m in tr.flow.lr_layers]
    tr.fit()
    assert tr.epoch == 2
    for m, U0 in zip(tr.flow.lr_layers, U):
        assert np.array_equal(m.U, U0)


def test_all_methods_run_and_report():
    data = tiny_data()
    for method in (
        "dense",
        "vanilla",
        "dlrt",
        "dlrt-adaptive",
        "dlrt-single-pass",
        "ksl",
        "dense-truncate",
    ):
        res = Trainer(tiny_cfg(method=method), data).fit()
        for key in (
            "test_accuracy",
            "ranks",
            "compression_eval",
            "compression_train",
            "seconds_per_epoch",
            "history",
        ):
            assert key in res
        assert 0 <= res["test_accuracy"] <= 1


def test_random_core_initialization():
    """init_core="random": same bases and ‖S‖_F as the SVD init, a full Gaussian core."""
    a = Trainer(tiny_cfg(method="dlrt"), tiny_data())
    b = Trainer(tiny_cfg(method="dlrt", init_core="random"), tiny_data())
    for ma, mb in zip(a.flow.lr_layers, b.flow.lr_layers):
        assert np.array_equal(ma.U, mb.U) and np.array_equal(ma.V, mb.V)
        assert np.isclose(np.linalg.norm(ma.S), np.linalg.norm(mb.S))
        assert np.count_nonzero(mb.S - np.diag(np.diag(mb.S))) > 0
    with pytest.raises(ValueError, match="init_core must be"):
        tiny_cfg(init_core="zeros")


def test_float32_training_stays_float32():
    data = tiny_data()  # float64 arrays: the trainer casts them to cfg.dtype
    tr = Trainer(tiny_cfg(method="dlrt-adaptive", dtype="float32"), data)
    tr.run_epoch()
    for k, v in tr.model.params().items():
        assert v.dtype == np.float32, k


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"finetune_epochs": -1}, "finetune_epochs must be an integer >= 0"),
        ({"momentum": 2.0}, "momentum must satisfy"),
        ({"decay": -1.0}, "decay must be > 0"),
        ({"min_rank": 0}, "min_rank must be an integer >= 1"),
        ({"widths": (20,)}, "widths"),
        ({"lr": True}, "lr must be a real number, got True"),
    ],
)
def test_more_bad_configs(kw, match):
    with pytest.raises(TypeError if "True" in match else ValueError, match=match):
        tiny_cfg(**kw)


def test_product_initialization():
    """init_core="product": the point U S Vᵀ is the official code's W₀ = A B Cᵀ, on the manifold."""
    cfg = tiny_cfg(method="dlrt-adaptive", init_core="product", rank=8)
    tr = Trainer(cfg, tiny_data())
    rng = np.random.default_rng([cfg.seed, 4])
    for m in tr.flow.lr_layers:
        (n, r), k = m.U.shape, m.V.shape[0]
        A, B, C = (cfg.init_std * rng.standard_normal(s) for s in ((n, r), (r, r), (k, r)))
        assert np.allclose(m.U @ m.S @ m.V.T, A @ B @ C.T, atol=1e-14)
        assert np.allclose(m.U.T @ m.U, np.eye(r), atol=1e-13)
        assert np.allclose(m.V.T @ m.V, np.eye(r), atol=1e-13)
    # a product of Gaussian matrices has a decaying spectrum: the truncation sheds more
    # directions than from the flat SVD-of-He start
    big = dict(widths=(60, 60, 60, 4), rank=30, method="dlrt-adaptive", tau=0.15)
    flat = Trainer(tiny_cfg(**big), tiny_data(d=60))
    prod = Trainer(tiny_cfg(**big, init_core="product"), tiny_data(d=60))
    flat.run_epoch()
    prod.run_epoch()
    assert sum(prod.ranks()) < sum(flat.ranks())
    with pytest.raises(ValueError, match="init_std"):
        tiny_cfg(init_core="product", init_std=-1.0)


def test_error_inside_a_step_after_a_nonfinite_pass_is_a_divergence():
    """A numerical error inside a step (e.g. the SVD of a NaN core) after a non-finite forward
    pass reports divergence; the same error after finite passes propagates unchanged."""
    data = tiny_data()
    tr = Trainer(tiny_cfg(method="dlrt-adaptive"), data)

    class Failing:
        def __init__(self, loss):
            self.loss = loss

        def step(self, F, t, Y, h):
            F.evaluations.append((self.loss, 0.0))
            raise NumericalBreakdown("svd: the (12, 12) matrix has NaN or inf entries")

    x, y = data[0][:8], data[1][:8]
    with pytest.raises(TrainingDiverged, match="non-finite loss inside a step"):
        tr.step(x, y, Failing(float("nan")))
    with pytest.raises(NumericalBreakdown, match="NaN or inf") as info:
        tr.step(x, y, Failing(0.5))
    assert not isinstance(info.value, TrainingDiverged)


def test_training_methods_are_integrator_classes_of_one_registry():
    """dlrt.METHODS maps each training method to its integrator class, like
    integrators.METHODS; the rank-adaptive ones get the configuration's truncation."""
    import warnings

    from lowrank_ode.dlrt import METHODS
    from lowrank_ode.dlrt.optim import SGD
    from lowrank_ode.dlrt.train import make_integrator, training_integrator
    from lowrank_ode.integrators import METHODS as CORE
    from lowrank_ode.integrators import Integrator

    assert all(issubclass(cls, Integrator) and cls in CORE.values() for cls in METHODS.values())
    for method in METHODS:
        integ = training_integrator(tiny_cfg(method=method), SGD())
        assert type(integ) is METHODS[method]
        assert (integ.truncation is not None) == integ.rank_adaptive
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert type(make_integrator(tiny_cfg(method="dlrt"), SGD())) is METHODS["dlrt"]
    assert any(issubclass(x.category, DeprecationWarning) for x in w)
