"""PAWS (Assran et al., 2021): soft nearest-neighbour predictions of each view against a labelled
support set, trained towards the sharpened prediction of the image's other views, with
mean-entropy maximisation. The semantics follow the official code (facebookresearch/suncet,
``src/losses.py``); written here for [V, B, D] view stacks.

``snn_probabilities(queries [Q, D], supports [S, D], labels [S, C], tau)``:
    softmax_s(cos(q, s) / tau) @ labels, a distribution over classes when ``labels`` rows are.
``sharpen(p, T)``: p^(1/T) renormalised.
``smoothed_one_hot(labels [S], classes, smoothing)``: (1 - smoothing) one-hot + smoothing /
    classes; a row with label -1 (an image whose label is hidden) is all zeros, so it adds to
    no class.
``paws_loss(anchor_views [V, B, D], anchor_supports [S, D], target_views [L, B, D],
target_supports [S, D], support_labels [S, C], tau, T)`` -> (cross-entropy, me-max):
    the first L of the V anchor views are the large crops, the target views' crops. The target
    of large view v is the mean over the other large views u of sharpen(snn(target_u)) (the
    official two-view swap, for any L >= 2); the target of a small crop the mean over all L
    (the official multicrop target); target entries below 1e-4 are set to 0; no gradient flows
    through targets. cross-entropy = mean over the V x B anchors of -sum_c t_c log p_c with p =
    snn(anchor). me-max = log C - H(mean over anchors of sharpen(p, T)) >= 0 (the official
    ``-H - log C`` shifted by the constant 2 log C: the same gradient, 0 at a uniform mean).
"""
import math
from typing import Tuple

import torch
import torch.nn.functional as F


def snn_probabilities(queries: torch.Tensor, supports: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    weights = F.softmax(F.normalize(queries, dim=-1) @ F.normalize(supports, dim=-1).T / temperature, dim=-1)
    return weights @ labels


def sharpen(p: torch.Tensor, temperature: float) -> torch.Tensor:
    p = p ** (1.0 / temperature)
    return p / p.sum(dim=-1, keepdim=True)


def smoothed_one_hot(labels: torch.Tensor, classes: int, smoothing: float = 0.1) -> torch.Tensor:
    one_hot = F.one_hot(labels.clamp(min=0), classes).float()
    return (one_hot * (1 - smoothing) + smoothing / classes) * (labels >= 0)[:, None]


def paws_loss(anchor_views: torch.Tensor, anchor_supports: torch.Tensor, target_views: torch.Tensor,
              target_supports: torch.Tensor, support_labels: torch.Tensor, temperature: float = 0.1,
              sharpen_temperature: float = 0.25) -> Tuple[torch.Tensor, torch.Tensor]:
    views, batch, dim = anchor_views.shape
    large = target_views.size(0)
    if target_views.shape[1:] != (batch, dim) or not 2 <= large <= views:
        raise ValueError(f"anchor_views {tuple(anchor_views.shape)} / target_views {tuple(target_views.shape)}: "
                         "expected [V, B, D] / [L, B, D] with 2 <= L <= V")
    if support_labels.shape[0] != anchor_supports.shape[0] or target_supports.shape != anchor_supports.shape:
        raise ValueError(f"supports {tuple(anchor_supports.shape)} / {tuple(target_supports.shape)} / labels "
                         f"{tuple(support_labels.shape)}: expected [S, D] / [S, D] / [S, C]")
    probs = snn_probabilities(anchor_views.reshape(views * batch, dim), anchor_supports, support_labels, temperature)
    with torch.no_grad():
        sharp = sharpen(snn_probabilities(target_views.reshape(large * batch, dim), target_supports.detach(),
                                          support_labels, temperature), sharpen_temperature).reshape(large, batch, -1)
        total = sharp.sum(0)
        targets = torch.cat([(total - sharp) / (large - 1), total.expand(views - large, -1, -1) / large])
        targets = targets.reshape(views * batch, -1)
        targets = targets * (targets >= 1e-4)
    cross_entropy = -torch.special.xlogy(targets, probs).sum(-1).mean()
    mean = sharpen(probs, sharpen_temperature).mean(0)
    me_max = math.log(mean.numel()) + torch.special.xlogy(mean, mean).sum()
    return cross_entropy, me_max
