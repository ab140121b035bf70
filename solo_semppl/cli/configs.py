"""``solo-semppl configs``: prints where the installed configs are (the repo's ``scripts/``)."""
from typing import List

from solo_semppl.training.configs import CONFIG_DIR


def main(argv: List[str]) -> int:
    print(CONFIG_DIR)
    return 0
