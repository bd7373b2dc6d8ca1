"""Models, parameter counts (against the DLRT paper's numbers), initialisation, Sequential."""

from __future__ import annotations

import numpy as np
import pytest

from lowrank_ode import nn


def test_mlp_structure_and_shapes() -> None:
    model = nn.mlp(rank=20, rng=0)
    lr = model.low_rank_layers()
    assert [type(lay).__name__ for lay in model.weight_layers()] == ["LowRankDense"] * 4 + ["Dense"]
    assert [lay.rank for lay in lr] == [20] * 4
    assert [(lay.n_in, lay.n_out) for lay in lr] == [(784, 500)] + [(500, 500)] * 3
    assert model.forward(np.zeros((3, 784))).shape == (3, 10)
    dense = nn.mlp(low_rank=False, rng=0)
    assert dense.low_rank_layers() == []
    assert nn.count_params(dense, "eval") == 1_147_000
    assert (
        nn.count_params(nn.mlp((784, 784, 784, 784, 784, 10), low_rank=False), "eval") == 2_466_464
    )
    assert len(nn.mlp((4, 3), low_rank=True).low_rank_layers()) == 0  # output layer stays dense


def test_mlp_compression_rates_match_paper() -> None:
    """DLRT paper, 784-500×4-10 at τ = 0.03 and 0.17."""
    m = nn.mlp(rank=(176, 170, 171, 174), rng=0)
    assert nn.compression_rate(m, "eval") == pytest.approx(34.96, abs=0.01)
    assert nn.compression_rate(m, "train") == pytest.approx(-71.28, abs=0.01)
    m = nn.mlp(rank=(13, 21, 24, 20), rng=0)
    assert nn.compression_rate(m, "eval") == pytest.approx(92.44, abs=0.01)
    assert nn.compression_rate(m, "train") == pytest.approx(84.77, abs=0.01)


def test_lenet5_structure_and_counts() -> None:
    rng = np.random.default_rng(0)
    dense = nn.lenet5(rng=rng)
    assert dense.forward(rng.standard_normal((2, 1, 28, 28))).shape == (2, 10)
    assert nn.count_params(dense, "dense") == 500 + 25_000 + 400_000 + 5_000
    assert nn.count_params(dense, "eval", include_bias=True) == 430_500 + 20 + 50 + 500 + 10
    model = nn.lenet5(low_rank=True, ranks=(10, 20, 48), rng=rng)
    assert [type(lay).__name__ for lay in model.low_rank_layers()] == [
        "LowRankConv2d",
        "LowRankConv2d",
        "LowRankDense",
    ]
    # true evaluation compression r(n_in + n_out) of the paper's τ = 0.11 ranks: 81.7 %
    assert nn.compression_rate(model, "eval") == pytest.approx(81.7, abs=0.05)
    assert nn.count_params(model, "stored") == 450 + 100 + 11_000 + 400 + 62_400 + 48**2 + 5_000
    assert model.forward(rng.standard_normal((2, 1, 28, 28))).shape == (2, 10)
    with pytest.raises(ValueError, match=r"min\(25, 20\) = 20, got 21"):
        nn.lenet5(low_rank=True, ranks=(21, 5, 5))


def test_seeded_and_dtype() -> None:
    a = nn.mlp((6, 5, 4, 3), rank=2, rng=42)
    b = nn.mlp((6, 5, 4, 3), rank=2, rng=np.random.default_rng(42))
    for k, v in a.params().items():
        np.testing.assert_array_equal(v, b.params()[k])
    m32 = nn.lenet5(low_rank=True, ranks=3, dtype=np.float32, rng=0)
    assert {v.dtype for v in m32.params().values()} == {np.dtype(np.float32)}
    y = m32.forward(np.zeros((1, 1, 28, 28), dtype=np.float32))
    assert y.dtype == np.float32


def test_lowrank_init_is_truncated_svd_of_dense_init() -> None:
    U, S, V = nn.lowrank_init(30, 20, 5, rng=1)
    W0 = nn.he_normal(30, 20, rng=1)
    P, s, Qt = np.linalg.svd(W0)
    np.testing.assert_allclose(U @ S @ V.T, (P[:, :5] * s[:5]) @ Qt[:5], atol=1e-12)
    np.testing.assert_allclose(U.T @ U, np.eye(5), atol=1e-12)
    np.testing.assert_allclose(V.T @ V, np.eye(5), atol=1e-12)


def test_prescribed_singular_values() -> None:
    s = nn.decaying_singular_values(6, 2.0, rng=3)
    base = np.sort(np.abs(np.random.default_rng(3).standard_normal(6)))[::-1]
    np.testing.assert_allclose(s, base * 2.0 ** -np.arange(6))
    U, S, V = nn.lowrank_init(12, 10, 6, rng=0, decay=2.0)
    np.testing.assert_allclose(np.diag(S), nn.decaying_singular_values(6, 2.0, rng=_after_dense(0)))
    layer = nn.LowRankDense(12, 10, 3, rng=0, singular_values=np.array([3.0, 2.0, 1.0]))
    np.testing.assert_allclose(np.linalg.svd(layer.dense_weight(), compute_uv=False)[:3], [3, 2, 1])
    model = nn.lenet5(low_rank=True, ranks=4, decay=10.0, rng=0)
    for lay in model.low_rank_layers():
        d = np.diag(lay.S)
        assert np.all(np.diff(d) < 0)
        assert d[1] / d[0] <= 0.1 + 1e-12


def _after_dense(seed: int) -> np.random.Generator:
    """The generator state lowrank_init draws the spectrum from (after the 10×12 He matrix)."""
    rng = np.random.default_rng(seed)
    nn.he_normal(12, 10, rng)
    return rng


def test_glorot_bounds() -> None:
    W = nn.glorot_uniform(40, 10, rng=0)
    assert W.shape == (10, 40) and np.abs(W).max() <= np.sqrt(6 / 50)
    assert nn.mlp((5, 4, 3), rank=2, activation="tanh", rng=0)[1].__class__ is nn.Tanh


def test_sequential_params_roundtrip() -> None:
    model = nn.mlp((6, 5, 4, 3), rank=2, rng=0)
    keys = list(model.params())
    assert keys == ["0.U", "0.S", "0.V", "0.b", "2.U", "2.S", "2.V", "2.b", "4.W", "4.b"]
    new = {k: v + 1.0 for k, v in model.params().items()}
    model.set_params(new)
    for k in keys:
        np.testing.assert_array_equal(model.params()[k], new[k])
    x = np.ones((2, 6))
    model.forward(x)
    model.backward(np.ones((2, 3)))
    assert list(model.grads()) == ["0.S", "0.b", "2.S", "2.b", "4.W", "4.b"]
    assert len(model) == 5 and "LowRankDense(6, 5, rank=2)" in repr(model)
