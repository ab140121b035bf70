"""Backbone state dicts: reading them from files, checking their keys, loading them.

A backbone state dict has torchvision key names (``conv1.weight``, ``layer1.0.bn1.running_mean``,
...; no ``fc.*``). It is read from either

- a backbone-only file (a plain ``{key: tensor}`` dict, as the zoo's release files), or
- a solo-learn checkpoint: a dict whose ``state_dict`` holds ``backbone.*`` keys (the online
  backbone; ``momentum_backbone.*``, projector, classifier and the rest are left out).

Keys are always checked against the model: a missing key, an unexpected key or a shape
mismatch is a ValueError that lists them (solo-learn's own ``main_linear.py`` loads with
``strict=False`` and can silently load nothing).
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Mapping, Union

import torch
from torch import nn

from .backbones import build_backbone
from .same_padding import use_tf_same_padding

BACKBONE_PREFIX = "backbone."
_SHOWN = 8  # how many offending keys an error message lists


def key_listing(keys) -> str:
    """The first few of ``keys``, sorted and comma-separated, with a count of the rest."""
    keys = sorted(keys)
    more = f" ... and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
    return ", ".join(keys[:_SHOWN]) + more


def check_state_keys(expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor], what: str) -> None:
    """Raise ValueError unless ``given`` has exactly the keys and shapes of ``expected``.

    Args:
        expected: the model's ``state_dict()`` (meta tensors are fine: only shapes are read).
        given: the state dict to load.
        what: a description of ``given`` for the message (e.g. the file name and arch).
    """
    missing = set(expected) - set(given)
    unexpected = set(given) - set(expected)
    mismatched = [
        f"{k} (file {tuple(given[k].shape)}, model {tuple(expected[k].shape)})"
        for k in sorted(set(expected) & set(given))
        if tuple(given[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {key_listing(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {key_listing(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es): {key_listing(mismatched)}")
    if problems:
        raise ValueError(f"{what} does not fit the model: " + "; ".join(problems))


def read_torch_file(path: Union[str, Path], trusted: bool = False):
    """``torch.load`` on the CPU; only tensors and plain containers unless ``trusted``.

    Args:
        path: the file.
        trusted: allow arbitrary pickled objects (``weights_only=False``): only for files
            you made yourself. Lightning checkpoints that hold other objects need it.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path: no such file {str(path)!r}")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trusted)
    except pickle.UnpicklingError as err:
        unsupported = [line.strip() for line in str(err).splitlines() if "Unsupported global" in line]
        if not unsupported:
            raise ValueError(f"{path}: not a file torch.load can read (damaged, or not a torch checkpoint)") from err
        raise ValueError(
            f"{path}: holds objects other than tensors and plain containers; if you trust the "
            f"file, load it with trusted=True (CLI: --trusted). Detail: {unsupported[0]}"
        ) from err
    except (RuntimeError, EOFError) as err:
        raise ValueError(f"{path}: not a file torch.load can read (damaged, or not a torch checkpoint)") from err


def backbone_state_from_solo(checkpoint: object, what: str) -> dict:
    """The ``backbone.*`` entries of a solo-learn checkpoint, prefix stripped.

    Args:
        checkpoint: the loaded checkpoint (a dict with ``state_dict``).
        what: a description for error messages (the file name).
    """
    if not isinstance(checkpoint, Mapping) or not isinstance(checkpoint.get("state_dict"), Mapping):
        raise ValueError(f"{what}: not a solo-learn checkpoint (expected a dict with a 'state_dict' entry)")
    state = {
        key[len(BACKBONE_PREFIX):]: value
        for key, value in checkpoint["state_dict"].items()
        if key.startswith(BACKBONE_PREFIX)
    }
    if not state:
        raise ValueError(f"{what}: not a solo-learn checkpoint (its state_dict has no 'backbone.*' keys)")
    return state


def load_into(model: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> nn.Module:
    """Check ``state`` against ``model`` (keys and shapes) and load it with ``assign=True``.

    ``model`` may live on the meta device (then it takes the tensors of ``state``).
    """
    check_state_keys(model.state_dict(), state, what)
    model.load_state_dict(state, strict=True, assign=True)
    return model


def load_backbone_state(
    path: Union[str, Path],
    arch: str,
    stem: str = "imagenet",
    tf_same_padding: bool = False,
    trusted: bool = False,
) -> nn.Module:
    """Build the backbone ``arch`` and load the weights of ``path`` into it, keys checked.

    Args:
        path: a backbone-only state dict file (zoo release) or a solo-learn checkpoint.
        arch: architecture name (see ``backbones``), e.g. ``resnet18``, ``official_resnet50_w1``.
        stem: ``"imagenet"`` or ``"cifar"`` (solo-learn's CIFAR stem).
        tf_same_padding: pad strided convolutions and the max-pool like TensorFlow's SAME
            (needed to reproduce the official JAX checkpoints' numbers exactly).
        trusted: see ``read_torch_file``.

    Returns:
        The backbone (``fc = Identity``) on the CPU, in train mode like any new module.
    """
    content = read_torch_file(path, trusted=trusted)
    what = f"{Path(path).name} (arch {arch}, stem {stem})"
    is_solo = isinstance(content, Mapping) and "state_dict" in content
    state = backbone_state_from_solo(content, what) if is_solo else content
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{what}: expected a dict of tensors or a solo-learn checkpoint")
    model = load_into(build_backbone(arch, stem, device="meta"), state, what)
    return use_tf_same_padding(model) if tf_same_padding else model
