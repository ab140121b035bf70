"""Helpers for the solo-learn binding tests: a tiny image folder, composed configs, a
deterministic in-memory loader, and a short CPU fit."""
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch
from PIL import Image

from conftest import REPO

CONFIG_DIR = REPO / "scripts" / "pretrain"


def make_image_folder(root: Path, classes: int = 3, per_class: int = 8, size: int = 16) -> Path:
    """``root/train/<class>/<i>.png`` with random RGB images; returns the train folder."""
    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / "train" / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{c}_{i}.png")
    return root / "train"


def compose(config: str, overrides: List[str], group: str = "digits"):
    """Composes ``scripts/pretrain/<group>/<config>.yaml`` with hydra overrides."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONFIG_DIR / group), version_base="1.2"):
        cfg = hydra_compose(config_name=config, overrides=overrides)
    OmegaConf.set_struct(cfg, False)
    return cfg


def tiny_cfg(method: str, train_path: Path, extra: Optional[List[str]] = None):
    """A parsed solo-learn config for ``method`` on the tiny folder: small MLPs, batch 8,
    CPU, no checkpoints, no validation."""
    from solo.args.pretrain import parse_cfg

    from solo_semppl import register
    from solo_semppl.training.devices import normalise_devices

    register()
    overrides = [
        f"data.train_path={train_path}", "data.val_path=null", "optimizer.batch_size=8",
        "method_kwargs.proj_hidden_dim=32", "method_kwargs.proj_output_dim=16",
        "backbone.kwargs.width=8", "checkpoint.enabled=False", "max_epochs=1",
    ]
    if method in ("relic", "semppl"):
        overrides.append("method_kwargs.num_negatives=5")
    if method in ("relic", "semppl", "byol"):
        overrides.append("method_kwargs.pred_hidden_dim=32")
    cfg = compose(method, overrides + list(extra or []))
    normalise_devices(cfg)
    return parse_cfg(cfg)


def build(method, folder, extra=()):
    """The method of ``tiny_cfg`` with a quarter of the images labelled, seeded."""
    from solo.methods import METHODS

    cfg = tiny_cfg(method, folder, ["semi_supervised.fraction=0.25", *extra])
    torch.manual_seed(0)
    return METHODS[cfg.method](cfg)


class CropsDataset(torch.utils.data.Dataset):
    """(index, [crops], target) like solo-learn's pretrain datasets, with crops fixed by the
    index (random tensors seeded by it), so two runs see identical pixels."""

    def __init__(self, targets, large: int = 4, small: int = 2, size: int = 16):
        self.targets, self.large, self.small, self.size = list(targets), large, small, size

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        g = torch.Generator().manual_seed(index)
        crops = [torch.randn(3, self.size, self.size, generator=g) for _ in range(self.large)]
        crops += [torch.randn(3, self.size // 2, self.size // 2, generator=g) for _ in range(self.small)]
        return index, crops, self.targets[index]


def fit(model, dataset, steps: int, batch_size: int = 8, seed: int = 0, labelled_share: bool = False) -> List[float]:
    """Trains ``steps`` steps on CPU with a fixed batch order (``labelled_share``: the model's
    ``semi_supervised`` labelled-share sampler, as pretraining builds it); returns the loss of
    each step."""
    import lightning.pytorch as pl

    from solo_semppl.data.sampler import LabelledShareBatchSampler

    losses = []

    class Recorder(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            losses.append(float(outputs["loss"]))

    pl.seed_everything(seed)
    if labelled_share:
        semi = model.cfg.semi_supervised
        sampler = LabelledShareBatchSampler(model.labelled_mask, batch_size, semi.labelled_per_batch, seed,
                                            labelled_targets=dataset.targets if semi.balanced_labelled else None)
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler)
    else:
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, shuffle=True, drop_last=True,
            generator=torch.Generator().manual_seed(seed),
        )
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, max_steps=steps, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        deterministic=True, callbacks=[Recorder()],
    )
    trainer.fit(model, loader)
    return losses


def dataset_of(model):
    """A ``CropsDataset`` over the model's training folder."""
    from torchvision.datasets import ImageFolder

    return CropsDataset(ImageFolder(model.cfg.data.train_path).targets)
