"""Tests for lowrank_ode.data.idx: round trips and malformed files."""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lowrank_ode.data import IDXFormatError, read_idx, write_idx
from lowrank_ode.data.idx import idx_magic

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
SHAPES = [(7,), (3, 5), (2, 3, 4), (2, 1, 3, 2), (0, 4)]


def _sample(dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(0)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return rng.standard_normal(shape).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, shape, dtype=dt, endpoint=True)


def _raw_idx(code: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_round_trip(tmp_path: Path, dtype: type, shape: tuple[int, ...], compress: bool) -> None:
    a = _sample(dtype, shape)
    p = tmp_path / "a.idx"
    write_idx(p, a, gzip=compress)
    assert (p.read_bytes()[:2] == b"\x1f\x8b") == compress
    b = read_idx(p)
    assert b.dtype == a.dtype and b.dtype.isnative
    assert b.shape == a.shape
    np.testing.assert_array_equal(b, a)
    assert b.flags.writeable and b.flags.c_contiguous


def test_gzip_detected_by_content_not_extension(tmp_path: Path) -> None:
    a = np.arange(12, dtype=np.int32).reshape(3, 4)
    gz_named_raw = tmp_path / "x.gz"
    raw_named_gz = tmp_path / "x-idx3-ubyte"
    write_idx(gz_named_raw, a, gzip=False)
    write_idx(raw_named_gz, a, gzip=True)
    np.testing.assert_array_equal(read_idx(gz_named_raw), a)
    np.testing.assert_array_equal(read_idx(raw_named_gz), a)


def test_big_endian_on_disk_and_non_native_input(tmp_path: Path) -> None:
    a = np.array([1, 256, -2], dtype=">i4")
    p = tmp_path / "be.idx"
    write_idx(p, a.astype("<i4"), gzip=False)
    assert p.read_bytes() == _raw_idx(0x0C, (3,), a.tobytes())
    write_idx(p, a, gzip=False)  # big-endian input gives the same bytes
    assert p.read_bytes() == _raw_idx(0x0C, (3,), a.tobytes())
    np.testing.assert_array_equal(read_idx(p), [1, 256, -2])


def test_mnist_magic_numbers() -> None:
    assert idx_magic(np.zeros((2, 28, 28), np.uint8)) == 2051
    assert idx_magic(np.zeros(2, np.uint8)) == 2049


def test_write_is_atomic_and_deterministic(tmp_path: Path) -> None:
    a = np.arange(100, dtype=np.float32)
    p = tmp_path / "a.idx.gz"
    write_idx(p, a)
    first = p.read_bytes()
    write_idx(p, a)  # overwrite
    assert p.read_bytes() == first  # mtime=0, no file name in the gzip header
    assert sorted(os.listdir(tmp_path)) == ["a.idx.gz"]  # no temp files left


def test_write_failure_leaves_no_temp_file(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="complex128 cannot be stored"):
        write_idx(tmp_path / "c.idx", np.zeros(3, np.complex128))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("array", "exc", "match"),
    [
        (np.zeros(3, np.int64), TypeError, "int64 cannot be stored"),
        (np.zeros(3, bool), TypeError, "bool cannot be stored"),
        (np.float64(1.0), ValueError, "ndim=0"),
    ],
)
def test_write_rejects(tmp_path: Path, array: np.ndarray, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        write_idx(tmp_path / "bad.idx", array)


# --- malformed files -------------------------------------------------------------------------

GOOD_PAYLOAD = bytes(range(6))


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize(
    ("content", "match"),
    [
        (
            b"\x01\x00\x08\x01" + struct.pack(">I", 6) + GOOD_PAYLOAD,
            r"magic: expected first two bytes 0x00 0x00, found 0x01 0x00",
        ),
        (b"\x00\x08\x03", r"header: expected at least 4 bytes.*found 3 bytes"),
        (b"", r"header: expected at least 4 bytes.*found 0 bytes"),
        (_raw_idx(0x0A, (6,), GOOD_PAYLOAD), r"dtype code: expected one of 0x08, .*found 0x0A"),
        (_raw_idx(0x07, (6,), GOOD_PAYLOAD), r"dtype code: .*found 0x07"),
        (b"\x00\x00\x08\x00", r"ndim: expected at least 1, found 0"),
        (
            b"\x00\x00\x08\x03" + struct.pack(">2I", 2, 3),
            r"dims: expected 3 big-endian uint32 sizes \(16 header bytes\), found only 12",
        ),
        (
            _raw_idx(0x08, (2, 3), GOOD_PAYLOAD[:5]),
            r"payload size \(truncated payload\): expected 6 bytes .*found 5 bytes",
        ),
        (
            _raw_idx(0x08, (2, 3), GOOD_PAYLOAD + b"\x00"),
            r"payload size \(trailing bytes after payload\): expected 6 bytes .*found 7 bytes",
        ),
        (
            _raw_idx(0x0C, (2,), b"\x00" * 7),
            r"payload size \(truncated payload\): expected 8 bytes \(dims \(2,\), int32\), found 7",
        ),
        (
            _raw_idx(0x0E, (10**6, 10**6), b""),
            r"payload size \(truncated payload\): expected 8000000000000 bytes",
        ),
    ],
    ids=[
        "wrong-magic",
        "short-header",
        "empty",
        "unknown-dtype-0A",
        "unknown-dtype-07",
        "ndim-0",
        "truncated-dims",
        "truncated-payload",
        "trailing-bytes",
        "truncated-int32",
        "huge-dims",
    ],
)
def test_malformed(tmp_path: Path, content: bytes, match: str, compress: bool) -> None:
    p = tmp_path / "bad-idx1-ubyte"
    p.write_bytes(gzip.compress(content) if compress else content)
    with pytest.raises(IDXFormatError, match=match) as info:
        read_idx(p)
    assert isinstance(info.value, ValueError)
    assert str(p) in str(info.value)  # message names the file


def test_good_reference_file_reads(tmp_path: Path) -> None:
    """The hand-built bytes used above are valid when not corrupted."""
    p = tmp_path / "ok"
    p.write_bytes(_raw_idx(0x08, (2, 3), GOOD_PAYLOAD))
    np.testing.assert_array_equal(read_idx(p), np.arange(6, dtype=np.uint8).reshape(2, 3))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda good: b"\x1f\x8b" + b"garbage" * 5, r"gzip stream: .*corrupt or truncated"),
        (lambda good: good[: len(good) // 2], r"gzip stream: .*corrupt or truncated.*EOFError"),
        (
            lambda good: good[:10] + bytes(b ^ 0xFF for b in good[10:30]) + good[30:],
            r"gzip stream: .*corrupt or truncated",
        ),
        (lambda good: good + b"junk after the stream", r"gzip stream: .*corrupt or truncated"),
    ],
    ids=["not-deflate", "truncated-stream", "flipped-bytes", "trailing-junk"],
)
def test_bad_gzip(tmp_path: Path, make: Callable[[bytes], bytes], match: str) -> None:
    good = gzip.compress(_raw_idx(0x08, (200,), bytes(range(200))))
    p = tmp_path / "bad.gz"
    p.write_bytes(make(good))
    with pytest.raises(IDXFormatError, match=match):
        read_idx(p)


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.idx")
