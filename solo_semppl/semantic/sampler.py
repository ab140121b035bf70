"""Semantic positives: queue entries that share the anchor's (pseudo-)label (SPEC 5.3)."""
from typing import Optional, Tuple

import torch


def bisect(sorted_rows: torch.Tensor, values: torch.Tensor, right: bool = False) -> torch.Tensor:
    """``torch.searchsorted(sorted_rows, values, right=right)`` for [V, C] rows and [V, B] values,
    as a fixed number of bisection steps (gather + compare): torch-xla 2.9 has no lowering for
    searchsorted (it falls back to the host every step), this is static-shape XLA ops only."""
    size = sorted_rows.size(1)
    lo, hi = torch.zeros_like(values), torch.full_like(values, size)
    for _ in range(size.bit_length()):  # >= log2(size + 1): enough to shrink [0, size] to one point
        mid = (lo + hi) // 2
        probe = sorted_rows.gather(1, mid.clamp(max=size - 1))
        go_right = ((probe <= values) if right else (probe < values)) & (mid < hi)
        lo, hi = torch.where(go_right, mid + 1, lo), torch.where(go_right, hi, mid)
    return lo


def sample_semantic_positives(
    anchor_labels: torch.Tensor,
    bank_labels: torch.Tensor,
    bank_ids: torch.Tensor,
    num_positives: int,
    anchor_ids: Optional[torch.Tensor] = None,
    exclude_self: bool = False,
    generator: Optional[torch.Generator] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """For every view v, anchor i and draw p: a queue entry of view v with the anchor's label,
    uniform with replacement (and, with ``exclude_self``, never an entry of the anchor's own id).

    Each view's queue is sorted by the key (label, id); a class is a contiguous segment and the
    anchor's own id a block inside it, both found by bisection, so the draw is
    r ~ U{0 .. segment - own block - 1}, mapped past the block. No [B, C] matrix, no host sync.

    Args:
        anchor_labels: [B] long, -1 = no label (no positive). bank_labels, bank_ids: [V, C] long
        (label -1 = empty slot). num_positives: P >= 0. anchor_ids: [B] long (for exclude_self).
        generator: CPU generator for the uniform draws.
    Returns:
        index [V, P, B] into dim 1 of the queue, valid [V, P, B] bool (index 0 where invalid).
    """
    if not isinstance(num_positives, int) or num_positives < 0:
        raise ValueError(f"num_positives = {num_positives!r}: expected an int >= 0")
    if bank_labels.dim() != 2 or bank_ids.shape != bank_labels.shape or bank_labels.dtype != torch.long:
        raise ValueError(f"bank_labels / bank_ids {tuple(bank_labels.shape)} / {tuple(bank_ids.shape)}: expected long [V, C] each")
    if anchor_labels.dim() != 1 or anchor_labels.dtype != torch.long:
        raise ValueError(f"anchor_labels {tuple(anchor_labels.shape)} {anchor_labels.dtype}: expected long [B]")
    if exclude_self and (anchor_ids is None or anchor_ids.shape != anchor_labels.shape):
        raise ValueError("anchor_ids: expected a long [B] tensor when exclude_self is True")
    views, capacity = bank_labels.shape
    batch = anchor_labels.size(0)
    own_ids = anchor_ids if anchor_ids is not None else torch.full_like(anchor_labels, -1)
    span = torch.maximum(bank_ids.max(), own_ids.max()) + 2
    key = (bank_labels + 1) * span + (bank_ids + 1)  # empty slots (label -1) sort before every class
    sorted_key, order = key.sort(dim=1)
    start = ((anchor_labels + 1) * span)[None].expand(views, -1).contiguous()
    seg_lo = bisect(sorted_key, start)
    seg_hi = bisect(sorted_key, start + span)
    if exclude_self:
        own_key = start + own_ids + 1
        own_lo = bisect(sorted_key, own_key)
        own = bisect(sorted_key, own_key, right=True) - own_lo
    else:
        own_lo, own = seg_hi, torch.zeros_like(seg_hi)
    eligible = seg_hi - seg_lo - own  # [V, B]
    uniform = torch.rand(views, num_positives, batch, generator=generator).to(eligible.device)
    draw = (uniform * eligible[:, None]).long().clamp(max=(eligible[:, None] - 1).clamp(min=0))
    position = seg_lo[:, None] + draw + torch.where(seg_lo[:, None] + draw >= own_lo[:, None], own[:, None], 0)
    index = order.gather(1, position.clamp(max=capacity - 1).reshape(views, -1)).reshape(views, num_positives, batch)
    valid = ((eligible > 0) & (anchor_labels >= 0)[None])[:, None].expand(-1, num_positives, -1)
    return torch.where(valid, index, torch.zeros_like(index)), valid
