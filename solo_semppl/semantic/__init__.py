"""Framework-free SemPPL machinery: labelled queue, k-NN pseudo-labeller, positive sampler."""
from solo_semppl.semantic.knn import PseudoLabels, knn_pseudo_labels
from solo_semppl.semantic.queue import LabelledQueue
from solo_semppl.semantic.sampler import sample_semantic_positives
from solo_semppl.semantic.telemetry import pseudo_label_metrics, queue_class_coverage

__all__ = [
    "LabelledQueue", "PseudoLabels", "knn_pseudo_labels", "pseudo_label_metrics",
    "queue_class_coverage", "sample_semantic_positives",
]
