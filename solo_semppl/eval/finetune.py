"""Semi-supervised fine-tuning (SPEC 10): all weights plus a new linear head, trained on the
split's labelled images only. The learning rate is chosen on a held-out part of the labelled
training images (``data.holdout``), never on the validation set; the final model is trained
on all labelled images with that rate and evaluated once on the validation set.

Defaults: SGD Nesterov 0.9, no weight decay, cosine; SPEC's ImageNet recipe is 60 epochs at
1 % and 30 at 10 % labels (``epochs``). On small labelled sets an epoch is one or two steps, so
training lasts at least ``min_steps`` optimiser steps (epochs are raised to reach it). The grid
spans 0.01-1 (on digits at 10 % the chosen rate sat at the old grid's top, 0.1, in 3 of 4
runs). With a single labelled image in some class no held-out image of that class exists (a
leave-one-out fold would hold out a class the model never saw): the rate is then the documented
fixed ``fixed_lr``, and the record says so (``selected: "fixed"``).
"""
import copy
import math
import os
from typing import Dict, Sequence

import torch

from solo_semppl.eval import classifier, data

LR_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
FIXED_LR = 0.1


def finetune(run, epochs: int = 30, lr_grid: Sequence[float] = LR_GRID, batch_size: int = 64,
             augment: bool = True, device: str = "cpu", seed: int = 0, num_workers: int = 0, save_to=None,
             min_steps: int = 200, fixed_lr: float = FIXED_LR) -> Dict:
    """Returns the result record; ``save_to`` also keeps the fine-tuned model (backbone + head
    state_dict, written atomically) for ``ood``."""
    task = data.labelled_task(run, data.run_transforms(run.args, False), seed=seed)
    train_ds = data.dataset(run.args, True, data.run_transforms(run.args, augment))
    labelled, fit_idx, held_idx, num_classes = task.labelled, task.fit, task.held_out, task.num_classes

    def fitted(indices, lr):
        torch.manual_seed(seed)
        model = torch.nn.Sequential(copy.deepcopy(run.backbone), torch.nn.Linear(run.features_dim, num_classes))
        batches = data.loader(train_ds, indices, batch_size, True, num_workers, seed)
        classifier.train(model, batches, max(epochs, math.ceil(min_steps / len(batches))), lr, device,
                         desc=f"finetune lr={lr}")
        return model

    held_out = {}
    if len(held_idx):
        for lr in lr_grid:
            model = fitted(fit_idx, lr)
            held_out[lr] = classifier.accuracy(model, data.loader(task.train, held_idx, 256, False, num_workers), device)["top1"]
        best_lr = max(held_out, key=held_out.get)
    else:
        best_lr = fixed_lr
    model = fitted(labelled, best_lr)
    if save_to is not None:
        save_model(model, save_to)
    val = classifier.accuracy(model, data.loader(task.val, None, 256, False, num_workers), device)
    return {"epochs": epochs, "min_steps": min_steps, "lr_grid": list(lr_grid),
            "held_out_top1": {str(k): v for k, v in held_out.items()}, "lr": best_lr,
            "selected": "held-out" if held_out else "fixed", "lr_at_grid_edge": bool(held_out) and best_lr in (min(lr_grid), max(lr_grid)), "num_labelled": int(len(labelled)), "num_held_out": int(len(held_idx)), **val}


def save_model(model: torch.nn.Sequential, path) -> None:
    tmp = f"{path}.tmp"
    torch.save({"backbone": model[0].state_dict(), "head": model[1].state_dict()}, tmp)
    os.replace(tmp, path)
