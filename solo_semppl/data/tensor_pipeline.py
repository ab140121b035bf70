"""The in-memory training pipeline for small image datasets (``data.pipeline: tensor``).

Every training image is decoded once into one uint8 tensor; a batch is cropped and distorted in
one call (``batched_augment``), each sample with parameters drawn from
``seeded.sample_seed(seed, epoch, index)``, so crops stay a pure function of (seed, epoch, index) as
on the per-image path and a mid-epoch resume is exact. On 2 CPU cores this takes the loader
from 65 % of a digits step to 8 % and makes the step 2.9x faster
(``scripts/bench/bench_pipeline.py``).

Config keys:
    data.pipeline ("torchvision" | "tensor", default "torchvision"): solo-learn's per-image
        PIL pipeline, or this one. ``data.format: dali`` is the third loader and ignores it.
    The ``augmentations`` list keeps its solo-learn keys; ``tensor`` rejects what it cannot
    reproduce (``color_jitter.hue`` > 0, ``equalization.prob`` > 0), naming the key.
All images of the folder must have one size (a large or ragged dataset stays on ``torchvision``
or DALI). Memory: N x 3 x H x W bytes (digits: 1.4k x 3 x 32 x 32 = 4.4 MB).
"""
from typing import List, Sequence

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from solo_semppl.data.batched_augment import CropSpec, augment
from solo_semppl.seeding import mix_seeds

PIPELINES = ("torchvision", "tensor")
MEANS_N_STD = {  # solo-learn's build_transform_pipeline
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "stl10": ((0.4914, 0.4823, 0.4466), (0.247, 0.243, 0.261)),
}
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def mean_std(dataset: str, aug: DictConfig):
    """The normalisation solo-learn's pipeline uses for ``dataset`` and one augmentation entry."""
    if dataset in MEANS_N_STD:
        return MEANS_N_STD[dataset]
    if dataset in ("imagenet", "imagenet100"):
        return IMAGENET_MEAN_STD
    return (tuple(aug.get("mean", IMAGENET_MEAN_STD[0])), tuple(aug.get("std", IMAGENET_MEAN_STD[1])))


def pipeline_of(cfg: DictConfig) -> str:
    """``data.pipeline``, validated (ValueError naming the key and the supported values)."""
    name = OmegaConf.select(cfg, "data.pipeline", default="torchvision")
    if name not in PIPELINES:
        raise ValueError(f"data.pipeline = {name!r}: expected one of {list(PIPELINES)}")
    if name == "tensor" and cfg.data.format not in ("image_folder", "dali"):  # DALI is its own loader
        raise ValueError(f"data.pipeline = 'tensor' reads image folders or CIFAR (got data.format = {cfg.data.format!r}); "
                         "use data.pipeline=torchvision")
    return name


def check_pipeline(cfg: DictConfig) -> None:
    """The pipeline keys, validated before anything is built (ValueError naming the key)."""
    if pipeline_of(cfg) == "tensor" and cfg.data.format != "dali":
        crop_specs(cfg)


def crop_specs(cfg: DictConfig) -> List[CropSpec]:
    """The ``augmentations`` list as ``CropSpec``s; ValueError naming what ``tensor`` cannot do."""
    specs = []
    for i, aug in enumerate(cfg.augmentations):
        key = f"augmentations[{i}]"
        unsupported = {f"{key}.color_jitter.hue": OmegaConf.select(aug, "color_jitter.hue", default=0) or 0,
                       f"{key}.equalization.prob": OmegaConf.select(aug, "equalization.prob", default=0) or 0}
        for name, value in unsupported.items():
            if value:
                raise ValueError(
                    f"{name} = {value}: data.pipeline = 'tensor' does not reproduce it (it supports rrc, "
                    "color_jitter brightness / contrast / saturation, grayscale, gaussian_blur, solarization, "
                    "horizontal_flip); set it to 0 or use data.pipeline=torchvision"
                )
        jitter = aug.color_jitter
        mean, std = mean_std(cfg.data.dataset, aug)
        specs.append(CropSpec(
            size=int(aug.crop_size), num_crops=int(aug.num_crops), rrc=bool(aug.rrc.enabled),
            scale=(float(aug.rrc.crop_min_scale), float(aug.rrc.crop_max_scale)),
            jitter_prob=float(jitter.prob), jitter=(float(jitter.brightness), float(jitter.contrast), float(jitter.saturation)),
            grey_prob=float(aug.grayscale.prob), blur_prob=float(aug.gaussian_blur.prob),
            solar_prob=float(aug.solarization.prob), flip_prob=float(aug.horizontal_flip.prob),
            mean=tuple(map(float, mean)), std=tuple(map(float, std)),
        ))
    return specs


def decoded_images(dataset) -> torch.Tensor:
    """[N, 3, H, W] uint8 of an ImageFolder (its own loader) or a CIFAR-style ``.data`` array."""
    if hasattr(dataset, "samples"):
        arrays, first = [], None
        for path, _ in dataset.samples:
            array = np.asarray(dataset.loader(path), dtype=np.uint8)
            if first is None:
                first = (path, array.shape)
            elif array.shape != first[1]:
                raise ValueError(f"data.pipeline = 'tensor' needs images of one size: {path} is {array.shape[1]} x "
                                 f"{array.shape[0]}, {first[0]} is {first[1][1]} x {first[1][0]}; "
                                 "use data.pipeline=torchvision")
            arrays.append(array)
        stacked = np.stack(arrays)
    else:
        stacked = np.asarray(dataset.data, dtype=np.uint8)
    return torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous()


def already_batched(batch):
    """DataLoader collate for ``__getitems__`` datasets (module level: workers pickle it)."""
    return batch


class BatchedCrops(torch.utils.data.Dataset):
    """solo-learn's pretraining items (``[indexes, [crops], targets]``) for a whole batch at once.

    Keys are ``(epoch, index)`` pairs (batch samplers with ``tag_epoch=True``); a plain index is
    epoch 0. Use with ``DataLoader(..., batch_sampler=..., collate_fn=already_batched)``.
    """

    def __init__(self, images: torch.Tensor, targets: Sequence[int], specs: Sequence[CropSpec], seed: int):
        self.images, self.targets = images, torch.as_tensor(np.asarray(targets), dtype=torch.long)
        self.specs, self.seed = list(specs), seed

    @classmethod
    def of(cls, dataset, cfg: DictConfig) -> "BatchedCrops":
        return cls(decoded_images(dataset), dataset.targets, crop_specs(cfg), int(cfg.seed))

    def __len__(self) -> int:
        return self.images.size(0)

    def __getitems__(self, keys) -> list:
        pairs = [key if isinstance(key, tuple) else (0, key) for key in keys]
        index = torch.tensor([i for _, i in pairs], dtype=torch.long)
        seeds = mix_seeds(self.seed, np.array([e for e, _ in pairs]), index.numpy())  # = sample_seed, batched
        images, crops, first = self.images[index], [], 0
        for spec in self.specs:
            crops += augment(images, seeds, first, spec)
            first += spec.num_crops
        return [index, crops, self.targets[index]]

    def __getitem__(self, key) -> list:
        index, crops, target = self.__getitems__([key])
        return [index[0], [c[0] for c in crops], target[0]]
