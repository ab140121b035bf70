"""Evaluation results as JSON in ``<run folder>/eval/<kind>.json``, written atomically."""
import json
from pathlib import Path
from typing import Dict

from solo_semppl.zoo.atomic import write_text_atomic


def write_result(run, kind: str, record: Dict, out=None) -> Path:
    path = Path(out) if out else run.path.parent / "eval" / f"{kind}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"kind": kind, "checkpoint": str(run.path), "method": run.args.method,
              "split_sha256": run.split.sha256() if run.split is not None else None, **record}
    write_text_atomic(path, json.dumps(record, indent=2))
    return path
