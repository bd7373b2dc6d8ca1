"""The gradient flow (lowrank_ode.dlrt.flow): a training step is a BUG step on it, as in the
paper's Algorithm 1; its evaluations answer thin products and count passes."""

import numpy as np
import pytest
from dlrt_helpers import tiny_cfg, tiny_data

from lowrank_ode.dlrt import Trainer
from lowrank_ode.integrators import BUG, ParallelBUG, RankAdaptiveBUG
from lowrank_ode.nn import SoftmaxCrossEntropy


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
    assert tr.integrator.n_evals == tr.passes == passes  # the one counter: Integrator.step's


def test_trainer_uses_the_core_integrators():
    assert type(Trainer(tiny_cfg(method="dlrt"), tiny_data()).integrator) is BUG
    assert (
        type(Trainer(tiny_cfg(method="dlrt-adaptive"), tiny_data()).integrator) is RankAdaptiveBUG
    )
    assert type(Trainer(tiny_cfg(method="dlrt-single-pass"), tiny_data()).integrator) is ParallelBUG


def test_network_flow_products_match_dense_gradient():
    data = tiny_data()
    tr = Trainer(tiny_cfg(method="dlrt"), data)
    flow = tr.flow
    flow.set_batch(data[0][:16], data[1][:16])
    G = flow.at(0.0, flow.point())
    m = flow.lr_layers[0]  # the model's layer, at the same point: its own pass gives the dense G
    loss = SoftmaxCrossEntropy()
    loss.forward(tr.model.forward(data[0][:16]), data[1][:16])
    tr.model.backward(loss.backward())
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


def test_vanilla_start_splits_the_factorization_evenly():
    """U Vᵀ of the baseline is the initial U₀ S V₀ᵀ, with Σ^{1/2} on both factors (UᵀU = VᵀV =
    Σ), so small initial singular values slow both factors down, as in the paper's baseline."""
    ref = Trainer(tiny_cfg(method="dlrt", rank=4, decay=10.0), tiny_data()).model.low_rank_layers()
    layers = Trainer(tiny_cfg(method="vanilla", rank=4, decay=10.0), tiny_data()).flow.lr_layers
    for m0, m in zip(ref, layers, strict=True):
        np.testing.assert_allclose(m.U @ m.V.T, m0.U @ m0.S @ m0.V.T, atol=1e-13)
        np.testing.assert_array_equal(m.S, np.eye(4))
        sigma = np.linalg.svd(m0.S, compute_uv=False)
        np.testing.assert_allclose(m.U.T @ m.U, np.diag(sigma), atol=1e-13)
        np.testing.assert_allclose(m.V.T @ m.V, np.diag(sigma), atol=1e-13)


@pytest.mark.parametrize("method", ["dlrt", "dlrt-adaptive", "vanilla", "dense"])
def test_flow_evaluations_leave_the_model_alone(method):
    """Evaluating the flow at another point changes neither the model's parameters nor its
    caches; only load() writes a point into the model."""
    tr = Trainer(tiny_cfg(method=method), tiny_data())
    x, y = tr.data[0][:16], tr.data[1][:16]
    model, flow = tr.model, tr.flow
    model.forward(x)  # the model's own cache, e.g. from a prediction
    before = model.params()
    caches = [m._cache for m in model.layers]
    flow.set_batch(x, y)
    Y = [2 * b if not hasattr(b, "U") else type(b)(2 * b.U, b.S, b.V) for b in flow.point()]
    flow.at(0.0, Y)
    after = model.params()
    assert all(after[k] is before[k] for k in before)
    assert all(m._cache is c for m, c in zip(model.layers, caches, strict=True))
    flow.load(Y)
    assert any(model.params()[k] is not before[k] for k in before)


def test_forward_backward_is_deprecated_but_works():
    tr = Trainer(tiny_cfg(method="dlrt"), tiny_data())
    tr.flow.set_batch(tr.data[0][:16], tr.data[1][:16])
    with pytest.warns(DeprecationWarning, match="at"):
        loss, _ = tr.flow.forward_backward()
    assert loss == tr.flow.at(0.0, tr.flow.point()).loss
