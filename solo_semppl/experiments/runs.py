"""One pretraining run of a grid, in process, resumable: a finished run is not redone.

A run lives in ``<out>/<cell>/seed<k>/``: the solo-learn run folder under it (args.json,
checkpoint, split.json, metrics.csv) and ``result.json`` once it is evaluated. Method
``supervised`` writes a run folder with the randomly initialised backbone (no pretraining), so
that fine-tuning it is the supervised-only baseline on the labelled images.
"""
import json
import os
from pathlib import Path
from typing import Callable, Dict, List, Optional

from omegaconf import OmegaConf

from solo_semppl.io.jsonfiles import write_json_atomic
from solo_semppl.training.configs import compose

SUPERVISED = "supervised"


def initial_run(cfg, out: Path) -> Path:
    """A solo-learn run folder holding the randomly initialised model of ``cfg``."""
    import torch
    from lightning.pytorch import seed_everything
    from solo.args.pretrain import parse_cfg
    from solo.methods import METHODS

    from solo_semppl import register
    from solo_semppl.data.semi_config import resolve_split
    from solo_semppl.data.split import save_split
    from solo_semppl.training.devices import normalise_devices

    register()
    normalise_devices(cfg)
    cfg = parse_cfg(cfg)
    split = resolve_split(cfg)
    seed_everything(cfg.seed)
    model = METHODS[cfg.method](cfg)
    run_dir = out / "init"
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / "init.ckpt.tmp"
    torch.save({"state_dict": model.state_dict(), "epoch": 0}, tmp)
    os.replace(tmp, run_dir / "init.ckpt")
    write_json_atomic(run_dir / "args.json", OmegaConf.to_container(cfg))
    if split is not None:
        save_split(split, run_dir / "split.json")
    return run_dir


def pretrain_run(config_dir: Path, method: str, overrides: List[str], out: Path) -> Path:
    """Pretrains ``<config_dir>/<method>.yaml`` (or builds the supervised init) into ``out``."""
    from solo_semppl.training.pretrain import run

    name = "relic" if method == SUPERVISED else method
    cfg = compose(config_dir, name, [*overrides, f"checkpoint.dir={out}", "+enable_progress_bar=False",
                                     "+enable_model_summary=False"])
    if method == SUPERVISED:
        return initial_run(cfg, out)
    return Path(run(cfg))


def cached_run(
    out: Path, config_dir: Path, method: str, overrides: List[str],
    evaluate: Callable[[Path], Dict], log: Optional[Callable[[str], None]] = None,
) -> Dict:
    """Pretrain + evaluate one run unless ``out/result.json`` exists; returns its result."""
    result_path = out / "result.json"
    if result_path.is_file():
        return json.loads(result_path.read_text())
    if log:
        log(f"pretraining {method} -> {out}")
    run_dir = pretrain_run(config_dir, method, overrides, out)
    result = {"method": method, "run_dir": str(run_dir), "overrides": overrides, **evaluate(run_dir)}
    write_json_atomic(result_path, result)
    return result
