"""The embedded default dataset: scikit-learn's ``load_digits`` (1,797 real 8x8 handwritten
digits, 10 classes; it ships inside scikit-learn's wheel) as a solo-learn custom image folder.

``materialise_digits`` writes ``<cache>/digits-<size>px-seed<seed>/{train,val}/<class>/<i>.png``
(grey levels 0-16 scaled to 0-255, bicubic upscale, saved as RGB) with a stratified train /
validation split recorded in ``split.json`` (seed, counts, original indices). Built in a temp
folder and renamed into place: a half-written folder never counts; a second call reuses it.
"""
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from solo_semppl.data.split import draw_per_class
from solo_semppl.io.cache import cache_root


def stratified_val(targets: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation images: round(val_fraction * n_c) per class, seeded."""
    val = np.zeros(targets.size, dtype=bool)
    val[draw_per_class(targets, lambda n: int(round(val_fraction * n)), np.random.default_rng(seed))] = True
    return val


def materialise_digits(cache_dir=None, size: int = 32, val_fraction: float = 0.2, seed: int = 0) -> Path:
    """Writes the digits image folder once and returns its root (``train/`` and ``val/`` inside)."""
    from sklearn.datasets import load_digits

    root = Path(cache_dir or cache_root()) / f"digits-{size}px-seed{seed}"
    if (root / "split.json").is_file():
        return root
    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    targets = digits.target.astype(np.int64)
    val = stratified_val(targets, val_fraction, seed)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=root.name + ".", dir=root.parent))
    try:
        for i, (image, target) in enumerate(zip(images, targets)):
            folder = tmp / ("val" if val[i] else "train") / str(target)
            folder.mkdir(parents=True, exist_ok=True)
            big = Image.fromarray(image, mode="L").resize((size, size), Image.BICUBIC).convert("RGB")
            big.save(folder / f"{i:04d}.png")
        record = {"seed": seed, "size": size, "val_fraction": val_fraction, "source": "sklearn.datasets.load_digits",
                  "train": np.flatnonzero(~val).tolist(), "val": np.flatnonzero(val).tolist(),
                  "counts": {"train": int((~val).sum()), "val": int(val.sum())}}
        (tmp / "split.json").write_text(json.dumps(record))
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root
