"""The one seed-mixing function against a pure-Python (arbitrary-precision int) splitmix64."""
import numpy as np

from solo_semppl.data.seeded import sample_seed
from solo_semppl.seeding import mix_seed, mix_seeds

M64 = 2**64 - 1


def reference_mix(*values):
    h = 0
    for v in values:
        x = ((h ^ v) + 0x9E3779B97F4A7C15) & M64
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
        h = x ^ (x >> 31)
    return h & (2**63 - 1)


def test_mix_seeds_matches_the_reference_for_scalars_and_broadcast_arrays():
    for values in [(0,), (5, 0, 17), (2**62 + 3, 1, 2**40), (7, 123456789)]:
        assert mix_seed(*values) == reference_mix(*values)
    grid = mix_seeds(3, np.arange(4)[:, None], np.arange(5)[None, :])
    assert grid.shape == (4, 5) and all(int(grid[e, i]) == reference_mix(3, e, i) for e in range(4) for i in range(5))


def test_coordinates_are_not_interchangeable():
    assert sample_seed(0, 1, 2) == reference_mix(0, 1, 2)
    assert len({sample_seed(0, 1, 2), sample_seed(0, 2, 1), sample_seed(1, 0, 2), sample_seed(0, 1, 3)}) == 4
