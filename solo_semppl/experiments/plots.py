"""PNG plots of a comparison or ablation: accuracy with the seed spread, pseudo-label quality
over training (the paper's Figure 3), and loss terms over training."""
import csv
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PSEUDO_LABEL_CURVES = ("train_pl_accuracy", "train_pl_macro_precision", "train_pl_macro_recall")


def save_figure(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def epoch_curves(run_dir: str) -> Dict[str, Dict[int, float]]:
    """{metric: {epoch: value}} from the run's metrics.csv (epoch-aggregated columns)."""
    path = Path(run_dir) / "metrics.csv"
    curves = defaultdict(dict)
    if not path.is_file():
        return curves
    with open(path) as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                if key.endswith("_epoch") and value not in ("", None):
                    curves[key[: -len("_epoch")]][int(float(row["epoch"]))] = float(value)
    return curves


def mean_curve(curves: List[Dict[int, float]]):
    epochs = sorted(set().union(*curves)) if curves else []
    return epochs, [statistics.mean(c[e] for c in curves if e in c) for e in epochs]


def plot_accuracy(rows: List[Dict], out: Path, group: str = "method", floors: Dict[str, float] = None) -> Path:
    """One panel per (label setting, evaluation): every seed a dot, the mean a bar-free tick,
    the y-axis zoomed to the data (bars from 0 hide a 2-point gap); ``floors`` ({labels: top-1})
    draws the raw-pixel baseline as a dashed line."""
    metrics = [m for m in ("finetune_top1", "linear_top1", "knn_top1", "labeller_top1")
               if any(r.get(m) is not None for r in rows)]
    labels = list(dict.fromkeys(r["labels"] for r in rows))
    groups = list(dict.fromkeys(str(r[group]) for r in rows))
    fig, axes = plt.subplots(len(labels), len(metrics), figsize=(3.6 * len(metrics), 3.2 * len(labels)), squeeze=False)
    for row_axes, lab in zip(axes, labels):
        for ax, metric in zip(row_axes, metrics):
            shown = []
            for j, name in enumerate(groups):
                values = [r[metric] for r in rows if r["labels"] == lab and str(r[group]) == name and r.get(metric) is not None]
                if not values:
                    continue
                ax.scatter([j] * len(values), values, s=14, alpha=0.7, color=f"C{j}")
                ax.hlines(statistics.mean(values), j - 0.3, j + 0.3, color=f"C{j}", linewidth=2)
                shown += values
            if floors and lab in floors:
                ax.axhline(floors[lab], color="grey", linestyle="--", linewidth=1, label="raw pixels")
                shown.append(floors[lab])
            if shown:
                pad = max(1.0, 0.08 * (max(shown) - min(shown)))
                ax.set_ylim(min(shown) - pad, max(shown) + pad)
            ax.set_xticks(range(len(groups)), groups, rotation=30, fontsize=8)
            ax.set_title(f"{lab}: {metric.replace('_top1', '')} top-1 (%)", fontsize=9)
    if floors:
        axes[0][0].legend(fontsize=8)
    return save_figure(fig, out / "accuracy.png")


def plot_curves(rows: List[Dict], out: Path, name: str, select, metrics, title: str) -> Path:
    """One panel per label setting: the mean over seeds of each metric curve of the selected runs."""
    labels = list(dict.fromkeys(r["labels"] for r in rows))
    fig, axes = plt.subplots(1, len(labels), figsize=(6 * len(labels), 4), squeeze=False)
    for ax, lab in zip(axes[0], labels):
        for key, members in select([r for r in rows if r["labels"] == lab]).items():
            curves = [epoch_curves(r["run_dir"]) for r in members]
            for metric in metrics(curves):
                epochs, values = mean_curve([c[metric] for c in curves if metric in c])
                ax.plot(epochs, values, label=f"{key} {metric.replace('train_', '')}".strip())
        ax.set_xlabel("epoch")
        ax.set_title(f"{title} ({lab})")
        ax.legend(fontsize=7)
    return save_figure(fig, out / name)


def by(rows: List[Dict], key: str, keep=lambda r: True) -> Dict[str, List[Dict]]:
    groups = defaultdict(list)
    for r in rows:
        if keep(r):
            groups[str(r[key])].append(r)
    return groups


def plot_all(rows: List[Dict], out: Path, group: str = "method", floors: Dict[str, float] = None) -> List[Path]:
    paths = [plot_accuracy(rows, out, group, floors)]
    semppl = lambda rs: by(rs, group, lambda r: r.get("pl_accuracy") is not None)  # noqa: E731
    paths.append(plot_curves(rows, out, "pseudo_labels.png", semppl, lambda c: PSEUDO_LABEL_CURVES,
                             "pseudo-labels of unlabelled images"))
    loss_terms = lambda curves: sorted({m for c in curves for m in c if m.startswith("train_") and  # noqa: E731
                                        ("contrastive" in m or "invariance" in m or m in ("train_simclr", "train_byol", "train_suncet", "train_paws", "train_me_max"))})
    paths.append(plot_curves(rows, out, "loss_terms.png", lambda rs: by(rs, group, lambda r: r["method"] != "supervised"),
                             loss_terms, "loss terms"))
    return paths
