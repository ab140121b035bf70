"""Model cards: evaluation results as the user recorded them, and the card's Markdown.

Results file (JSON), passed by the user, never invented here: a list of entries, or
``{"results": [entries]}``, or one entry. Each entry::

    {"protocol": "linear",                       # required: how it was evaluated
     "command": "solo-semppl linear ...",        # required: the command that produced it
     "metrics": {"top1": 91.2, "top5": 99.7},    # required: name -> number, at least one
     "dataset": "cifar10 test",                  # optional
     "notes": "..."}                             # optional
"""
from __future__ import annotations

import json
import numbers
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Union

from solo_semppl.io.jsonfiles import read_json

NOT_RECORDED = "not recorded"


def read_results(path: Union[str, Path]) -> List[dict]:
    """Read and check a results JSON file (format in the module docstring)."""
    data = read_json(path, "results")
    if isinstance(data, Mapping):
        data = data["results"] if "results" in data else [data]
    if not isinstance(data, list) or not data:
        raise ValueError(f"results: {path} must hold a non-empty list of result entries")
    for index, entry in enumerate(data):
        where = f"results: entry {index} of {path}"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where} is not an object")
        for key in ("protocol", "command"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise ValueError(f"{where} needs a non-empty string '{key}'")
        metrics = entry.get("metrics")
        if not isinstance(metrics, Mapping) or not metrics or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in metrics.values()
        ):
            raise ValueError(f"{where} needs 'metrics': a non-empty object of name -> number")
    return [dict(entry) for entry in data]


def metrics_by_protocol(results: List[dict]) -> Dict[str, Dict[str, float]]:
    """``{protocol (dataset): metrics}`` for the manifest; later entries win on a clash."""
    summary = {}
    for entry in results:
        key = entry["protocol"] + (f" ({entry['dataset']})" if entry.get("dataset") else "")
        summary[key] = dict(entry["metrics"])
    return summary


def lookup(args: Mapping, dotted: str) -> object:
    """``args['a']['b']`` for ``'a.b'``, or ``NOT_RECORDED``."""
    value: object = args
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return NOT_RECORDED
        value = value[part]
    return value


def render_card(
    name: str,
    args: Mapping,
    arch: str,
    stem: str,
    files: Mapping[str, str],
    results: List[dict],
    split: Optional[Mapping[str, str]],
) -> str:
    """The Markdown model card.

    Args:
        name: release name. args: solo-learn's ``args.json`` content.
        arch, stem: backbone architecture and stem.
        files: release-relative path -> sha256 of the backbone file and the checkpoint.
        results: checked entries from ``read_results`` (may be empty).
        split: ``{"file": name, "sha256": hex}`` of the labelled-split file, or None.
    """
    batch = (f"{lookup(args, 'optimizer.batch_size')} per device; devices {lookup(args, 'devices')} "
             f"({lookup(args, 'accelerator')}), {lookup(args, 'num_nodes')} node(s)")
    split_line = f"`{split['file']}` (sha256 `{split['sha256']}`)" if split else "no split file given"
    lines = [
        f"# {name}", "",
        "| | |", "| --- | --- |",
        f"| method | {lookup(args, 'method')} |",
        f"| backbone | {arch} ({stem} stem, fc = Identity) |",
        f"| data | {lookup(args, 'data.dataset')} |",
        f"| labelled split | {split_line} |",
        f"| epochs | {lookup(args, 'max_epochs')} |",
        f"| batch | {batch} |",
        f"| optimizer | {lookup(args, 'optimizer.name')}, lr {lookup(args, 'optimizer.lr')}, "
        f"weight decay {lookup(args, 'optimizer.weight_decay')} |",
        "", "## Evaluation", "",
    ]
    if not results:
        lines += ["No evaluation results were given for this release.", ""]
    for entry in results:
        title = entry["protocol"] + (f" on {entry['dataset']}" if entry.get("dataset") else "")
        lines += [f"### {title}", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {metric} | {value} |" for metric, value in entry["metrics"].items()]
        lines += ["", "Produced by:", "", "```bash", entry["command"], "```", ""]
        lines += [entry["notes"], ""] if entry.get("notes") else []
    lines += ["## Files", "", "| file | sha256 |", "| --- | --- |"]
    lines += [f"| `{rel}` | `{digest}` |" for rel, digest in files.items()]
    backbone = next(iter(files))
    lines += [
        "", "## Use", "", "```python", "from solo_semppl.zoo import load_backbone_state", "",
        f'backbone = load_backbone_state("{backbone}", "{arch}", stem="{stem}")', "```", "",
        "## Method settings (`method_kwargs` of args.json)", "", "```json",
        json.dumps(lookup(args, "method_kwargs"), indent=2, sort_keys=True, default=str), "```", "",
    ]
    return "\n".join(lines)
