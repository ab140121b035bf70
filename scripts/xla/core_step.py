"""A framework-free SemPPL training step for the XLA check (``check_xla.py``) and the CPU
host-sync test (``tests/test_xla_ready.py``): solo-semppl's core only, no solo-learn, no
Lightning, so it runs in a torch-xla venv that has neither.

It mirrors ``SemPPL.training_step`` + ``on_train_batch_end`` with the default switches
(base_loss relic, kl_form k1, pseudo-labels from the online predictions, k-NN torch backend,
votes "all", k 1, no exclude_self) and the sync-free LARS:
    visible targets (-1 for unlabelled) -> online backbone/projector/predictor on every crop,
    EMA backbone/projector on the large crops -> negatives from a per-step seeded generator ->
    ReLIC loss -> k-NN pseudo-labels against the queue -> semantic positives from the queue ->
    semantic-positive loss -> pseudo-label telemetry -> backward -> LARS step (lr from a
    cosine schedule, a new Python float every step) -> EMA update (tau changes every step) ->
    enqueue the labelled target projections.
Not covered (the Lightning/solo-learn wrapper): solo-learn's online linear probe, its
BaseMethod/BaseMomentumMethod bookkeeping, ``self.log``, DDP/XLA gathers (one device here),
the scheduler object and the dataloader.
"""
import copy
import math
from typing import Dict

import torch
import torch.nn as nn

from solo_semppl.backbones import TinyCNN
from solo_semppl.lars import LARS
from solo_semppl.losses import relic_loss, sample_negatives, semantic_positive_loss
from solo_semppl.seeding import mix_seed
from solo_semppl.semantic import (
    LabelledQueue,
    knn_pseudo_labels,
    pseudo_label_metrics,
    queue_class_coverage,
    sample_semantic_positives,
)

LARGE, SMALL, BATCH, NUM_CLASSES, DATASET = 4, 2, 16, 4, 64
WIDTH, HIDDEN, DIM, NEGATIVES, POSITIVES, CAPACITY = 8, 64, 16, 5, 3, 48
TEMPERATURE, CONTRASTIVE_W, INVARIANCE_W, SEMPOS_W = 0.2, 0.3, 5.0, 0.2
BASE_LR, BASE_TAU, TOTAL_STEPS, SEED = 0.3, 0.99, 20, 5


def mlp(in_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, HIDDEN), nn.BatchNorm1d(HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, out_dim))


class CoreSemPPL(nn.Module):
    """Online backbone + projector + predictor, their EMA copies, the labelled split, the queue."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = TinyCNN(WIDTH)
        self.projector = mlp(self.backbone.num_features, DIM)
        self.predictor = mlp(DIM, DIM)
        self.momentum_backbone = copy.deepcopy(self.backbone).requires_grad_(False)
        self.momentum_projector = copy.deepcopy(self.projector).requires_grad_(False)
        self.register_buffer("labelled_mask", torch.arange(DATASET) % 2 == 0)
        self.queue = LabelledQueue(LARGE, CAPACITY, DIM)

    def optimizer(self) -> LARS:
        online = [*self.backbone.parameters(), *self.projector.parameters(), *self.predictor.parameters()]
        return LARS(online, lr=BASE_LR, momentum=0.9, weight_decay=1e-6, eta=0.02, clip_lr=True,
                    exclude_bias_n_norm=True)


def make_batches(steps: int):
    """(indexes [B], crops: 4 x [B, 3, 16, 16] + 2 x [B, 3, 8, 8], targets [B]) per step, on CPU."""
    g = torch.Generator().manual_seed(SEED)
    batches = []
    for _ in range(steps):
        indexes = torch.randperm(DATASET, generator=g)[:BATCH]
        crops = [torch.randn(BATCH, 3, 16, 16, generator=g) for _ in range(LARGE)]
        crops += [torch.randn(BATCH, 3, 8, 8, generator=g) for _ in range(SMALL)]
        batches.append((indexes, crops, indexes % NUM_CLASSES))
    return batches


def step_generator(step: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed(mix_seed(SEED, step, stream))


def training_step(model: CoreSemPPL, optimizer: LARS, batch, step: int) -> Dict[str, torch.Tensor]:
    """One SemPPL step on ``model``'s device; returns the loss terms and telemetry (tensors)."""
    indexes, crops, targets = batch
    visible = torch.where(model.labelled_mask[indexes], targets, torch.full_like(targets, -1))
    online = torch.stack([model.predictor(model.projector(model.backbone(x))) for x in crops])
    with torch.no_grad():
        target = torch.stack([model.momentum_projector(model.momentum_backbone(x)) for x in crops[:LARGE]])
    negatives = sample_negatives(BATCH, NEGATIVES, step_generator(step, 0)).to(target.device)
    contrastive, invariance = relic_loss(online, target, negatives, TEMPERATURE)
    queue = model.queue
    pseudo = knn_pseudo_labels(online[:LARGE].detach(), queue.embeddings, queue.labels, NUM_CLASSES, backend="torch")
    labels = torch.where(visible >= 0, visible, pseudo.labels)
    index, valid = sample_semantic_positives(labels, queue.labels, queue.ids, POSITIVES, generator=step_generator(step, 1))
    views = torch.arange(LARGE, device=index.device)[:, None, None]
    positives = queue.embeddings[views, index].float()
    sem_contrastive, sem_invariance = semantic_positive_loss(online, positives, valid, target, negatives, TEMPERATURE)
    loss = CONTRASTIVE_W * (contrastive + SEMPOS_W * sem_contrastive) + INVARIANCE_W * (invariance + sem_invariance)
    metrics = pseudo_label_metrics(pseudo.labels, targets, NUM_CLASSES, mask=visible < 0)
    metrics["queue_class_coverage"] = queue_class_coverage(queue.labels, NUM_CLASSES)
    optimizer.zero_grad()
    loss.backward()
    for group in optimizer.param_groups:
        group["lr"] = BASE_LR * (1 + math.cos(math.pi * step / TOTAL_STEPS)) / 2
    optimizer.step()
    tau = 1 - (1 - BASE_TAU) * (math.cos(math.pi * step / TOTAL_STEPS) + 1) / 2
    with torch.no_grad():
        for online_net, ema_net in ((model.backbone, model.momentum_backbone), (model.projector, model.momentum_projector)):
            for op, mp in zip(online_net.parameters(), ema_net.parameters()):
                mp.data = tau * mp.data + (1 - tau) * op.data
    queue.enqueue(target, visible, indexes, mask=visible >= 0)
    return {"loss": loss.detach(), "relic_contrastive": contrastive.detach(), "relic_invariance": invariance.detach(),
            "sempos_contrastive": sem_contrastive.detach(), "sempos_invariance": sem_invariance.detach(), **metrics}
