"""The labelled-embedding queue: one FIFO ring buffer per large view (SPEC 5.1)."""
from typing import Callable, Optional

import torch
import torch.nn.functional as F


class LabelledQueue(torch.nn.Module):
    """Target projections of labelled images with their labels and dataset ids.

    Buffers (persistent, fixed size from construction, so checkpoints and DDP spawn reloads fit):
        embeddings [V, C, D] storage_dtype, L2-normalised on write; labels [V, C] long, -1 = empty
        (an empty slot is never a neighbour nor a positive); ids [V, C] long; ptr [] long.

    Args:
        num_views: V, one queue per large view (one k-NN instance per augmentation, as the paper).
        capacity: C slots per view. dim: D. storage_dtype: torch.float32 or torch.bfloat16.

    Example:
        >>> queue = LabelledQueue(num_views=4, capacity=1280, dim=256)
        >>> queue.enqueue(target_proj, labels, ids, mask=labels >= 0)  # target_proj [4, B, 256]
    """

    def __init__(self, num_views: int, capacity: int, dim: int, storage_dtype: torch.dtype = torch.float32):
        super().__init__()
        for name, value in (("num_views", num_views), ("capacity", capacity), ("dim", dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} = {value!r}: expected an int >= 1")
        if storage_dtype not in (torch.float32, torch.bfloat16, torch.float16):
            raise ValueError(f"storage_dtype = {storage_dtype}: expected torch.float32, bfloat16 or float16")
        self.register_buffer("embeddings", torch.zeros(num_views, capacity, dim, dtype=storage_dtype))
        self.register_buffer("labels", torch.full((num_views, capacity), -1, dtype=torch.long))
        self.register_buffer("ids", torch.full((num_views, capacity), -1, dtype=torch.long))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @property
    def valid(self) -> torch.Tensor:
        """[V, C] bool: slots that hold an entry."""
        return self.labels >= 0

    @torch.no_grad()
    def enqueue(
        self,
        embeddings: torch.Tensor,
        labels: torch.Tensor,
        ids: torch.Tensor,
        mask: Optional[torch.Tensor] = None,
        gather: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
    ) -> None:
        """Writes the masked rows, in order, at ``ptr``; ``ptr`` advances by their count.

        Args:
            embeddings: [V, n, D]. labels, ids: [n] long. mask: [n] bool, rows to write (None: all).
            gather: optional cross-rank concatenation along dim 0 (e.g. a DDP all_gather), applied
                to embeddings.transpose(0, 1), labels, ids and mask before writing.
        Static shapes, no host sync: the n rows take the n slots after ``ptr`` (masked rows
        first, in order); an unmasked row rewrites its slot's old content.
        """
        views, capacity, dim = self.embeddings.shape
        if mask is None:
            mask = torch.ones_like(labels, dtype=torch.bool)
        if embeddings.dim() != 3 or embeddings.size(0) != views or embeddings.size(2) != dim:
            raise ValueError(f"embeddings {tuple(embeddings.shape)}: expected [{views}, n, {dim}]")
        n = embeddings.size(1)
        for name, t, dtype in (("labels", labels, torch.long), ("ids", ids, torch.long), ("mask", mask, torch.bool)):
            if t.shape != (n,) or t.dtype != dtype:
                raise ValueError(f"{name} {tuple(t.shape)} {t.dtype}: expected {dtype} [{n}]")
        if gather is not None:
            embeddings = gather(embeddings.transpose(0, 1).contiguous()).transpose(0, 1)
            labels, ids, mask = gather(labels), gather(ids), gather(mask)
            n = embeddings.size(1)
        if n > capacity:
            raise ValueError(f"capacity {capacity} is smaller than one enqueued batch ({n} rows)")
        written = mask.long()  # torch-xla 2.9 keeps cumsum of a bool tensor bool (eager: long)
        count = written.sum()
        rank = torch.where(mask, written.cumsum(0) - 1, count + (1 - written).cumsum(0) - 1)
        slots = (self.ptr + rank) % capacity
        keep = mask[None, :, None]
        new = F.normalize(embeddings.float(), dim=-1).to(self.embeddings.dtype)
        self.embeddings[:, slots] = torch.where(keep, new, self.embeddings[:, slots])
        self.labels[:, slots] = torch.where(mask, labels, self.labels[:, slots])
        self.ids[:, slots] = torch.where(mask, ids, self.ids[:, slots])
        self.ptr.copy_((self.ptr + count) % capacity)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name, buffer in self.named_buffers(recurse=False):
            saved = state_dict.get(prefix + name)
            if saved is not None and saved.shape != buffer.shape:
                raise ValueError(
                    f"queue buffer {prefix + name}: checkpoint has shape {tuple(saved.shape)}, this queue "
                    f"{tuple(buffer.shape)} (views, capacity, dim must match the run that saved it)"
                )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
