"""Atomic output helpers: write to a temporary sibling, then rename (never half-written files)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from eventvision.errors import UserError


def refuse_overwrite_input(output: str | os.PathLike, *inputs: str | os.PathLike) -> None:
    """Raise UserError if ``output`` is the same file as any of ``inputs``."""
    out = Path(output).resolve()
    for inp in inputs:
        if inp is not None and Path(inp).exists() and Path(inp).resolve() == out:
            raise UserError(f"output {output} is the input file; choose a different output path", path=str(output))


@contextlib.contextmanager
def atomic_path(final_path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``final_path``; on success rename it into place, on error delete it.

    >>> with atomic_path("out.h5") as tmp:
    ...     write_file(tmp)
    """
    final_path = Path(final_path)
    final_path.parent.mkdir(parents=True, exist_ok=True)
    suffix = final_path.suffix if suffix is None else suffix
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final_path.name}.", suffix=f".tmp{suffix}", dir=final_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, final_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(final_path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(final_path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(final_path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(final_path, text.encode("utf-8"))
