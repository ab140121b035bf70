"""``solo-semppl ablate``: SemPPL's ablations (SPEC 7), one switch at a time around the default,
everything else fixed, over seeds; resumable (``runs.cached_run``).

Settings that resolve to the same ``method_kwargs`` (the default itself appears in most sweeps;
"relic+sempos" is the default, "relic" is 0 semantic positives) are one run, trained once, in
``<out>/<labels>/runs/<changed keys or "default">/seed<k>/``.

Writes, per switch, ``<out>/<switch>/results.md`` + ``results.csv`` + ``accuracy.png``; the
pseudo-label curves of the default, the noise settings and the oracle in ``pseudo_labels.png``;
the paper's claims, each with its verdict (``verdicts``), in ``verdicts.md``; all in ``ablations.md``.
"""
import argparse
import re
from pathlib import Path
from typing import Dict, List, Sequence

from solo_semppl.experiments.compare import (
    add_jobs_option, config_dir_of, digits_overrides, label_setting, parse_with_overrides, run_grid, write_tables,
)
from solo_semppl.experiments.verdicts import verdict_table

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
    "invariance": {"default": [], **{f"lambda={w}": [f"++method_kwargs.invariance_weight={w}"] for w in (0, 0.1, 0.3, 1, 3, 5)}},
    "sempos_weight": {"default": [], **{f"alpha={a}": [f"++method_kwargs.sempos_weight={a}"] for a in (0.1, 0.2, 0.5, 1)}},
}


def safe(value: str) -> str:
    """A folder name that hydra's override grammar accepts inside checkpoint.dir=..."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", value.replace("%", "pct"))


def method_kwargs_of(config_dir: Path, overrides: Sequence[str]) -> dict:
    """The complete, validated ``method_kwargs`` of ``semppl.yaml`` under ``overrides``."""
    from omegaconf import OmegaConf

    from solo_semppl.training.configs import compose
    from solo_semppl.methods.semppl import SemPPL
    from solo_semppl.options import apply_options

    cfg = compose(config_dir, "semppl", list(overrides))
    apply_options(cfg, "method_kwargs", SemPPL.OPTIONS)
    return OmegaConf.to_container(cfg.method_kwargs, resolve=True)


def run_name(kwargs: dict, default: dict) -> str:
    """``default``, or the keys that differ from it, e.g. ``knn_k=5``."""
    changed = [f"{key}={kwargs[key]}" for key in sorted(kwargs) if kwargs[key] != default.get(key)]
    return safe(",".join(changed)) if changed else "default"


def plan(config_dir: Path, switches: Sequence[str], labels: Sequence[str], seeds: Sequence[int],
         overrides: Sequence[str]) -> List[dict]:
    """One cell per (labels, switch, value, seed); cells of equal ``method_kwargs`` share a ``dir``."""
    unknown = sorted(set(switches) - set(SWEEPS))
    if unknown:
        raise SystemExit(f"unknown switch(es) {unknown}: expected some of {sorted(SWEEPS)}")
    default = method_kwargs_of(config_dir, overrides)
    cells = []
    for spec in labels:
        name, label_overrides = label_setting(spec)
        for switch in switches:
            for value, switch_overrides in SWEEPS[switch].items():
                run = run_name(method_kwargs_of(config_dir, [*overrides, *switch_overrides]), default)
                for seed in seeds:
                    cells.append({
                        "labels": name, "method": "semppl", "switch": switch, "value": value, "seed": seed,
                        "dir": f"{name.replace('%', 'pct')}/runs/{run}/seed{seed}",
                        "overrides": [*overrides, *label_overrides, *switch_overrides, f"seed={seed}"],
                    })
    return cells


def ablate(config_dir: Path, out: Path, switches: Sequence[str], labels: Sequence[str], seeds: Sequence[int],
           overrides: Sequence[str], evaluate, jobs: int = 1) -> str:
    from solo_semppl.experiments.plots import plot_accuracy, plot_curves, by

    rows = run_grid(plan(config_dir, switches, labels, seeds, overrides), config_dir, out, evaluate, jobs)
    reports = []
    for switch in switches:
        switch_rows = [row for row in rows if row["switch"] == switch]
        table = write_tables(switch_rows, out / switch, first="value")
        plot_accuracy(switch_rows, out / switch, group="value")
        reports.append(f"### {switch}\n\n{table}")
    curve_rows = [row for row in rows if row["switch"] in ("noise", "oracle")]
    if curve_rows:
        plot_curves(curve_rows, out, "pseudo_labels.png", lambda rs: by(rs, "value"),
                    lambda c: ("train_pl_accuracy",), "pseudo-label accuracy")
    verdicts = verdict_table(rows)
    (out / "verdicts.md").write_text(verdicts)
    report = "\n".join(reports + [f"### the paper's directions\n\n{verdicts}"])
    (out / "ablations.md").write_text(report)
    return report


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="solo-semppl ablate", description=__doc__.splitlines()[0])
    p.add_argument("--configs", default="digits")
    p.add_argument("--out", default="runs/ablate", type=Path)
    p.add_argument("--switches", nargs="+", default=list(SWEEPS))
    p.add_argument("--labels", nargs="+", default=["10%", "1%"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=40, help="pretraining epochs (the demo's budget)")
    p.add_argument("--finetune-epochs", type=int, default=50)
    add_jobs_option(p)
    p.add_argument("--digits", action="store_true", help="materialise the embedded digits data and point the runs at it")
    p.epilog = "Hydra overrides for every pretraining run (e.g. max_epochs=10) may follow anywhere."
    return p


def main(argv: List[str]) -> int:
    from solo_semppl.experiments.evaluate import evaluator

    args = parse_with_overrides(parser(), argv)
    overrides = [f"max_epochs={args.epochs}", *(digits_overrides() if args.digits else []), *args.overrides]
    print(ablate(config_dir_of(args.configs), args.out, args.switches, args.labels, args.seeds, overrides,
                 evaluator(finetune_epochs=args.finetune_epochs), args.jobs))
    return 0
