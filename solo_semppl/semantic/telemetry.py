"""Pseudo-label telemetry (SPEC 8): accuracy, macro precision / recall, coverage; queue classes.
Tensors in, tensors out, no host sync. The truth of unlabelled images is read for analysis only."""
from typing import Dict, Optional

import torch


def pseudo_label_metrics(predicted, truth, num_classes: int, mask: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
    """Quality of ``predicted`` (-1 = no label) against ``truth`` over the entries in ``mask``.

    accuracy: correct / entries with a label; coverage: entries with a label / entries;
    macro_precision: mean over classes predicted at least once of correct / predicted;
    macro_recall: mean over classes present in truth of correct / present (no label = a miss).
    """
    if predicted.shape != truth.shape:
        raise ValueError(f"predicted {tuple(predicted.shape)} / truth {tuple(truth.shape)}: expected equal shapes")
    mask = torch.ones_like(truth, dtype=torch.bool) if mask is None else mask
    labelled = (predicted >= 0) & mask
    correct = (predicted == truth) & labelled

    def per_class(select, classes):
        return torch.zeros(num_classes, device=truth.device).scatter_add_(0, classes.clamp(min=0), select.float())

    hits = per_class(correct, truth)
    guessed = per_class(labelled, predicted)
    present = per_class(mask & (truth >= 0), truth)
    return {
        "accuracy": correct.sum() / labelled.sum().clamp(min=1),
        "coverage": labelled.sum() / mask.sum().clamp(min=1),
        "macro_precision": (hits / guessed.clamp(min=1)).sum() / (guessed > 0).sum().clamp(min=1),
        "macro_recall": (hits / present.clamp(min=1)).sum() / (present > 0).sum().clamp(min=1),
    }


def queue_class_coverage(bank_labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Fraction of the classes that have at least one entry in any view's queue."""
    valid = (bank_labels >= 0).flatten().float()
    present = torch.zeros(num_classes, device=bank_labels.device).scatter_add_(0, bank_labels.flatten().clamp(min=0), valid)
    return (present > 0).float().mean()
