"""Tests for lowrank_ode.data.mnist.load_mnist on tiny IDX directories (no network)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lowrank_ode.data import (
    IDXFormatError,
    MNISTNotFoundError,
    MNISTSplits,
    load_mnist,
    load_mnist_raw,
    resolve_data_dir,
    write_idx,
)
from lowrank_ode.data import mnist as mnist_mod

MakeMnistDir = Callable[..., Path]  # the make_mnist_dir fixture (see conftest.py)


def _check_tiny(out: MNISTSplits, arrays: dict[str, np.ndarray], dtype: type = np.float64) -> None:
    x_train, y_train, x_test, y_test = out
    n, m = len(arrays["train-labels-idx1-ubyte"]), len(arrays["t10k-labels-idx1-ubyte"])
    assert x_train.shape == (n, 784) and x_test.shape == (m, 784)
    assert x_train.dtype == dtype and x_test.dtype == dtype
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    np.testing.assert_array_equal(x_train * 255, arrays["train-images-idx3-ubyte"].reshape(n, -1))
    np.testing.assert_allclose(
        x_test, arrays["t10k-images-idx3-ubyte"].reshape(m, -1) / 255, rtol=1e-6
    )
    np.testing.assert_array_equal(y_train, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(y_test, arrays["t10k-labels-idx1-ubyte"])


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
def test_load_from_data_dir(make_mnist_dir: MakeMnistDir, compress: bool) -> None:
    d = make_mnist_dir(20, 10, gzip=compress)
    out = load_mnist(d, download=False)
    assert isinstance(out, MNISTSplits) and isinstance(out, tuple)
    _check_tiny(out, make_mnist_dir.arrays)  # type: ignore[attr-defined]


def test_load_float32_and_image_layout(make_mnist_dir: MakeMnistDir) -> None:
    d = make_mnist_dir(20, 10)
    flat = load_mnist(str(d), download=False, dtype=np.float32)
    _check_tiny(flat, make_mnist_dir.arrays, np.float32)  # type: ignore[attr-defined]
    img = load_mnist(d, download=False, dtype=np.float32, flat=False)
    assert img.x_train.shape == (20, 1, 28, 28) and img.x_test.shape == (10, 1, 28, 28)
    np.testing.assert_array_equal(img.x_train.reshape(20, 784), flat.x_train)


def test_load_via_env_var(make_mnist_dir: MakeMnistDir, monkeypatch: pytest.MonkeyPatch) -> None:
    d = make_mnist_dir(20, 10)
    monkeypatch.setenv("LOWRANK_ODE_DATA", str(d))
    assert resolve_data_dir() == d
    _check_tiny(load_mnist(download=False), make_mnist_dir.arrays)  # type: ignore[attr-defined]


def test_env_var_may_point_at_parent_with_mnist_subdir(
    make_mnist_dir: MakeMnistDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = make_mnist_dir(20, 10, subdir="root/mnist")
    monkeypatch.setenv("LOWRANK_ODE_DATA", str(d.parent))
    _check_tiny(load_mnist(download=False), make_mnist_dir.arrays)  # type: ignore[attr-defined]


def test_explicit_dir_beats_env_var(
    make_mnist_dir: MakeMnistDir, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    d = make_mnist_dir(20, 10)
    monkeypatch.setenv("LOWRANK_ODE_DATA", str(tmp_path / "empty"))
    assert resolve_data_dir(d) == d
    assert load_mnist(d, download=False).x_train.shape == (20, 784)


def test_default_dir_is_pooch_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOWRANK_ODE_DATA", raising=False)
    import pooch

    assert resolve_data_dir() == Path(pooch.os_cache("lowrank_ode")) / "mnist"
    monkeypatch.setenv("LOWRANK_ODE_DATA", "")  # empty counts as unset
    assert resolve_data_dir() == Path(pooch.os_cache("lowrank_ode")) / "mnist"


def test_download_false_empty_dir(tmp_path: Path) -> None:
    with pytest.raises(
        MNISTNotFoundError,
        match=r"MNIST not found in .*empty.*set LOWRANK_ODE_DATA or pass data_dir"
        r".*download disabled",
    ) as info:
        load_mnist(tmp_path / "empty", download=False)
    assert isinstance(info.value, FileNotFoundError)
    assert "train-images-idx3-ubyte" in str(info.value)


def test_partial_dir_counts_as_missing(make_mnist_dir: MakeMnistDir) -> None:
    d = make_mnist_dir()
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(MNISTNotFoundError, match="MNIST not found"):
        load_mnist(d, download=False)


def test_download_failure_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pooch

    calls: list[str] = []

    def fake_retrieve(url: str, known_hash: str, fname: str, path: Path, **kw: object) -> str:
        calls.append(url)
        raise ConnectionError(f"no network for {url}")

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    with pytest.raises(
        MNISTNotFoundError,
        match=r"MNIST not found in .*; set LOWRANK_ODE_DATA or pass data_dir.*"
        r"download failed: .*ConnectionError: no network",
    ):
        load_mnist(tmp_path / "dl")
    assert calls == [m + "train-images-idx3-ubyte.gz" for m in mnist_mod.MIRRORS]


def test_download_uses_pinned_hashes_and_mirror_fallback(
    make_mnist_dir: MakeMnistDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulate pooch: first mirror fails, second 'serves' the tiny files."""
    import pooch

    src = make_mnist_dir()
    seen: list[tuple[str, str]] = []

    def fake_retrieve(url: str, known_hash: str, fname: str, path: Path, **kw: object) -> str:
        seen.append((url, known_hash))
        if url.startswith(mnist_mod.MIRRORS[0]):
            raise ConnectionError("mirror down")
        Path(path).mkdir(parents=True, exist_ok=True)
        shutil.copy(src / fname, Path(path) / fname)
        return str(Path(path) / fname)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    dest = tmp_path / "cache"
    out = load_mnist(dest)
    _check_tiny(out, make_mnist_dir.arrays)  # type: ignore[attr-defined]
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        s + ".gz" for s in mnist_mod.FILES.values()
    )
    assert {h for _, h in seen} == set(mnist_mod.MIRROR_HASHES.values())
    assert all(h.startswith("md5:") and len(h) == 36 for h in mnist_mod.MIRROR_HASHES.values())


def test_download_keeps_existing_files(
    make_mnist_dir: MakeMnistDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pooch

    d = make_mnist_dir()
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    src_labels = make_mnist_dir.arrays["t10k-labels-idx1-ubyte"]  # type: ignore[attr-defined]
    fetched: list[str] = []

    def fake_retrieve(url: str, known_hash: str, fname: str, path: Path, **kw: object) -> str:
        fetched.append(fname)
        write_idx(Path(path) / fname, src_labels)
        return str(Path(path) / fname)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    load_mnist(d)
    assert fetched == ["t10k-labels-idx1-ubyte.gz"]


# --- validation ------------------------------------------------------------------------------


def _corrupt(d: Path, stem: str, array: np.ndarray) -> None:
    write_idx(d / (stem + ".gz"), array)


@pytest.mark.parametrize(
    ("stem", "array", "match"),
    [
        (
            "train-labels-idx1-ubyte",
            np.array([*range(10)] * 2)[:19].astype(np.uint8),
            r"counts: expected as many labels as images \(20 images\), found 19 labels",
        ),
        (
            "t10k-labels-idx1-ubyte",
            np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 10], np.uint8),
            r"label range: expected labels in 0\.\.9, found 10 at index 9",
        ),
        (
            "train-labels-idx1-ubyte",
            np.full(20, 255, np.uint8),
            r"label range: expected labels in 0\.\.9, found 255 at index 0 \(20 out of range\)",
        ),
        (
            "train-images-idx3-ubyte",
            np.zeros((20, 28, 27), np.uint8),
            r"image shape: expected N x 28 x 28, found 20 x 28 x 27",
        ),
        (
            "train-images-idx3-ubyte",
            np.zeros((20, 784), np.uint8),
            r"magic: expected 2051 .*found 2050",
        ),
        (
            "train-images-idx3-ubyte",
            np.zeros((20, 28, 28), np.float32),
            r"magic: expected 2051 .*found 3331",
        ),
        (
            "t10k-labels-idx1-ubyte",
            np.zeros((10, 1), np.uint8),
            r"t10k-labels-idx1-ubyte\.gz: magic: expected 2049 .*found 2050",
        ),
        ("t10k-labels-idx1-ubyte", np.zeros(10, np.int32), r"magic: expected 2049 .*found 3073"),
    ],
    ids=[
        "count-mismatch",
        "label-10",
        "label-255",
        "image-shape",
        "image-2d",
        "image-float",
        "label-2d",
        "label-int32",
    ],
)
def test_validation_errors(
    make_mnist_dir: MakeMnistDir, stem: str, array: np.ndarray, match: str
) -> None:
    d = make_mnist_dir(20, 10)
    _corrupt(d, stem, array)
    with pytest.raises(IDXFormatError, match=match) as info:
        load_mnist(d, download=False)
    assert isinstance(info.value, ValueError)
    assert stem in str(info.value)


def test_swapped_image_and_label_files(make_mnist_dir: MakeMnistDir) -> None:
    d = make_mnist_dir(20, 10)
    a, b = d / "train-images-idx3-ubyte.gz", d / "train-labels-idx1-ubyte.gz"
    tmp = d / "swap"
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    with pytest.raises(IDXFormatError, match=r"magic: expected 2051 .*found 2049"):
        load_mnist(d, download=False)


def test_corrupt_gzip_in_mnist_dir(make_mnist_dir: MakeMnistDir) -> None:
    d = make_mnist_dir()
    p = d / "train-images-idx3-ubyte.gz"
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(IDXFormatError, match=r"train-images-idx3-ubyte\.gz: gzip stream"):
        load_mnist(d, download=False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"subset": "tiny"}, r'subset must be None or "builtin"'),
        ({"subset": "builtin", "data_dir": "."}, "cannot be combined"),
        ({"dtype": np.int32}, "floating-point dtype"),
    ],
)
def test_bad_arguments(make_mnist_dir: MakeMnistDir, kwargs: dict, match: str) -> None:
    kwargs.setdefault("data_dir", make_mnist_dir())
    with pytest.raises(ValueError, match=match):
        load_mnist(**kwargs, download=False)


def test_raw_loader_returns_uint8(make_mnist_dir: MakeMnistDir) -> None:
    d = make_mnist_dir(20, 10)
    raw = load_mnist_raw(d, download=False)
    assert raw.x_train.dtype == np.uint8 and raw.x_train.shape == (20, 28, 28)
    np.testing.assert_array_equal(raw.x_test, make_mnist_dir.arrays["t10k-images-idx3-ubyte"])  # type: ignore[attr-defined]
