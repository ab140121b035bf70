"""Load a zoo model by name: download (verified, cached), build, load with checked keys."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Union

from torch import nn

from .downloader import download
from .manifest import ManifestLike, find_entry
from .state import load_backbone_state


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
        A torchvision ResNet (``arch`` of the entry, its ``stem``) with ``fc = Identity``, on
        the CPU, in train mode like any new module (call ``.eval()`` to extract features).
        Missing, unexpected or mis-shaped keys raise ValueError.
    """
    entry = find_entry(name_or_entry, manifest)
    path = download(entry, cache_dir=cache_dir, manifest=manifest, **download_options)
    same = entry["tf_same_padding"] if tf_same_padding is None else tf_same_padding
    return load_backbone_state(path, entry["arch"], stem=entry["stem"], tf_same_padding=same)
