"""k-NN evaluation with a bank of labelled training images only: cosine similarity,
temperature-weighted votes (exp(sim / T), as InstDisc and solo-learn's WeightedKNNClassifier);
(k, T) chosen on held-out labelled images against a bank of the remaining labelled ones."""
from typing import Dict, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from solo_semppl.eval import data


def knn_predict(bank, bank_labels, queries, num_classes: int, k: int, temperature: float, chunk: int = 1024):
    """Class scores [Q, num_classes] of the k nearest bank entries, weighted by exp(sim / T)."""
    bank = F.normalize(bank, dim=1)
    scores = []
    for start in range(0, queries.size(0), chunk):
        sims = F.normalize(queries[start:start + chunk], dim=1) @ bank.T
        top, index = sims.topk(min(k, bank.size(0)), dim=1)
        votes = torch.zeros(top.size(0), num_classes).scatter_add_(1, bank_labels[index], (top / temperature).exp())
        scores.append(votes)
    return torch.cat(scores)


def knn(run, ks: Sequence[int] = (1, 5, 10, 20, 50), temperatures: Sequence[float] = (0.02, 0.07, 0.2),
        device: str = "cpu", seed: int = 0, num_workers: int = 0) -> Dict:
    task = data.labelled_task(run, data.run_transforms(run.args, False), seed=seed)
    labelled, fit_idx, held_idx, num_classes = task.labelled, task.fit, task.held_out, task.num_classes
    feats, labels = data.features(run.backbone, data.loader(task.train, labelled, 256, False, num_workers), device)
    val_feats, val_labels = data.features(run.backbone, data.loader(task.val, None, 256, False, num_workers), device)
    is_fit = torch.from_numpy(np.isin(labelled, fit_idx))
    held_out = {}
    if len(held_idx):
        for k in ks:
            for t in temperatures:
                pred = knn_predict(feats[is_fit], labels[is_fit], feats[~is_fit], num_classes, k, t).argmax(1)
                held_out[(k, t)] = 100.0 * float((pred == labels[~is_fit]).float().mean())
    best_k, best_t = max(held_out, key=held_out.get) if held_out else (ks[0], temperatures[0])
    scores = knn_predict(feats, labels, val_feats, num_classes, best_k, best_t)
    top = scores.topk(min(5, num_classes), dim=1).indices
    return {"k": best_k, "temperature": best_t, "num_labelled": int(len(labelled)),
            "held_out_top1": {f"k={k},T={t}": v for (k, t), v in held_out.items()},
            "top1": 100.0 * float((top[:, 0] == val_labels).float().mean()),
            "top5": 100.0 * float((top == val_labels[:, None]).any(1).float().mean())}
