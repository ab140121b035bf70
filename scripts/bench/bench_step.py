"""Training-step time and peak memory of semppl vs relic (and both vs solo-learn's byol at 2
large crops), and of relic with the NaN guard off, at the same backbone, crops and batch;
with ``--suite rivals``, of suncet and paws vs solo-learn's simclr at 4+2 crops (suncet and paws
draw their labelled share with the pretraining sampler; their support is part of the batch, so
no extra support forward is timed: the official PAWS forwards ``labelled_per_batch`` support
images on top of the batch, about (batch + support) / batch of a step).

    python scripts/bench/bench_step.py --backbone resnet18 --size 32 --batch 64 --steps 20 --rounds 3
    python scripts/bench/bench_step.py --suite rivals --backbone tiny_cnn --size 16 --steps 20 --rounds 5
    python scripts/bench/bench_step.py --suite rivals --backbone tiny_cnn --size 16 --hidden 512 --out-dim 64

The heads are 4096 wide (output 256) unless ``--hidden`` / ``--out-dim`` say otherwise; PAWS'
projector has 3 layers (the official one), SimCLR's and SuNCEt's 2, so at 4096 PAWS pays a
4096 x 4096 layer on every crop.

Each configuration runs in its own process; the configurations are interleaved round by round
(A, B, C, ..., A, B, C, ...) so that a load on a shared machine hits all of them; each run times
``--steps`` steps after 2 warm-up steps (a step: one batch start to the next, batches collated
up front, so the loader costs nothing) and reports their median. Printed: per configuration the
median over rounds with [min, max], and each ratio computed per round, with its [min, max].
Targets (issue 15): semppl / relic <= 1.05 at 4+2 and at 2+0 crops; relic / solo-learn byol <=
1.02 at 2 crops; guard on / off <= 1.02; peak memory semppl / relic <= 1.10. Memory is the peak
RSS growth of the process during training (CPU; every configuration imports faiss before the
baseline is read, so that loading its library, about 13 MiB of code once per process, which
semppl's CPU labeller does at its first step, is not counted as training memory) or
torch.cuda.max_memory_allocated (GPU).
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
from spread import spread  # scripts/bench/spread.py, beside this file

# (method, large crops, small crops, NaN guard on) per suite
SUITES = {
    "semppl": [("relic", 4, 2, True), ("semppl", 4, 2, True), ("byol", 2, 0, True), ("relic", 2, 0, True),
               ("semppl", 2, 0, True), ("relic", 2, 0, False)],
    "rivals": [("simclr", 4, 2, True), ("suncet", 4, 2, True), ("paws", 4, 2, True)],
}
WITH_PREDICTOR = ("relic", "semppl", "byol")


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def build(method, large, small, guard, args):
    """The method from the digits configs and a loader of random crops for ``args.steps`` + 2
    steps (suncet / paws draw their labelled share as pretraining does)."""
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
                 f"augmentations.1.crop_size={args.size // 2}", f"augmentations.1.num_crops={small}"]
    overrides += [f"method_kwargs.proj_hidden_dim={args.hidden}", f"method_kwargs.proj_output_dim={args.out_dim}"]
    if method in WITH_PREDICTOR:
        overrides.append(f"method_kwargs.pred_hidden_dim={args.hidden}")
    if not guard:
        overrides.append("++method_kwargs.max_nonfinite_steps=0")
    cfg = compose(CONFIG_DIR / "pretrain" / "digits", method, overrides)
    normalise_devices(cfg)
    model = METHODS[method](parse_cfg(cfg))
    crops = [torch.randn(n, 3, args.size, args.size) for _ in range(large)]
    crops += [torch.randn(n, 3, args.size // 2, args.size // 2) for _ in range(small)]
    data = [(i, [c[i] for c in crops], i // (n // 2)) for i in range(n)]
    semi = model.cfg.semi_supervised
    if semi.get("labelled_per_batch"):  # suncet / paws: their labelled share first, as pretraining samples it
        from solo_semppl.data.sampler import LabelledShareBatchSampler

        targets = [target for _, _, target in data]
        sampler = LabelledShareBatchSampler(model.labelled_mask, args.batch, semi.labelled_per_batch,
                                            labelled_targets=targets if semi.balanced_labelled else None)
    else:
        sampler = torch.utils.data.BatchSampler(range(n), args.batch, drop_last=True)
    # collated up front: the loader hands out ready batches, so a step's time is the method's alone
    batches = [torch.utils.data.default_collate([data[i] for i in batch]) for batch in sampler]
    loader = torch.utils.data.DataLoader(batches, batch_size=None)
    return model, loader


def one(method, large, small, guard, args):
    """Times ``args.steps`` steps after 2 warm-up steps: median step time and peak memory."""
    import lightning.pytorch as pl

    model, loader = build(method, large, small, guard, args)
    starts = []

    class Timer(pl.Callback):  # a step: one batch start to the next (the EMA update runs after callbacks)
        def on_train_batch_start(self, *a):
            starts.append(time.perf_counter())

        def on_train_end(self, *a):
            starts.append(time.perf_counter())

    accelerator = "gpu" if args.device == "gpu" else "cpu"
    import faiss  # noqa: F401  (library code, loaded once per process: not training memory)
    before = rss_mib()
    trainer = pl.Trainer(accelerator=accelerator, devices=1, max_steps=args.steps + 2, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[Timer()])
    trainer.fit(model, loader)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    if accelerator == "gpu":
        peak = torch.cuda.max_memory_allocated() / 2**20
    times = [b - a for a, b in zip(starts, starts[1:])]
    return {"time": statistics.median(times[2:]), "memory": peak}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    p.add_argument("--suite", default="semppl", choices=list(SUITES))
    p.add_argument("--hidden", type=int, default=4096, help="projector (and predictor) hidden width")
    p.add_argument("--out-dim", type=int, default=256, help="projector output width")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        method, large, small, guard = args.one.split(":")
        print(json.dumps(one(method, int(large), int(small), guard == "on", args)))
        return
    configs = SUITES[args.suite]
    runs = {config: [] for config in configs}
    for r in range(args.rounds):
        for config in configs:
            method, large, small, guard = config
            tag = f"{method}:{large}:{small}:{'on' if guard else 'off'}"
            cmd = [sys.executable, __file__, "--one", tag] + sys.argv[1:]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            runs[config].append(json.loads(out))
            row = runs[config][-1]
            print(f"round {r}: {tag:18s} step {row['time'] * 1e3:8.1f} ms, peak memory +{row['memory']:8.1f} MiB", flush=True)
    for config, rows in runs.items():
        print(f"{config[0]:7s} {config[1]}+{config[2]} crops, guard {'on ' if config[3] else 'off'}: step ms "
              f"{spread(fmt='.3f', values=[1e3 * row['time'] for row in rows])}, peak MiB {spread(fmt='.3f', values=[row['memory'] for row in rows])}")

    def ratio(a, b, key="time"):
        return spread(fmt='.3f', values=[x[key] / y[key] for x, y in zip(runs[a], runs[b])])

    if args.suite == "rivals":
        for rival in configs[1:]:
            print(f"{rival[0]} / solo-learn simclr at 4+2 crops: step {ratio(rival, configs[0])}, "
                  f"peak memory {ratio(rival, configs[0], 'memory')}")
        return
    print(f"semppl / relic at 4+2 crops: step {ratio(configs[1], configs[0])}, "
          f"peak memory {ratio(configs[1], configs[0], 'memory')} (targets <= 1.05, memory <= 1.10)")
    print(f"semppl / relic at 2+0 crops: step {ratio(configs[4], configs[3])} (target <= 1.05)")
    print(f"relic / solo-learn byol at 2 crops: step {ratio(configs[3], configs[2])} (target <= 1.02)")
    print(f"relic at 2 crops, NaN guard on / off: step {ratio(configs[3], configs[5])} (target <= 1.02)")


if __name__ == "__main__":
    main()
