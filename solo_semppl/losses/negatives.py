"""Negatives for ReLICv2-style losses: ``num_negatives`` other images of the batch per anchor."""
from typing import Optional

import torch


def sample_negatives(
    batch_size: int, num_negatives: int, generator: Optional[torch.Generator] = None, device=None
) -> torch.Tensor:
    """Draws, for every anchor i, ``num_negatives`` distinct batch indices other than i.

    Uniform without replacement (top-k of uniform noise over the B - 1 other positions), on the
    generator's device (CPU by default), moved to ``device``. One draw per step serves every
    loss term (SPEC 4); under DDP the batch is the global batch and every rank uses the same
    seed, so every rank draws the same negatives.

    Returns:
        LongTensor [batch_size, num_negatives].
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size = {batch_size!r}: expected an int >= 1")
    if not isinstance(num_negatives, int) or not 0 <= num_negatives <= batch_size - 1:
        raise ValueError(
            f"num_negatives = {num_negatives!r}: expected an int in [0, batch_size - 1 = {batch_size - 1}]"
        )
    noise = torch.rand(batch_size, batch_size - 1, generator=generator)
    others = noise.topk(num_negatives, dim=1).indices
    anchors = torch.arange(batch_size)[:, None]
    negatives = others + (others >= anchors).long()  # skip the anchor's own position
    return negatives.to(device) if device is not None else negatives
