"""golden_rng.py — rng.safetensors: torch.randn / torch.rand from seeded CPU generators.

sdxld must draw exactly the normals diffusers draws for a seed. These cases pin torch's CPU
normal sampler: the vectorised path (numel >= 16, including the redrawn tail when numel is not a
multiple of 16), the per-element double path (numel < 16) with its cached second normal, and the
seeding of 64-bit seeds (only the low 32 bits reach mt19937).
"""

import torch

from goldenlib import GoldenFile, generator

SEEDS = [0, 1, 42, 2**32 + 7, 2**63 - 1, 123456789, -1]
SHAPES = [[1, 4, 8, 8], [1, 4, 64, 64], [2, 4, 8, 12], [1, 4, 9, 11],
          [1], [7], [15], [16], [17], [31], [33], [100]]
# Three consecutive draws from one generator: small draws leave a cached normal behind that the
# next small draw uses; a large draw does not touch the cache.
SEQUENCES = [
    (0, [[7], [7], [3]]),
    (1, [[1], [16], [1]]),
    (42, [[17], [5], [1, 4, 8, 8]]),
    (2**32 + 7, [[3], [100], [3]]),
    (123456789, [[1, 4, 8, 8], [1], [1, 4, 8, 8]]),
    (-1, [[2], [15], [33]]),
]
UNIFORM_CASES = [(0, [16]), (42, [1, 4, 8, 8]), (7, [7]), (2**63 - 1, [33])]


def make(out_path):
    g = GoldenFile()
    i = 0
    for seed in SEEDS:
        for shape in SHAPES:
            g.add_seed(f"randn.{i}.seed", seed)
            g.add(f"randn.{i}.out", torch.randn(shape, generator=generator(seed), dtype=torch.float32))
            i += 1
    for i, (seed, shapes) in enumerate(SEQUENCES):
        gen = generator(seed)
        g.add_seed(f"seq.{i}.seed", seed)
        for j, shape in enumerate(shapes):
            g.add(f"seq.{i}.draw{j}", torch.randn(shape, generator=gen, dtype=torch.float32))
    for i, (seed, shape) in enumerate(UNIFORM_CASES):
        g.add_seed(f"rand.{i}.seed", seed)
        g.add(f"rand.{i}.out", torch.rand(shape, generator=generator(seed), dtype=torch.float32))
    g.write(out_path)
