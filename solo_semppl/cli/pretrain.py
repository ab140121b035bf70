"""``solo-semppl pretrain``: the hydra app (solo-learn's config layout) around
``solo_semppl.training.pretrain.run``.

    solo-semppl pretrain --config-name digits/semppl [key=value ...]
    solo-semppl pretrain --config-path my/configs --config-name semppl.yaml
"""
import sys
from typing import List, Optional

import hydra

from solo_semppl.training.configs import CONFIG_DIR


def resolve_config_args(argv: List[str]) -> List[str]:
    """``--config-name digits/semppl`` without ``--config-path`` names an installed config:
    rewritten to ``--config-path <installed>/pretrain/digits --config-name semppl``."""
    if any(a in ("--config-path", "-cp") or a.startswith("--config-path=") for a in argv):
        return argv
    for i, arg in enumerate(argv):
        name_at = i + 1 if arg in ("--config-name", "-cn") else None
        if arg.startswith("--config-name="):
            argv = argv[:i] + ["--config-name", arg.split("=", 1)[1]] + argv[i + 1:]
            name_at = i + 1
        if name_at is not None and name_at < len(argv) and "/" in argv[name_at]:
            group, name = argv[name_at].rsplit("/", 1)
            path = CONFIG_DIR / "pretrain" / group
            if not path.is_dir():
                known = sorted(p.name for p in (CONFIG_DIR / "pretrain").iterdir() if p.is_dir())
                raise SystemExit(f"solo-semppl pretrain: no installed configs for {group!r} (known: {known})")
            return argv[:name_at - 1] + ["--config-path", str(path), "--config-name", name] + argv[name_at + 1:]
    return argv


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the hydra app on ``argv`` (hydra reads its arguments from sys.argv)."""
    from solo_semppl.training.pretrain import run as pretrain_run

    argv = sys.argv[1:] if argv is None else argv
    sys.argv = [f"{sys.argv[0]} pretrain", *resolve_config_args(list(argv))]
    hydra.main(version_base="1.2", config_path=str(CONFIG_DIR / "pretrain"), config_name=None)(pretrain_run)()
    return 0
