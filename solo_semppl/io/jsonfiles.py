"""JSON files: reading with clear errors, writing atomically."""
from __future__ import annotations

import json
from pathlib import Path

from solo_semppl.io.atomic import write_text_atomic


def read_json(path: Path, what: str, hint: str = "") -> object:
    """Parsed content of ``path``; ValueError naming ``what`` if absent or not JSON.

    Args:
        path: the file. what: the argument's name for the message.
        hint: appended to the message when the file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what}: no such file {str(path)!r}{hint}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{what}: {path} is not valid JSON ({err})") from err


def write_json_atomic(path: Path, data: object) -> None:
    """Write ``data`` as indented JSON to ``path`` via a temporary file and ``os.replace``;
    values JSON cannot hold (paths, enums) are written as their ``str``."""
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")
