"""Where a training step's time goes: byol, relic and semppl at the same shape as
``bench_step.py``, each step cut into regions by timing wrappers around the methods Lightning and
solo-learn call (on the CPU every op is synchronous, so wall time per region is exact).

    python scripts/bench/profile_step.py --backbone tiny_cnn --size 16 --batch 64 --steps 30

Printed per configuration: the median milliseconds per step of each region (inclusive; indented
under the region that calls it) and ``other``, the step minus its top-level regions (Lightning's
loop and callbacks; batches are collated up front as in ``bench_step.py``, and a step runs
from one batch start to the next). Regions:

    optimizer_step     Lightning's closure (training_step, zero_grad, backward) + the update
      training_step    the method's step
        solo-learn     the parent step (online forwards, target forwards, online probe, logging)
          online large / online small / target      the network's forwards
        norm stats     the NaN guard's copy of the batch-norm statistics
        gathers        global_inputs (identity on one rank, plus stacking)
        loss           semppl_step: negatives, base terms, labeller, positives, semantic terms
          knn / positives / semantic terms / telemetry
        guard read     finite_on_all_ranks (the host read of the loss)
        log            self.log / self.log_dict calls of the method and of solo-learn
        enqueue        the queue write
      zero_grad, backward
    ema                on_train_batch_end (solo-learn's EMA update)

The measured profile and what followed from it are in docs/results.md ("Where a step's time goes").
"""
import argparse
import json
import statistics
import subprocess
import sys
import time
from collections import defaultdict

import torch

from bench_step import build  # scripts/bench/bench_step.py, beside this file

CONFIGS = [("byol", 2, 0), ("relic", 2, 0), ("semppl", 2, 0), ("relic", 4, 2), ("semppl", 4, 2)]
# (label, depth) in print order
REGIONS = [("optimizer_step", 0), ("training_step", 1), ("solo-learn", 2), ("online large", 3),
           ("online small", 3), ("target", 3), ("norm stats", 2), ("gathers", 2), ("loss", 2), ("knn", 3),
           ("positives", 3), ("semantic terms", 3), ("telemetry", 3), ("guard read", 2), ("log", 2),
           ("enqueue", 2), ("zero_grad", 1), ("backward", 1), ("ema", 0)]
TOP = ("optimizer_step", "ema")


class Regions:
    """Accumulates wall time per region and step; ``wrap`` replaces ``owner.name`` by a timed call."""

    def __init__(self):
        self.current = defaultdict(float)
        self.steps = []

    def wrap(self, owner, name, label):
        inner = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.current[label] += time.perf_counter() - start

        setattr(owner, name, timed)

    def end_step(self, total):
        self.current["step"] = total
        self.steps.append(self.current)
        self.current = defaultdict(float)


def instrument(model, regions):
    import solo.methods.base as solo_base

    import solo_semppl.methods.relic as relic
    import solo_semppl.methods.semi as semi
    import solo_semppl.methods.semppl as semppl
    import solo_semppl.step as step

    for name, label in [("optimizer_step", "optimizer_step"), ("training_step", "training_step"),
                        ("backward", "backward"), ("optimizer_zero_grad", "zero_grad"),
                        ("on_train_batch_end", "ema"), ("base_training_step", "online large"),
                        ("multicrop_forward", "online small"), ("_shared_step_momentum", "target"),
                        ("global_inputs", "gathers"), ("log", "log"), ("log_dict", "log")]:
        if hasattr(model, name):
            regions.wrap(model, name, label)
    if hasattr(model, "norm_stats"):
        regions.wrap(model.norm_stats, "save", "norm stats")
        regions.wrap(semi, "finite_on_all_ranks", "guard read")
        regions.wrap(model, "labelled_base_step", "solo-learn")  # minus norm stats below
    else:
        regions.wrap(solo_base.BaseMomentumMethod, "training_step", "solo-learn")
    if hasattr(model, "queue"):
        regions.wrap(model.queue, "enqueue", "enqueue")
    for module in (relic, semppl):
        regions.wrap(module, "semppl_step", "loss")
    for name, label in [("knn_pseudo_labels", "knn"), ("sample_semantic_positives", "positives"),
                        ("semantic_terms", "semantic terms"), ("semantic_telemetry", "telemetry")]:
        regions.wrap(step, name, label)


def profile(method, large, small, args):
    import lightning.pytorch as pl

    model, loader = build(method, large, small, True, args)
    regions = Regions()
    instrument(model, regions)

    class Timer(pl.Callback):  # a step: one batch start to the next (the EMA update runs after callbacks)
        def on_train_batch_start(self, *a):
            self.close()
            self.start = time.perf_counter()

        def on_train_end(self, *a):
            self.close()

        def close(self):
            if hasattr(self, "start"):
                regions.end_step(time.perf_counter() - self.start)

    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=args.steps + 2, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[Timer()])
    trainer.fit(model, loader)
    steps = regions.steps[2:]
    for row in steps:
        row["solo-learn"] -= row["norm stats"]  # labelled_base_step saves them before the parent step
        row["other"] = row["step"] - sum(row[name] for name in TOP)
    return {name: 1e3 * statistics.median(row[name] for row in steps) for name in steps[0]} | {
        name: 1e3 * statistics.median(row.get(name, 0.0) for row in steps) for name, _ in REGIONS}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backbone", default="tiny_cnn")
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--hidden", type=int, default=4096, help="projector (and predictor) hidden width")
    p.add_argument("--out-dim", type=int, default=256, help="projector output width")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:  # each configuration in its own process: the wrappers patch modules and classes
        method, large, small = args.one.split(":")
        print(json.dumps(profile(method, int(large), int(small), args)))
        return
    print(f"threads {torch.get_num_threads()}, {args.backbone} {args.size} px, batch {args.batch}, "
          f"heads {args.hidden}/{args.out_dim}, median ms per step over {args.steps} steps")
    results = {}
    for method, large, small in CONFIGS:
        cmd = [sys.executable, __file__, "--one", f"{method}:{large}:{small}"] + sys.argv[1:]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        results[method, large, small] = json.loads(out)
    header = "".join(f"{f'{m} {l}+{s}':>14s}" for m, l, s in CONFIGS)
    print(f"{'region':22s}{header}")
    for name, depth in [("step", 0)] + REGIONS + [("other", 0)]:
        print(f"{'  ' * depth + name:22s}" + "".join(f"{results[config][name]:14.2f}" for config in CONFIGS))
    for method, large, small in CONFIGS[1:]:
        r = results[method, large, small]
        print(f"{method} {large}+{small}: NaN guard (norm stats + guard read) {r['norm stats'] + r['guard read']:.2f} ms "
              f"= {100 * (r['norm stats'] + r['guard read']) / r['step']:.2f} % of the step")
    for large, small in ((2, 0), (4, 2)):
        semppl, relic = results["semppl", large, small], results["relic", large, small]
        own = sum(semppl[name] - relic[name] for name in ("loss", "log", "enqueue"))
        print(f"semppl - relic at {large}+{small}, forward regions that differ (loss, log, enqueue): {own:.2f} ms "
              f"= {100 * own / relic['step']:.1f} % of relic's step (plus the semantic terms' share of backward)")


if __name__ == "__main__":
    main()
