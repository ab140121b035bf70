"""The one way seeds are derived here: ``mix_seeds(*values)`` folds integers (or integer arrays,
broadcast) into 63-bit seeds with the splitmix64 finaliser, stable across processes, platforms
and Python runs (no ``hash`` salting, no overflow into floats).

Used for every random stream that must be a pure function of its coordinates: a sample's crops
(seed, epoch, index), an epoch's batch order (seed, epoch), a step's negatives and semantic
positives (seed, step, stream), the batched pipeline's per-crop uniforms (sample seed, counter)
and the labeller evaluation's crops (seed, view).
"""
from typing import Union

import numpy as np

SEED_BITS = 63
GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser of uint64 ``x`` (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = np.asarray(x, dtype=np.uint64) + GOLDEN
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def mix_seeds(*values) -> np.ndarray:
    """uint64 array of 63-bit seeds: ``h = splitmix64(h ^ v)`` over ``values`` (ints or
    non-negative integer arrays, broadcast together), starting from h = 0."""
    h = np.uint64(0)
    for value in values:
        h = splitmix64(np.bitwise_xor(h, np.asarray(value).astype(np.uint64)))
    return h & np.uint64(2**SEED_BITS - 1)


def mix_seed(*values: Union[int, np.integer]) -> int:
    """``mix_seeds`` of scalars, as a Python int (for ``torch.Generator().manual_seed``)."""
    return int(mix_seeds(*values))
