"""Weight initialisation shared by every network (the seeds' rule: orthogonal weights, zero biases)."""

from __future__ import annotations

import math

from torch import nn

SQRT2 = math.sqrt(2.0)


def orthogonal(module: nn.Module, gain: float = SQRT2) -> nn.Module:
    """Orthogonal weights with `gain` and zero biases on a Linear or Conv layer; returns the layer."""
    nn.init.orthogonal_(module.weight, gain)
    if module.bias is not None:
        nn.init.zeros_(module.bias)
    return module


def orthogonal_all(module: nn.Module, gain: float = SQRT2) -> nn.Module:
    """Applies `orthogonal` to every Linear and Conv2d inside `module`."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            orthogonal(layer, gain)
    return module


def conv_output_size(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    return (size + 2 * padding - kernel) // stride + 1
