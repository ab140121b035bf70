"""Robustness / out-of-distribution evaluation of a fine-tuned model on ImageNet-V2, -C, -R,
-Sketch and -A style folders, when present under a root:

    <root>/imagenet-v2/<class>/...        class folders named by wnid or by class index (V2's 0..999)
    <root>/imagenet-sketch/<wnid>/...
    <root>/imagenet-r/<wnid>/...          200 classes: logits restricted to them
    <root>/imagenet-a/<wnid>/...          200 classes: logits restricted to them
    <root>/imagenet-c/<corruption>/<severity>/<wnid>/...   mean over corruptions and severities

A variant whose folders name fewer classes than training restricts the logits to those classes
(the -A / -R protocol). A class the model was not trained on is an error. The model is a file
``finetune`` wrote (either ``from_layer``), read by ``finetune.load_model``.
"""
from pathlib import Path
from typing import Dict, List

import torch
from torchvision.datasets import ImageFolder

from solo_semppl.data.folder_check import robust
from solo_semppl.eval import classifier, data
from solo_semppl.eval.finetune import load_model

VARIANTS = ("imagenet-v2", "imagenet-sketch", "imagenet-r", "imagenet-a", "imagenet-c")


class Restricted(torch.nn.Module):
    """Logits of ``model`` at the training indices of the variant's classes, in folder order."""

    def __init__(self, model, indices: List[int]):
        super().__init__()
        self.model = model
        self.register_buffer("indices", torch.tensor(indices))

    def forward(self, x):
        return self.model(x)[:, self.indices]


def training_indices(folder_classes: List[str], train_classes: List[str], source: Path) -> List[int]:
    position = {name: i for i, name in enumerate(train_classes)}
    if all(name.isdigit() for name in folder_classes) and not all(name in position for name in folder_classes):
        indices = [int(name) for name in folder_classes]  # ImageNet-V2 names classes by index
    else:
        unknown = [name for name in folder_classes if name not in position]
        if unknown:
            raise ValueError(f"{source}: classes {unknown[:5]} are not among the training classes")
        indices = [position[name] for name in folder_classes]
    if max(indices) >= len(train_classes):
        raise ValueError(f"{source}: class index {max(indices)} outside the {len(train_classes)} training classes")
    return indices


def evaluate_folder(model, folder: Path, train_classes, transform, device) -> Dict[str, float]:
    ds = robust(ImageFolder(folder, transform=transform))
    indices = training_indices(ds.classes, train_classes, folder)
    # the targets are folder positions; the restricted logits are in the same order
    net = Restricted(model, indices)
    return classifier.accuracy(net, torch.utils.data.DataLoader(ds, batch_size=256), device)


def ood(run, model_path, root, device: str = "cpu") -> Dict:
    """top-1 per variant found under ``root`` (and per corruption for -C)."""
    model, _ = load_model(run, model_path)
    train_classes = data.dataset(run.args, True, None).classes
    transform = data.run_transforms(run.args, False)
    results, root = {}, Path(root)
    for variant in VARIANTS:
        folder = root / variant
        if not folder.is_dir():
            continue
        if variant == "imagenet-c":
            per = {f"{c.name}/{s.name}": evaluate_folder(model, s, train_classes, transform, device)["top1"]
                   for c in sorted(folder.iterdir()) if c.is_dir() for s in sorted(c.iterdir()) if s.is_dir()}
            results[variant] = {"top1": sum(per.values()) / max(len(per), 1), "per_corruption": per}
        else:
            results[variant] = evaluate_folder(model, folder, train_classes, transform, device)
    if not results:
        raise ValueError(f"{root}: none of {list(VARIANTS)} found")
    return results
