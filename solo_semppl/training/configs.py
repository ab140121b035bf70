"""Where the installed configs are (the repo's ``scripts/``, shipped as ``solo_semppl/configs``)
and composing one with hydra overrides."""
from pathlib import Path
from typing import List

from omegaconf import OmegaConf

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def compose(config_dir: Path, name: str, overrides: List[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(config_dir), version_base="1.2"):
        cfg = hydra_compose(config_name=name, overrides=overrides)
    OmegaConf.set_struct(cfg, False)
    return cfg
