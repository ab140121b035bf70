"""Pre-flight check of the image folders a run reads (``<root>/<class>/<image>``), and the
image-folder datasets built from its result.

Config keys (group ``data``, validated):
    bad_images ("error" | "skip", default "error"): an image that cannot be read stops the run
        before training, listing the first such files; or it is left out of the dataset with a
        warning and a count, and listed in ``bad_images.txt`` of the run folder.
    scan_images (true | "full" | false, default true): true reads the header and checks the
        file structure of every image before training (cheap; PNG CRCs are checked, truncated
        JPEG data is not); "full" decodes every image (slow on large folders); false checks no
        image (a bad one then fails when first loaded, naming the file). ``skip`` needs a scan.
    skipped_images (recorded, like ``semi_supervised.sha256``): ``{train: [...], val: [...]}``,
        the files left out, relative to their folder. Written by the check (a value given on
        input is replaced) and read back by the split (``semi_config``) and evaluation, so that
        dataset indices agree everywhere.

Whatever the settings: a missing folder, a folder without class folders, or a class folder
without any readable image (the class indices of the folders after it would shift) is an error
naming it; files without an image extension (and files outside class folders) are not loaded,
as in torchvision, and are counted in a warning. Warnings are Python warnings (stderr), not log
records: the solo-learn style configs switch hydra's logging off. Only ``custom`` (with
labels), ``imagenet`` and ``imagenet100`` read image folders; ``cifar10/100`` and ``stl10`` are
binary files.
"""
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Dict, List, Optional, Sequence

from omegaconf import DictConfig, OmegaConf
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

from solo_semppl.data.image_loader import image_problem, load_rgb
from solo_semppl.io.atomic import write_text_atomic
from solo_semppl.options import Option, check_value, choice

IMAGE_OPTIONS = {
    "bad_images": choice("error", "error", "skip"),
    "scan_images": Option(True, (bool, str), lambda v: v in (True, False, "full"), "true, false or 'full'"),
}
FOLDER_DATASETS = ("custom", "imagenet", "imagenet100")
SHOWN = 5


@dataclass
class FolderScan:
    """Images of ``root`` in ImageFolder's order, files it does not load, unreadable images."""

    root: str
    classes: List[str]
    images: List[str]
    ignored: Dict[str, str] = field(default_factory=dict)
    bad: Dict[str, str] = field(default_factory=dict)

    def relative(self, path: str) -> str:
        return os.path.relpath(path, self.root)


def list_folder(root: str, key: str) -> FolderScan:
    """The class folders, images and ignored files of ``root``; ValueError naming ``key`` for a
    missing folder, no class folder, or a class folder without images."""
    given, root = root, os.path.expanduser(root)  # as torchvision does
    if not os.path.isdir(root):
        raise ValueError(f"{key} = {given!r}: not a directory")
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    if not classes:
        raise ValueError(f"{key} = {given!r}: no class folders (expected {given}/<class>/<image>)")
    images = [path for path, _ in make_dataset(root, {c: i for i, c in enumerate(classes)}, IMG_EXTENSIONS, allow_empty=True)]
    scan = FolderScan(root, classes, images)
    check_classes(scan, key, images)
    loaded = set(images)
    for folder, _, names in os.walk(root, followlinks=True):
        reason = "not in a class folder" if folder == root else "no image file extension"
        scan.ignored.update({p: reason for p in (os.path.join(folder, n) for n in names) if p not in loaded})
    return scan


def check_classes(scan: FolderScan, key: str, images: Sequence[str]) -> None:
    """ValueError naming the class folders of ``scan`` that hold none of ``images``."""
    used = {scan.relative(path).split(os.sep, 1)[0] for path in images}
    empty = [c for c in scan.classes if c not in used]
    if empty:
        raise ValueError(
            f"{key} = {scan.root!r}: class folder(s) without readable images {empty[:SHOWN]}: every class "
            "needs at least one image, or the class indices of the folders after it shift; "
            "remove the folder or add images"
        )


def scan_folder(root: str, key: str, scan_images, workers: int = 1) -> FolderScan:
    """``list_folder`` plus the unreadable images (``scan_images``: true, "full" or false)."""
    scan = list_folder(root, key)
    if scan_images is not False:
        with ThreadPoolExecutor(max(1, workers)) as pool:
            problems = pool.map(partial(image_problem, full=scan_images == "full"), scan.images)
            scan.bad = {path: why for path, why in zip(scan.images, problems) if why is not None}
    return scan


def examples(paths: Dict[str, str]) -> str:
    return "; ".join(f"{path}: {why}" for path, why in list(paths.items())[:SHOWN])


def apply_policy(scan: FolderScan, key: str, bad_images: str) -> List[str]:
    """Logs the ignored files; raises for unreadable images (``error``) or returns them relative
    to the folder (``skip``), after checking that no class folder is left empty."""
    if scan.ignored:
        warnings.warn(f"{scan.root}: {len(scan.ignored)} files are not loaded as images, e.g. {examples(scan.ignored)}")
    if not scan.bad:
        return []
    if bad_images == "error":
        raise ValueError(
            f"{key}: {len(scan.bad)} of {len(scan.images)} images cannot be read, e.g. {examples(scan.bad)}. "
            "Fix or remove them, or set data.bad_images=skip to leave them out"
        )
    check_classes(scan, key, [p for p in scan.images if p not in scan.bad])
    warnings.warn(f"data.bad_images=skip: leaving out {len(scan.bad)} of {len(scan.images)} images of {scan.root} "
                  f"that cannot be read (listed in bad_images.txt), e.g. {examples(scan.bad)}")
    return [scan.relative(path) for path in scan.bad]


def image_folders(data: DictConfig) -> Dict[str, str]:
    """``{"train": path, "val": path}`` of the image folders the run reads (maybe none)."""
    if data.dataset not in FOLDER_DATASETS or data.format == "h5" or OmegaConf.select(data, "no_labels", default=False):
        return {}
    paths = {"train": data.train_path, "val": OmegaConf.select(data, "val_path", default=None)}
    return {which: path for which, path in paths.items() if path is not None}


def check_image_folders(cfg: DictConfig) -> List[str]:
    """Validates the ``data`` keys of this module, checks the run's image folders, records
    ``data.skipped_images``; returns the lines of bad_images.txt (folder, file, reason)."""
    data = cfg.data
    for key, option in IMAGE_OPTIONS.items():
        OmegaConf.update(cfg, f"data.{key}", check_value(f"data.{key}", OmegaConf.select(data, key, default=option.default), option))
    if data.bad_images == "skip" and data.scan_images is False:
        raise ValueError("data.bad_images = 'skip' needs data.scan_images true or 'full' (what to skip is found by the scan)")
    skipped, lines = {}, []
    for which, root in image_folders(data).items():
        scan = scan_folder(root, f"data.{which}_path", data.scan_images, OmegaConf.select(data, "num_workers", default=0))
        skipped[which] = apply_policy(scan, f"data.{which}_path", data.bad_images)
        lines += [f"{which}\t{scan.relative(p)}\t{why}" for p, why in {**scan.bad, **scan.ignored}.items()]
    if data.format == "dali" and any(skipped.values()):
        raise ValueError("data.bad_images = 'skip' works with data.format image_folder only (DALI reads the folder "
                         f"itself): remove the unreadable images, e.g. {lines[:SHOWN]}")
    OmegaConf.update(cfg, "data.skipped_images", skipped, merge=False, force_add=True)
    return lines


def skipped_images(data: DictConfig, which: str) -> List[str]:
    """The recorded files left out of the ``which`` ("train" / "val") folder."""
    return list(OmegaConf.select(data, f"skipped_images.{which}", default=None) or [])


def robust(dataset: ImageFolder, skipped: Sequence[str] = ()) -> ImageFolder:
    """``dataset`` (an ImageFolder, possibly wrapped by solo-learn) with the robust loader and
    without the ``skipped`` files (relative to its root), in place; returns it."""
    skip = set(skipped)
    dataset.loader = load_rgb
    dataset.samples = [(p, t) for p, t in dataset.samples if os.path.relpath(p, dataset.root) not in skip]
    dataset.imgs = dataset.samples
    dataset.targets = [t for _, t in dataset.samples]
    return dataset


def image_folder(root: str, transform=None, skipped: Optional[Sequence[str]] = ()) -> ImageFolder:
    """An ImageFolder of ``root`` with the robust loader, without the ``skipped`` files."""
    return robust(ImageFolder(root, transform=transform), skipped or ())


def robust_run_datasets(data: DictConfig, train=None, val=None) -> None:
    """Applies ``robust`` (with the recorded left-out files) to the run's ImageFolder datasets;
    other datasets are left as they are."""
    for which, dataset in (("train", train), ("val", val)):
        if isinstance(dataset, ImageFolder):
            robust(dataset, skipped_images(data, which))


def save_lines(lines: Sequence[str], path) -> None:
    """``lines`` as a text file (bad_images.txt: folder, file, reason; tab separated), atomically."""
    write_text_atomic(path, "".join(f"{line}\n" for line in lines))
