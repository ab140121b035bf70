"""Backbone builders for the zoo: torchvision ResNets and the official SemPPL ResNets.

Architecture names (``arch``):

- torchvision names: ``resnet18``, ``resnet34``, ``resnet50``, ``resnet101``, ``resnet152``,
  ``wide_resnet50_2``, ``wide_resnet101_2`` (solo-learn's ResNet backbones are these);
- ``official_resnet{depth}_w{width}``, e.g. ``official_resnet50_w2`` or
  ``official_resnet200_w2``: the bottleneck ResNets of the official SemPPL (JAX/haiku)
  release, whose width multiplier widens *every* channel, the 64-channel stem included
  (unlike torchvision's ``wide_resnet50_2``, which widens only the bottleneck's inner width);
- ``tiny_cnn_w{width}``: the demo backbone (``solo_semppl.backbones.TinyCNN``), stem ``imagenet``
  only (it has no ResNet stem to swap).

Every backbone returned here has ``fc`` replaced by ``nn.Identity`` (it outputs pooled
features of size 512 or 2048 times the width). Two stems (``stem``):

- ``"imagenet"`` (default): torchvision's 7x7 stride-2 convolution and 3x3 max-pool;
- ``"cifar"``: solo-learn's CIFAR stem, which it uses when ``data.dataset`` is cifar10 or
  cifar100: ``conv1 = Conv2d(3, C, kernel_size=3, stride=1, padding=2, bias=False)`` and
  ``maxpool = Identity()``.
"""
from __future__ import annotations

import re
from contextlib import nullcontext
from typing import Optional, Sequence, Tuple, Union

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet

TORCHVISION_ARCHS = (
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "wide_resnet50_2", "wide_resnet101_2",
)
# Blocks per group of the official release's bottleneck ResNets (utils/networks.py there).
OFFICIAL_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3), 200: (3, 24, 36, 3)}
STEMS = ("imagenet", "cifar")
_OFFICIAL_ARCH = re.compile(r"official_resnet(\d+)_w(\d+)")
_TINY_ARCH = re.compile(r"tiny_cnn_w([1-9]\d*)")


def official_arch_name(depth: int, width: int) -> str:
    """The ``arch`` string of an official ResNet, e.g. ``official_resnet200_w2``."""
    return f"official_resnet{depth}_w{width}"


def official_resnet(depth: Union[int, Sequence[int]], width: int = 1) -> ResNet:
    """A torchvision ``ResNet`` with Bottleneck blocks, every channel widened by ``width``.

    Args:
        depth: 50, 101, 152 or 200 (blocks from ``OFFICIAL_BLOCKS``, e.g. ResNet-200 =
            [3, 24, 36, 3]), or an explicit sequence of 4 block counts (e.g. [1, 1, 1, 1]
            for a tiny test network).
        width: integer width multiplier >= 1. Stem 64*width channels, group g has bottleneck
            width 64*width*2**g and output 256*width*2**g channels, as in haiku's ResNet.

    Returns:
        A ``torchvision.models.resnet.ResNet`` (torchvision module names, stride on the 3x3
        conv as in torchvision v1.5) with ``fc = Identity``; output features 2048*width.
        Parameters have PyTorch's default initialisation: the model is meant to receive
        converted weights.
    """
    if isinstance(depth, int):
        if depth not in OFFICIAL_BLOCKS:
            raise ValueError(f"depth: expected one of {sorted(OFFICIAL_BLOCKS)} or 4 block counts, got {depth}")
        blocks = OFFICIAL_BLOCKS[depth]
    else:
        blocks = tuple(int(b) for b in depth)
        if len(blocks) != 4 or min(blocks) < 1:
            raise ValueError(f"depth: expected 4 positive block counts, got {tuple(depth)}")
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"width: expected a positive integer, got {width!r}")
    with torch.device("meta"):  # torchvision's skeleton only; every layer is rebuilt below
        model = ResNet(Bottleneck, list(blocks))
    model.inplanes = 64 * width
    model.conv1 = nn.Conv2d(3, 64 * width, kernel_size=7, stride=2, padding=3, bias=False)
    model.bn1 = nn.BatchNorm2d(64 * width)
    for g, n_blocks in enumerate(blocks):
        layer = model._make_layer(Bottleneck, 64 * width * 2**g, n_blocks, stride=1 if g == 0 else 2)
        setattr(model, f"layer{g + 1}", layer)
    model.fc = nn.Identity()
    return model


def use_cifar_stem(model: ResNet) -> ResNet:
    """Replace the stem by solo-learn's CIFAR stem, in place (see module docstring)."""
    model.conv1 = nn.Conv2d(3, model.conv1.out_channels, kernel_size=3, stride=1, padding=2, bias=False)
    model.maxpool = nn.Identity()
    return model


def check_arch(arch: str) -> str:
    """Return ``arch`` if it names a supported backbone, else raise ValueError listing them."""
    match = _OFFICIAL_ARCH.fullmatch(arch) if isinstance(arch, str) else None
    tiny = _TINY_ARCH.fullmatch(arch) if isinstance(arch, str) else None
    if arch in TORCHVISION_ARCHS or tiny or (match and int(match[1]) in OFFICIAL_BLOCKS and int(match[2]) >= 1):
        return arch
    raise ValueError(
        f"arch: unsupported backbone {arch!r}; expected one of {', '.join(TORCHVISION_ARCHS)}, "
        f"official_resnet{{depth}}_w{{width}} with depth in {sorted(OFFICIAL_BLOCKS)} or tiny_cnn_w{{width}}"
    )


def arch_of(backbone_name: str, backbone_kwargs: Optional[dict] = None) -> str:
    """The zoo ``arch`` of a solo-learn ``backbone`` config (``name`` and ``kwargs``)."""
    if backbone_name == "tiny_cnn":
        return f"tiny_cnn_w{(backbone_kwargs or {}).get('width', 32)}"
    return check_arch(backbone_name)


def solo_backbone_of(arch: str) -> Tuple[str, dict]:
    """solo-learn's ``backbone.name`` and ``backbone.kwargs`` for a zoo ``arch`` (inverse of ``arch_of``).

    Only the archs solo-learn builds with exactly these keys and this padding: ``resnet18``,
    ``resnet50`` (solo-learn gives both the CIFAR stem for cifar10/100 itself) and ``tiny_cnn_w*``
    (registered by ``solo_semppl.register()``). Others raise ValueError.
    """
    tiny = _TINY_ARCH.fullmatch(check_arch(arch))
    if tiny:
        return "tiny_cnn", {"width": int(tiny[1])}
    if arch in ("resnet18", "resnet50"):
        return arch, {}
    raise ValueError(f"arch: solo-learn has no backbone with the keys and padding of {arch!r} "
                     f"(supported: resnet18, resnet50, tiny_cnn_w*); load it with solo_semppl.zoo.load instead")


def build_backbone(arch: str, stem: str = "imagenet", device: Optional[Union[str, torch.device]] = None) -> nn.Module:
    """Build a backbone without weights (``fc = Identity``).

    Args:
        arch: architecture name (module docstring).
        stem: ``"imagenet"`` or ``"cifar"``.
        device: where to create the parameters; ``"meta"`` builds a shape-only model in
            no time (fill it with ``load_state_dict(..., assign=True)``). Default: torch's.
    """
    check_arch(arch)
    if stem not in STEMS:
        raise ValueError(f"stem: expected one of {STEMS}, got {stem!r}")
    tiny = _TINY_ARCH.fullmatch(arch)
    if tiny and stem != "imagenet":
        raise ValueError(f"stem: {arch} has no ResNet stem; expected 'imagenet', got {stem!r}")
    with torch.device(device) if device is not None else nullcontext():
        match = _OFFICIAL_ARCH.fullmatch(arch)
        if tiny:
            from solo_semppl.backbones import TinyCNN

            return TinyCNN(int(tiny[1]))
        if match:
            model = official_resnet(int(match[1]), int(match[2]))
        else:
            model = getattr(torchvision.models, arch)(weights=None)
            model.fc = nn.Identity()
        if stem == "cifar":
            use_cifar_stem(model)
    return model
