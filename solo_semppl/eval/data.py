"""Evaluation data of a run: the labelled training images (split), a held-out part of them for
hyperparameter choice, and the validation set, with the run's crop size and normalisation.
Image folders use the robust loader and leave out the images the run left out
(``data.skipped_images`` of its args.json), so split indices match the pretraining dataset."""
from typing import List, NamedTuple, Tuple

import numpy as np
import torch
from omegaconf import OmegaConf
from torchvision import datasets, transforms

from solo_semppl.data.folder_check import image_folder, skipped_images
from solo_semppl.data.split import draw_per_class

CIFAR_MEAN_STD = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def run_transforms(args, augment: bool):
    """Train (random resized crop + flip when ``augment``) or eval (resize + centre crop)."""
    aug = args.augmentations[0]
    size = aug.crop_size
    mean, std = CIFAR_MEAN_STD.get(args.data.dataset, (tuple(aug.get("mean", IMAGENET_MEAN_STD[0])),
                                                       tuple(aug.get("std", IMAGENET_MEAN_STD[1]))))
    flip = OmegaConf.select(aug, "horizontal_flip.prob", default=0.5) or 0.0
    if augment:
        steps = [transforms.RandomResizedCrop(size, scale=(0.08 if size > 64 else 0.3, 1.0)), transforms.RandomHorizontalFlip(flip)]
    else:
        steps = [transforms.Resize(int(round(size * 256 / 224)) if size > 64 else size), transforms.CenterCrop(size)]
    return transforms.Compose(steps + [transforms.ToTensor(), transforms.Normalize(mean, std)])


def dataset(args, train: bool, transform):
    name, path = args.data.dataset, args.data.train_path if train else args.data.val_path
    if path is None:
        raise ValueError("the run has no data.val_path: evaluation needs a validation set")
    if name in ("cifar10", "cifar100"):
        cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
        return cls(path, train=train, download=False, transform=transform)
    if name == "stl10":
        return datasets.STL10(path, split="train" if train else "test", download=False, transform=transform)
    return image_folder(path, transform, skipped_images(args.data, "train" if train else "val"))


def targets_of(ds) -> np.ndarray:
    return np.asarray(getattr(ds, "targets", None) or getattr(ds, "labels"), dtype=np.int64)


def holdout(indices: np.ndarray, targets: np.ndarray, fraction: float = 0.2, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Stratified (fit, held_out) of labelled indices: round(fraction * n_c) per class goes to
    held_out, but a class always keeps at least one image for fitting."""
    held = indices[draw_per_class(targets[indices], lambda n: min(int(round(fraction * n)), n - 1), np.random.default_rng(seed))]
    return np.setdiff1d(indices, held), np.sort(held)  # setdiff1d is sorted already


def check_classes(train_ds, val_ds, source: str) -> None:
    train_classes, val_classes = getattr(train_ds, "classes", None), getattr(val_ds, "classes", None)
    if train_classes is not None and val_classes is not None and list(train_classes) != list(val_classes):
        raise ValueError(f"{source}: validation classes {list(val_classes)[:5]}... differ from training classes {list(train_classes)[:5]}...")


def labelled_indices(run, train_ds, all_labels: bool = False) -> np.ndarray:
    targets = targets_of(train_ds)
    if all_labels or run.split is None:
        return np.flatnonzero(targets >= 0)
    if run.split.num_samples != targets.size:
        raise ValueError(f"{run.path}: its split is for {run.split.num_samples} images, the training set has {targets.size}")
    return run.split.labelled


def loader(ds, indices, batch_size: int, shuffle: bool, num_workers: int = 0, seed: int = 0) -> torch.utils.data.DataLoader:
    subset = torch.utils.data.Subset(ds, list(map(int, indices))) if indices is not None else ds
    return torch.utils.data.DataLoader(subset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                                       generator=torch.Generator().manual_seed(seed) if shuffle else None)


@torch.no_grad()
def features(backbone, data: torch.utils.data.DataLoader, device="cpu") -> Tuple[torch.Tensor, torch.Tensor]:
    backbone.eval().to(device)
    feats, labels = [], []
    for x, y in data:
        feats.append(backbone(x.to(device)).float().cpu())
        labels.append(torch.as_tensor(y))
    return torch.cat(feats), torch.cat(labels)


class LabelledTask(NamedTuple):
    """What every evaluation starts from: the training and validation sets with one transform,
    the split's labelled training indices, a stratified held-out part of them, the classes."""

    train: torch.utils.data.Dataset
    val: torch.utils.data.Dataset
    targets: np.ndarray
    labelled: np.ndarray
    fit: np.ndarray
    held_out: np.ndarray
    num_classes: int


def labelled_task(run, transform, all_labels: bool = False, seed: int = 0) -> LabelledTask:
    """The evaluation prologue (fine-tune, linear, kNN, labeller, raw-pixel floor): datasets
    checked against each other, labelled indices (``all_labels``: every label), held-out part."""
    train_ds, val_ds = dataset(run.args, True, transform), dataset(run.args, False, transform)
    check_classes(train_ds, val_ds, str(run.args.data.val_path))
    targets = targets_of(train_ds)
    labelled = labelled_indices(run, train_ds, all_labels)
    fit, held = holdout(labelled, targets, seed=seed)
    return LabelledTask(train_ds, val_ds, targets, labelled, fit, held, int(targets.max()) + 1)


def parse_grid(text: str) -> List[float]:
    return [float(v) for v in text.split(",") if v.strip()]
