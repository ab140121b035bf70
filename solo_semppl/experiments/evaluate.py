"""The evaluation every comparison run gets: fine-tuning, the linear probe, k-NN (backbone
features) and the labeller (projection space, ``eval.labeller``) on the labelled images, and
the final pseudo-label accuracy of SemPPL runs (from their metrics.csv); the fine-tuned model is
kept (``eval/finetune_model.pt``) as the teacher of ``distil_run`` (SimCLRv2's distillation,
the "<method> + distil" rows of ``compare``)."""
import json
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
    results = {"finetune": finetune(run, epochs=finetune_epochs, save_to=teacher_path(run)), "linear": linear(run), "knn": knn(run),
               "labeller": labeller(run)}
    for kind, result in results.items():
        write_result(run, kind, result)
    return {**{f"{kind}_top1": result["top1"] for kind, result in results.items()},
            "finetune_lr": results["finetune"]["lr"], "finetune_lr_selected": results["finetune"]["selected"],
            "linear_lr": results["linear"]["lr"], "knn_k": results["knn"]["k"],
            "pl_accuracy": final_pseudo_label_accuracy(run_dir)}


def teacher_path(run) -> Path:
    return run.path.parent / "eval" / "finetune_model.pt"


def distil_run(run_dir: Path, epochs: int = 30) -> Dict:
    """SimCLRv2's distillation of the run's fine-tuned model (``eval.distill``), once: the record
    is kept in ``eval/distill.json``. A run evaluated before the fine-tuned model was kept gets
    it again from its fine-tune record (the final fit is seeded: the same rate, epochs and
    seed give the same model). Returns the distil_* metrics of a comparison row."""
    from solo_semppl.eval.checkpoint import load_run
    from solo_semppl.eval.distill import distill
    from solo_semppl.eval.finetune import finetune
    from solo_semppl.eval.results import write_result

    run = load_run(run_dir)
    path = run.path.parent / "eval" / "distill.json"
    if not path.is_file():
        if not teacher_path(run).is_file():
            record = json.loads((run.path.parent / "eval" / "finetune.json").read_text())
            finetune(run, epochs=record["epochs"], lr_grid=(record["lr"],), min_steps=record["min_steps"],
                     save_to=teacher_path(run))
        write_result(run, "distill", distill(run, teacher_path(run), epochs=epochs), path)
    record = json.loads(path.read_text())
    return {"distil_top1": record["top1"], "distil_knn_top1": record["knn_top1"],
            "distil_agreement": record["agreement"], "teacher_top1": record["teacher_top1"]}


def evaluator(finetune_epochs: int = 30) -> Callable[[Path], Dict]:
    """``evaluate_run`` with its settings bound; picklable, so grid workers can use it."""
    return partial(evaluate_run, finetune_epochs=finetune_epochs)
