"""Release weight files named by their content: ``<name>-<8 hex of sha256>.pth``."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Tuple

import torch

from solo_semppl.io.atomic import temp_file

from .hashing import check_name, sha256_file


def save_hashed(state_dict: Mapping[str, torch.Tensor], out_dir: Path, name: str) -> Tuple[Path, str, int]:
    """``torch.save`` a state dict as ``out_dir/<name>-<first 8 hex of its sha256>.pth``.

    Returns:
        (path, sha256, size in bytes).
    """
    check_name(name)
    with temp_file(Path(out_dir), name) as temp:
        torch.save(dict(state_dict), temp)
        sha256 = sha256_file(temp)
        size = temp.stat().st_size
        target = Path(out_dir) / f"{name}-{sha256[:8]}.pth"
        os.replace(temp, target)
    return target, sha256, size
