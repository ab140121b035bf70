"""``solo-semppl demo``: the main job. ``compare`` on the embedded digits data (scikit-learn's
load_digits, materialised once as a solo-learn custom image folder) at 10 % and 1 % labels:
SemPPL, ReLIC, SimCLR, BYOL, the semi-supervised rivals SuNCEt and PAWS, SimCLRv2's
distillation of SemPPL and SimCLR ("+ distil" rows) and supervised-only, same tiny CNN, split
and budget, 3 seeds.

At 1 % the class-balanced split keeps at least one labelled image per class, so it holds one
image per class (10 images, 0.7 % of the training set).
"""
import argparse
from pathlib import Path
from typing import List

from solo_semppl.experiments.compare import (
    DEFAULT_METHODS, add_jobs_option, compare, config_dir_of, digits_overrides, parse_with_overrides,
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="solo-semppl demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/demo", type=Path)
    p.add_argument("--cache-dir", default=None, help="where the digits images go (default the cache root: $SOLO_SEMPPL_CACHE or ~/.cache/solo_semppl)")
    p.add_argument("--labels", nargs="+", default=["10%", "1%"])
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=40, help="pretraining epochs")
    p.add_argument("--finetune-epochs", type=int, default=50)
    add_jobs_option(p)
    p.epilog = "Hydra overrides for every pretraining run (e.g. max_epochs=10) may follow anywhere."
    return p


def main(argv: List[str]) -> int:
    from solo_semppl.experiments.evaluate import evaluator

    args = parse_with_overrides(parser(), argv)
    data = digits_overrides(args.cache_dir)
    print(f"digits image folders: {', '.join(o.split('=', 1)[1] for o in data)}")
    overrides = [*data, f"max_epochs={args.epochs}", *args.overrides]
    report = compare(config_dir_of("digits"), args.out, args.labels, args.methods, args.seeds, overrides,
                     evaluator(finetune_epochs=args.finetune_epochs), args.jobs)
    print(report)
    print(f"results: {args.out / 'results.md'} and {args.out / 'results.csv'}")
    return 0
