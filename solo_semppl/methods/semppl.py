"""SemPPL as a solo-learn method (``method: semppl``): ReLICv2 plus semantic positives."""
from typing import Any, Dict, Tuple

import omegaconf
import torch
from solo_semppl.losses import semantic_positive_loss, semantic_regression_loss
from solo_semppl.options import Option, choice, flag, in_unit_interval, non_negative, positive_int
from solo_semppl.methods.relic import ReLIC, global_batch_size
from solo_semppl.semantic import (
    LabelledQueue,
    knn_pseudo_labels,
    pseudo_label_metrics,
    queue_class_coverage,
    sample_semantic_positives,
)

STORAGE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class SemPPL(ReLIC):
    """SemPPL (Bošnjak et al., ICLR 2023): a queue of target projections of labelled images,
    k-NN pseudo-labels for unlabelled ones, and semantic positives drawn from the queue.

    Total loss: c * (L_augm + alpha * L_sempos) + lambda * (I_augm + I_sempos); with
    base_loss simclr/byol: L_base + alpha * L_sempos (semantic term in the same family).

    method_kwargs: every key of ``ReLIC`` plus (each validated, each an ablation switch):
        num_semantic_positives (int, 3): per anchor and target view; 0 is ReLICv2 exactly.
        sempos_weight (float, 0.2): alpha.
        sempos_start_epoch (int, 0): epochs before the semantic term is switched on.
        knn_k (int, 1): neighbours per (view, queue) pair; k > 1 pools all votes.
        knn_votes (str, "all"): "all" (every large view against every queue, 16 votes at 4x4)
            or "same_view" (view v against queue v).
        knn_threshold (float, 0.0): pseudo-labels whose vote agreement is lower are dropped.
        knn_backend (str, "auto"): "torch", "faiss", or "auto" (faiss on CPU, torch elsewhere).
        pseudo_label_features (str, "prediction"): queries are the online predictions
            ("prediction") or the target projections ("target") of the large views. Use "target"
            with base_loss simclr, whose loss does not train the predictor (README "Ablations").
        pseudo_labels (bool, true): false = only labelled anchors get semantic positives.
        oracle_labels (bool, false): anchors use their hidden true label (analysis upper bound).
        pseudo_label_noise (float, 0.0): fraction of pseudo-labels replaced by random classes.
        exclude_self (bool, false): never draw an anchor's own (stale) queue entry.
        queue_batches (float, 20): queue capacity as a multiple of the global batch (C = 20 B).
        queue_size (int, null): absolute capacity; overrides queue_batches.
        queue_cap_to_labelled (bool, true): cap the capacity at the labelled-set size (but never
            below one global batch, which a step may enqueue).
        queue_dtype (str, "float32"): storage dtype, "float32" or "bfloat16".
    Logged (train_*): relic_/sempos_ contrastive and invariance terms, pl_accuracy,
    pl_macro_precision, pl_macro_recall, pl_coverage, pl_agreement, sempos_valid_fraction,
    sempos_correct, queue_class_coverage, queue_fill.
    """

    OPTIONS = {
        **ReLIC.OPTIONS,
        "num_semantic_positives": positive_int(3, allow_zero=True),
        "sempos_weight": non_negative(0.2),
        "sempos_start_epoch": positive_int(0, allow_zero=True),
        "knn_k": positive_int(1),
        "knn_votes": choice("all", "all", "same_view"),
        "knn_threshold": in_unit_interval(0.0),
        "knn_backend": choice("auto", "auto", "torch", "faiss"),
        "pseudo_label_features": choice("prediction", "prediction", "target"),
        "pseudo_labels": flag(True),
        "oracle_labels": flag(False),
        "pseudo_label_noise": in_unit_interval(0.0),
        "exclude_self": flag(False),
        "queue_batches": Option(20.0, (float,), lambda v: v > 0, "a number > 0"),
        "queue_size": positive_int(None),
        "queue_cap_to_labelled": flag(True),
        "queue_dtype": choice("float32", *STORAGE_DTYPES),
    }

    def __init__(self, cfg: omegaconf.DictConfig):
        super().__init__(cfg)
        if self.labelled_mask is None:
            raise ValueError(
                "semppl needs a labelled split: set one of semi_supervised.fraction, "
                "semi_supervised.per_class or semi_supervised.file"
            )
        kw = cfg.method_kwargs
        self.queue = LabelledQueue(
            self.num_large_crops, self.queue_capacity(cfg), kw.proj_output_dim, STORAGE_DTYPES[kw.queue_dtype]
        )

    def queue_capacity(self, cfg: omegaconf.DictConfig) -> int:
        """Capacity from queue_size / queue_batches x global batch, capped at the labelled-set
        size when asked, but at least one global batch (a step enqueues up to one)."""
        kw = cfg.method_kwargs
        global_batch = global_batch_size(cfg)
        capacity = kw.queue_size or int(round(kw.queue_batches * global_batch))
        if kw.queue_cap_to_labelled:
            capacity = min(capacity, max(int(self.labelled_mask.sum()), global_batch))
        if capacity < global_batch:
            raise ValueError(
                f"queue capacity {capacity} is smaller than one global batch ({global_batch}), "
                "which a step may enqueue: raise method_kwargs.queue_size or queue_batches"
            )
        return capacity

    def knn_backend(self) -> str:
        backend = self.cfg.method_kwargs.knn_backend
        if backend == "auto":
            return "faiss" if self.device.type == "cpu" else "torch"
        return backend

    def anchor_labels(self, step: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, Any]:
        """Label of each anchor for semantic positives: ground truth for labelled images, the
        k-NN pseudo-label (optionally noisy) for the others; and the pseudo-labels themselves."""
        kw = self.cfg.method_kwargs
        queries = step["online"][: self.num_large_crops] if kw.pseudo_label_features == "prediction" else step["target"]
        pseudo = knn_pseudo_labels(
            queries.detach(), self.queue.embeddings, self.queue.labels, self.num_classes,
            k=kw.knn_k, votes=kw.knn_votes, threshold=kw.knn_threshold, backend=self.knn_backend(),
        )
        if kw.oracle_labels:
            return step["hidden"], pseudo
        guessed = pseudo.labels
        if kw.pseudo_label_noise > 0:
            generator = self.step_generator(2)
            flip = torch.rand(guessed.shape, generator=generator).to(guessed.device) < kw.pseudo_label_noise
            random = torch.randint(0, self.num_classes, guessed.shape, generator=generator).to(guessed.device)
            guessed = torch.where(flip & pseudo.valid, random, guessed)
        if not kw.pseudo_labels:
            guessed = torch.full_like(guessed, -1)
        labelled = step["visible"] >= 0
        return torch.where(labelled, step["visible"], guessed), pseudo

    def ssl_terms(self, out, step):
        terms = super().ssl_terms(out, step)
        kw = self.cfg.method_kwargs
        if kw.num_semantic_positives == 0:
            return terms
        labels, pseudo = self.anchor_labels(step)
        index, valid = sample_semantic_positives(
            labels, self.queue.labels, self.queue.ids, kw.num_semantic_positives,
            anchor_ids=step["ids"], exclude_self=kw.exclude_self, generator=self.step_generator(1),
        )
        views = torch.arange(self.num_large_crops, device=index.device)[:, None, None]
        positives = self.queue.embeddings[views, index].float()
        if self.current_epoch < kw.sempos_start_epoch:
            valid = torch.zeros_like(valid)
        self.log_telemetry(step, pseudo, index, valid, views)
        alpha = kw.sempos_weight
        if kw.base_loss == "byol":
            return {**terms, "sempos_regression": (semantic_regression_loss(step["online"], positives, valid), alpha)}
        contrastive, invariance = semantic_positive_loss(
            step["online"], positives, valid, step["target"], step["negatives"], kw.temperature, kw.kl_form
        )
        terms["sempos_contrastive"] = (contrastive, alpha * (kw.contrastive_weight if kw.base_loss == "relic" else 1.0))
        if kw.base_loss == "relic":
            terms["sempos_invariance"] = (invariance, kw.invariance_weight)
        return terms

    @torch.no_grad()
    def log_telemetry(self, step, pseudo, index, valid, views) -> None:
        """Pseudo-label quality on unlabelled images (hidden labels, analysis only) and queue use."""
        unlabelled = step["visible"] < 0
        metrics = pseudo_label_metrics(pseudo.labels, step["hidden"], self.num_classes, mask=unlabelled)
        log = {f"train_pl_{name}": value for name, value in metrics.items()}
        drawn = self.queue.labels[views, index]
        log.update({
            "train_pl_agreement": (pseudo.agreement * unlabelled).sum() / unlabelled.sum().clamp(min=1),
            "train_sempos_valid_fraction": valid.float().mean(),
            "train_sempos_correct": ((drawn == step["hidden"]) & valid).sum() / valid.sum().clamp(min=1),
            "train_queue_class_coverage": queue_class_coverage(self.queue.labels, self.num_classes),
            "train_queue_fill": self.queue.valid.float().mean(),
        })
        self.log_dict(log, on_epoch=True)  # from gathered inputs: equal on every rank, no sync_dist

    def after_loss(self, step: Dict[str, torch.Tensor]) -> None:
        # inputs are already gathered over ranks: every rank writes the same queue
        self.queue.enqueue(step["target"], step["visible"], step["ids"], mask=step["visible"] >= 0)
