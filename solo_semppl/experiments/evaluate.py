"""The evaluation every comparison run gets: fine-tuning and k-NN on the labelled images, and the
final pseudo-label accuracy of SemPPL runs (from their metrics.csv)."""
from functools import partial
from pathlib import Path
from typing import Callable, Dict

from solo_semppl.experiments.plots import epoch_curves


def final_pseudo_label_accuracy(run_dir: Path):
    curve = epoch_curves(str(run_dir)).get("train_pl_accuracy")
    return 100.0 * curve[max(curve)] if curve else None


def evaluate_run(run_dir: Path, finetune_epochs: int = 30) -> Dict:
    from solo_semppl.eval.checkpoint import load_run
    from solo_semppl.eval.finetune import finetune
    from solo_semppl.eval.knn import knn
    from solo_semppl.eval.results import write_result

    run = load_run(run_dir)
    tuned = finetune(run, epochs=finetune_epochs)
    near = knn(run)
    write_result(run, "finetune", tuned)
    write_result(run, "knn", near)
    return {"finetune_top1": tuned["top1"], "knn_top1": near["top1"], "finetune_lr": tuned["lr"],
            "knn_k": near["k"], "pl_accuracy": final_pseudo_label_accuracy(run_dir)}


def evaluator(finetune_epochs: int = 30) -> Callable[[Path], Dict]:
    """``evaluate_run`` with its settings bound; picklable, so grid workers can use it."""
    return partial(evaluate_run, finetune_epochs=finetune_epochs)
