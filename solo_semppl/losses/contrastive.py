"""SimCLR's NT-Xent and BYOL's regression on [V, B, D] view stacks: the base losses of SemPPL's
base-loss ablation, and (NT-Xent over labels) SuNCEt's supervised term.
"""
from typing import Optional

import torch
import torch.nn.functional as F


def nt_xent_loss(z: torch.Tensor, keys: torch.Tensor, temperature: float = 0.1,
                 mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """-mean over anchors of log(sum_pos exp(s/tau) / sum_{all but self} exp(s/tau)), s cosine.

    Every (view, sample) is an anchor; its positives are the other (view, sample) pairs with the
    same key, the candidates all other pairs. Keys = image ids gives SimCLR's loss (solo-learn's
    ``simclr_loss_func(cat(z), ids.repeat(V))`` on one rank); keys = class labels over the
    labelled samples gives SuNCEt's supervised term.

    Args:
        z: [V, B, D] embeddings. keys: [B] long. temperature: tau > 0.
        mask: [B] bool, only these samples are anchors and candidates (default all). Anchors
            without a positive are left out of the mean; with none left the loss is exactly 0
            (graph intact, no NaN).
    """
    if z.dim() != 3 or keys.shape != z.shape[1:2] or keys.dtype != torch.long:
        raise ValueError(f"z {tuple(z.shape)} / keys {tuple(keys.shape)} {keys.dtype}: expected [V, B, D] / long [B]")
    if mask is not None and (mask.dtype != torch.bool or mask.shape != keys.shape):
        raise ValueError(f"mask {tuple(mask.shape)} {mask.dtype}: expected bool {tuple(keys.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature = {temperature}: expected > 0")
    views, batch = z.shape[:2]
    flat = F.normalize(z, dim=-1).reshape(views * batch, -1)
    flat_keys = keys.repeat(views)
    flat_mask = torch.ones_like(flat_keys, dtype=torch.bool) if mask is None else mask.repeat(views)
    logits = flat @ flat.T / temperature
    others = flat_mask[None] & flat_mask[:, None] & ~torch.eye(len(flat_keys), dtype=torch.bool, device=z.device)
    positive = others & (flat_keys[None] == flat_keys[:, None])
    log_all = torch.logsumexp(logits.masked_fill(~others, float("-inf")), dim=1)
    log_pos = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=1)
    anchors = positive.any(1)
    per_anchor = torch.where(anchors, log_all - log_pos, torch.zeros_like(log_all))
    return per_anchor.sum() / anchors.sum().clamp(min=1)


def byol_loss(online: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Sum over online views a and target views b != a of mean_i 2 - 2 cos(online[a, i], target[b, i]),
    as solo-learn's BYOL sums ``byol_loss_func`` over its view pairs. online [V_on, B, D];
    target [V_t, B, D] (no gradient), the first V_t online views are the same crops."""
    if online.dim() != 3 or target.dim() != 3 or target.shape[1:] != online.shape[1:]:
        raise ValueError(f"online {tuple(online.shape)} / target {tuple(target.shape)}: expected [V, B, D] each")
    cos = torch.einsum("aid,bid->abi", F.normalize(online, dim=-1), F.normalize(target.detach(), dim=-1))
    other = ~torch.eye(online.size(0), target.size(0), dtype=torch.bool, device=online.device)
    return ((2 - 2 * cos.mean(-1)) * other).sum()
