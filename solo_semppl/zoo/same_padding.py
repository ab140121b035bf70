"""TensorFlow/haiku ``padding='SAME'`` for strided convolutions and max-pools in PyTorch.

SAME pads a dimension of size n, for kernel k, stride s and dilation d, by
``total = max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)``: ``total // 2`` before
(top/left) and the rest after (bottom/right). torchvision pads symmetrically, so at stride 2
with even sizes the two differ: the 7x7 stem pads 2/3 (torchvision 3/3), the 3x3 max-pool 0/1
(torchvision 1/1), a strided 3x3 conv 0/1 (torchvision 1/1), which shifts a converted JAX
network by one pixel. For stride 1 and odd kernels SAME is symmetric and equals torchvision's
padding, so only modules with a stride above 1 are replaced. The padding is computed from
each input's size at run time (static for a given input shape).
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn


def same_padding(size: Sequence[int], kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]) -> Tuple[int, ...]:
    """``F.pad`` amounts (left, right, top, bottom) of TF SAME for an input of ``size`` (H, W)."""
    pads = []
    for n, k, s, d in zip(size, kernel, stride, dilation):
        total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    return left, right, top, bottom


def _pair(value) -> Tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


class TFSameConv2d(nn.Conv2d):
    """``nn.Conv2d`` (zero padding) that pads its input like TF SAME instead of ``padding``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, same_padding(x.shape[-2:], self.kernel_size, self.stride, self.dilation))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class TFSameMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` that pads its input (with -inf) like TF SAME instead of ``padding``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = same_padding(x.shape[-2:], _pair(self.kernel_size), _pair(self.stride), _pair(self.dilation))
        x = F.pad(x, pads, value=float("-inf"))
        return F.max_pool2d(x, self.kernel_size, self.stride, 0, self.dilation, self.ceil_mode)


def use_tf_same_padding(model: nn.Module) -> nn.Module:
    """Make every strided ``Conv2d`` and ``MaxPool2d`` of ``model`` pad like TF SAME, in place.

    The modules keep their parameters and names (state_dict keys do not change); only their
    class becomes ``TFSameConv2d`` / ``TFSameMaxPool2d`` and their ``padding`` 0.

    Args:
        model: any module; convolutions must use ``padding_mode='zeros'``.

    Returns:
        ``model``.
    """
    swaps = {nn.Conv2d: TFSameConv2d, nn.MaxPool2d: TFSameMaxPool2d}
    for module in model.modules():
        same_class = swaps.get(type(module))
        if same_class is None or max(_pair(module.stride)) == 1:
            continue
        if isinstance(module, nn.Conv2d) and module.padding_mode != "zeros":
            raise ValueError(f"model: SAME padding needs padding_mode='zeros', got {module.padding_mode!r}")
        module.__class__ = same_class
        module.padding = (0, 0) if isinstance(module, nn.Conv2d) else 0
    return model
