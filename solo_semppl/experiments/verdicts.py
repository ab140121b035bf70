"""The paper's ablation claims (SPEC 7) checked against an ablation study's rows.

Each claim says that one setting beats another: ``(switch, value)`` of the better one, then of
the worse one. For every claim, labels fraction and metric (fine-tune and kNN top-1), with the
mean and the sample standard deviation over seeds of both settings::

    effect = mean(better) - mean(worse),  spread = max(std(better), std(worse))
    reproduced      if effect >  spread
    not reproduced  if effect < -spread
    inconclusive    otherwise (the spread over seeds is larger than the effect)

A rule on numbers, so that the verdicts are the study's, not the reader's. Robustness to noise
is checked as the paper uses it: 20 % noisy pseudo-labels still beat no semantic positives.
Where SPEC 7 states no direction (k, queue capacity), the claim is that the paper's setting
(k = 1, capacity 20 B) beats the alternative furthest from it.
"""
import statistics
from typing import Dict, List, Sequence, Tuple

Setting = Tuple[str, str]  # (switch, value) as in ablate.SWEEPS
CLAIMS: List[Tuple[str, Setting, Setting]] = [
    ("semantic positives help (1 vs 0 = ReLICv2)", ("semantic_positives", "1"), ("semantic_positives", "0")),
    ("more semantic positives help (3 vs 1)", ("semantic_positives", "3"), ("semantic_positives", "1")),
    ("k = 1, the paper's choice, beats k = 5", ("knn_k", "1"), ("knn_k", "5")),
    ("queue 20xB, the paper's choice, beats 5xB", ("queue_capacity", "20xB"), ("queue_capacity", "5xB")),
    ("pseudo-labels help (on vs off)", ("pseudo_labels", "on"), ("pseudo_labels", "off")),
    ("the 16-vote majority helps (vs one view)", ("votes", "16-vote"), ("votes", "same-view")),
    ("robust to noise (20 % noise vs no semantic positives)", ("noise", "20%"), ("semantic_positives", "0")),
    ("oracle labels are an upper bound", ("oracle", "oracle-upper-bound"), ("oracle", "pseudo-labels")),
    ("semantic positives help SimCLR", ("base_loss", "simclr+sempos"), ("base_loss", "simclr")),
    ("semantic positives help BYOL", ("base_loss", "byol+sempos"), ("base_loss", "byol")),
    ("the invariance term helps (default vs lambda=0)", ("invariance", "default"), ("invariance", "lambda=0")),
]
METRICS = (("finetune_top1", "fine-tune"), ("knn_top1", "kNN"))


def verdict(better: Sequence[float], worse: Sequence[float]) -> Tuple[float, float, str]:
    """(effect, spread, verdict) of two settings' per-seed values (rule in the module docstring)."""
    effect = statistics.mean(better) - statistics.mean(worse)
    spread = max(statistics.stdev(v) if len(v) > 1 else 0.0 for v in (better, worse))
    word = "reproduced" if effect > spread else "not reproduced" if effect < -spread else "inconclusive"
    return effect, spread, word


def verdict_table(rows: List[Dict]) -> str:
    """Markdown table of every claim whose two settings are in ``rows`` (ablation rows)."""
    values: Dict[tuple, List[float]] = {}
    for row in rows:
        for metric, _ in METRICS:
            if row.get(metric) is not None:
                values.setdefault((row["labels"], row["switch"], row["value"], metric), []).append(row[metric])
    lines = ["| claim | labels | metric | effect (points) | spread | verdict |", "|---|---|---|---|---|---|"]
    for labels in dict.fromkeys(row["labels"] for row in rows):
        for claim, better, worse in CLAIMS:
            for metric, metric_name in METRICS:
                a, b = (values.get((labels, *setting, metric)) for setting in (better, worse))
                if a and b:
                    effect, spread, word = verdict(a, b)
                    lines.append(f"| {claim} | {labels} | {metric_name} | {effect:+.1f} | {spread:.1f} | {word} |")
    return "\n".join(lines) + "\n"
