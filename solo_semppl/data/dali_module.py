"""solo-learn's DALI pretraining data module, made to run on a CPU and to give dataset indices.

``SemiDALIDataModule`` is solo-learn's ``PretrainDALIDataModule`` with two changes, both in the
pipeline builder it uses (swapped in for the duration of ``setup``; the rest is solo-learn's):

- without CUDA the DALI pipeline is built with ``device_id=None``: solo-learn passes the local
  rank, and DALI then asks for CUDA even when every operator runs on the CPU
  (``dali.device=cpu``). With CUDA nothing changes.
- the pipeline is seeded with ``seed + local rank`` (solo-learn: ``12 + local rank``, whatever
  ``seed`` says), so DALI crops follow the run's seed.

Batches are ``[indexes, [large crops..., small crops...], targets]``. With
``dali.encode_indexes_into_labels`` (required by ``check_dali_config`` when a split is set)
solo-learn's reader carries the file position instead of the label and decodes the label from a
lookup table, so ``indexes`` are ImageFolder indices and the relic/semppl labelled mask applies.

Config keys read (``from_cfg``): data.dataset, data.train_path, data.num_large_crops,
data.num_small_crops, data.num_workers (DALI threads, at least 1), data.no_labels, data.fraction,
optimizer.batch_size, dali.device, dali.encode_indexes_into_labels, augmentations, seed.

Augmentations come from the same ``augmentations`` configs as the torchvision path, through
solo-learn's ``build_transform_pipeline_dali``. Differences that remain from
``build_transform_pipeline`` (torchvision):
- colour jitter: DALI's ColorTwist applies brightness, contrast, saturation and hue in a fixed
  order; torchvision draws a random order per image.
- Gaussian blur: same sigma range (0.1-2), but DALI uses a fixed 23-px window, PIL a radius.
- ``rrc.enabled: false``: DALI resizes to a crop_size square; torchvision resizes the shorter side.
- equalization: not in DALI (rejected by ``check_dali_config``).
- decoding (libjpeg-turbo/nvImageCodec vs PIL) and resampling can differ by a grey level.
- random streams: DALI's own generator; a DALI run and a torchvision run see different crops.
"""
from contextlib import contextmanager
from typing import Optional

import torch
from omegaconf import DictConfig
from solo.data import dali_dataloader
from solo.data.dali_dataloader import (
    PretrainDALIDataModule,
    PretrainPipelineBuilder,
    build_transform_pipeline_dali,
)
from solo.data.pretrain_dataloader import FullTransformPipeline, NCropAugmentation


def pipeline_builder(seed: int):
    """A ``PretrainPipelineBuilder`` seeded with ``seed`` that builds CPU-only pipelines
    (``device_id=None``) when CUDA is absent."""

    class SeededPipelineBuilder(PretrainPipelineBuilder):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, seed=seed, **kwargs)
            if not torch.cuda.is_available():
                self.device_id = None

    return SeededPipelineBuilder


@contextmanager
def builder_swapped(builder):
    """solo-learn's ``setup`` names the builder class at module level: swap it while it runs."""
    original = dali_dataloader.PretrainPipelineBuilder
    dali_dataloader.PretrainPipelineBuilder = builder
    try:
        yield
    finally:
        dali_dataloader.PretrainPipelineBuilder = original


class SemiDALIDataModule(PretrainDALIDataModule):
    """``PretrainDALIDataModule`` that runs without CUDA and follows the run's seed."""

    def __init__(self, *args, seed: int = 12, **kwargs):
        super().__init__(*args, **kwargs)
        self.seed = seed

    def setup(self, stage: Optional[str] = None):
        with builder_swapped(pipeline_builder(self.seed)):
            super().setup(stage)

    @classmethod
    def from_cfg(cls, cfg: DictConfig) -> "SemiDALIDataModule":
        """The module for a parsed solo-learn config (``check_dali_config`` already passed)."""
        pipelines = [
            NCropAugmentation(build_transform_pipeline_dali(cfg.data.dataset, aug, dali_device=cfg.dali.device), aug.num_crops)
            for aug in cfg.augmentations
        ]
        return cls(
            dataset=cfg.data.dataset, train_data_path=cfg.data.train_path,
            transforms=FullTransformPipeline(pipelines), num_large_crops=cfg.data.num_large_crops,
            num_small_crops=cfg.data.num_small_crops, num_workers=max(1, cfg.data.num_workers),
            batch_size=cfg.optimizer.batch_size, no_labels=cfg.data.no_labels,
            data_fraction=cfg.data.fraction, dali_device=cfg.dali.device,
            encode_indexes_into_labels=cfg.dali.encode_indexes_into_labels, seed=cfg.seed,
        )
