"""Devices handling that works on CPU as well as on GPUs and TPUs.

solo-learn's ``parse_cfg`` scales the learning rate by ``len(cfg.devices)`` (an int fails
there) while Lightning's CPU accelerator rejects a list. ``normalise_devices`` accepts an int,
a list or a string in the config, rewrites ``cfg.devices`` as a list (for ``parse_cfg`` and
args.json) and returns what the Trainer needs.
"""
from typing import List, Union

from omegaconf import DictConfig, ListConfig, OmegaConf

EXPECTED = "expected a positive int, a list of ids or a string like '0,1'"


def normalise_devices(cfg: DictConfig) -> Union[int, List[int]]:
    devices = OmegaConf.select(cfg, "devices", default=1)
    accelerator = OmegaConf.select(cfg, "accelerator", default="auto")
    if isinstance(devices, str):
        try:
            devices = [int(d) for d in devices.split(",") if d.strip()] if "," in devices else int(devices)
        except ValueError:
            raise ValueError(f"devices = {devices!r}: {EXPECTED}") from None
    if isinstance(devices, ListConfig):
        devices = list(devices)
    if isinstance(devices, bool) or not isinstance(devices, (int, list)) or devices in (0, []):
        raise ValueError(f"devices = {devices!r}: {EXPECTED}")
    ids = devices if isinstance(devices, list) else list(range(devices))
    cfg.devices = ids
    if accelerator in ("cpu", "tpu"):
        return len(ids)
    return ids
