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


def plot_accuracy(rows: List[Dict], out: Path, group: str = "method") -> Path:
    metrics = [m for m in ("finetune_top1", "knn_top1") if any(r.get(m) is not None for r in rows)]
    labels = list(dict.fromkeys(r["labels"] for r in rows))
    groups = list(dict.fromkeys(str(r[group]) for r in rows))
    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4), squeeze=False)
    width = 0.8 / max(len(groups), 1)
    for ax, metric in zip(axes[0], metrics):
        for j, name in enumerate(groups):
            means, stds = [], []
            for lab in labels:
                values = [r[metric] for r in rows if r["labels"] == lab and str(r[group]) == name and r.get(metric) is not None]
                means.append(statistics.mean(values) if values else 0.0)
                stds.append(statistics.stdev(values) if len(values) > 1 else 0.0)
            ax.bar([i + j * width for i in range(len(labels))], means, width, yerr=stds, capsize=3, label=name)
        ax.set_xticks([i + width * (len(groups) - 1) / 2 for i in range(len(labels))], labels)
        ax.set_ylabel(f"{metric} (%)")
        ax.set_title(f"{metric}: mean and std over seeds")
    axes[0][0].legend(fontsize=8)
    path = out / "accuracy.png"
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


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
    path = out / name
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def by(rows: List[Dict], key: str, keep=lambda r: True) -> Dict[str, List[Dict]]:
    groups = defaultdict(list)
    for r in rows:
        if keep(r):
            groups[str(r[key])].append(r)
    return groups


def plot_all(rows: List[Dict], out: Path, group: str = "method") -> List[Path]:
    paths = [plot_accuracy(rows, out, group)]
    semppl = lambda rs: by(rs, group, lambda r: r.get("pl_accuracy") is not None)  # noqa: E731
    paths.append(plot_curves(rows, out, "pseudo_labels.png", semppl, lambda c: PSEUDO_LABEL_CURVES,
                             "pseudo-labels of unlabelled images"))
    loss_terms = lambda curves: sorted({m for c in curves for m in c if m.startswith("train_") and  # noqa: E731
                                        ("contrastive" in m or "invariance" in m or m in ("train_simclr", "train_byol"))})
    paths.append(plot_curves(rows, out, "loss_terms.png", lambda rs: by(rs, group, lambda r: r["method"] != "supervised"),
                             loss_terms, "loss terms"))
    return paths
