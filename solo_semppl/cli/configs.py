"""``solo-semppl configs``: prints where the installed configs are (the repo's ``scripts/``)."""
from pathlib import Path
from typing import List

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def main(argv: List[str]) -> int:
    print(CONFIG_DIR)
    return 0
