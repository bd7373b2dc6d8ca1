"""Atomic file writes: a file is either the old one or the complete new one, never a torn mix.

Every file the package, its studies and its benchmarks write for later reading (checkpoints,
IDX files, result JSON and tables) goes through :func:`atomic_open`: the content is written to a
temporary file in the destination directory, flushed and ``fsync``-ed to disk, and then moved
over the destination with :func:`os.replace` (atomic on POSIX and Windows).  A crash or an
exception leaves the previous file intact and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_open", "write_text_atomic"]

#: Permissions of a finished file: readable by everyone, writable by the owner (the temporary
#: file is created 0o600; a plain ``open`` under the usual umask 022 would give this mode).
FILE_MODE = 0o644


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "wb", *, encoding: str | None = None
) -> Iterator[IO[Any]]:
    """Open a temporary file that replaces ``path`` when the ``with`` block ends without error.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; its parent directory is created if needed.
    mode : {"wb", "w"}
        Binary or text.
    encoding : str, optional
        Text encoding (default UTF-8 in text mode).

    Yields
    ------
    file object
        Write to it; do not close it.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "w" and encoding is None:
        encoding = "utf-8"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path, "w") as fh:
        fh.write(text)
