"""Construction helpers shared by every network: the seeds' initialisation (orthogonal weights,
zero biases), flattened conv sizes, and the target/predictor pairs of distillation bonuses."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

SQRT2 = math.sqrt(2.0)


def orthogonal(module: nn.Module, gain: float = SQRT2) -> nn.Module:
    """Orthogonal weights with `gain` and zero biases on a Linear or Conv layer; returns the layer."""
    nn.init.orthogonal_(module.weight, gain)
    if module.bias is not None:
        nn.init.zeros_(module.bias)
    return module


def orthogonal_all(module: nn.Module, gain: float = SQRT2) -> nn.Module:
    """Applies `orthogonal` to every Linear, Conv2d and ConvTranspose2d inside `module`."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            orthogonal(layer, gain)
    return module


def channels_last(module: nn.Module) -> nn.Module:
    """Stores the module's 4-D weights channels-last (NHWC); returns the module. Values and state-dict
    keys are unchanged: only the memory order differs, and PyTorch then runs the convolutions
    channels-last whatever the input's order. Pixel networks use it because oneDNN runs it faster on
    the CPU: a PPO + RND iteration on Montezuma 1.38×, an RND predictor step 1.73×
    (`benchmarks/memory_format.py`, docs/benchmarks.md)."""
    return module.to(memory_format=torch.channels_last)


def flat_size(module: nn.Module, in_shape: tuple[int, ...]) -> int:
    """Number of features `module` outputs, flattened, for one input of shape `in_shape`."""
    with torch.no_grad():
        return int(module(torch.zeros(1, *in_shape)).flatten(1).shape[1])


def distillation_pair(
    make_trunk: Callable[[], nn.Module], in_shape: tuple[int, ...], hidden: list[int], feature_size: int
) -> tuple[nn.Module, nn.Module]:
    """(target, predictor) for RND-style bonuses: target = trunk + linear; predictor = its own trunk
    + ELU layers of sizes `hidden` + linear. Both orthogonally initialised (gain √2)."""
    target_trunk = make_trunk()
    flat = flat_size(target_trunk, in_shape)
    target = nn.Sequential(target_trunk, nn.Linear(flat, feature_size))
    layers: list[nn.Module] = [make_trunk()]
    size = flat
    for width in hidden:
        layers += [nn.Linear(size, width), nn.ELU()]
        size = width
    predictor = nn.Sequential(*layers, nn.Linear(size, feature_size))
    return orthogonal_all(target), orthogonal_all(predictor)
