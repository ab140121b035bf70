"""Optional labelled-share batch sampler (SPEC 5.1): a fixed number of labelled images in every
batch, as PAWS and the public SemPPL re-implementation do. Natural sampling stays the default."""
from typing import Iterator, List

import torch


class LabelledShareBatchSampler(torch.utils.data.Sampler):
    """Batches of ``batch_size`` (per rank) with exactly ``labelled_per_batch`` labelled indices.

    Unlabelled indices are each used once per epoch (reshuffled every epoch); labelled indices
    are cycled through reshuffled passes. An epoch has len(unlabelled) // (global unlabelled
    per batch) batches. Under DDP every rank builds the same global batches from (seed, epoch)
    and takes its own disjoint slice. ``set_epoch(e)`` like DistributedSampler.
    """

    def __init__(self, labelled_mask, batch_size: int, labelled_per_batch: int, seed: int = 0,
                 num_replicas: int = 1, rank: int = 0):
        mask = torch.as_tensor(labelled_mask, dtype=torch.bool)
        if not 0 < labelled_per_batch < batch_size:
            raise ValueError(f"labelled_per_batch = {labelled_per_batch}: expected an int in [1, batch_size = {batch_size})")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank = {rank}: expected in [0, num_replicas = {num_replicas})")
        self.labelled = mask.nonzero().flatten()
        self.unlabelled = (~mask).nonzero().flatten()
        if self.labelled.numel() == 0 or self.unlabelled.numel() == 0:
            raise ValueError("labelled_mask: expected both labelled and unlabelled images")
        self.batch_size, self.per_batch, self.seed = batch_size, labelled_per_batch, seed
        self.num_replicas, self.rank, self.epoch = num_replicas, rank, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def sampler(self) -> "LabelledShareBatchSampler":
        """Lightning 2.1 calls ``set_epoch`` on ``loader.batch_sampler.sampler``, not on the batch
        sampler itself: exposing ourselves there makes every epoch reshuffle."""
        return self

    def __len__(self) -> int:
        return self.unlabelled.numel() // ((self.batch_size - self.per_batch) * self.num_replicas)

    def __iter__(self) -> Iterator[List[int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        unlabelled = self.unlabelled[torch.randperm(self.unlabelled.numel(), generator=g)]
        n_lab = self.per_batch * self.num_replicas * len(self)
        passes = -(-n_lab // self.labelled.numel())
        labelled = torch.cat([self.labelled[torch.randperm(self.labelled.numel(), generator=g)] for _ in range(passes)])
        u, l = self.batch_size - self.per_batch, self.per_batch
        for b in range(len(self)):
            r = b * self.num_replicas + self.rank
            yield labelled[r * l:(r + 1) * l].tolist() + unlabelled[r * u:(r + 1) * u].tolist()
