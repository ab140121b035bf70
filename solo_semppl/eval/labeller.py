"""The labeller evaluation: SemPPL's own pseudo-labeller turned on the validation set.

A nearest-neighbour classifier over the labelled images in the space where SemPPL's k-NN
labeller works (SPEC 5.2), as PAWS reports its soft nearest-neighbour classifier; not a
fine-tune. Queries: the online predictions (the projection for a method without a predictor,
e.g. SimCLR) of ``views`` random crops of each validation image; bank: the target projections
(the online projection without a target network) of ``views`` crops of each labelled training
image, one bank per crop; every query crop votes with its k nearest entries of every bank
(views x views votes), majority with ties broken by summed similarity — the training rule
(``semantic.knn.knn_pseudo_labels``). k is the run's ``method_kwargs.knn_k`` (default 1).
Crops: random resized crops at the run's crop size (``eval.data.run_transforms``), seeded.

The projector / predictor are rebuilt from the checkpoint's ``projector.*``,
``predictor.*``, ``momentum_backbone.*`` and ``momentum_projector.*`` tensors (Linear,
BatchNorm1d and ReLU layers, in eval mode); a checkpoint without them is an error naming the
file and the missing prefixes.
"""
import copy
from typing import Dict

import torch
import torch.nn as nn
from omegaconf import OmegaConf

from solo_semppl.eval import data
from solo_semppl.eval.checkpoint import mlp_from_state, read_state_dict
from solo_semppl.seeding import mix_seed
from solo_semppl.semantic.knn import knn_pseudo_labels


def labeller_networks(run):
    """(online: image -> prediction, target: image -> projection) of a run's checkpoint."""
    state = read_state_dict(run.path)
    has = lambda prefix: any(k.startswith(prefix + ".") for k in state)
    missing = [p for p in ("projector",) if not has(p)]
    if has("momentum_projector") and not has("momentum_backbone"):
        missing.append("momentum_backbone")
    if missing:
        raise ValueError(f"{run.path}: the labeller evaluation needs the projector weights; missing "
                         f"{[p + '.*' for p in missing]} in its state_dict")
    projector = mlp_from_state(state, "projector")
    online = nn.Sequential(run.backbone, projector, *([mlp_from_state(state, "predictor")] if has("predictor") else []))
    if has("momentum_projector"):
        momentum_backbone = copy.deepcopy(run.backbone)
        weights = {k[len("momentum_backbone."):]: v for k, v in state.items() if k.startswith("momentum_backbone.")}
        momentum_backbone.load_state_dict(weights, strict=True)
        target = nn.Sequential(momentum_backbone, mlp_from_state(state, "momentum_projector"))
    else:
        target = nn.Sequential(run.backbone, projector)
    return online.eval(), target.eval()


def crop_embeddings(network, ds, indices, views: int, seed: int, num_workers: int):
    """[views, N, D] embeddings of ``views`` seeded random crops of each image, and the labels."""
    out = []
    for v in range(views):
        torch.manual_seed(mix_seed(seed, v))
        feats, labels = data.features(network, data.loader(ds, indices, 256, False, num_workers))
        out.append(feats)
    return torch.stack(out), labels


def labeller(run, views: int = 4, device: str = "cpu", seed: int = 0, num_workers: int = 0) -> Dict:
    """The result record: top-1 (%), the vote agreement, views, k."""
    online, target = labeller_networks(run)
    task = data.labelled_task(run, data.run_transforms(run.args, True), seed=seed)
    train_ds, val_ds, labelled, num_classes = task.train, task.val, task.labelled, task.num_classes
    k = int(OmegaConf.select(run.args, "method_kwargs.knn_k", default=1) or 1)
    bank, bank_labels = crop_embeddings(target.to(device), train_ds, labelled, views, seed, num_workers)
    queries, val_labels = crop_embeddings(online.to(device), val_ds, None, views, seed + 1, num_workers)
    result = knn_pseudo_labels(queries, bank, bank_labels.expand(views, -1).contiguous(), num_classes, k=k)
    return {"views": views, "k": k, "num_labelled": int(len(labelled)),
            "agreement": float(result.agreement.mean()),
            "top1": 100.0 * float((result.labels == val_labels).float().mean())}
