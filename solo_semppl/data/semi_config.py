"""The ``semi_supervised`` config group: build, validate and record the labelled split.

Config group ``semi_supervised`` (validated; exactly one of fraction / per_class / file):
    fraction (float in (0, 1]): class-balanced fraction of each class that keeps its label.
    per_class (int): exactly this many labelled images per class.
    file (str): a split file (SimCLR ``1percent.txt``-style names, PAWS CIFAR lists, or one
        dataset index per line); ``format`` says which (``auto`` infers it from the content).
    seed (int, 0): seed of the class-balanced draw.
    min_per_class (int, 1): at least this many labelled images per class (fraction mode).
    labelled_per_batch (int, 0): if > 0, a sampler puts exactly this many labelled images in
        every batch (SPEC 5.1); 0 keeps solo-learn's natural sampling. It may not exceed the
        labelled images (a support set larger than the labelled set would repeat images).
    balanced_labelled (bool, false): that share class balanced, labelled_per_batch / classes
        images of every class (PAWS' and SuNCEt's support batches); needs labelled_per_batch a
        multiple of the classes and at most as many per class as every class has labelled.
    sha256 / num_labelled / num_samples: recorded by the method when it builds the split (they
        land in args.json); when present on input the rebuilt split must have that sha256.

The split is built from the training set that solo-learn's ``prepare_datasets`` reads (same
index order); relic/semppl keep it as the ``labelled_mask`` buffer, so it is in every checkpoint.
Images left out by ``data.bad_images=skip`` (``data.skipped_images``, see ``folder_check``) are
never drawn; split files index (or name) the folder as listed, left-out images included, and
their labelled entries that were left out are dropped with a warning. The split is then
renumbered to the dataset without them.
Framework-free (torchvision + omegaconf): evaluation uses it without solo-learn.
"""
import logging
import os
import warnings
from typing import List, Optional, Tuple

import numpy as np
from omegaconf import DictConfig, OmegaConf

from solo_semppl.data.folder_check import skipped_images
from solo_semppl.data.split import LabelledSplit, build_split, keep_only, validate_split
from solo_semppl.options import Option, apply_options, choice, flag, positive_int

log = logging.getLogger(__name__)

SEMI_SUPERVISED_OPTIONS = {
    "fraction": Option(None, (float,), lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "per_class": positive_int(None),
    "file": Option(None, (str,), os.path.isfile, "the path of an existing split file"),
    "format": choice("auto", "auto", "simclr", "paws", "index"),
    "seed": positive_int(0, allow_zero=True),
    "min_per_class": positive_int(1, allow_zero=True),
    "labelled_per_batch": positive_int(0, allow_zero=True),
    "balanced_labelled": flag(False),
    "sha256": Option(None, (str,)),
    "num_labelled": positive_int(None, allow_zero=True),
    "num_samples": positive_int(None),
}
SPLIT_KEYS = ("fraction", "per_class", "file")


def dataset_targets_and_paths(data: DictConfig) -> Tuple[List[int], Optional[List[str]]]:
    """Targets (and file paths, for image folders) of the training set, in solo-learn's order,
    left-out images included (see ``kept_samples``).

    Unlabelled STL-10 images have target -1. HDF5 and label-free custom folders cannot carry a
    split and raise ValueError.
    """
    from torchvision.datasets import CIFAR10, CIFAR100, STL10, ImageFolder

    if data.format == "h5":
        raise ValueError("semi_supervised splits need data.format image_folder or dali, not h5")
    if data.dataset in ("cifar10", "cifar100"):
        cls = CIFAR10 if data.dataset == "cifar10" else CIFAR100
        try:
            ds = cls(data.train_path, train=True, download=False)
        except RuntimeError as err:
            raise ValueError(f"data.train_path={data.train_path!r}: {err}") from err
        return list(ds.targets), None
    if data.dataset == "stl10":
        ds = STL10(data.train_path, split="train+unlabeled", download=False)
        return [int(t) for t in ds.labels], None
    if data.dataset == "custom" and OmegaConf.select(data, "no_labels", default=False):
        raise ValueError("semi_supervised needs labels: data.no_labels must be false")
    if not os.path.isdir(data.train_path):
        raise ValueError(f"data.train_path={data.train_path!r} is not a directory")
    ds = ImageFolder(data.train_path)
    return list(ds.targets), [path for path, _ in ds.samples]


def kept_samples(data: DictConfig, paths: Optional[List[str]], num_samples: int) -> np.ndarray:
    """[num_samples] bool: False for the images recorded in ``data.skipped_images.train``."""
    skipped = set(skipped_images(data, "train"))
    if paths is None or not skipped:
        return np.ones(num_samples, dtype=bool)
    root = os.path.expanduser(data.train_path)  # as torchvision does
    return np.array([os.path.relpath(p, root) not in skipped for p in paths], dtype=bool)


def check_labelled_share(semi: DictConfig, labelled_targets: np.ndarray) -> None:
    """``labelled_per_batch`` / ``balanced_labelled`` against the labelled images (docstring above)."""
    per_batch, balanced = semi.labelled_per_batch, semi.balanced_labelled
    if balanced and not per_batch:
        raise ValueError("semi_supervised.balanced_labelled = true needs semi_supervised.labelled_per_batch >= 1")
    if per_batch > labelled_targets.size:
        raise ValueError(f"semi_supervised.labelled_per_batch = {per_batch}: larger than the labelled set "
                         f"({labelled_targets.size} images); expected at most {labelled_targets.size}")
    if balanced:
        classes, counts = np.unique(labelled_targets, return_counts=True)
        if per_batch % classes.size:
            raise ValueError(f"semi_supervised.labelled_per_batch = {per_batch} with balanced_labelled: expected a "
                             f"multiple of the {classes.size} classes of the labelled images")
        if per_batch // classes.size > counts.min():
            raise ValueError(f"semi_supervised.labelled_per_batch = {per_batch} with balanced_labelled: "
                             f"{per_batch // classes.size} per class, but class {classes[counts.argmin()]} has "
                             f"{counts.min()} labelled image(s); expected at most {counts.min() * classes.size}")


def resolve_split(cfg: DictConfig) -> Optional[LabelledSplit]:
    """Validates ``cfg.semi_supervised``, builds the split and records it in the config.

    Returns None when no split is configured (every label visible).
    """
    apply_options(cfg, "semi_supervised", SEMI_SUPERVISED_OPTIONS)
    semi = cfg.semi_supervised
    if all(semi[k] is None for k in SPLIT_KEYS):
        return None
    targets, paths = dataset_targets_and_paths(cfg.data)
    keep = kept_samples(cfg.data, paths, len(targets))
    split = build_split(OmegaConf.to_container(semi), np.where(keep, targets, -1), paths)
    split, dropped = keep_only(split, keep)
    if dropped:
        warnings.warn(f"split ({split.source}): {dropped} labelled images were left out as unreadable (data.bad_images=skip)")
    targets = np.asarray(targets)[keep]
    for warning in validate_split(split, targets, cfg.data.num_classes):
        warnings.warn(warning)  # not log.warning: the configs switch hydra's logging off
    check_labelled_share(semi, targets[split.labelled])
    digest = split.sha256()
    if semi.sha256 is not None and semi.sha256 != digest:
        raise ValueError(
            f"semi_supervised.sha256 = {semi.sha256} but the rebuilt split has sha256 {digest}: "
            "the data or the split settings changed since the split was recorded"
        )
    semi.sha256, semi.num_labelled, semi.num_samples = digest, len(split.labelled), split.num_samples
    log.info("labelled split: %d of %d images (sha256 %s)", len(split.labelled), split.num_samples, digest)
    return split
