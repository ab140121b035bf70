"""A SemPPL training step for the XLA check (``check_xla.py``) and the CPU host-sync test
(``tests/core/test_xla_ready.py``) around solo-semppl's framework-free step, the same
``solo_semppl.step.semppl_step`` the solo-learn method calls: no solo-learn, no Lightning, so it
runs in a torch-xla venv that has neither.

Around the step it does what the Lightning/solo-learn wrapper does with the default switches
(k-NN torch backend) and the sync-free LARS: visible targets (-1 for unlabelled) -> online
backbone/projector/predictor on every crop, EMA backbone/projector on the large crops ->
``semppl_step`` -> backward -> LARS step (lr from a cosine schedule, a new Python float every
step) -> EMA update (tau changes every step) -> enqueue the labelled target projections.
Not covered: solo-learn's online linear probe, its BaseMethod/BaseMomentumMethod bookkeeping,
``self.log``, DDP/XLA gathers (one device here), the scheduler object and the dataloader.
"""
import copy
import math
from typing import Dict

import torch
import torch.nn as nn

from solo_semppl.backbones import TinyCNN
from solo_semppl.lars import LARS
from solo_semppl.seeding import mix_seed
from solo_semppl.semantic import LabelledQueue
from solo_semppl.step import StepConfig, StepInputs, semppl_step

LARGE, SMALL, BATCH, NUM_CLASSES, DATASET = 4, 2, 16, 4, 64
WIDTH, HIDDEN, DIM, NEGATIVES, POSITIVES, CAPACITY = 8, 64, 16, 5, 3, 48
TEMPERATURE, CONTRASTIVE_W, INVARIANCE_W, SEMPOS_W = 0.2, 0.3, 5.0, 0.2
BASE_LR, BASE_TAU, TOTAL_STEPS, SEED = 0.3, 0.99, 20, 5
CONFIG = StepConfig(num_classes=NUM_CLASSES, temperature=TEMPERATURE, num_negatives=NEGATIVES,
                    contrastive_weight=CONTRASTIVE_W, invariance_weight=INVARIANCE_W,
                    num_semantic_positives=POSITIVES, sempos_weight=SEMPOS_W)


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


def training_step(model: CoreSemPPL, optimizer: LARS, batch, step: int) -> Dict[str, torch.Tensor]:
    """One SemPPL step on ``model``'s device; returns the loss, its terms and the telemetry (tensors)."""
    indexes, crops, targets = batch
    visible = torch.where(model.labelled_mask[indexes], targets, torch.full_like(targets, -1))
    online = torch.stack([model.predictor(model.projector(model.backbone(x))) for x in crops])
    with torch.no_grad():
        target = torch.stack([model.momentum_projector(model.momentum_backbone(x)) for x in crops[:LARGE]])
    inputs = StepInputs(online=online, target=target, ids=indexes, visible=visible, hidden=targets)
    result = semppl_step(inputs, CONFIG, lambda stream: torch.Generator().manual_seed(mix_seed(SEED, step, stream)),
                         model.queue)
    optimizer.zero_grad()
    result.loss.backward()
    for group in optimizer.param_groups:
        group["lr"] = BASE_LR * (1 + math.cos(math.pi * step / TOTAL_STEPS)) / 2
    optimizer.step()
    tau = 1 - (1 - BASE_TAU) * (math.cos(math.pi * step / TOTAL_STEPS) + 1) / 2
    with torch.no_grad():
        for online_net, ema_net in ((model.backbone, model.momentum_backbone), (model.projector, model.momentum_projector)):
            for op, mp in zip(online_net.parameters(), ema_net.parameters()):
                mp.data = tau * mp.data + (1 - tau) * op.data
    model.queue.enqueue(target, visible, indexes, mask=visible >= 0)
    return {"loss": result.loss.detach(), **{k: v.detach() for k, v in result.terms.items()}, **result.telemetry}
