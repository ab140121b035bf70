"""``solo-semppl ablate``: SemPPL's ablations (SPEC 7), one switch at a time around the default,
everything else fixed, over seeds; resumable (``runs.cached_run``).

Writes, per switch, ``<out>/<switch>/results.md`` + ``results.csv`` + ``accuracy.png``; the
pseudo-label curves of the default, the noise settings and the oracle in ``pseudo_labels.png``.
"""
import argparse
import re
from pathlib import Path
from typing import Dict, List, Sequence

from solo_semppl.experiments.compare import config_dir_of, label_setting, parse_with_overrides, run_grid, write_tables

# switch -> {value name: overrides of method_kwargs (around the semppl defaults)}
SWEEPS: Dict[str, Dict[str, List[str]]] = {
    "semantic_positives": {str(n): [f"++method_kwargs.num_semantic_positives={n}"] for n in (0, 1, 3, 5)},
    "knn_k": {str(k): [f"++method_kwargs.knn_k={k}"] for k in (1, 3, 5)},
    "queue_capacity": {f"{m}xB": [f"++method_kwargs.queue_batches={m}", "++method_kwargs.queue_cap_to_labelled=false"]
                       for m in (5, 10, 20, 40)},
    "pseudo_labels": {"on": [], "off": ["++method_kwargs.pseudo_labels=false"]},
    "votes": {"16-vote": [], "same-view": ["++method_kwargs.knn_votes=same_view"]},
    "noise": {f"{p}%": [f"++method_kwargs.pseudo_label_noise={p / 100}"] for p in (0, 20, 50)},
    "oracle": {"pseudo-labels": [], "oracle-upper-bound": ["++method_kwargs.oracle_labels=true"]},
    "base_loss": {f"{base}{'+sempos' if n else ''}": [f"++method_kwargs.base_loss={base}", f"++method_kwargs.num_semantic_positives={n}"]
                  for base in ("relic", "simclr", "byol") for n in (0, 3)},
    "invariance": {"default": [], "lambda=0": ["++method_kwargs.invariance_weight=0"]},
}


def safe(value: str) -> str:
    """A folder name that hydra's override grammar accepts inside checkpoint.dir=..."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", value.replace("%", "pct"))


def ablate(config_dir: Path, out: Path, switches: Sequence[str], labels: Sequence[str], seeds: Sequence[int],
           overrides: Sequence[str], evaluate) -> str:
    from solo_semppl.experiments.plots import plot_accuracy, plot_curves, by

    reports, curve_rows = [], []
    for switch in switches:
        if switch not in SWEEPS:
            raise SystemExit(f"unknown switch {switch!r}: expected some of {sorted(SWEEPS)}")
        cells = []
        for spec in labels:
            name, label_overrides = label_setting(spec)
            for value, switch_overrides in SWEEPS[switch].items():
                for seed in seeds:
                    cells.append({
                        "labels": name, "method": "semppl", "switch": switch, "value": value, "seed": seed,
                        "dir": f"{name.replace('%', 'pct')}/{switch}/{safe(value)}/seed{seed}",
                        "overrides": [*overrides, *label_overrides, *switch_overrides, f"seed={seed}"],
                    })
        rows = run_grid(cells, config_dir, out, evaluate)
        table = write_tables(rows, out / switch, first="value")
        plot_accuracy(rows, out / switch, group="value")
        reports.append(f"### {switch}\n\n{table}")
        if switch in ("noise", "oracle"):
            curve_rows += rows
    if curve_rows:
        plot_curves(curve_rows, out, "pseudo_labels.png", lambda rs: by(rs, "value"),
                    lambda c: ("train_pl_accuracy",), "pseudo-label accuracy")
    report = "\n".join(reports)
    (out / "ablations.md").write_text(report)
    return report


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="solo-semppl ablate", description=__doc__.splitlines()[0])
    p.add_argument("--configs", default="digits")
    p.add_argument("--out", default="runs/ablate", type=Path)
    p.add_argument("--switches", nargs="+", default=list(SWEEPS))
    p.add_argument("--labels", nargs="+", default=["10%", "1%"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--finetune-epochs", type=int, default=30)
    p.add_argument("--digits", action="store_true", help="materialise the embedded digits data and point the runs at it")
    p.epilog = "Hydra overrides for every pretraining run (e.g. max_epochs=10) may follow anywhere."
    return p


def main(argv: List[str]) -> int:
    from solo_semppl.experiments.evaluate import evaluator

    args = parse_with_overrides(parser(), argv)
    overrides = list(args.overrides)
    if args.digits:
        from solo_semppl.data.digits import materialise_digits

        root = materialise_digits()
        overrides = [f"data.train_path={root / 'train'}", f"data.val_path={root / 'val'}", *overrides]
    print(ablate(config_dir_of(args.configs), args.out, args.switches, args.labels, args.seeds, overrides,
                 evaluator(finetune_epochs=args.finetune_epochs)))
    return 0
