"""Load a solo-learn run (ours or solo-learn's own methods): args.json + checkpoint + split, and
build the models evaluations train from it.

Every backbone parameter and buffer must be in the checkpoint with its shape: no silently
empty load (solo-learn's main_linear.py loads with strict=False). Heads (projector, predictor)
are rebuilt from their tensors' shapes (``mlp_from_state``).

``classifier_model(run, num_classes, from_layer)``: the model to fine-tune (or distil into), a
copy of the run's backbone -> (``from_layer="projector1"``, SimCLRv2's fine-tuning from the
middle of the projection head) the run's projector up to and including its first ReLU -> a new
linear head. The first projector block is ``projector.0`` (Linear) [, ``projector.1``
(BatchNorm1d: ours, Linear BatchNorm1d ReLU ...)], ReLU (solo-learn's SimCLR: Linear ReLU Linear).
"""
import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from omegaconf import DictConfig, OmegaConf

from solo_semppl.data.split import LabelledSplit
from solo_semppl.io.checkpoints import newest_checkpoint


@dataclass
class Run:
    path: Path  # the checkpoint file
    args: DictConfig
    backbone: nn.Module
    features_dim: int
    split: Optional[LabelledSplit]


def build_backbone(args: DictConfig) -> nn.Module:
    """The backbone of a run, fc removed: ours (the tiny CNN), the zoo's builder for kwarg-free
    torchvision ResNets (``zoo.backbones.build_backbone``, with solo-learn's CIFAR stem rule),
    solo-learn's own constructors for everything else."""
    from solo_semppl.backbones import BACKBONES
    from solo_semppl.zoo.backbones import TORCHVISION_ARCHS
    from solo_semppl.zoo.backbones import build_backbone as build_zoo_backbone

    name = args.backbone.name
    kwargs = dict(OmegaConf.to_container(args.backbone.get("kwargs") or {}))
    if name in BACKBONES:
        return BACKBONES[name](args.method, **kwargs)
    if name in TORCHVISION_ARCHS and not kwargs:
        return build_zoo_backbone(name, stem="cifar" if args.data.dataset in ("cifar10", "cifar100") else "imagenet")
    try:
        from solo.methods.base import BaseMethod
    except ImportError as err:
        raise ValueError(f"backbone.name = {name!r} needs solo-learn installed (pip install 'solo-semppl[solo]')") from err
    if name not in BaseMethod._BACKBONES:
        raise ValueError(f"backbone.name = {name!r}: unknown (known: {sorted(BaseMethod._BACKBONES)})")
    return BaseMethod._BACKBONES[name](args.method, **kwargs)


def load_backbone_weights(backbone: nn.Module, state_dict: dict, source: Path) -> None:
    """Loads ``backbone.*`` keys strictly; ValueError naming the file and the keys otherwise."""
    weights = {k[len("backbone."):]: v for k, v in state_dict.items() if k.startswith("backbone.")}
    if not weights:
        raise ValueError(f"{source}: no 'backbone.*' keys in its state_dict: not a solo-learn checkpoint")
    expected = backbone.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong = sorted(k for k in set(expected) & set(weights) if expected[k].shape != weights[k].shape)
    if missing or unexpected or wrong:
        raise ValueError(
            f"{source}: backbone keys do not fit the backbone of its args.json: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, wrong shape {[(k, tuple(weights[k].shape), tuple(expected[k].shape)) for k in wrong[:5]]}"
        )
    backbone.load_state_dict(weights, strict=True)


def read_state_dict(ckpt: Path) -> Dict[str, torch.Tensor]:
    """The ``state_dict`` of a solo-learn / Lightning checkpoint file."""
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or "state_dict" not in state:
        raise ValueError(f"{ckpt}: no 'state_dict' inside: not a solo-learn / Lightning checkpoint")
    return state["state_dict"]


def load_run(path) -> Run:
    """A run folder (newest checkpoint) or a .ckpt with args.json beside it."""
    ckpt = newest_checkpoint(path, "run")
    args_path = ckpt.parent / "args.json"
    if not args_path.is_file():
        raise ValueError(f"{ckpt}: no args.json beside it (expected a solo-learn run folder)")
    args = OmegaConf.create(json.loads(args_path.read_text()))
    for key in ("method", "backbone.name", "data.dataset", "data.train_path"):
        if OmegaConf.select(args, key) is None:
            raise ValueError(f"{args_path}: missing '{key}' (expected solo-learn's args.json)")
    backbone = build_backbone(args)
    load_backbone_weights(backbone, read_state_dict(ckpt), ckpt)
    split = None
    if (ckpt.parent / "split.json").is_file():
        record = json.loads((ckpt.parent / "split.json").read_text())
        split = LabelledSplit.from_json(record)
        if record.get("sha256") and record["sha256"] != split.sha256():
            raise ValueError(f"{ckpt.parent / 'split.json'}: sha256 does not match its indices")
    with torch.no_grad():
        backbone.eval()
        size = args.augmentations[0].crop_size if "augmentations" in args else 32
        dim = backbone(torch.zeros(2, 3, size, size)).shape[1]
    return Run(ckpt, args, backbone, dim, split)


MODULES = {"backbone": ("backbone", "head"), "projector1": ("backbone", "projector1", "head")}  # by from_layer
FROM_LAYERS = tuple(MODULES)


def mlp_from_state(state: Dict[str, torch.Tensor], prefix: str) -> nn.Sequential:
    """The ``nn.Sequential`` MLP whose tensors are ``<prefix>.<i>.*`` in ``state``: index i holds a
    BatchNorm1d (it has running statistics) or a Linear (a 2-d weight); indices without tensors
    are ReLUs (solo-learn's and our projectors / predictors)."""
    names = {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}
    layers: List[nn.Module] = []
    for i in range(max(int(name.split(".")[0]) for name in names) + 1):
        weight = names.get(f"{i}.weight")
        if f"{i}.running_mean" in names:
            layers.append(nn.BatchNorm1d(names[f"{i}.running_mean"].numel()))
        elif weight is not None and weight.dim() == 2:
            layers.append(nn.Linear(weight.size(1), weight.size(0), bias=f"{i}.bias" in names))
        else:
            layers.append(nn.ReLU())
    mlp = nn.Sequential(*layers)
    mlp.load_state_dict(names, strict=True)
    return mlp.eval()


def projector1_from_state(state: Dict[str, torch.Tensor], source) -> nn.Sequential:
    """Linear (``projector.0.*``) [, BatchNorm1d (``projector.1.*``)], ReLU with the weights of
    ``state``; ValueError naming ``source`` when the projector (or that layout) is missing."""
    if "projector.0.weight" not in state:
        raise ValueError(f"{source}: from_layer 'projector1' needs the run's projector; missing 'projector.0.weight' in its state_dict")
    block = mlp_from_state({k: v for k, v in state.items() if k.startswith(("projector.0.", "projector.1."))}, "projector")
    if not isinstance(block[0], nn.Linear) or not all(isinstance(m, nn.BatchNorm1d) for m in block[1:]):
        raise ValueError(f"{source}: 'projector.0' / 'projector.1' are not Linear [, BatchNorm1d]: {list(block)}")
    return nn.Sequential(*block, nn.ReLU())


def classifier_model(run: Run, num_classes: int, from_layer: str = "backbone") -> nn.Sequential:
    """A copy of the run's backbone [-> its projector1 modules] -> a new linear head: the modules
    ``MODULES[from_layer]`` name."""
    if from_layer not in FROM_LAYERS:
        raise ValueError(f"from_layer = {from_layer!r}: expected one of {list(FROM_LAYERS)}")
    stem, width = [copy.deepcopy(run.backbone)], run.features_dim
    if from_layer == "projector1":
        block = projector1_from_state(read_state_dict(run.path), run.path)
        stem, width = stem + [block], block[0].out_features
    return nn.Sequential(*stem, nn.Linear(width, num_classes))
