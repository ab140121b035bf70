"""Training-step time and peak memory of semppl vs relic (and both vs solo-learn's byol at 2
large crops) at the same backbone, crops and batch; each configuration runs in its own process,
all in one invocation, and the ratios are printed side by side.

    python scripts/bench/bench_step.py --backbone resnet18 --size 32 --batch 64 --steps 8
Targets (issue 3): semppl / relic <= 1.10 in step time and in peak memory. Memory is the peak
RSS growth of the process during training (CPU) or torch.cuda.max_memory_allocated (GPU).
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

CONFIGS = [("relic", 4, 2), ("semppl", 4, 2), ("byol", 2, 0), ("relic", 2, 0), ("semppl", 2, 0)]


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def one(method, large, small, args):
    """Builds the method from the digits configs on random data and times ``args.steps`` steps."""
    import lightning.pytorch as pl
    from solo.args.pretrain import parse_cfg
    from solo.methods import METHODS

    from solo_semppl import register
    from solo_semppl.training.configs import CONFIG_DIR
    from solo_semppl.training.devices import normalise_devices
    from solo_semppl.training.configs import compose

    register()
    n = args.batch * (args.steps + 2)
    folder = Path(tempfile.mkdtemp())  # the split is drawn from this folder: one image per index
    for c in range(2):
        (folder / str(c)).mkdir()
        for i in range(n // 2):
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / str(c) / f"{i}.png")
    overrides = [f"data.train_path={folder}", "data.val_path=null", f"optimizer.batch_size={args.batch}",
                 f"backbone.name={args.backbone}", "~backbone.kwargs", "checkpoint.enabled=False",
                 f"augmentations.0.crop_size={args.size}", f"augmentations.0.num_crops={large}",
                 f"augmentations.1.crop_size={args.size // 2}", f"augmentations.1.num_crops={small}",
                 "method_kwargs.proj_hidden_dim=4096", "method_kwargs.proj_output_dim=256",
                 "method_kwargs.pred_hidden_dim=4096"]
    cfg = compose(CONFIG_DIR / "pretrain" / "digits", method, overrides)
    normalise_devices(cfg)
    model = METHODS[method](parse_cfg(cfg))
    crops = [torch.randn(n, 3, args.size, args.size) for _ in range(large)]
    crops += [torch.randn(n, 3, args.size // 2, args.size // 2) for _ in range(small)]
    data = [(i, [c[i] for c in crops], i // (n // 2)) for i in range(n)]
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch, drop_last=True)
    times = []

    class Timer(pl.Callback):
        def on_train_batch_start(self, *a):
            self.start = time.perf_counter()

        def on_train_batch_end(self, *a):
            times.append(time.perf_counter() - self.start)

    accelerator = "gpu" if args.device == "gpu" else "cpu"
    before = rss_mib()
    trainer = pl.Trainer(accelerator=accelerator, devices=1, max_steps=args.steps + 2, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[Timer()])
    trainer.fit(model, loader)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    if accelerator == "gpu":
        peak = torch.cuda.max_memory_allocated() / 2**20
    return {"time": statistics.median(times[2:]), "memory": peak}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        method, large, small = args.one.split(":")
        print(json.dumps(one(method, int(large), int(small), args)))
        return
    results = {}
    for method, large, small in CONFIGS:
        cmd = [sys.executable, __file__, "--one", f"{method}:{large}:{small}"] + sys.argv[1:]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        results[(method, large)] = json.loads(out)
        r = results[(method, large)]
        print(f"{method:7s} {large}+{small} crops: step {r['time'] * 1e3:8.1f} ms, peak memory +{r['memory']:8.1f} MiB", flush=True)
    relic, semppl = results[("relic", 4)], results[("semppl", 4)]
    print(f"semppl / relic at 4+2 crops: step time {semppl['time'] / relic['time']:.3f}, "
          f"peak memory {semppl['memory'] / relic['memory']:.3f} (targets <= 1.10)")
    byol = results[("byol", 2)]["time"]
    print(f"2 large crops, step time vs solo-learn byol: relic {results[('relic', 2)]['time'] / byol:.2f}x, "
          f"semppl {results[('semppl', 2)]['time'] / byol:.2f}x")


if __name__ == "__main__":
    main()
