"""Checks of a pretraining config that need files, run before the model, the Trainer and the run
folder exist, so that a bad input stops the run with nothing written.

Reads ``accelerator`` (gpu / cuda needs a visible CUDA device), ``resume_from_checkpoint`` (an
existing file when set) and the image-folder keys of
``solo_semppl.data.folder_check`` (``data.bad_images``, ``data.scan_images``; records
``data.skipped_images``).
"""
import os
from typing import List

import torch
from omegaconf import DictConfig, OmegaConf

from solo_semppl.data.folder_check import check_image_folders


def preflight(cfg: DictConfig) -> List[str]:
    """Raises ValueError naming the key or file of a bad input; returns the bad_images.txt lines."""
    accelerator = OmegaConf.select(cfg, "accelerator", default="auto")
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ValueError(f"accelerator = {accelerator!r} but no CUDA device is visible; on a CPU use "
                         "accelerator=cpu devices=1 strategy=auto precision=32 sync_batchnorm=False")
    resume = OmegaConf.select(cfg, "resume_from_checkpoint", default=None)
    if resume is not None and not os.path.isfile(resume):
        raise ValueError(f"resume_from_checkpoint = {resume!r}: no such checkpoint file")
    return check_image_folders(cfg)
