"""SemPPL's training step in plain PyTorch: the global batch's embeddings in; the weighted loss,
its terms and the telemetry out. ReLICv2 is the same step without semantic positives.

    negatives (seeded per step) -> base terms (ReLIC, or SimCLR / BYOL for the base-loss ablation)
    -> k-NN pseudo-labels against the queue -> semantic positives drawn from the queue
    -> semantic-positive terms -> loss = sum of weight x term (``loss_weights``, the one place)

Total loss, base ``relic``: c (L_augm + alpha L_sempos) + lambda (I_augm + I_sempos);
``simclr`` / ``byol``: L_base + alpha L_sempos (the semantic term in the base loss's family).
The solo-learn methods (``methods/relic.py``, ``methods/semppl.py``) call ``semppl_step``; so does
the XLA check (``scripts/xla/core_step.py``). Inputs are gathered over ranks, so every rank
computes the same terms. The caller writes the queue after the step (``LabelledQueue.enqueue``).
"""
from dataclasses import dataclass, fields
from typing import Callable, Dict, Mapping, Optional, Tuple

import torch

from solo_semppl.losses import (
    byol_loss, nt_xent_loss, relic_loss, sample_negatives, semantic_positive_loss, semantic_regression_loss,
)
from solo_semppl.semantic import (
    LabelledQueue, PseudoLabels, knn_pseudo_labels, pseudo_label_metrics, queue_class_coverage,
    sample_semantic_positives,
)


@dataclass(frozen=True)
class StepConfig:
    """The step's settings, named as the ``method_kwargs`` keys they come from (see the methods'
    docstrings); ``num_semantic_positives = 0`` is ReLICv2."""
    num_classes: int
    temperature: float = 0.2
    num_negatives: int = 10
    contrastive_weight: float = 0.3
    invariance_weight: float = 5.0
    kl_form: str = "k1"
    base_loss: str = "relic"
    num_semantic_positives: int = 0
    sempos_weight: float = 0.2
    knn_k: int = 1
    knn_votes: str = "all"
    knn_threshold: float = 0.0
    knn_backend: str = "torch"
    pseudo_label_features: str = "prediction"
    pseudo_labels: bool = True
    oracle_labels: bool = False
    pseudo_label_noise: float = 0.0
    exclude_self: bool = False

    @classmethod
    def from_kwargs(cls, method_kwargs: Mapping, **settings) -> "StepConfig":
        """The fields found in ``method_kwargs``, then ``settings`` (e.g. num_classes, knn_backend)."""
        known = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in method_kwargs.items() if k in known}, **settings})


@dataclass
class StepInputs:
    """The global batch: online predictions [V_on, B, D] (large views first), target projections
    [V_t, B, D], image ids, visible labels (-1 = unlabelled) and hidden true labels [B] (telemetry
    and ``oracle_labels`` only). ``projections`` [V_on, B, D], the online projections, only for
    ``base_loss: simclr``."""
    online: torch.Tensor
    target: torch.Tensor
    ids: torch.Tensor
    visible: torch.Tensor
    hidden: torch.Tensor
    projections: Optional[torch.Tensor] = None


@dataclass
class StepResult:
    loss: torch.Tensor
    terms: Dict[str, torch.Tensor]  # unweighted
    telemetry: Dict[str, torch.Tensor]


Generators = Callable[[int], torch.Generator]  # stream -> the step's generator (0 negatives, 1 positives, 2 noise)


def loss_weights(config: StepConfig) -> Dict[str, float]:
    """Weight of every term the step can produce."""
    c, lam, alpha = config.contrastive_weight, config.invariance_weight, config.sempos_weight
    if config.base_loss == "relic":
        return {"relic_contrastive": c, "relic_invariance": lam, "sempos_contrastive": c * alpha, "sempos_invariance": lam}
    if config.base_loss == "simclr":
        return {"simclr": 1.0, "sempos_contrastive": alpha}
    return {"byol": 1.0, "sempos_regression": alpha}


def base_terms(inputs: StepInputs, negatives: torch.Tensor, config: StepConfig) -> Dict[str, torch.Tensor]:
    if config.base_loss == "simclr":
        return {"simclr": nt_xent_loss(inputs.projections, inputs.ids, config.temperature)}
    if config.base_loss == "byol":
        return {"byol": byol_loss(inputs.online, inputs.target)}
    contrastive, invariance = relic_loss(inputs.online, inputs.target, negatives, config.temperature, config.kl_form)
    return {"relic_contrastive": contrastive, "relic_invariance": invariance}


def anchor_labels(inputs: StepInputs, queue: LabelledQueue, config: StepConfig,
                  generators: Generators) -> Tuple[torch.Tensor, PseudoLabels]:
    """Label of each anchor: its visible label if labelled, else the k-NN pseudo-label
    (optionally noisy, or none with ``pseudo_labels`` off; the hidden label with ``oracle_labels``)."""
    views = queue.embeddings.size(0)
    queries = inputs.online[:views] if config.pseudo_label_features == "prediction" else inputs.target
    pseudo = knn_pseudo_labels(
        queries.detach(), queue.embeddings, queue.labels, config.num_classes,
        k=config.knn_k, votes=config.knn_votes, threshold=config.knn_threshold, backend=config.knn_backend,
    )
    if config.oracle_labels:
        return inputs.hidden, pseudo
    guessed = pseudo.labels
    if config.pseudo_label_noise > 0:
        generator = generators(2)
        flip = torch.rand(guessed.shape, generator=generator).to(guessed.device) < config.pseudo_label_noise
        random = torch.randint(0, config.num_classes, guessed.shape, generator=generator).to(guessed.device)
        guessed = torch.where(flip & pseudo.valid, random, guessed)
    if not config.pseudo_labels:
        guessed = torch.full_like(guessed, -1)
    return torch.where(inputs.visible >= 0, inputs.visible, guessed), pseudo


def semantic_terms(inputs: StepInputs, positives: torch.Tensor, valid: torch.Tensor, negatives: torch.Tensor,
                   config: StepConfig) -> Dict[str, torch.Tensor]:
    if config.base_loss == "byol":
        return {"sempos_regression": semantic_regression_loss(inputs.online, positives, valid)}
    contrastive, invariance = semantic_positive_loss(
        inputs.online, positives, valid, inputs.target, negatives, config.temperature, config.kl_form
    )
    if config.base_loss == "simclr":
        return {"sempos_contrastive": contrastive}
    return {"sempos_contrastive": contrastive, "sempos_invariance": invariance}


@torch.no_grad()
def semantic_telemetry(inputs: StepInputs, queue: LabelledQueue, pseudo: PseudoLabels, drawn: torch.Tensor,
                       valid: torch.Tensor, num_classes: int) -> Dict[str, torch.Tensor]:
    """Pseudo-label quality on the unlabelled images (hidden labels, analysis only) and queue use."""
    unlabelled = inputs.visible < 0
    telemetry = {f"pl_{k}": v for k, v in pseudo_label_metrics(pseudo.labels, inputs.hidden, num_classes, mask=unlabelled).items()}
    telemetry.update({
        "pl_agreement": (pseudo.agreement * unlabelled).sum() / unlabelled.sum().clamp(min=1),
        "sempos_valid_fraction": valid.float().mean(),
        "sempos_correct": ((drawn == inputs.hidden) & valid).sum() / valid.sum().clamp(min=1),
        "queue_class_coverage": queue_class_coverage(queue.labels, num_classes),
        "queue_fill": queue.valid.float().mean(),
    })
    return telemetry


def semppl_step(inputs: StepInputs, config: StepConfig, generators: Generators,
                queue: Optional[LabelledQueue] = None, semantic_on: bool = True) -> StepResult:
    """One step's loss. ``queue`` None or ``num_semantic_positives`` 0: ReLICv2 (or the plain base
    loss). ``semantic_on`` False (before ``sempos_start_epoch``) keeps the semantic terms at 0 but
    computes the labeller and its telemetry."""
    batch = inputs.target.size(1)
    negatives = sample_negatives(batch, config.num_negatives, generators(0)).to(inputs.target.device)
    terms = base_terms(inputs, negatives, config)
    telemetry: Dict[str, torch.Tensor] = {}
    if queue is not None and config.num_semantic_positives > 0:
        labels, pseudo = anchor_labels(inputs, queue, config, generators)
        index, valid = sample_semantic_positives(
            labels, queue.labels, queue.ids, config.num_semantic_positives,
            anchor_ids=inputs.ids, exclude_self=config.exclude_self, generator=generators(1),
        )
        views = torch.arange(queue.embeddings.size(0), device=index.device)[:, None, None]
        positives = queue.embeddings[views, index].float()
        valid = valid & semantic_on
        terms.update(semantic_terms(inputs, positives, valid, negatives, config))
        telemetry = semantic_telemetry(inputs, queue, pseudo, queue.labels[views, index], valid, config.num_classes)
    weights = loss_weights(config)
    loss = sum(weights[name] * value for name, value in terms.items())
    return StepResult(loss, terms, telemetry)
