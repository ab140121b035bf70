"""Pretraining steps per second and the loader's share of a step on the digits configs: main's
per-image PIL loop (``data.pipeline=torchvision`` with the loop settings it had) against the
in-memory batched pipeline with the lean loop (the digits defaults), side by side in one run.

    python scripts/bench/bench_pipeline.py --method semppl --rounds 3 --epochs 2

Each round runs every configuration once, in its own process, in the order A, B, A, B ... (so
a load on a shared machine hits both); each run is ``solo-semppl pretrain`` itself (the real
loader, model, logging and checkpoints) on the embedded digits folder. Timed, after
``--warmup`` steps of each run: the wall time from one ``on_train_batch_start`` to the next (a
step, loader included) and the time spent inside the training DataLoader's ``__next__`` (the
loader's share of the step). Printed: per configuration the median step and loader share with
their spread over rounds, and the speed-up. Target (issue 12): speed-up >= 2.5 and loader share
< 10 %.
"""
import argparse
import functools
import json
import statistics
import subprocess
import sys
import tempfile
import time

from spread import spread  # scripts/bench/spread.py, beside this file

# main before the lean loop: per-image PIL crops, log every 5 steps, last-step.ckpt every 10
CONFIGS = {
    "torchvision": ["data.pipeline=torchvision", "log_every_n_steps=5", "checkpoint.every_n_steps=10",
                    "+performance.disable_channel_last=False"],
    "tensor": [],
}


def one(name: str, args) -> dict:
    import lightning.pytorch as pl
    from torch.utils.data.dataloader import _BaseDataLoaderIter

    from solo_semppl.training.configs import CONFIG_DIR
    from solo_semppl.training.pretrain import run
    from solo_semppl.data.digits import materialise_digits
    from solo_semppl.training.configs import compose

    root = materialise_digits(args.cache_dir)
    marks = {"start": [], "loader": []}

    class Timer(pl.Callback):
        def on_train_batch_start(self, *a):
            marks["start"].append(time.perf_counter())

    loader_next = _BaseDataLoaderIter.__next__

    def timed_next(self):
        begin = time.perf_counter()
        try:
            return loader_next(self)
        finally:
            marks["loader"].append(time.perf_counter() - begin)

    _BaseDataLoaderIter.__next__ = timed_next

    init = pl.Trainer.__init__

    @functools.wraps(init)  # pretrain filters its Trainer kwargs by this signature
    def with_timer(self, *a, callbacks=(), **kw):
        init(self, *a, callbacks=[*callbacks, Timer()], **kw)

    pl.Trainer.__init__ = with_timer
    overrides = [f"data.train_path={root / 'train'}", "data.val_path=null", f"max_epochs={args.epochs}",
                 f"checkpoint.dir={tempfile.mkdtemp()}", "+enable_progress_bar=False", *CONFIGS[name]]
    run(compose(CONFIG_DIR / "pretrain" / "digits", args.method, overrides))
    start = marks["start"][args.warmup:]
    steps = [b - a for a, b in zip(start, start[1:])]
    return {"step": statistics.median(steps), "loader": statistics.median(marks["loader"][args.warmup:]) / statistics.median(steps)}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", default="semppl")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=2, help="per run (22 steps an epoch)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args)))
        return
    results = {name: [] for name in CONFIGS}
    for r in range(args.rounds):
        for name in CONFIGS:
            cmd = [sys.executable, __file__, "--one", name] + sys.argv[1:]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            results[name].append(json.loads(out))
            print(f"round {r}: {name:11s} step {results[name][-1]['step'] * 1e3:7.1f} ms, "
                  f"loader {100 * results[name][-1]['loader']:5.1f} %", flush=True)
    for name, rows in results.items():
        print(f"{name:11s} steps/s {spread([1 / row['step'] for row in rows])}, "
              f"loader share % {spread([100 * row['loader'] for row in rows])}")
    ratios = [a["step"] / b["step"] for a, b in zip(results["torchvision"], results["tensor"])]
    print(f"speed-up tensor / torchvision (per round): {spread(ratios)} (target >= 2.5; loader share < 10 %)")


if __name__ == "__main__":
    main()
