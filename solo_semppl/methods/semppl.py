"""SemPPL as a solo-learn method (``method: semppl``): ReLICv2 plus semantic positives."""
from typing import Any, Dict, Sequence

import omegaconf
import torch

from solo_semppl.methods.relic import ReLIC
from solo_semppl.methods.semi import global_batch_size
from solo_semppl.options import Option, choice, flag, in_unit_interval, non_negative, positive_int
from solo_semppl.semantic import LabelledQueue
from solo_semppl.step import semppl_step

STORAGE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class SemPPL(ReLIC):
    """SemPPL (Bošnjak et al., ICLR 2023): a queue of target projections of labelled images,
    k-NN pseudo-labels for unlabelled ones, and semantic positives drawn from the queue; the loss
    is ``solo_semppl.step.semppl_step``.

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

    NEEDS_SPLIT = True
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
        kw = cfg.method_kwargs
        self.sempos_start_epoch = kw.sempos_start_epoch
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

    def step_settings(self) -> Dict[str, Any]:
        backend = self.cfg.method_kwargs.knn_backend
        if backend == "auto":
            backend = "faiss" if self.device.type == "cpu" else "torch"
        return {**super().step_settings(), "knn_backend": backend}

    def training_step(self, batch: Sequence[Any], batch_idx: int) -> torch.Tensor:
        # parent step: every crop online, the large crops through the EMA target, online probe
        out, visible = self.labelled_base_step(batch, batch_idx)
        inputs = self.global_inputs(out, batch, visible)
        # ReLICv2's terms, k-NN pseudo-labels against the queue, semantic positives drawn from it
        # and their terms, weighted in one place (solo_semppl.step.loss_weights)
        semantic_on = self.current_epoch >= self.sempos_start_epoch
        result = semppl_step(inputs, self.step_config(), self.step_generator, self.queue, semantic_on)
        # NaN/inf guard, log the terms and the pseudo-label / queue telemetry
        loss = self.finish_step(result.loss, out["loss"], {**result.terms, **result.telemetry})
        # the labelled target projections join the queue, after the loss (inputs are gathered:
        # every rank writes the same queue); a skipped step writes nothing
        if loss is not None:
            self.queue.enqueue(inputs.target, inputs.visible, inputs.ids, mask=inputs.visible >= 0)
        return loss
