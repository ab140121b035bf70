"""``solo-semppl eval {finetune,linear,knn,labeller,distill,ood} --run RUN``: evaluate a solo-learn
run on its labelled subset; the result is printed and written as JSON into ``RUN/eval/<kind>.json``."""
import argparse
import sys
from typing import List

from solo_semppl.eval.data import parse_grid


def common(prog: str, doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"solo-semppl eval {prog}", description=doc)
    p.add_argument("--run", required=True, help="a run folder (args.json + *.ckpt) or a .ckpt beside args.json")
    p.add_argument("--device", default="cpu")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="result JSON (default RUN/eval/<kind>.json)")
    return p


def report(run, kind: str, result: dict, out) -> int:
    from solo_semppl.eval.results import write_result

    path = write_result(run, kind, result, out)
    top5 = f", top-5 {result['top5']:.2f} %" if "top5" in result else ""
    print(f"{kind}: top-1 {result['top1']:.2f} %{top5} -> {path}")
    return 0


def finetune_main(argv: List[str]) -> int:
    from solo_semppl.eval.checkpoint import FROM_LAYERS, load_run
    from solo_semppl.eval.finetune import finetune

    p = common("finetune", "fine-tune all weights + a new head on the labelled images")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr-grid", default="0.01,0.03,0.1,0.3,1.0")
    p.add_argument("--min-steps", type=int, default=200, help="optimiser steps at least (epochs are raised)")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--from-layer", choices=FROM_LAYERS, default="backbone",
                   help="head on the backbone, or on the projector's first layer (SimCLRv2)")
    a = p.parse_args(argv)
    run = load_run(a.run)
    model_path = run.path.parent / "eval" / "finetune_model.pt"
    result = finetune(run, a.epochs, parse_grid(a.lr_grid), a.batch_size, not a.no_augment, a.device, a.seed,
                      a.num_workers, save_to=model_path, min_steps=a.min_steps, from_layer=a.from_layer)
    return report(run, "finetune", {**result, "model": str(model_path)}, a.out)


def linear_main(argv: List[str]) -> int:
    from solo_semppl.eval.checkpoint import load_run
    from solo_semppl.eval.linear import linear

    p = common("linear", "linear probe on the frozen backbone")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr-grid", default="0.01,0.1,1.0")
    p.add_argument("--all-labels", action="store_true", help="train on every label, not only the split's")
    a = p.parse_args(argv)
    run = load_run(a.run)
    return report(run, "linear", linear(run, a.epochs, parse_grid(a.lr_grid), a.batch_size, a.all_labels,
                                        a.device, a.seed, a.num_workers), a.out)


def knn_main(argv: List[str]) -> int:
    from solo_semppl.eval.checkpoint import load_run
    from solo_semppl.eval.knn import knn

    p = common("knn", "k-NN with a bank of labelled images only")
    p.add_argument("--k-grid", default="1,5,10,20,50")
    p.add_argument("--t-grid", default="0.02,0.07,0.2")
    a = p.parse_args(argv)
    run = load_run(a.run)
    ks = [int(k) for k in parse_grid(a.k_grid)]
    return report(run, "knn", knn(run, ks, parse_grid(a.t_grid), a.device, a.seed, a.num_workers), a.out)


def labeller_main(argv: List[str]) -> int:
    from solo_semppl.eval.checkpoint import load_run
    from solo_semppl.eval.labeller import labeller

    p = common("labeller", "nearest labelled image in the labeller's space: online predictions of V crops "
                           "against target projections of V crops of the labelled images, V x V votes")
    p.add_argument("--views", type=int, default=4, help="crops per image (V)")
    a = p.parse_args(argv)
    run = load_run(a.run)
    return report(run, "labeller", labeller(run, a.views, a.device, a.seed, a.num_workers), a.out)


def distill_main(argv: List[str]) -> int:
    from solo_semppl.eval.checkpoint import load_run
    from solo_semppl.eval.distill import distill

    p = common("distill", "SimCLRv2's distillation: a student on every training image (labels hidden) "
                          "matching a fine-tuned teacher's softened predictions, plus cross-entropy on the labelled ones")
    p.add_argument("--teacher", default=None, help="fine-tuned model (default RUN/eval/finetune_model.pt)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--label-weight", type=float, default=1.0, help="weight of the labelled images' cross-entropy (0: none)")
    p.add_argument("--batch-size", type=int, default=64)
    a = p.parse_args(argv)
    run = load_run(a.run)
    model_path = run.path.parent / "eval" / "distill_model.pt"
    result = distill(run, a.teacher or run.path.parent / "eval" / "finetune_model.pt", a.epochs, a.lr, a.temperature,
                     a.label_weight, a.batch_size, a.device, a.seed, a.num_workers, save_to=model_path)
    return report(run, "distill", {**result, "model": str(model_path)}, a.out)


def ood_main(argv: List[str]) -> int:
    import json

    from solo_semppl.eval.checkpoint import load_run
    from solo_semppl.eval.ood import ood
    from solo_semppl.eval.results import write_result

    p = common("ood", "robustness: ImageNet-V2/-C/-R/-Sketch/-A folders under --root")
    p.add_argument("--root", required=True, help="folder holding imagenet-v2/, imagenet-c/, imagenet-r/, ...")
    p.add_argument("--model", default=None, help="fine-tuned model (default RUN/eval/finetune_model.pt)")
    a = p.parse_args(argv)
    run = load_run(a.run)
    results = ood(run, a.model or run.path.parent / "eval" / "finetune_model.pt", a.root, a.device)
    path = write_result(run, "ood", {"root": a.root, "results": results}, a.out)
    print(json.dumps({k: round(v["top1"], 2) for k, v in results.items()}), "->", path)
    return 0


EVALUATIONS = {
    "finetune": (finetune_main, "fine-tune on the labelled images of a run's split"),
    "linear": (linear_main, "linear probe on the frozen backbone (labelled subset)"),
    "knn": (knn_main, "k-NN with a bank of labelled images only"),
    "labeller": (labeller_main, "SemPPL's k-NN labeller on the validation set (projection space)"),
    "distill": (distill_main, "SimCLRv2's distillation of a fine-tuned model into a student"),
    "ood": (ood_main, "robustness on ImageNet-V2/-C/-R/-Sketch/-A folders"),
}


def main(argv: List[str]) -> int:
    """``solo-semppl eval <evaluation> ...``: the evaluation's own parser takes the rest."""
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: solo-semppl eval {" + ",".join(EVALUATIONS) + "} --run RUN [options]\n\n"
              + "\n".join(f"  {name:<9} {help_}" for name, (_, help_) in EVALUATIONS.items()))
        return 0 if argv else 2
    if argv[0] not in EVALUATIONS:
        print(f"solo-semppl eval: unknown evaluation {argv[0]!r}: expected one of {', '.join(EVALUATIONS)}", file=sys.stderr)
        return 2
    return EVALUATIONS[argv[0]][0](argv[1:])
