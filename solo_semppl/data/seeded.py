"""Per-sample augmentation randomness seeded by (seed, epoch, index).

A resumed run, a different number of loader workers or a different process order all give a
sample the same crops in the same epoch. Framework-free (torch, numpy, random).
"""
import random
from typing import Any

import numpy as np
import torch

from solo_semppl.seeding import mix_seed


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed from (seed, epoch, index) (``seeding.mix_seed``)."""
    return mix_seed(seed, epoch, index)


class SeededSamples(torch.utils.data.Dataset):
    """Wraps a dataset; item ``(epoch, index)`` is ``dataset[index]`` computed with the torch
    (CPU), python and numpy global RNGs seeded by ``sample_seed(seed, epoch, index)``. The torch
    and python states are restored afterwards, so the caller's random stream does not depend on
    the data; numpy's is left seeded by the last sample (saving and restoring it costs about
    1.5 ms, more than seeding everything else; training code here draws from torch only).

    Feed it from a batch sampler with ``tag_epoch=True`` (``solo_semppl.data.sampler``); a plain
    int index is passed through unseeded. ``scripts/bench/bench_seeded_samples.py`` measures the
    cost against the unwrapped dataset.
    """

    def __init__(self, dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key) -> Any:
        if not isinstance(key, tuple):
            return self.dataset[key]
        epoch, index = key
        saved = (torch.get_rng_state(), random.getstate())
        seed = sample_seed(self.seed, epoch, index)
        torch.default_generator.manual_seed(seed)  # CPU only: torch.manual_seed also seeds accelerators (slow)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        try:
            return self.dataset[index]
        finally:
            torch.set_rng_state(saved[0])
            random.setstate(saved[1])


def rng_states() -> dict:
    """The torch (CPU and CUDA), numpy and python global RNG states as tensors, ints and tuples,
    which ``torch.load(weights_only=True)`` (the default of Lightning's resume) can read."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {"torch": torch.get_rng_state(), "cuda": cuda, "python": random.getstate(),
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss)}


def set_rng_states(states: dict) -> None:
    """Restores what ``rng_states`` returned."""
    torch.set_rng_state(states["torch"])
    if states["cuda"]:
        torch.cuda.set_rng_state_all(states["cuda"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, state, gauss = states["python"]
    random.setstate((version, tuple(state), gauss))
