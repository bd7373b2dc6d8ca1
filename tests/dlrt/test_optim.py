"""Optimizers as sub-step solvers (lowrank_ode.dlrt.optim): SGD is Euler, Adam's updates, and
the transport of their state between bases."""

import numpy as np

from lowrank_ode.dlrt.optim import SGD, Adam, Momentum, _joined


def test_momentum_transport_projects_the_velocity():
    rng = np.random.default_rng(0)
    V0 = np.linalg.qr(rng.standard_normal((9, 3)))[0]
    V1 = np.linalg.qr(rng.standard_normal((9, 4)))[0]
    opt = Momentum(beta=0.5)
    g = (rng.standard_normal((6, 3)),)
    opt(None, 0.0, (np.zeros((6, 3)),), 1.0, f0=g, key="K", basis=((None, V0),))
    M_old = opt.state["K"].buffers[0][0]
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


def test_adam_entry_reset_restarts_its_bias_correction():
    opt = Adam()
    f0 = (np.ones((2, 2)), np.ones((3, 1)))
    X = (np.zeros((2, 2)), np.zeros((3, 1)))
    opt(None, 0, X, 0.1, f0=f0, key="S")
    opt(None, 0, X, 0.1, f0=f0, key="S")
    assert opt.state["S"].count == [2, 2]
    X2 = (np.zeros((2, 2)), np.zeros((4, 1)))  # second entry changed shape (rank change)
    out = opt(None, 0, X2, 0.1, f0=(np.ones((2, 2)), np.ones((4, 1))), key="S")
    assert opt.state["S"].count == [3, 1]
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
        ref = [
            x + h * (m / (1 - b1**k)) / (np.sqrt(v / (1 - b2**k)) + eps) for x, m, v in zip(X, M, V)
        ]
        for a, b in zip(out, ref):
            assert a.shape == b.shape and np.array_equal(a, b)
        X = out


def test_state_is_one_record_per_subproblem_and_survives_a_state_dict_round_trip():
    from lowrank_ode.dlrt.optim import SubstepState, Transition
    from lowrank_ode.substep import SubProblem

    rng = np.random.default_rng(3)
    V = np.linalg.qr(rng.standard_normal((7, 2)))[0]
    opt = Momentum(beta=0.5)
    X, g = (np.zeros((4, 2)),), (rng.standard_normal((4, 2)),)
    opt(None, 0.0, X, 0.1, f0=g, key=SubProblem.S_BACKWARD, basis=((None, V),))
    opt(None, 0.0, X, 0.1, f0=g, key=None)  # a key outside the library: kept by its string
    assert set(opt.state) == {SubProblem.S_BACKWARD, "None"}
    assert isinstance(opt.state["S-"], SubstepState)  # members compare equal to their values
    clone = Momentum(beta=0.5)
    clone.load_state_dict(opt.state_dict())
    for key, st in opt.state.items():
        np.testing.assert_array_equal(clone.state[key].buffers[0][0], st.buffers[0][0])
        assert clone.state[key].count == st.count
    a = opt(None, 0.0, X, 0.1, f0=g, key=None)
    b = clone(None, 0.0, X, 0.1, f0=g, key=None)
    np.testing.assert_array_equal(a[0], b[0])
    # the transition between bases: the identity when unchanged, newᴴ old otherwise
    assert Transition.between(V, V.copy(), np) == Transition()
    W = np.linalg.qr(rng.standard_normal((7, 2)))[0]
    np.testing.assert_allclose(Transition.between(W, V, np).matrix, W.T @ V)


def test_adam_inplace_update_is_bit_identical_to_the_formula():
    """The NumPy in-place update performs the formula's operations in the formula's order."""
    import array_api_compat.numpy as xp_np

    rng = np.random.default_rng(3)
    opt = Adam()
    for dtype in (np.float32, np.float64):
        for k in (1, 7):
            m, v, d = (rng.standard_normal(1000).astype(dtype) for _ in range(3))
            v = np.abs(v)
            ref = opt._update(m, v, d, k, 1e-3, xp_np)
            got = opt._update_inplace(m.copy(), v.copy(), d, k, 1e-3)
            for a, b in zip(ref, got, strict=True):
                assert a.dtype == b.dtype == dtype
                np.testing.assert_array_equal(a, b)


def test_adam_in_place_buffers_give_the_copying_update_and_never_touch_a_state_dict():
    """Steps that update the joined buffers in place equal steps on fresh copies, bit for bit,
    and a state_dict taken between two steps keeps its values."""
    rng = np.random.default_rng(4)
    X = tuple(rng.standard_normal(s).astype(np.float32) for s in ((5, 3), (7,), (2, 2)))
    grads = [tuple(rng.standard_normal(x.shape).astype(np.float32) for x in X) for _ in range(4)]
    fast, slow = Adam(), Adam()
    Xf = Xs = X
    for k, g in enumerate(grads):
        if k == 2:
            snap = fast.state_dict()
            kept = {n: a.copy() for n, a in snap.items()}
        Xf = fast(lambda t, X, g=g: g, 0.0, Xf, 1e-2)
        # the copying path: hand the optimizer buffers that are not joined views
        for st in slow.state.values():
            st.buffers = [[np.array(a, copy=True) for a in b] for b in st.buffers]
        Xs = slow(lambda t, X, g=g: g, 0.0, Xs, 1e-2)
        for a, b in zip(Xf, Xs, strict=True):
            np.testing.assert_array_equal(a, b)
        (st,) = fast.state.values()
        assert all(_joined(b) is not None for b in st.buffers)  # the in-place path is taken
    for n, a in snap.items():
        np.testing.assert_array_equal(a, kept[n])
