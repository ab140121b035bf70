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

``from_layer``: ``backbone`` (default) puts the head on the backbone features; ``projector1``
fine-tunes from the first layer of the run's projection head, as SimCLRv2 does
(``checkpoint.classifier_model``). The record says which.

The fine-tuned model (``save_to``, written atomically) is a ``torch.save``d dict of plain
tensors and strings: ``from_layer`` and one state_dict per module, ``backbone``, ``projector1``
(only with ``from_layer="projector1"``: keys ``0.*`` Linear [, ``1.*`` BatchNorm1d]) and
``head`` (the Linear, ``weight`` [classes, width]). ``load_model(run, path)`` rebuilds it for
``ood`` and ``distill``.
"""
import math
import os
from pathlib import Path
from typing import Dict, Sequence, Tuple

import torch

from solo_semppl.eval import classifier, data
from solo_semppl.eval.checkpoint import MODULES, classifier_model
from solo_semppl.io.atomic import temp_file

LR_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
FIXED_LR = 0.1


def finetune(run, epochs: int = 30, lr_grid: Sequence[float] = LR_GRID, batch_size: int = 64,
             augment: bool = True, device: str = "cpu", seed: int = 0, num_workers: int = 0, save_to=None,
             min_steps: int = 200, fixed_lr: float = FIXED_LR, from_layer: str = "backbone") -> Dict:
    """Returns the result record; ``save_to`` also keeps the fine-tuned model (``save_model``)."""
    task = data.labelled_task(run, data.run_transforms(run.args, False), seed=seed)
    train_ds = data.dataset(run.args, True, data.run_transforms(run.args, augment))
    labelled, fit_idx, held_idx, num_classes = task.labelled, task.fit, task.held_out, task.num_classes

    def fitted(indices, lr):
        torch.manual_seed(seed)
        model = classifier_model(run, num_classes, from_layer)
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
        save_model(model, from_layer, save_to)
    val = classifier.accuracy(model, data.loader(task.val, None, 256, False, num_workers), device)
    return {"from_layer": from_layer, "epochs": epochs, "min_steps": min_steps, "lr_grid": list(lr_grid),
            "held_out_top1": {str(k): v for k, v in held_out.items()}, "lr": best_lr,
            "selected": "held-out" if held_out else "fixed", "lr_at_grid_edge": bool(held_out) and best_lr in (min(lr_grid), max(lr_grid)), "num_labelled": int(len(labelled)), "num_held_out": int(len(held_idx)), **val}


def save_model(model: torch.nn.Sequential, from_layer: str, path) -> None:
    """Writes ``model`` (``checkpoint.classifier_model``'s layout) as the dict of the docstring."""
    path = Path(path)
    with temp_file(path.parent, path.name) as temp:
        torch.save({"from_layer": from_layer, **{name: m.state_dict() for name, m in zip(MODULES[from_layer], model)}}, temp)
        os.replace(temp, path)


def load_model(run, path) -> Tuple[torch.nn.Sequential, str]:
    """(model in eval mode, from_layer) of a file ``save_model`` wrote for this run; ValueError
    naming the file (and the missing key) for anything else."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file (a fine-tuned model, written by `solo-semppl eval finetune`)")
    try:  # plain tensors only: a pretraining checkpoint or a random file is refused here or below
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        first_line = (str(err).splitlines() or [""])[0][:200]
        raise ValueError(f"{path}: not a fine-tuned model written by finetune ({type(err).__name__}: {first_line})") from err
    if not isinstance(state, dict) or "from_layer" not in state:
        raise ValueError(f"{path}: not a fine-tuned model written by finetune: missing the 'from_layer' key")
    if state["from_layer"] not in MODULES:
        raise ValueError(f"{path}: from_layer = {state['from_layer']!r}: expected one of {list(MODULES)}")
    names = MODULES[state["from_layer"]]
    missing = [name for name in names if not isinstance(state.get(name), dict)]
    if missing or "weight" not in state["head"]:
        raise ValueError(f"{path}: not a fine-tuned model written by finetune: missing {missing or ['head.weight']}")
    model = classifier_model(run, state["head"]["weight"].shape[0], state["from_layer"])
    try:
        for name, module in zip(names, model):
            module.load_state_dict(state[name])
    except RuntimeError as err:
        raise ValueError(f"{path}: not a fine-tuned model of this run ({err})") from err
    return model.eval(), state["from_layer"]
