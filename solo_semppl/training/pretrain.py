"""Pretraining runs: config -> split -> data -> model -> trainer, for relic, semppl and solo-learn's methods.

Written from solo-learn's importable pieces (its ``main_pretrain.py`` is not installed with the
package and rejects more than 2 large crops).
Differences from upstream: any number of large and small crops; ``devices`` may be an int,
a list or a string on any accelerator; the optional labelled-share sampler
(``semi_supervised.labelled_per_batch``); exact mid-epoch resume (``checkpoint.every_n_steps``
writes ``last-step.ckpt``; auto-resume and ``resume_from_checkpoint`` take the newest checkpoint,
see ``solo_semppl.training.resume``); atomic checkpoint files; CSV logging (``csv.enabled``,
default true when wandb is off) into the checkpoint folder, beside ``args.json``, the
checkpoints and ``split.json``, appended to on resume; a pre-flight check
(``solo_semppl.training.preflight``) of the image folders and the resume path before anything is
built, and a loader that reads any image mode (``data.bad_images``, ``data.scan_images``;
``bad_images.txt`` lists what was left out).

Used by ``solo-semppl pretrain`` (``solo_semppl.cli.pretrain``), the experiments and the tests.
"""
import inspect
import os

from omegaconf import DictConfig, OmegaConf

from solo_semppl.data.folder_check import robust_run_datasets
from solo_semppl.io.checkpoints import newest_checkpoint
from solo_semppl.training.devices import normalise_devices
from solo_semppl.training.preflight import preflight


def dataset_targets(dataset):
    """The class of every image of a torchvision dataset (``targets``, or STL-10's ``labels``)."""
    for name in ("targets", "labels"):
        if getattr(dataset, name, None) is not None:
            return list(getattr(dataset, name))
    raise ValueError(f"semi_supervised.balanced_labelled: the training set ({type(dataset).__name__}) has no targets")


def train_loader_for(cfg: DictConfig, split, dataset):
    """The training loader: batches a pure function of (seed, epoch), so a run resumes mid-epoch
    exactly, crops seeded by (seed, epoch, index); the labelled-share sampler when asked for;
    ``data.pipeline: tensor`` crops whole batches of images held in memory."""
    from torch.utils.data import DataLoader

    from solo_semppl.data.sampler import LabelledShareBatchSampler, ShuffledBatchSampler
    from solo_semppl.data.seeded import SeededSamples
    from solo_semppl.data.tensor_pipeline import (
        BatchedCrops,
        already_batched,
        pipeline_of,
    )

    per_batch = OmegaConf.select(cfg, "semi_supervised.labelled_per_batch", default=0)
    if per_batch:
        balanced = OmegaConf.select(cfg, "semi_supervised.balanced_labelled", default=False)
        sampler = LabelledShareBatchSampler(split.mask(), cfg.optimizer.batch_size, per_batch, seed=cfg.seed, tag_epoch=True,
                                            labelled_targets=dataset_targets(dataset) if balanced else None)
    else:
        sampler = ShuffledBatchSampler(len(dataset), cfg.optimizer.batch_size, seed=cfg.seed, tag_epoch=True)
    if pipeline_of(cfg) == "tensor":
        return DataLoader(BatchedCrops.of(dataset, cfg), batch_sampler=sampler, collate_fn=already_batched,
                          num_workers=cfg.data.num_workers)
    return DataLoader(SeededSamples(dataset, cfg.seed), batch_sampler=sampler, num_workers=cfg.data.num_workers, pin_memory=True)


def build_data(cfg: DictConfig, split):
    """(train_loader or datamodule, val_loader) following solo-learn's data settings."""
    from solo.data.classification_dataloader import (
        prepare_data as prepare_classification,
    )
    from solo.data.pretrain_dataloader import (
        FullTransformPipeline,
        NCropAugmentation,
        build_transform_pipeline,
        prepare_datasets,
    )

    val_loader = None
    no_val = cfg.data.val_path is None or (cfg.data.dataset == "custom" and cfg.data.no_labels)
    if not no_val:
        _, val_loader = prepare_classification(
            cfg.data.dataset, train_data_path=cfg.data.train_path, val_data_path=cfg.data.val_path,
            data_format="image_folder" if cfg.data.format == "dali" else cfg.data.format,
            batch_size=cfg.optimizer.batch_size, num_workers=cfg.data.num_workers,
        )
    if cfg.data.format == "dali":
        from solo_semppl.data.dali_module import SemiDALIDataModule

        datamodule = SemiDALIDataModule.from_cfg(cfg)
        robust_run_datasets(cfg.data, val=val_loader and val_loader.dataset)
        datamodule.val_dataloader = lambda: val_loader
        return datamodule, None
    pipelines = [NCropAugmentation(build_transform_pipeline(cfg.data.dataset, aug), aug.num_crops) for aug in cfg.augmentations]
    dataset = prepare_datasets(
        cfg.data.dataset, FullTransformPipeline(pipelines), train_data_path=cfg.data.train_path,
        data_format=cfg.data.format, no_labels=cfg.data.no_labels, data_fraction=cfg.data.fraction,
    )
    robust_run_datasets(cfg.data, dataset, val_loader and val_loader.dataset)
    return train_loader_for(cfg, split, dataset), val_loader


def run(cfg: DictConfig):
    """Trains; returns the run folder (args.json, checkpoints, split.json, metrics.csv) or None."""
    import torch
    from lightning.pytorch import Trainer, seed_everything
    from lightning.pytorch.loggers import CSVLogger
    from lightning.pytorch.loggers.wandb import WandbLogger
    from lightning.pytorch.strategies.ddp import DDPStrategy
    from solo.args.pretrain import parse_cfg
    from solo.methods import METHODS
    from solo.utils.auto_resumer import AutoResumer
    from solo.utils.checkpointer import Checkpointer
    from solo.utils.misc import make_contiguous, omegaconf_select

    from solo_semppl import register
    from solo_semppl.data.dali_config import check_dali_config
    from solo_semppl.data.semi_config import resolve_split
    from solo_semppl.data.tensor_pipeline import check_pipeline
    from solo_semppl.training.callbacks import RunFilesWriter
    from solo_semppl.training.resume import (
        AtomicCheckpointIO,
        ResumeState,
        StepCheckpointer,
        continue_csv,
    )

    register()
    OmegaConf.set_struct(cfg, False)
    check_dali_config(cfg)
    check_pipeline(cfg)
    devices = normalise_devices(cfg)
    cfg = parse_cfg(cfg)
    if cfg.method not in METHODS:
        raise ValueError(f"method = {cfg.method!r}: expected one of {sorted(METHODS)}")
    bad_images = preflight(cfg)
    split = resolve_split(cfg)
    seed_everything(cfg.seed)
    model = METHODS[cfg.method](cfg)
    make_contiguous(model)
    if not cfg.performance.disable_channel_last:
        model = model.to(memory_format=torch.channels_last)
    train_data, val_loader = build_data(cfg, split)

    ckpt_path, run_id = None, None
    logdir = os.path.join(cfg.checkpoint.dir, cfg.method)
    if cfg.auto_resume.enabled and cfg.resume_from_checkpoint is None:
        ckpt_path, run_id = AutoResumer(checkpoint_dir=logdir, max_hours=cfg.auto_resume.max_hours).find_checkpoint(cfg)
        if ckpt_path is not None:
            ckpt_path = newest_checkpoint(os.path.dirname(ckpt_path), "auto_resume")
            print(f"Resuming from previous checkpoint that matches specifications: '{ckpt_path}'")
    elif cfg.resume_from_checkpoint is not None:
        ckpt_path = newest_checkpoint(cfg.resume_from_checkpoint, "resume_from_checkpoint")
        del cfg.resume_from_checkpoint

    callbacks, logger = [ResumeState(getattr(train_data, "batch_sampler", None))], None
    if cfg.wandb.enabled:
        logger = WandbLogger(name=cfg.name, project=cfg.wandb.project, entity=cfg.wandb.entity,
                             offline=cfg.wandb.offline, resume="allow" if run_id else None, id=run_id)
        logger.log_hyperparams(OmegaConf.to_container(cfg))
    elif omegaconf_select(cfg, "csv.enabled", True):
        logger = CSVLogger(save_dir=logdir, name="", version=run_id or f"csv-{Checkpointer.random_string()}")
        continue_csv(logger)
    if cfg.checkpoint.enabled:
        checkpointer = Checkpointer(cfg, logdir=logdir, frequency=cfg.checkpoint.frequency, keep_prev=cfg.checkpoint.keep_prev)
        callbacks += [checkpointer, RunFilesWriter(checkpointer, split, bad_images)]
        callbacks.append(StepCheckpointer(checkpointer, OmegaConf.select(cfg, "checkpoint.every_n_steps", default=0)))

    trainer_kwargs = OmegaConf.to_container(cfg)
    valid = inspect.signature(Trainer.__init__).parameters
    trainer_kwargs = {k: v for k, v in trainer_kwargs.items() if k in valid}
    trainer_kwargs.update({
        "devices": devices, "logger": logger or False, "callbacks": callbacks, "enable_checkpointing": False,
        "plugins": [AtomicCheckpointIO()],
        "strategy": DDPStrategy(find_unused_parameters=False) if cfg.strategy == "ddp" else (cfg.strategy or "auto"),
    })
    if cfg.data.format != "dali":  # our batch sampler slices the ranks itself
        trainer_kwargs["use_distributed_sampler"] = False
    trainer = Trainer(**trainer_kwargs)
    if cfg.data.format == "dali":
        trainer.fit(model, ckpt_path=ckpt_path, datamodule=train_data)
    else:
        trainer.fit(model, train_data, val_loader, ckpt_path=ckpt_path)
    return checkpointer.path if cfg.checkpoint.enabled else None
