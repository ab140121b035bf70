"""Evaluation results as JSON in ``<run folder>/eval/<kind>.json``, written atomically."""
from pathlib import Path
from typing import Dict

from solo_semppl.io.jsonfiles import write_json_atomic


def write_result(run, kind: str, record: Dict, out=None) -> Path:
    path = Path(out) if out else run.path.parent / "eval" / f"{kind}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"kind": kind, "checkpoint": str(run.path), "method": run.args.method,
              "split_sha256": run.split.sha256() if run.split is not None else None, **record}
    write_json_atomic(path, record)
    return path
