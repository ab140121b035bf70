"""Checks a ``data.format: dali`` config before anything is built (solo-learn's own checks are
bare asserts or fail inside the first training step).

Config keys read:
    data.format: only ``dali`` configs are checked; any other value returns at once.
    data.dataset: DALI reads image folders: ``imagenet``, ``imagenet100`` or ``custom``.
    data.train_path: an image folder, ``<class>/<image>`` (flat).
    data.fraction (-1): must stay off when a split is set (solo-learn subsamples the file list,
        so DALI's indices would no longer be ImageFolder's).
    dali.device ("gpu"): ``cpu`` or ``gpu``; ``gpu`` needs CUDA.
    dali.encode_indexes_into_labels (False): must be true when a split is set: without it
        solo-learn's DALI batches carry placeholder indices (0..batch-1), not dataset indices.
    augmentations[i].equalization.prob: must be 0 (DALI has no equalization).
    semi_supervised.fraction / per_class / file: whether a labelled split is set.
    semi_supervised.labelled_per_batch (0): must be 0; DALI's reader picks the batches.

With a split, the DALI file list (class folders sorted, then files sorted) must be ImageFolder's
sample list, which the split indexes; a folder with sub-folders or non-image files is rejected.
"""
import importlib.util
import os
from pathlib import Path
from typing import List

from omegaconf import DictConfig, OmegaConf

from solo_semppl.options import apply_options, choice, flag

DALI_OPTIONS = {
    "device": choice("gpu", "cpu", "gpu"),
    "encode_indexes_into_labels": flag(False),
}
DALI_DATASETS = ("imagenet", "imagenet100", "custom")
SPLIT_KEYS = ("fraction", "per_class", "file")


def dali_file_list(train_path) -> List[str]:
    """The files solo-learn's ``PretrainPipelineBuilder`` reads, in its order."""
    root = Path(train_path)
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    return [str(root / c / f) for c in classes for f in sorted(os.listdir(root / c))]


def check_same_files_as_image_folder(train_path) -> None:
    """ValueError naming ``data.train_path`` and the first file where DALI's order and
    torchvision's ImageFolder order (the split's indices) differ."""
    from torchvision.datasets import ImageFolder

    dali_files = dali_file_list(train_path)
    folder_files = [path for path, _ in ImageFolder(train_path).samples]
    if dali_files != folder_files:
        first = next((i for i, (a, b) in enumerate(zip(dali_files, folder_files)) if a != b), min(len(dali_files), len(folder_files)))
        seen = dali_files[first] if first < len(dali_files) else "(end)"
        raise ValueError(
            f"data.train_path={train_path!r}: DALI would read {len(dali_files)} entries, ImageFolder "
            f"{len(folder_files)} images, first difference at position {first} ({seen}); with "
            "data.format: dali a split needs flat class folders holding image files only"
        )


def split_is_set(cfg: DictConfig) -> bool:
    return any(OmegaConf.select(cfg, f"semi_supervised.{k}", default=None) is not None for k in SPLIT_KEYS)


def check_dali_config(cfg: DictConfig) -> None:
    """Raises ValueError naming the key when a ``data.format: dali`` config cannot run here;
    fills the ``dali`` group's defaults. Does nothing for other formats."""
    if OmegaConf.select(cfg, "data.format", default=None) != "dali":
        return
    if importlib.util.find_spec("nvidia") is None or importlib.util.find_spec("nvidia.dali") is None:
        raise ValueError("data.format: dali needs NVIDIA DALI: pip install 'solo-semppl[dali]' (nvidia-dali-cuda120)")
    if cfg.data.dataset not in DALI_DATASETS:
        raise ValueError(f"data.format: dali reads image folders: data.dataset must be one of {list(DALI_DATASETS)}, got {cfg.data.dataset!r}")
    if not os.path.isdir(str(cfg.data.train_path)):
        raise ValueError(f"data.format: dali: data.train_path={cfg.data.train_path!r} is not a directory")
    apply_options(cfg, "dali", DALI_OPTIONS)
    import torch

    if cfg.dali.device == "gpu" and not torch.cuda.is_available():
        raise ValueError("dali.device = 'gpu' needs CUDA, which this machine lacks: set dali.device=cpu")
    for i, aug in enumerate(cfg.augmentations):
        if OmegaConf.select(aug, "equalization.prob", default=0):
            raise ValueError(f"augmentations[{i}].equalization.prob = {aug.equalization.prob}: DALI has no equalization, set it to 0")
    if not split_is_set(cfg):
        return
    if not cfg.dali.encode_indexes_into_labels:
        raise ValueError(
            "dali.encode_indexes_into_labels = false: a semi_supervised split needs the dataset index "
            "of every image, which solo-learn's DALI loader only gives with it: set it to true"
        )
    if OmegaConf.select(cfg, "data.fraction", default=-1) not in (None, -1, -1.0):
        raise ValueError(f"data.fraction = {cfg.data.fraction}: with data.format: dali and a split, keep it -1 (it renumbers the images)")
    if OmegaConf.select(cfg, "semi_supervised.labelled_per_batch", default=0):
        raise ValueError("semi_supervised.labelled_per_batch needs data.format: image_folder (DALI's reader picks the batches): set it to 0")
    check_same_files_as_image_folder(cfg.data.train_path)
