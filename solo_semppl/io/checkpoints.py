"""Finding a run's checkpoint: the one rule for resume and evaluation alike."""
from pathlib import Path
from typing import Union


def newest_checkpoint(path: Union[str, Path], what: str) -> Path:
    """``path`` if it is a file, else the most recently written ``*.ckpt`` in the folder;
    ValueError naming ``what`` (the key or argument that gave ``path``) otherwise."""
    path = Path(path)
    if path.is_file():
        return path
    found = sorted(path.glob("*.ckpt"), key=lambda p: p.stat().st_mtime) if path.is_dir() else []
    if not found:
        raise ValueError(f"{what} = {str(path)!r}: expected a .ckpt file or a folder holding one")
    return found[-1]
