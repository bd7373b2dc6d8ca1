"""The one atomic writer: the destination is the old file or the complete new one."""

import os

import pytest

from lowrank_ode._io import atomic_open, write_text_atomic


def test_atomic_open_replaces_the_file_only_on_success(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    write_text_atomic(path, "old")
    assert path.read_text() == "old"
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o644)
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_open(path, "w") as fh:
            fh.write("half of the new")
            raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert [p.name for p in path.parent.iterdir()] == ["out.txt"]  # no temporary file left
    with atomic_open(path, "wb") as fh:
        fh.write(b"new")
    assert path.read_bytes() == b"new"
    with pytest.raises(ValueError, match="mode must be"):
        with atomic_open(path, "a"):
            pass
