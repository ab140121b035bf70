"""A tiny CNN backbone for CPU demos and tests (``backbone.name: tiny_cnn``).

Three 3x3 conv-BN-ReLU stages (the last two with stride 2) and global average pooling; works
for any input size >= 4 px, so 16 px large and 8 px small crops run through the same network.
``register()`` adds it to solo-learn's backbone table. Config: backbone.kwargs.width (int, 32):
channels of the first stage (then 2x and 4x); ``num_features`` = 4 * width.
"""
import torch.nn as nn


def conv_bn_relu(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)
    )


class TinyCNN(nn.Module):
    def __init__(self, width: int = 32):
        super().__init__()
        self.num_features = 4 * width
        self.features = nn.Sequential(
            conv_bn_relu(3, width, 1), conv_bn_relu(width, 2 * width, 2), conv_bn_relu(2 * width, 4 * width, 2)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.pool(self.features(x)).flatten(1)


def tiny_cnn(method: str = None, width: int = 32, **kwargs) -> TinyCNN:
    """solo-learn backbone constructor signature: ``(method, **backbone.kwargs)``."""
    if kwargs:
        raise ValueError(f"backbone.kwargs {sorted(kwargs)} are not options of tiny_cnn (valid: ['width'])")
    return TinyCNN(width)


BACKBONES = {"tiny_cnn": tiny_cnn}
