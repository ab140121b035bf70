"""SimCLRv2's distillation (Chen et al., 2020, Sec. 2.3): a student trained on every training
image, its label hidden unless the split labels it, to match the softened predictions of a
fine-tuned teacher, plus cross-entropy on the labelled images (``losses.distillation_loss``).

The teacher is a model ``finetune`` wrote for this run (either ``from_layer``); its classes
must be the run's. The student is ``checkpoint.classifier_model(run, classes)``: a copy of the
run's *pretrained* backbone and a new linear head (decision: SimCLRv2 distils into a student
of the teacher's size or smaller; starting it from the pretrained weights, not from scratch,
keeps the budget of a small CPU run and makes "<method> + distil" measure that method's
representation). The teacher sees the student's crop (random resized crop + flip, in eval
mode); the student trains with the fine-tuning loop (``classifier.train``) at a fixed rate.

Options: ``epochs`` (30), ``lr`` (0.1), ``temperature`` (1.0: SimCLRv2's), ``label_weight``
(1.0; 0 is the pure distillation of SimCLRv2's eq. 3), ``batch_size`` (64). The record holds
the student's and the teacher's validation top-1, their agreement (% of validation
images with the same top class) and, for ``compare``, the student backbone's
kNN top-1 (``knn``, bank of labelled images); the student is kept (``save_to``) in the
fine-tuned model format (``finetune.save_model``), so ``ood`` reads it.
"""
import dataclasses
from typing import Dict

import numpy as np
import torch

from solo_semppl.eval import classifier, data
from solo_semppl.eval.checkpoint import classifier_model
from solo_semppl.eval.finetune import load_model, save_model
from solo_semppl.eval.knn import knn
from solo_semppl.losses import distillation_loss


def visible_labels(targets: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """The label of every training image the split labels, -1 for every other one."""
    visible = np.full(targets.shape, -1, dtype=np.int64)
    visible[labelled] = targets[labelled]
    return visible


class HiddenLabels(torch.utils.data.Dataset):
    """``ds`` with its labels replaced by ``visible`` (the dataset's own labels are dropped)."""

    def __init__(self, ds, visible: np.ndarray):
        self.ds, self.visible = ds, visible

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, index):
        return self.ds[index][0], int(self.visible[index])


@torch.no_grad()
def agreement(student, teacher, batches, device="cpu") -> float:
    """% of images on which the student's top class is the teacher's."""
    student.to(device).eval()
    same = total = 0
    for x, _ in batches:
        x = x.to(device)
        same += int((student(x).argmax(1) == teacher(x).argmax(1)).sum())
        total += x.size(0)
    return 100.0 * same / max(total, 1)


def distill(run, teacher_path, epochs: int = 30, lr: float = 0.1, temperature: float = 1.0, label_weight: float = 1.0,
            batch_size: int = 64, device: str = "cpu", seed: int = 0, num_workers: int = 0, save_to=None) -> Dict:
    if temperature <= 0:
        raise ValueError(f"temperature = {temperature}: expected > 0")
    if label_weight < 0:
        raise ValueError(f"label_weight = {label_weight}: expected >= 0")
    task = data.labelled_task(run, data.run_transforms(run.args, False), seed=seed)
    teacher, from_layer = load_model(run, teacher_path)
    teacher_classes = teacher[-1].out_features
    if teacher_classes != task.num_classes:
        raise ValueError(f"{teacher_path}: the teacher predicts {teacher_classes} classes, the run's training set has {task.num_classes}")
    teacher.to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)

    def objective(student, x, y):
        with torch.no_grad():
            teacher_logits = teacher(x)
        return distillation_loss(student(x), teacher_logits, y, temperature, label_weight)

    train_ds = HiddenLabels(data.dataset(run.args, True, data.run_transforms(run.args, True)),
                            visible_labels(task.targets, task.labelled))
    torch.manual_seed(seed)
    student = classifier_model(run, task.num_classes)
    classifier.train(student, data.loader(train_ds, None, batch_size, True, num_workers, seed), epochs, lr, device,
                     desc="distill", objective=objective)
    if save_to is not None:
        save_model(student, "backbone", save_to)
    val = data.loader(task.val, None, 256, False, num_workers)
    student_knn = knn(dataclasses.replace(run, backbone=student[0]), device=device, seed=seed, num_workers=num_workers)
    return {"teacher": str(teacher_path), "teacher_from_layer": from_layer, "epochs": epochs, "lr": lr,
            "temperature": temperature, "label_weight": label_weight, "num_images": len(train_ds),
            "num_labelled": int(len(task.labelled)), "teacher_top1": classifier.accuracy(teacher, val, device)["top1"],
            "agreement": agreement(student, teacher, val, device), "knn_top1": student_knn["top1"], **classifier.accuracy(student, val, device)}
