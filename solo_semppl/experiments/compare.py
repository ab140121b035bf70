"""``solo-semppl compare``: methods side by side on the same data, split, backbone and budget.

For every label setting x method x seed: pretrain (``runs.cached_run``: finished runs are not
redone), then fine-tune, linear, k-NN and labeller on the labelled images only; write
``results.csv`` (one row a run), ``results.md`` (mean +- std over seeds) and PNG plots
(``plots.py``). A method ``<m>+distil`` (e.g. ``semppl+distil``) is the run of ``<m>`` followed
by SimCLRv2's distillation of its fine-tuned model (``evaluate.distil_run``): its row's
fine-tune column is the student's top-1, its kNN column the student backbone's.
"""
import argparse
import csv
import os
import statistics
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Dict, List, Sequence

from tqdm.auto import tqdm

from solo_semppl.experiments.runs import SUPERVISED, cached_run

DISTIL = "+distil"
DEFAULT_METHODS = ("semppl", "relic", "simclr", "byol", "suncet", "paws", "semppl" + DISTIL, "simclr" + DISTIL, SUPERVISED)
METRICS = ("finetune_top1", "linear_top1", "knn_top1", "labeller_top1", "pl_accuracy")
HEADERS = ("fine-tune top-1", "linear top-1", "kNN top-1", "labeller top-1", "pseudo-label acc.")


def label_setting(spec: str):
    """'10%' -> fraction 0.1; '3pc' (3 per class) -> per_class 3. Returns (name, overrides)."""
    if spec.endswith("%"):
        return spec, [f"semi_supervised.fraction={float(spec[:-1]) / 100}"]
    if spec.endswith("pc"):
        return spec, ["semi_supervised.fraction=null", f"+semi_supervised.per_class={int(spec[:-2])}"]
    raise ValueError(f"label setting {spec!r}: expected a percentage like '10%' or per class like '2pc'")


def summarise(rows: List[Dict], group_keys: Sequence[str] = ("labels", "method")) -> List[Dict]:
    """Mean and std over seeds of every metric, per group."""
    groups = defaultdict(list)
    for row in rows:
        groups[tuple(row[k] for k in group_keys)].append(row)
    summary = []
    for key, members in groups.items():
        entry = dict(zip(group_keys, key), seeds=len(members))
        for metric in METRICS:
            values = [m[metric] for m in members if m.get(metric) is not None]
            entry[metric] = statistics.mean(values) if values else None
            entry[metric + "_std"] = statistics.stdev(values) if len(values) > 1 else 0.0 if values else None
        summary.append(entry)
    return summary


def markdown_table(summary: List[Dict], first: str = "method") -> str:
    def cell(entry, metric):
        if entry[metric] is None:
            return "-"
        return f"{entry[metric]:.1f} ± {entry[metric + '_std']:.1f}"

    lines = [f"| labels | {first} | seeds | " + " | ".join(HEADERS) + " |", "|---" * (3 + len(METRICS)) + "|"]
    for e in summary:
        lines.append(f"| {e['labels']} | {e[first]} | {e['seeds']} | " + " | ".join(cell(e, m) for m in METRICS) + " |")
    return "\n".join(lines) + "\n"


def raw_pixel_floors(rows: List[Dict]) -> Dict[str, float]:
    """{labels: top-1} of logistic regression on raw pixels, on the split of each label
    setting's first run (every seed of a setting shares the split: ``semi_supervised.seed``)."""
    from solo_semppl.eval.checkpoint import load_run
    from solo_semppl.eval.raw_pixels import raw_pixel_floor

    firsts = {row["labels"]: row["run_dir"] for row in reversed(rows) if row.get("run_dir")}
    return {labels: raw_pixel_floor(load_run(run_dir))["top1"] for labels, run_dir in firsts.items()}


def floor_lines(floors: Dict[str, float]) -> str:
    """Table rows of the raw-pixel floor (a linear classifier: the linear column)."""
    cells = ["-"] * len(METRICS)
    lines = []
    for labels, top1 in floors.items():
        cells[METRICS.index("linear_top1")] = f"{top1:.1f}"
        lines.append(f"| {labels} | raw pixels (logistic regression) | - | " + " | ".join(cells) + " |")
    return "".join(line + "\n" for line in lines)


def write_tables(rows: List[Dict], out: Path, first: str = "method", floors: Dict[str, float] = None) -> str:
    out.mkdir(parents=True, exist_ok=True)
    fields = sorted({k for row in rows for k in row if not isinstance(row[k], (list, dict))})
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    table = markdown_table(summarise(rows, ("labels", first)), first) + floor_lines(floors or {})
    (out / "results.md").write_text(table)
    return table


def one_share_of_the_cores(jobs: int) -> None:
    """Grid worker setup: the cores split evenly between ``jobs`` processes, no progress bars."""
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // jobs))
    os.environ["TQDM_DISABLE"] = "1"


def for_each(tasks: List[Dict], work, jobs: int, desc: str) -> Dict[str, Dict]:
    """{task["dir"]: work(task)} with one progress bar; ``jobs`` > 1 runs that many tasks at
    once in worker processes, each on its share of the cores (``work`` must be picklable): on
    a small model this keeps the cores busier than one run's intra-op threads do."""
    results, bar = {}, tqdm(total=len(tasks), desc=desc, unit="run")

    def done(task, result):
        results[task["dir"]] = result
        bar.set_postfix_str(f"{task['labels']} {task['method']} seed {task['seed']}")
        bar.update()

    if jobs <= 1:
        for task in tasks:
            done(task, work(task, log=bar.write))
    else:
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=one_share_of_the_cores,
                                 initargs=(jobs,)) as pool:
            futures = {pool.submit(work, task): task for task in tasks}
            for future in as_completed(futures):
                done(futures[future], future.result())
    bar.close()
    return results


def run_cell(cell: Dict, config_dir: Path, out: Path, evaluate, log=None) -> Dict:
    return cached_run(out / cell["dir"], config_dir, cell["method"], cell["overrides"], evaluate, log=log)


def distil_task(task: Dict, results: Dict[str, Dict], log=None) -> Dict:
    from solo_semppl.experiments.evaluate import distil_run

    return distil_run(Path(results[task["dir"]]["run_dir"]))


def run_grid(cells: List[Dict], config_dir: Path, out: Path, evaluate, jobs: int = 1) -> List[Dict]:
    """Runs every cell ({labels, method, seed, overrides, dir, ...}); returns one row per cell.

    Cells that share a ``dir`` are one run (trained once). A cell with ``distil: true`` also
    gets SimCLRv2's distillation of that run (a second pass, after the runs). Results do not
    depend on ``jobs``.
    """
    unique = list({cell["dir"]: cell for cell in cells}.values())
    results = for_each(unique, partial(run_cell, config_dir=config_dir, out=out, evaluate=evaluate), jobs, "runs")
    distilled = [cell for cell in unique if any(c.get("distil") and c["dir"] == cell["dir"] for c in cells)]
    students = {}
    if distilled:
        students = for_each(distilled, partial(distil_task, results=results), jobs, "distil")
    rows = []
    for cell in cells:
        row = {**{k: v for k, v in cell.items() if k not in ("overrides", "distil")}, **results[cell["dir"]]}
        rows.append(distil_row(row, students[cell["dir"]]) if cell.get("distil") else row)
    return rows


def distil_row(row: Dict, student: Dict) -> Dict:
    """The "<method> + distil" row: the student's top-1 in the fine-tune column, its backbone's
    kNN in the kNN column; the run's other evaluations are not the student's."""
    kept = {k: v for k, v in row.items() if k not in METRICS}
    return {**kept, **student, "method": f"{row['method']} + distil", "finetune_top1": student["distil_top1"],
            "knn_top1": student["distil_knn_top1"]}


def compare(config_dir: Path, out: Path, labels: Sequence[str], methods: Sequence[str], seeds: Sequence[int],
            overrides: Sequence[str], evaluate, jobs: int = 1) -> str:
    cells = []
    for spec in labels:
        name, label_overrides = label_setting(spec)
        for method in methods:
            base = method[:-len(DISTIL)] if method.endswith(DISTIL) else method
            for seed in seeds:
                cells.append({
                    "labels": name, "method": base, "seed": seed, "distil": base != method,
                    "dir": f"{name.replace('%', 'pct')}/{base}/seed{seed}",
                    "overrides": [*overrides, *label_overrides, f"seed={seed}"],
                })
    rows = run_grid(cells, config_dir, out, evaluate, jobs)
    floors = raw_pixel_floors(rows)
    table = write_tables(rows, out, floors=floors)
    from solo_semppl.experiments.plots import plot_all

    plots = plot_all(rows, out, floors=floors)
    return table + "\nplots:\n" + "\n".join(f"  {p}" for p in plots)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="solo-semppl compare", description=__doc__.splitlines()[0])
    p.add_argument("--configs", default="digits", help="installed config group (digits, cifar, ...) or a config folder")
    p.add_argument("--out", default="runs/compare", type=Path)
    p.add_argument("--labels", nargs="+", default=["10%", "1%"], help="label settings: '10%%' or '2pc' (per class)")
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--finetune-epochs", type=int, default=30)
    add_jobs_option(p)
    p.epilog = "Hydra overrides for every pretraining run (e.g. max_epochs=10) may follow anywhere."
    return p


def add_jobs_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", type=int, default=2, help="runs trained at once, each on its share of the cores")


def parse_with_overrides(parser: argparse.ArgumentParser, argv: List[str]) -> argparse.Namespace:
    """Hydra overrides (KEY=VALUE, +KEY=VALUE, ~KEY) may stand anywhere, even after a list option
    such as ``--seeds 0 1 2``; they are taken out before argparse sees the rest."""
    overrides = [a for a in argv if not a.startswith("-") and ("=" in a or a.startswith("~"))]
    args = parser.parse_args([a for a in argv if a not in overrides])
    args.overrides = overrides
    return args


def digits_overrides(cache_dir=None) -> List[str]:
    """Materialises the embedded digits image folder (once) and points a run's data at it."""
    from solo_semppl.data.digits import materialise_digits

    root = materialise_digits(cache_dir)
    return [f"data.train_path={root / 'train'}", f"data.val_path={root / 'val'}"]


def config_dir_of(name: str) -> Path:
    from solo_semppl.training.configs import CONFIG_DIR

    path = Path(name)
    if path.is_dir():
        return path.resolve()
    path = CONFIG_DIR / "pretrain" / name
    if not path.is_dir():
        raise SystemExit(f"--configs {name!r}: neither a folder nor an installed config group")
    return path


def main(argv: List[str]) -> int:
    from solo_semppl.experiments.evaluate import evaluator

    args = parse_with_overrides(parser(), argv)
    table = compare(config_dir_of(args.configs), args.out, args.labels, args.methods, args.seeds,
                    args.overrides, evaluator(finetune_epochs=args.finetune_epochs), args.jobs)
    print(table)
    return 0
