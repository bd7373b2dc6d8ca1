"""DLRT: a training step is an integrator step; descent; truncation; checkpoints; resume."""

import json

import numpy as np
import pytest

from lowrank_ode.dlrt import TrainConfig, Trainer, TrainingDiverged
from lowrank_ode.dlrt.optim import SGD, Adam, Momentum
from lowrank_ode.exceptions import NumericalBreakdown
from lowrank_ode.integrators import BUG, ParallelBUG, RankAdaptiveBUG
from lowrank_ode.nn import SoftmaxCrossEntropy


def tiny_data(n_train=96, n_test=40, d=20, classes=4, seed=0):
    """A linearly separable-ish synthetic problem (no network, no MNIST needed)."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((classes, d))
    x = rng.standard_normal((n_train + n_test, d))
    y = np.argmax(x @ W.T + 0.3 * rng.standard_normal((n_train + n_test, classes)), axis=1)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def tiny_cfg(**kw):
    base = dict(
        widths=(20, 16, 12, 4), rank=6, epochs=1, batch_size=32, lr=0.05, optimizer="sgd", tau=0.1
    )
    base.update(kw)
    return TrainConfig(**base)


def _dense_gradients(trainer, x, y):
    """``grads_at(factors, free)``: the dense weight gradients and all parameter gradients of
    the trainer's network on ``(x, y)`` at the given factors and free parameters."""
    model = trainer.model
    layers = trainer.flow.lr_layers
    loss = SoftmaxCrossEntropy()

    def grads_at(factors, free):
        for m, (U, S, V) in zip(layers, factors):
            m.set_factors(U, S, V)
        model.set_params(free)
        loss.forward(model.forward(x), y)
        model.backward(loss.backward())
        return [m.grad_dense() for m in layers], model.grads()

    return grads_at


def _manual_bug_step(trainer, x, y, lr):
    """Algorithm 1 of Schotthöfer et al. (fixed rank) written out with dense matrices."""
    model = trainer.model
    layers = trainer.flow.lr_layers
    grads_at = _dense_gradients(trainer, x, y)
    free0 = {k: v for k, v in model.params().items() if k in trainer.flow.free_keys}
    f0 = [(m.U, m.S, m.V) for m in layers]
    G, _ = grads_at(f0, free0)
    new = []
    for (U0, S0, V0), Gi in zip(f0, G):
        K1 = U0 @ S0 - lr * Gi @ V0
        L1 = V0 @ S0.T - lr * Gi.T @ U0
        U1 = np.linalg.qr(K1)[0]
        V1 = np.linalg.qr(L1)[0]
        new.append((U1, (U1.T @ U0) @ S0 @ (V0.T @ V1), V1))
    G2, g2 = grads_at(new, free0)
    out = []
    for (U1, S, V1), Gi in zip(new, G2):
        out.append(U1 @ (S - lr * U1.T @ Gi @ V1) @ V1.T)
    free1 = {k: v - lr * g2[k] for k, v in free0.items()}
    return out, free1


def _manual_adaptive_step(trainer, x, y, lr, tau):
    """Algorithm 1 of Schotthöfer et al. (rank-adaptive) with dense matrices, the S-step
    gradient taken by a second pass at Û Ŝ₀ V̂ᵀ as the paper writes it."""
    model = trainer.model
    layers = trainer.flow.lr_layers
    grads_at = _dense_gradients(trainer, x, y)
    free0 = {k: v for k, v in model.params().items() if k in trainer.flow.free_keys}
    f0 = [(m.U, m.S, m.V) for m in layers]
    G, _ = grads_at(f0, free0)
    aug = []
    for (U0, S0, V0), Gi in zip(f0, G):
        Uh = np.linalg.qr(np.hstack([U0 @ S0 - lr * Gi @ V0, U0]))[0]
        Vh = np.linalg.qr(np.hstack([V0 @ S0.T - lr * Gi.T @ U0, V0]))[0]
        aug.append((Uh, (Uh.T @ U0) @ S0 @ (V0.T @ Vh), Vh))
    G2, g2 = grads_at(aug, free0)
    out = []
    for (Uh, S, Vh), Gi in zip(aug, G2):
        P, sig, Qt = np.linalg.svd(S - lr * Uh.T @ Gi @ Vh)
        tail = np.sqrt(np.cumsum(sig[::-1] ** 2))[::-1]  # tail[k] = ‖σ_{k:}‖
        r = next(k for k in range(1, len(sig) + 1) if k == len(sig) or tail[k] <= tau * tail[0])
        out.append((Uh @ P[:, :r]) @ np.diag(sig[:r]) @ (Vh @ Qt[:r].T).T)
    free1 = {k: v - lr * g2[k] for k, v in free0.items()}
    return out, free1


def test_adaptive_training_step_is_the_papers_algorithm():
    """One rank-adaptive DLRT step (one pass: the S-step reuses the gradient at W₀) equals the
    paper's Algorithm 1 with its second pass at Û Ŝ₀ V̂ᵀ, to rounding."""
    x_tr, y_tr, *_ = data = tiny_data()
    tau = 0.05
    tr = Trainer(tiny_cfg(method="dlrt-adaptive", tau=tau), data)
    W_expected, free_expected = _manual_adaptive_step(tr, x_tr[:32], y_tr[:32], 0.05, tau)
    tr2 = Trainer(tiny_cfg(method="dlrt-adaptive", tau=tau), data)
    tr2.step(x_tr[:32], y_tr[:32])
    assert len(tr2.flow.evaluations) == 1
    for m, W in zip(tr2.flow.lr_layers, W_expected):
        assert m.rank < 2 * 6  # the truncation acted
        assert np.allclose(m.dense_weight(), W, atol=1e-12)
    params = tr2.model.params()
    for k, v in free_expected.items():
        assert np.allclose(params[k], v, atol=1e-12)


def test_training_step_is_an_integrator_step():
    x_tr, y_tr, *_ = data = tiny_data()
    tr = Trainer(tiny_cfg(method="dlrt"), data)
    W_expected, free_expected = _manual_bug_step(tr, x_tr[:32], y_tr[:32], 0.05)
    tr2 = Trainer(tiny_cfg(method="dlrt"), data)  # same seed, same initial weights
    tr2.step(x_tr[:32], y_tr[:32])
    for m, W in zip(tr2.flow.lr_layers, W_expected):
        assert np.allclose(m.dense_weight(), W, atol=1e-12)
    params = tr2.model.params()
    for k, v in free_expected.items():
        assert np.allclose(params[k], v, atol=1e-12)
    assert len(tr2.flow.evaluations) == 2  # K and L share one pass, S the second


@pytest.mark.parametrize(
    "method,passes",
    [("dlrt", 2), ("dlrt-adaptive", 1), ("dlrt-single-pass", 1), ("dense", 1), ("vanilla", 1)],
)
def test_passes_per_step(method, passes):
    data = tiny_data()
    tr = Trainer(tiny_cfg(method=method), data)
    tr.step(data[0][:32], data[1][:32])
    assert len(tr.flow.evaluations) == passes


def test_trainer_uses_the_core_integrators():
    assert type(Trainer(tiny_cfg(method="dlrt"), tiny_data()).integrator) is BUG
    assert (
        type(Trainer(tiny_cfg(method="dlrt-adaptive"), tiny_data()).integrator) is RankAdaptiveBUG
    )
    assert type(Trainer(tiny_cfg(method="dlrt-single-pass"), tiny_data()).integrator) is ParallelBUG


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


# ------------------------------------------------------------------ optimizer state transport
def test_momentum_transport_projects_the_velocity():
    rng = np.random.default_rng(0)
    V0 = np.linalg.qr(rng.standard_normal((9, 3)))[0]
    V1 = np.linalg.qr(rng.standard_normal((9, 4)))[0]
    opt = Momentum(beta=0.5)
    g = (rng.standard_normal((6, 3)),)
    opt(None, 0.0, (np.zeros((6, 3)),), 1.0, f0=g, key="K", basis=((None, V0),))
    M_old = opt.state["K"]["buffers"][0][0]
    g2 = (np.zeros((6, 4)),)
    X = opt(None, 0.0, (np.zeros((6, 4)),), 1.0, f0=g2, key="K", basis=((None, V1),))
    # velocity M V0ᵀ projected on the new basis: (M V0ᵀ) V1, then decayed by β
    assert np.allclose(X[0], 0.5 * (M_old @ V0.T) @ V1)
    # unchanged basis: plain heavy ball
    X = opt(None, 0.0, (np.zeros((6, 4)),), 1.0, f0=g2, key="K", basis=((None, V1),))
    assert np.allclose(X[0], 0.25 * (M_old @ V0.T) @ V1)


def test_sgd_is_euler_and_adam_first_step_is_sign_like():
    f0 = (np.array([[2.0, -3.0]]),)
    assert np.allclose(SGD()(None, 0, (np.zeros((1, 2)),), 0.1, f0=f0)[0], [[0.2, -0.3]])
    X = Adam()(None, 0, (np.zeros((1, 2)),), 0.1, f0=f0, key="S")
    assert np.allclose(X[0], [[0.1, -0.1]], atol=1e-7)


def test_network_flow_products_match_dense_gradient():
    data = tiny_data()
    tr = Trainer(tiny_cfg(method="dlrt"), data)
    flow = tr.flow
    flow.set_batch(data[0][:16], data[1][:16])
    G = flow.at(0.0, flow.point())
    m = flow.lr_layers[0]
    Gd = -m.grad_dense()
    V = np.random.default_rng(1).standard_normal((m.n_in, 5))
    U = np.random.default_rng(2).standard_normal((m.n_out, 3))
    assert np.allclose(G.right(0, V), Gd @ V)
    assert np.allclose(G.left(0, U), Gd.T @ U)
    assert np.allclose(G.galerkin(0, U, V), U.T @ Gd @ V)
    # the evaluation survives a later pass (snapshots, not live caches)
    flow.set_batch(data[0][16:32], data[1][16:32])
    flow.at(0.0, flow.point())
    assert np.allclose(G.right(0, V), Gd @ V)


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
    [({"finetune_epochs": -1}, "finetune_epochs must be an integer >= 0"),
     ({"momentum": 2.0}, "momentum must satisfy"), ({"decay": -1.0}, "decay must be > 0"),
     ({"min_rank": 0}, "min_rank must be an integer >= 1"), ({"widths": (20,)}, "widths"),
     ({"lr": True}, "lr must be a real number, got True")],
)
def test_more_bad_configs(kw, match):
    with pytest.raises(TypeError if "True" in match else ValueError, match=match):
        tiny_cfg(**kw)


def test_adam_entry_reset_restarts_its_bias_correction():
    opt = Adam()
    f0 = (np.ones((2, 2)), np.ones((3, 1)))
    X = (np.zeros((2, 2)), np.zeros((3, 1)))
    opt(None, 0, X, 0.1, f0=f0, key="S")
    opt(None, 0, X, 0.1, f0=f0, key="S")
    assert opt.state["S"]["count"] == [2, 2]
    X2 = (np.zeros((2, 2)), np.zeros((4, 1)))  # second entry changed shape (rank change)
    out = opt(None, 0, X2, 0.1, f0=(np.ones((2, 2)), np.ones((4, 1))), key="S")
    assert opt.state["S"]["count"] == [3, 1]
    assert np.allclose(out[1], 0.1, atol=1e-6)  # a first Adam step again: size lr


def test_adam_joint_update_equals_the_per_entry_formula():
    """Entries with a common step count are updated as one flattened vector; the result is the
    textbook Adam step of each entry, bit for bit."""
    rng = np.random.default_rng(4)
    shapes = [(5, 3), (3, 3), (7,)]
    X = tuple(rng.standard_normal(s) for s in shapes)
    grads = [tuple(rng.standard_normal(s) for s in shapes) for _ in range(3)]
    opt, b1, b2, eps, h = Adam(), 0.9, 0.999, 1e-8, 0.05
    M = [np.zeros(s) for s in shapes]
    V = [np.zeros(s) for s in shapes]
    for k, g in enumerate(grads, start=1):
        out = opt(None, 0, X, h, f0=g, key="S")
        M = [b1 * m + (1 - b1) * d for m, d in zip(M, g)]
        V = [b2 * v + (1 - b2) * np.abs(d) ** 2 for v, d in zip(V, g)]
        ref = [x + h * (m / (1 - b1**k)) / (np.sqrt(v / (1 - b2**k)) + eps)
               for x, m, v in zip(X, M, V)]
        for a, b in zip(out, ref):
            assert a.shape == b.shape and np.array_equal(a, b)
        X = out


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

        def step_blocks(self, F, t, Y, h):
            F.evaluations.append((self.loss, 0.0))
            raise NumericalBreakdown("svd: the (12, 12) matrix has NaN or inf entries")

    x, y = data[0][:8], data[1][:8]
    with pytest.raises(TrainingDiverged, match="non-finite loss inside a step"):
        tr.step(x, y, Failing(float("nan")))
    with pytest.raises(NumericalBreakdown, match="NaN or inf") as info:
        tr.step(x, y, Failing(0.5))
    assert not isinstance(info.value, TrainingDiverged)
