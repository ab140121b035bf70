"""Linear probe (SPEC 10): frozen backbone in eval mode, a linear head on the labelled subset
(or every label, when asked explicitly), learning rate chosen on held-out labelled images.

CPU fast path: features are computed once with the evaluation transform (no augmentation), so
the head trains on cached features; SPEC's recipe (random resized crops) would recompute them
every epoch.
"""
from typing import Dict, Sequence

import torch

from solo_semppl.eval import classifier, data


def linear(run, epochs: int = 100, lr_grid: Sequence[float] = (0.01, 0.1, 1.0), batch_size: int = 256,
           all_labels: bool = False, device: str = "cpu", seed: int = 0, num_workers: int = 0) -> Dict:
    task = data.labelled_task(run, data.run_transforms(run.args, False), all_labels, seed)
    labelled, fit_idx, held_idx, num_classes = task.labelled, task.fit, task.held_out, task.num_classes
    feats, labels = data.features(run.backbone, data.loader(task.train, labelled, 256, False, num_workers), device)
    position = {int(i): p for p, i in enumerate(labelled)}
    val_feats, val_labels = data.features(run.backbone, data.loader(task.val, None, 256, False, num_workers), device)

    def batches(rows, x, y, shuffle):
        ds = torch.utils.data.TensorDataset(x[rows], y[rows])
        return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle,
                                           generator=torch.Generator().manual_seed(seed) if shuffle else None)

    def fitted(rows, lr):
        torch.manual_seed(seed)
        head = torch.nn.Linear(run.features_dim, num_classes)
        classifier.train(head, batches(rows, feats, labels, True), epochs, lr, device, desc=f"linear lr={lr}")
        return head

    fit_rows = torch.tensor([position[int(i)] for i in fit_idx])
    held_rows = torch.tensor([position[int(i)] for i in held_idx], dtype=torch.long)
    held_out = {}
    if len(held_rows):
        for lr in lr_grid:
            held_out[lr] = classifier.accuracy(fitted(fit_rows, lr), batches(held_rows, feats, labels, False), device)["top1"]
    best_lr = max(held_out, key=held_out.get) if held_out else lr_grid[len(lr_grid) // 2]
    head = fitted(torch.arange(len(labelled)), best_lr)
    val = classifier.accuracy(head, batches(torch.arange(len(val_labels)), val_feats, val_labels, False), device)
    return {"epochs": epochs, "all_labels": all_labels, "lr_grid": list(lr_grid), "lr": best_lr,
            "held_out_top1": {str(k): v for k, v in held_out.items()}, "num_labelled": int(len(labelled)), **val}
