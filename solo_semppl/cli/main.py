"""The ``solo-semppl`` command: one entry point, one subcommand per job.

    solo-semppl demo             # the main job on the embedded digits data
    solo-semppl pretrain --config-name digits/semppl [hydra overrides]
    solo-semppl compare | ablate | curve ...
    solo-semppl eval {finetune,linear,knn,labeller,distill,ood} --run RUN ...
    solo-semppl zoo {list,download,verify,export,convert-official} ...
    solo-semppl configs          # where the installed configs live
"""
import sys
from typing import List, Optional

SUBCOMMANDS = {
    "pretrain": ("solo_semppl.cli.pretrain", "pretrain, a hydra app (solo-learn config layout)"),
    "zoo": ("solo_semppl.zoo.cli", "model zoo: list, download, verify, export, convert-official"),
    "demo": ("solo_semppl.experiments.demo", "the main job: compare all methods on the embedded digits data"),
    "compare": ("solo_semppl.experiments.compare", "methods side by side: same data, split, backbone, budget"),
    "ablate": ("solo_semppl.experiments.ablate", "SemPPL's ablations, one switch at a time"),
    "curve": ("solo_semppl.experiments.curve", "accuracy against pretraining epochs, per method"),
    "eval": ("solo_semppl.eval.cli", "evaluate a run: finetune, linear, knn, labeller, distill, ood"),
    "configs": ("solo_semppl.cli.configs", "print the directory of the installed configs"),
}


# hydra reports pretrain's errors itself, the zoo CLI its own; the rest print one line
ONE_LINE_ERRORS = ("demo", "compare", "ablate", "curve", "eval")


def usage() -> str:
    lines = ["usage: solo-semppl <command> [args]", "", "commands:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] not in SUBCOMMANDS:
        print(f"solo-semppl: unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    import importlib

    module_name, _, function = SUBCOMMANDS[argv[0]][0].partition(":")
    handler = getattr(importlib.import_module(module_name), function or "main")
    if argv[0] in ONE_LINE_ERRORS:
        try:
            return handler(argv[1:]) or 0
        except ValueError as err:  # bad input: one line naming the key or file, exit status 1
            command = " ".join(argv[:2]) if argv[0] == "eval" else argv[0]
            print(f"solo-semppl {command}: error: {err}", file=sys.stderr)
            return 1
    return handler(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
