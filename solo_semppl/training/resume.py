"""Exact resume for Lightning runs: what a checkpoint must hold beyond the state dict, atomic
checkpoint files, and a step checkpointer.

Lightning 2.1 saves parameters, buffers (the SemPPL queue and the labelled mask are buffers),
optimiser, schedulers and loop counters. ``ResumeState`` adds the rest: the global RNG states,
solo-learn's EMA tau (``momentum_updater.cur_tau`` lives outside the state dict) and the position
in the epoch, which it hands back to an ``EpochBatchSampler`` so that a run resumed mid-epoch
skips the batches it already trained on.

Config keys read: ``checkpoint.every_n_steps`` (``StepCheckpointer``; 0 = off).
"""
import os
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.io import TorchCheckpointIO

from solo_semppl.data.seeded import rng_states, set_rng_states
from solo_semppl.io.atomic import temp_file

RESUME_KEY = "solo_semppl_resume"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes every checkpoint to a hidden temporary file in the destination folder, fsyncs it
    and renames it: a ``*.ckpt`` under its final name is always complete (a crash or a failing
    save leaves the previous file, or none). Remote (``scheme://``) paths use Lightning's writer."""

    def save_checkpoint(self, checkpoint: Dict[str, Any], path: Union[str, Path], storage_options: Optional[Any] = None) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        with temp_file(path.parent, path.name) as temp:
            with open(temp, "wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


class ResumeState(Callback):
    """Saves RNG states, EMA tau and (epoch, batches trained in it) into every checkpoint; on
    resume restores tau at load, points ``sampler`` (an ``EpochBatchSampler``, or None for DALI,
    which restarts the epoch) past the trained batches, and restores the RNG states when the
    epoch starts (after Lightning has built its data iterators)."""

    def __init__(self, sampler=None):
        self.sampler, self.pending_rng = sampler, None

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: Dict[str, Any]) -> None:
        updater = getattr(pl_module, "momentum_updater", None)
        checkpoint[RESUME_KEY] = {
            "epoch": trainer.current_epoch,
            "batches": trainer.fit_loop.epoch_loop.batch_progress.current.completed,
            "rng": rng_states(),
            "tau": None if updater is None else updater.cur_tau,
        }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: Dict[str, Any]) -> None:
        state = checkpoint.get(RESUME_KEY)
        if state is None:
            return
        if state["tau"] is not None:
            pl_module.momentum_updater.cur_tau = state["tau"]
        if self.sampler is not None:
            self.sampler.resume(state["epoch"], state["batches"])
        self.pending_rng = state["rng"]

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self.pending_rng is not None:
            set_rng_states(self.pending_rng)
            self.pending_rng = None


class StepCheckpointer(Callback):
    """Every ``checkpoint.every_n_steps`` optimiser steps, ``last-step.ckpt`` in the folder of a
    solo-learn ``Checkpointer`` (overwritten atomically with ``AtomicCheckpointIO``).

    It saves when the next batch starts, after solo-learn's EMA update of the last step (which runs
    in the module's ``on_train_batch_end``, after the callbacks').
    """

    FILENAME = "last-step.ckpt"

    def __init__(self, checkpointer, every_n_steps: int):
        if isinstance(every_n_steps, bool) or not isinstance(every_n_steps, int) or every_n_steps < 0:
            raise ValueError(f"checkpoint.every_n_steps = {every_n_steps!r}: expected an integer >= 0 (0 = off)")
        self.checkpointer, self.every_n_steps, self.last_saved = checkpointer, every_n_steps, None

    def on_train_start(self, trainer, pl_module) -> None:
        self.last_saved = trainer.global_step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        step = trainer.global_step
        if self.every_n_steps and step != self.last_saved and step % self.every_n_steps == 0:
            trainer.save_checkpoint(self.checkpointer.path / self.FILENAME)
            self.last_saved = step


def continue_csv(logger) -> None:
    """Lightning 2.1's CSV writer forgets the header of an existing metrics.csv and rewrites the
    file with the keys of its first save only; seeding it with the old header makes a resumed
    run append to the same columns."""
    import csv

    writer = logger.experiment
    path = getattr(writer, "metrics_file_path", None)  # absent on ranks > 0 (a dummy experiment)
    if isinstance(path, str) and os.path.isfile(path):
        with open(writer.metrics_file_path, newline="") as handle:
            writer.metrics_keys = list(next(csv.reader(handle), []))
