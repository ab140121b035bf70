"""Pretraining data throughput: the DALI path (``SemiDALIDataModule``) against the torchvision
path (solo-learn's ``prepare_datasets`` + ``prepare_dataloader``), same generated JPEG folder,
same augmentation config (SemPPL's multi-crop presets), same batch size, DataLoader workers =
DALI threads, measured in turns in one run. Prints images/s of each and the ratio; nothing here
is a test. Needs solo-learn and nvidia-dali.

    python scripts/bench/bench_dali.py                      # both presets, DALI on the CPU
    python scripts/bench/bench_dali.py --device gpu         # DALI ops on the GPU (needs CUDA)
    python scripts/bench/bench_dali.py --preset cifar --workers 2 --batches 8

Presets: ``cifar`` (32 px images, 4 x 32 + 2 x 16 px crops, dataset custom) and
``imagenet100`` (320 x 256 px JPEGs, 4 x 224 + 2 x 96 px crops). Both paths' batches end on
``--device`` (the torchvision batch is copied there), so the GPU figure includes the transfer.
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from omegaconf import OmegaConf
from PIL import Image

CONFIGS = Path(__file__).resolve().parents[1] / "pretrain"
PRESETS = {
    "cifar": dict(dataset="custom", size=(32, 32), augmentations=CONFIGS / "cifar/augmentations/multicrop_4x32_2x16.yaml",
                  classes=10, per_class=300, batch=256),
    "imagenet100": dict(dataset="imagenet100", size=(320, 256), augmentations=CONFIGS / "imagenet-100/augmentations/multicrop_4x224_2x96.yaml",
                        classes=4, per_class=40, batch=32),
}


def write_folder(root: Path, size, classes: int, per_class: int) -> Path:
    """JPEGs of smooth random colour fields (so JPEG sizes are image-like, not noise-like)."""
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(small).resize(size, Image.BICUBIC).save(root / f"class{c}" / f"{i}.jpg", quality=90)
    return root


def torchvision_loader(preset, folder, augmentations, workers):
    from solo.data.pretrain_dataloader import (
        FullTransformPipeline, NCropAugmentation, build_transform_pipeline, prepare_dataloader, prepare_datasets,
    )

    pipelines = [NCropAugmentation(build_transform_pipeline(preset["dataset"], aug), aug.num_crops) for aug in augmentations]
    dataset = prepare_datasets(preset["dataset"], FullTransformPipeline(pipelines), train_data_path=folder, data_format="image_folder")
    return prepare_dataloader(dataset, batch_size=preset["batch"], num_workers=workers)


def dali_loader(preset, folder, augmentations, workers, device):
    from solo_semppl.data.dali_module import SemiDALIDataModule

    cfg = OmegaConf.create({
        "data": {"dataset": preset["dataset"], "train_path": str(folder), "num_workers": workers, "no_labels": False,
                 "fraction": -1.0, "num_large_crops": sum(a.num_crops for a in augmentations if a.crop_size == augmentations[0].crop_size)},
        "optimizer": {"batch_size": preset["batch"]}, "dali": {"device": device, "encode_indexes_into_labels": True},
        "augmentations": augmentations, "seed": 0,
    })
    cfg.data.num_small_crops = sum(a.num_crops for a in augmentations) - cfg.data.num_large_crops
    module = SemiDALIDataModule.from_cfg(cfg)
    module.trainer = SimpleNamespace(local_rank=0, global_rank=0, world_size=1)
    module.setup("fit")
    return module.train_dataloader()


def batches_forever(loader):
    while True:
        yield from loader


def images_per_second(stream, skip: int, batches: int, device: str) -> float:
    """Rate over ``batches`` batches after ``skip`` (which drain what the loader prefetched)."""
    for _ in range(skip):
        next(stream)
    start = time.perf_counter()
    seen = 0
    for _ in range(batches):
        indexes, crops, _ = next(stream)
        crops = [c.to(device, non_blocking=True) for c in crops]
        seen += len(indexes)
    if device == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def bench(name, workers, skip, batches, rounds, device):
    preset = PRESETS[name]
    augmentations = OmegaConf.load(preset["augmentations"])
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_folder(Path(tmp) / "train", preset["size"], preset["classes"], preset["per_class"])
        torch_loader = torchvision_loader(preset, folder, augmentations, workers)
        dali_key = f"dali-{device}"
        dali_stream = batches_forever(dali_loader(preset, folder, augmentations, workers, device))
        target = "cuda" if device == "gpu" else "cpu"
        rates = {"torchvision": [], dali_key: []}
        for _ in range(rounds):
            # a fresh DataLoader iterator a round, closed after: its workers stop and do not
            # prefetch while DALI is timed (DALI's own queue, 2 batches, refills within `skip`)
            torch_stream = batches_forever(torch_loader)
            rates["torchvision"].append(images_per_second(torch_stream, skip, batches, target))
            torch_stream.close()
            rates[dali_key].append(images_per_second(dali_stream, skip, batches, target))
    crops = " + ".join(f"{a.num_crops}x{a.crop_size}" for a in augmentations)
    print(f"{name}: {preset['size'][0]}x{preset['size'][1]} px JPEGs, crops {crops}, batch {preset['batch']}, "
          f"{workers} workers/threads, {batches} timed batches after {skip} x {rounds} rounds (median)")
    medians = {k: statistics.median(v) for k, v in rates.items()}
    for key, rate in medians.items():
        print(f"  {key:<12} {rate:9.1f} images/s  (rounds: {', '.join(f'{r:.1f}' for r in rates[key])})")
    print(f"  dali / torchvision = {medians[dali_key] / medians['torchvision']:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=[*PRESETS, "all"], default="all")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu", help="where the DALI ops run")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers = DALI threads")
    parser.add_argument("--batches", type=int, default=6, help="timed batches per path and round")
    parser.add_argument("--skip", type=int, default=5, help="untimed batches before each timing (drain prefetch)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.device == "gpu" and not torch.cuda.is_available():
        parser.error("--device gpu needs CUDA")
    torch.set_num_threads(1)
    for name in PRESETS if args.preset == "all" else [args.preset]:
        bench(name, args.workers, args.skip, args.batches, args.rounds, args.device)


if __name__ == "__main__":
    main()
