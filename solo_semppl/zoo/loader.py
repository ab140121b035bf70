"""Load a zoo model by name: download (verified, cached), build, load with checked keys; or
write it as a checkpoint that solo-learn's upstream ``main_linear.py`` loads.

torch.hub needs a ``hubconf.py`` at the repository root, which this repository's layout does
not have; ``load`` is the one-line equivalent.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional, Union

import torch
from torch import nn

from solo_semppl.io.atomic import temp_file
from .backbones import solo_backbone_of
from .downloader import download
from .manifest import ManifestLike, find_entry
from .state import BACKBONE_PREFIX, load_backbone_state


def load(
    name_or_entry: Union[str, Mapping],
    cache_dir: Union[None, str, Path] = None,
    manifest: ManifestLike = None,
    tf_same_padding: Optional[bool] = None,
    **download_options,
) -> nn.Module:
    """The backbone of a zoo model with its weights.

    Args:
        name_or_entry: a model name in the manifest, or a manifest entry.
        cache_dir, manifest: see ``download``.
        tf_same_padding: pad like TF SAME (see ``same_padding``); default the entry's
            ``tf_same_padding`` (true for converted official JAX checkpoints).
        download_options: ``retries``, ``backoff``, ``timeout`` for ``download``.

    Returns:
        A torchvision ResNet or ``TinyCNN`` (``arch`` of the entry, its ``stem``) with ``fc = Identity``, on
        the CPU, in train mode like any new module (call ``.eval()`` to extract features).
        Missing, unexpected or mis-shaped keys raise ValueError.
    """
    entry = find_entry(name_or_entry, manifest)
    path = download(entry, cache_dir=cache_dir, manifest=manifest, **download_options)
    same = entry["tf_same_padding"] if tf_same_padding is None else tf_same_padding
    return load_backbone_state(path, entry["arch"], stem=entry["stem"], tf_same_padding=same)


def save_solo_checkpoint(
    name_or_entry: Union[str, Mapping],
    out: Union[str, Path],
    cache_dir: Union[None, str, Path] = None,
    manifest: ManifestLike = None,
    **download_options,
) -> dict:
    """Write a zoo model as a solo-learn checkpoint for upstream ``main_linear.py``.

    The file (``.ckpt``, written atomically) holds ``{"state_dict": {"backbone.<key>": tensor}}``,
    what ``main_linear.py`` reads from ``pretrained_feature_extractor``. The weights are loaded
    into the model first, so keys and shapes are checked. Entries padded like TF SAME (converted
    official checkpoints) are refused: solo-learn's ResNets pad like torchvision.

    A ``cifar`` stem entry needs ``data.dataset`` cifar10/cifar100 in ``main_linear.py`` (solo-learn
    swaps the stem only for those).

    Returns:
        The ``main_linear.py`` overrides: ``pretrained_feature_extractor``, ``backbone.name``,
        ``backbone.kwargs``.
    """
    entry = find_entry(name_or_entry, manifest)
    out = Path(out)
    if out.suffix != ".ckpt":
        raise ValueError(f"out: main_linear.py reads a .ckpt file, got {str(out)!r}")
    if entry["tf_same_padding"]:
        raise ValueError(f"{entry['name']}: pads like TF SAME, which solo-learn's ResNets cannot; use load()")
    name, kwargs = solo_backbone_of(entry["arch"])
    model = load(entry, cache_dir=cache_dir, manifest=manifest, **download_options)
    state = {BACKBONE_PREFIX + key: value for key, value in model.state_dict().items()}
    with temp_file(out.parent, out.name) as temp:
        torch.save({"state_dict": state}, temp)
        os.replace(temp, out)
    return {"pretrained_feature_extractor": str(out), "backbone.name": name, "backbone.kwargs": kwargs}
