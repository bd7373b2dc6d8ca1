"""Tests for the MNIST subset bundled with the package."""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from lowrank_ode.data import IDXFormatError, load_builtin_mnist, load_mnist
from lowrank_ode.data import mnist as mnist_mod
from lowrank_ode.data.make_subset import balanced_indices, build_subset

PKG = resources.files("lowrank_ode.data")


def test_shapes_dtypes_ranges() -> None:
    x_train, y_train, x_test, y_test = load_builtin_mnist()
    assert x_train.shape == (5000, 784) and x_test.shape == (1000, 784)
    assert y_train.shape == (5000,) and y_test.shape == (1000,)
    assert x_train.dtype == np.float64 and y_train.dtype == np.int64
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    assert x_train.max() == 1.0  # some pixels are saturated
    assert set(np.unique(y_test)) == set(range(10))


def test_balanced_classes() -> None:
    _, y_train, _, y_test = load_builtin_mnist()
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10), np.full(10, 500))
    np.testing.assert_array_equal(np.bincount(y_test, minlength=10), np.full(10, 100))


def test_same_via_load_mnist_and_image_layout() -> None:
    a = load_mnist(subset="builtin", dtype=np.float32)
    b = load_builtin_mnist(dtype=np.float32, flat=False)
    assert a.x_train.dtype == np.float32
    assert b.x_train.shape == (5000, 1, 28, 28) and b.x_test.shape == (1000, 1, 28, 28)
    np.testing.assert_array_equal(a.x_train, b.x_train.reshape(5000, 784))
    np.testing.assert_array_equal(a.y_test, b.y_test)


def test_builtin_ignores_env_and_never_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOWRANK_ODE_DATA", "/nonexistent")
    assert load_mnist(subset="builtin", download=True).x_train.shape == (5000, 784)


def test_npz_contents_and_provenance() -> None:
    with resources.as_file(PKG / "mnist_subset.npz") as p, np.load(p, allow_pickle=False) as z:
        assert Path(p).stat().st_size < 2_000_000
        assert set(z.files) == {
            "x_train",
            "y_train",
            "x_test",
            "y_test",
            "train_indices",
            "test_indices",
            "seed",
        }
        tr, te = z["train_indices"], z["test_indices"]
        assert tr.dtype == np.int64 and np.all(np.diff(tr) > 0) and 0 <= tr[0] and tr[-1] < 60000
        assert te.dtype == np.int64 and np.all(np.diff(te) > 0) and 0 <= te[0] and te[-1] < 10000
        seed = int(z["seed"])
    text = (PKG / "MNIST_ATTRIBUTION.md").read_text(encoding="utf-8")
    for needle in ("LeCun", "Cortes", "Burges", "CC BY-SA 3.0", f"default_rng({seed})"):
        assert needle in text
    blocks = re.findall(r"```\n(.*?)\n```", text, flags=re.S)
    np.testing.assert_array_equal(np.array(blocks[0].split(), dtype=np.int64), tr)
    np.testing.assert_array_equal(np.array(blocks[1].split(), dtype=np.int64), te)


def test_damaged_builtin_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    splits, meta = mnist_mod._load_builtin_raw()
    bad = dict(splits._asdict(), **meta)
    bad["y_train"] = bad["y_train"].copy()
    bad["y_train"][3] = 11
    np.savez_compressed(tmp_path / "mnist_subset.npz", **bad)
    monkeypatch.setattr(mnist_mod, "_builtin_resource", lambda: tmp_path / "mnist_subset.npz")
    with pytest.raises(IDXFormatError, match=r"y_train\]: label range: .*found 11 at index 3"):
        load_builtin_mnist()
    bad["y_train"] = bad["y_train"].astype(np.int16)
    np.savez_compressed(tmp_path / "mnist_subset.npz", **bad)
    with pytest.raises(IDXFormatError, match=r"y_train dtype: expected uint8, found int16"):
        load_builtin_mnist()
    del bad["x_test"]
    np.savez_compressed(tmp_path / "mnist_subset.npz", **bad)
    with pytest.raises(IDXFormatError, match=r"missing \['x_test'\]"):
        load_builtin_mnist()


def test_balanced_indices_is_seeded_and_balanced() -> None:
    labels = np.random.default_rng(5).integers(0, 10, 1000)
    a = balanced_indices(labels, 200, np.random.default_rng(3))
    b = balanced_indices(labels, 200, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.bincount(labels[a], minlength=10), np.full(10, 20))
    assert len(np.unique(a)) == 200
    with pytest.raises(ValueError, match="multiple of 10"):
        balanced_indices(labels, 15, np.random.default_rng(0))
    with pytest.raises(ValueError, match="class 0: need 500 examples"):
        balanced_indices(labels, 5000, np.random.default_rng(0))


def test_build_subset_from_tiny_dir(make_mnist_dir: Callable[..., Path], tmp_path: Path) -> None:
    src = make_mnist_dir(40, 20)
    out, md = tmp_path / "sub.npz", tmp_path / "ATTR.md"
    arrays = build_subset(src, n_train=20, n_test=10, seed=7, out=out, attribution=md)
    with np.load(out, allow_pickle=False) as z:
        for k, v in arrays.items():
            np.testing.assert_array_equal(z[k], v)
        full = make_mnist_dir.arrays  # type: ignore[attr-defined]
        np.testing.assert_array_equal(
            z["x_train"], full["train-images-idx3-ubyte"][z["train_indices"]]
        )
        np.testing.assert_array_equal(
            z["y_test"], full["t10k-labels-idx1-ubyte"][z["test_indices"]]
        )
    text = md.read_text()
    assert "| NO |" in text  # tiny files do not match the canonical MD5s
    assert "default_rng(7)" in text
