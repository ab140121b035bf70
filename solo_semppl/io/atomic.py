"""Atomic writes: a file or folder appears under its final name complete, or not at all.

Everything is first written under a hidden temporary name in the destination's own folder
(same file system), then renamed; on any error the temporary is removed. Torch-free, the
bottom layer: splits, run records, evaluation results, checkpoints and the zoo all write
through it.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temporary folder that becomes ``final`` when the block ends without error.

    Raises ValueError if ``final`` already exists (a release is never overwritten).
    """
    final = Path(final)
    if final.exists():
        raise ValueError(f"out_dir: {final} already exists; remove it or choose another name")
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield temp
        os.rename(temp, final)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


@contextmanager
def temp_file(folder: Path, name: str) -> Iterator[Path]:
    """Yield a new hidden temporary file path in ``folder`` (created if needed).

    The caller writes it and moves it to its final name with ``os.replace`` inside the block;
    whatever is still under the temporary name when the block ends (error or not) is removed.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
    os.close(handle)
    try:
        yield Path(temp)
    finally:
        Path(temp).unlink(missing_ok=True)


def write_text_atomic(path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in its folder and ``os.replace``."""
    path = Path(path)
    with temp_file(path.parent, path.name) as temp:
        temp.write_text(text)
        os.replace(temp, path)
