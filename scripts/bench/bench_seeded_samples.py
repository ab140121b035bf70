"""Cost of per-sample seeded augmentation (``SeededSamples``: RNGs seeded by (seed, epoch, index)
and restored after each sample) against the same dataset unwrapped, measured side by side in one
run (alternating rounds, median). Uses the digits pretrain pipeline (4 x 16 px + 2 x 8 px crops)
on a generated 32 px image folder. Prints a ratio; nothing here is a test.

    python scripts/bench/bench_seeded_samples.py [--images 128] [--rounds 7] [--config digits/semppl]
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def image_folder(root: Path, images: int, size: int = 32) -> Path:
    rng = np.random.default_rng(0)
    for i in range(images):
        folder = root / f"class{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return root


def pretrain_dataset(config: str, train_path: Path):
    """The training dataset that ``solo-semppl pretrain`` builds for ``config``, wrapped and not."""
    from omegaconf import OmegaConf
    from solo.args.pretrain import parse_cfg

    from solo_semppl import register
    from solo_semppl.training.configs import CONFIG_DIR
    from solo_semppl.training.devices import normalise_devices
    from solo_semppl.training.pretrain import build_data
    from solo_semppl.training.configs import compose

    register()
    group, name = config.split("/")
    cfg = compose(CONFIG_DIR / "pretrain" / group, name, [f"data.train_path={train_path}", "data.val_path=null"])
    OmegaConf.set_struct(cfg, False)
    normalise_devices(cfg)
    loader, _ = build_data(parse_cfg(cfg), None)
    return loader.dataset


def per_sample(fetch, images: int) -> float:
    start = time.perf_counter()
    for i in range(images):
        fetch(i)
    return (time.perf_counter() - start) / images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--config", default="digits/semppl")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        seeded = pretrain_dataset(args.config, image_folder(Path(tmp), args.images))
        plain, seeded_times, plain_times = seeded.dataset, [], []
        per_sample(lambda i: seeded[(0, i)], args.images)  # warm-up (file cache, imports)
        for r in range(args.rounds):
            plain_times.append(per_sample(lambda i: plain[i], args.images))
            seeded_times.append(per_sample(lambda i: seeded[(r, i)], args.images))
    p, s = statistics.median(plain_times), statistics.median(seeded_times)
    print(f"{args.config}: {args.images} images x {args.rounds} rounds, median per sample")
    print(f"  unseeded (solo-learn dataset) {p * 1e3:8.3f} ms")
    print(f"  SeededSamples                 {s * 1e3:8.3f} ms")
    print(f"  seeded / unseeded = {s / p:.3f}   ({(s - p) * 1e6:+.0f} us a sample)")


if __name__ == "__main__":
    main()
