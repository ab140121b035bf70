"""Resumable batch samplers: the batches of an epoch are a pure function of (seed, epoch), so a
run resumed mid-epoch can skip exactly the batches it already trained on.

``ShuffledBatchSampler`` is the default training order (shuffle + drop_last, like solo-learn's
loader); ``LabelledShareBatchSampler`` (SPEC 5.1, ``semi_supervised.labelled_per_batch``) puts a
fixed number of labelled images in every batch, as PAWS and the public SemPPL re-implementation
do. Under DDP every rank builds the same global batches and takes its own disjoint slice; the
number of ranks and the rank default to torch.distributed's, read when first needed (after
Lightning has started the process group), not when the sampler is built.
"""
from typing import Iterator, List, Optional

import torch
import torch.distributed as dist

from solo_semppl.seeding import mix_seed


class EpochBatchSampler(torch.utils.data.Sampler):
    """Base: ``set_epoch(e)`` like DistributedSampler, ``resume(epoch, batches)`` to skip the first
    ``batches`` batches of ``epoch`` (``len`` stays the full epoch, so step budgets and schedules
    do not change). With ``tag_epoch`` every index is yielded as ``(epoch, index)`` for
    ``SeededSamples``. Subclasses implement ``__len__`` and ``batches(generator)``.
    """

    def __init__(self, batch_size: int, seed: int, num_replicas: Optional[int], rank: Optional[int], tag_epoch: bool):
        if batch_size < 1:
            raise ValueError(f"batch_size = {batch_size}: expected an int >= 1")
        if num_replicas is not None and not 0 <= (rank or 0) < num_replicas:
            raise ValueError(f"rank = {rank}: expected in [0, num_replicas = {num_replicas})")
        self.batch_size, self.seed, self.replicas = batch_size, seed, (num_replicas, rank or 0)
        self.tag_epoch, self.epoch = tag_epoch, 0
        self.resume_at: Optional[tuple] = None

    @property
    def num_replicas(self) -> int:
        if self.replicas[0] is not None:
            return self.replicas[0]
        return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1

    @property
    def rank(self) -> int:
        if self.replicas[0] is not None:
            return self.replicas[1]
        return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume(self, epoch: int, batches: int) -> None:
        """The next iteration of ``epoch`` starts after its first ``batches`` batches."""
        self.epoch, self.resume_at = epoch, (epoch, batches)

    @property
    def sampler(self) -> "EpochBatchSampler":
        """Lightning 2.1 calls ``set_epoch`` on ``loader.batch_sampler.sampler``, not on the batch
        sampler itself: exposing ourselves there makes every epoch reshuffle."""
        return self

    def batches(self, generator: torch.Generator) -> Iterator[List[int]]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[list]:
        g = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch))
        skip = self.resume_at[1] if self.resume_at is not None and self.resume_at[0] == self.epoch else 0
        for b, batch in enumerate(self.batches(g)):
            if b >= skip:
                yield [(self.epoch, i) for i in batch] if self.tag_epoch else batch


class ShuffledBatchSampler(EpochBatchSampler):
    """Every index once per epoch in a fresh permutation, ``len(dataset) // (batch_size x
    num_replicas)`` batches of ``batch_size`` per rank (the incomplete last batch is dropped)."""

    def __init__(self, num_samples: int, batch_size: int, seed: int = 0, num_replicas: Optional[int] = None,
                 rank: Optional[int] = None, tag_epoch: bool = False):
        super().__init__(batch_size, seed, num_replicas, rank, tag_epoch)
        if num_samples < batch_size * self.num_replicas:
            raise ValueError(f"{num_samples} images: fewer than one global batch ({batch_size} x {self.num_replicas})")
        self.num_samples = num_samples

    def __len__(self) -> int:
        return self.num_samples // (self.batch_size * self.num_replicas)

    def batches(self, generator: torch.Generator) -> Iterator[List[int]]:
        order = torch.randperm(self.num_samples, generator=generator)
        for b in range(len(self)):
            r = b * self.num_replicas + self.rank
            yield order[r * self.batch_size:(r + 1) * self.batch_size].tolist()


class LabelledShareBatchSampler(EpochBatchSampler):
    """Batches of ``batch_size`` (per rank) with exactly ``labelled_per_batch`` labelled indices,
    the labelled ones first.

    ``labelled_targets`` (the class of every index; only the labelled ones are read) makes the
    labelled part class balanced (``semi_supervised.balanced_labelled``, PAWS' and SuNCEt's
    support batches): ``labelled_per_batch / classes`` images of every class, class by class;
    without it they are drawn regardless of class. Either way each class (or the labelled set)
    is cycled through reshuffled passes. Unlabelled indices are used at most once per epoch
    (reshuffled every epoch). An epoch has as many batches as natural sampling,
    len(dataset) // global batch, so that a method with a labelled share trains as many steps
    as one without (fewer only if the unlabelled images run out first).
    """

    def __init__(self, labelled_mask, batch_size: int, labelled_per_batch: int, seed: int = 0,
                 num_replicas: Optional[int] = None, rank: Optional[int] = None, tag_epoch: bool = False,
                 labelled_targets=None):
        super().__init__(batch_size, seed, num_replicas, rank, tag_epoch)
        mask = torch.as_tensor(labelled_mask, dtype=torch.bool)
        if not 0 < labelled_per_batch < batch_size:
            raise ValueError(f"labelled_per_batch = {labelled_per_batch}: expected an int in [1, batch_size = {batch_size})")
        self.num_samples = mask.numel()
        labelled = mask.nonzero().flatten()
        self.unlabelled = (~mask).nonzero().flatten()
        if labelled.numel() == 0 or self.unlabelled.numel() == 0:
            raise ValueError("labelled_mask: expected both labelled and unlabelled images")
        if labelled_targets is None:
            self.pools = [labelled]
        else:
            classes = torch.as_tensor(labelled_targets)[labelled]
            self.pools = [labelled[classes == c] for c in classes.unique()]
            if labelled_per_batch % len(self.pools):
                raise ValueError(f"labelled_per_batch = {labelled_per_batch}: a class-balanced share needs a multiple "
                                 f"of the {len(self.pools)} classes of the labelled images")
        self.per_batch = labelled_per_batch

    def __len__(self) -> int:
        global_batch = self.batch_size * self.num_replicas
        return min(self.num_samples // global_batch,
                   self.unlabelled.numel() // ((self.batch_size - self.per_batch) * self.num_replicas))

    def batches(self, generator: torch.Generator) -> Iterator[List[int]]:
        unlabelled = self.unlabelled[torch.randperm(self.unlabelled.numel(), generator=generator)]
        per_pool = self.per_batch // len(self.pools)
        streams = []
        for pool in self.pools:  # enough reshuffled passes of every pool for the whole epoch
            passes = -(-per_pool * self.num_replicas * len(self) // pool.numel())
            streams.append(torch.cat([pool[torch.randperm(pool.numel(), generator=generator)] for _ in range(passes)]))
        u = self.batch_size - self.per_batch
        for b in range(len(self)):
            r = b * self.num_replicas + self.rank
            labelled = [i for stream in streams for i in stream[r * per_pool:(r + 1) * per_pool].tolist()]
            yield labelled + unlabelled[r * u:(r + 1) * u].tolist()
