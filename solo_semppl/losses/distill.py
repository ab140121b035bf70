"""SimCLRv2's distillation loss (Chen et al., 2020, eq. 3 plus the labelled term of Sec. 2.3).

``distillation_loss(student_logits[B, C], teacher_logits[B, C], labels[B], temperature,
label_weight)``: the cross-entropy from the teacher's softened predictions
``softmax(teacher / T)`` to the student's ``log_softmax(student / T)``, averaged over the batch,
plus ``label_weight`` times the cross-entropy of the student's (unsoftened) logits with the
true label, averaged over the rows whose label is visible (``labels >= 0``; -1 marks an
unlabelled image, whose label the student never sees). No gradient reaches the teacher.
"""
import torch
import torch.nn.functional as F


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float = 1.0, label_weight: float = 1.0) -> torch.Tensor:
    targets = F.softmax(teacher_logits.detach().float() / temperature, dim=1)
    soft = -(targets * F.log_softmax(student_logits.float() / temperature, dim=1)).sum(1).mean()
    visible = labels >= 0
    if label_weight == 0 or not bool(visible.any()):
        return soft
    return soft + label_weight * F.cross_entropy(student_logits[visible].float(), labels[visible])
