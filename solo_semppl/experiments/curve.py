"""``solo-semppl curve``: accuracy against pretraining budget — fine-tune, linear, kNN, labeller
and pseudo-label accuracy after E epochs, for each method, label setting and seed.

Each budget is its own run (the warm-up / cosine schedule spans ``max_epochs``), in
``<out>/<labels>/<method>/ep<E>/seed<k>/``, resumable like ``compare`` (finished runs are not
redone). Writes ``results.csv``, ``results.md`` (mean +- std over seeds per method and budget)
and ``curve.png`` (one panel per label setting and evaluation: the mean over seeds against
epochs, every seed a dot).

    solo-semppl curve --epochs 10 25 50 100 --methods semppl relic simclr byol --seeds 0 1 2
"""
import argparse
import statistics
from pathlib import Path
from typing import Dict, List, Sequence

from solo_semppl.experiments.compare import (
    add_jobs_option, config_dir_of, digits_overrides, label_setting, parse_with_overrides, run_grid, write_tables,
)

CURVE_METRICS = ("finetune_top1", "linear_top1", "knn_top1", "labeller_top1", "pl_accuracy")


def plan(labels: Sequence[str], methods: Sequence[str], budgets: Sequence[int], seeds: Sequence[int],
         overrides: Sequence[str]) -> List[Dict]:
    cells = []
    for spec in labels:
        name, label_overrides = label_setting(spec)
        for method in methods:
            for epochs in budgets:
                for seed in seeds:
                    cells.append({
                        "labels": name, "method": method, "epochs": epochs, "seed": seed,
                        "budget": f"{method}, {epochs} epochs",
                        "dir": f"{name.replace('%', 'pct')}/{method}/ep{epochs}/seed{seed}",
                        "overrides": [*overrides, *label_overrides, f"max_epochs={epochs}", f"seed={seed}"],
                    })
    return cells


def plot_curve(rows: List[Dict], out: Path) -> Path:
    from solo_semppl.experiments.plots import plt, save_figure

    labels = list(dict.fromkeys(r["labels"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    metrics = [m for m in CURVE_METRICS if any(r.get(m) is not None for r in rows)]
    fig, axes = plt.subplots(len(labels), len(metrics), figsize=(3.6 * len(metrics), 3.2 * len(labels)), squeeze=False)
    for row_axes, lab in zip(axes, labels):
        for ax, metric in zip(row_axes, metrics):
            for j, method in enumerate(methods):
                points = [(r["epochs"], r[metric]) for r in rows
                          if r["labels"] == lab and r["method"] == method and r.get(metric) is not None]
                if not points:
                    continue
                budgets = sorted({e for e, _ in points})
                ax.scatter(*zip(*points), s=10, alpha=0.5, color=f"C{j}")
                ax.plot(budgets, [statistics.mean(v for e, v in points if e == b) for b in budgets],
                        color=f"C{j}", marker="o", label=method)
            ax.set_xlabel("pretraining epochs")
            ax.set_title(f"{lab}: {metric.replace('_top1', ' top-1').replace('_', ' ')} (%)", fontsize=9)
    axes[0][0].legend(fontsize=7)
    return save_figure(fig, out / "curve.png")


def curve(config_dir: Path, out: Path, labels, methods, budgets, seeds, overrides, evaluate, jobs: int = 1) -> str:
    rows = run_grid(plan(labels, methods, budgets, seeds, overrides), config_dir, out, evaluate, jobs)
    table = write_tables(rows, out, first="budget")
    return table + f"\nplot: {plot_curve(rows, out)}"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="solo-semppl curve", description=__doc__.splitlines()[0])
    p.add_argument("--configs", default="digits", help="installed config group (digits, cifar, ...) or a config folder")
    p.add_argument("--out", default="runs/curve", type=Path)
    p.add_argument("--labels", nargs="+", default=["10%", "1%"])
    p.add_argument("--methods", nargs="+", default=["semppl", "relic", "simclr", "byol"])
    p.add_argument("--epochs", nargs="+", type=int, default=[10, 25, 50, 100], help="pretraining budgets")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--finetune-epochs", type=int, default=50)
    p.add_argument("--digits", action="store_true", help="materialise the embedded digits data and point the runs at it")
    add_jobs_option(p)
    p.epilog = "Hydra overrides for every pretraining run may follow anywhere."
    return p


def main(argv: List[str]) -> int:
    from solo_semppl.experiments.evaluate import evaluator

    args = parse_with_overrides(parser(), argv)
    overrides = [*(digits_overrides() if args.digits else []), *args.overrides]
    print(curve(config_dir_of(args.configs), args.out, args.labels, args.methods, args.epochs, args.seeds,
                overrides, evaluator(finetune_epochs=args.finetune_epochs), args.jobs))
    return 0
