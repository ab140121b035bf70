"""The evaluation every comparison run gets: fine-tuning, the linear probe, k-NN (backbone
features) and the labeller (projection space, ``eval.labeller``) on the labelled images, and
the final pseudo-label accuracy of SemPPL runs (from their metrics.csv)."""
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
    from solo_semppl.eval.labeller import labeller
    from solo_semppl.eval.linear import linear
    from solo_semppl.eval.results import write_result

    run = load_run(run_dir)
    results = {"finetune": finetune(run, epochs=finetune_epochs), "linear": linear(run), "knn": knn(run),
               "labeller": labeller(run)}
    for kind, result in results.items():
        write_result(run, kind, result)
    return {**{f"{kind}_top1": result["top1"] for kind, result in results.items()},
            "finetune_lr": results["finetune"]["lr"], "finetune_lr_selected": results["finetune"]["selected"],
            "linear_lr": results["linear"]["lr"], "knn_k": results["knn"]["k"],
            "pl_accuracy": final_pseudo_label_accuracy(run_dir)}


def evaluator(finetune_epochs: int = 30) -> Callable[[Path], Dict]:
    """``evaluate_run`` with its settings bound; picklable, so grid workers can use it."""
    return partial(evaluate_run, finetune_epochs=finetune_epochs)
