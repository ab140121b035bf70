"""Projection and prediction heads."""
import torch.nn as nn


def mlp(in_dim: int, hidden_dim: int, out_dim: int, layers: int = 2) -> nn.Sequential:
    """(Linear -> BN -> ReLU) x (layers - 1) -> Linear: the BYOL/ReLICv2 projector and predictor
    at 2 layers, SimCLRv2's deeper projector at 3 (``proj_layers``; ``solo-semppl eval finetune
    --from-layer projector1`` fine-tunes from its first layer)."""
    blocks, width = [], in_dim
    for _ in range(layers - 1):
        blocks += [nn.Linear(width, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU()]
        width = hidden_dim
    return nn.Sequential(*blocks, nn.Linear(width, out_dim))

