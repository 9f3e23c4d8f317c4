"""Atari networks of the SND seed: policy encoders A–D and the RND target/predictor.

Every policy encoder takes a uint8 frame stack [B, 4, H, W], scales it by 1/255 and returns a
feature vector; `heads.SeedHeads` turns features into policy logits and the two values.
"""

from __future__ import annotations

import torch
from torch import nn

from wanderlust.nets.init import channels_last, distillation_pair, flat_size, orthogonal_all


class _ConvEncoder(nn.Module):
    """Convs → flatten → fully connected layers; the shape shared by models A, B and C."""

    def __init__(self, in_shape: tuple[int, ...], convs: nn.Sequential, fc_sizes: list[int]):
        super().__init__()
        self.convs = convs
        layers: list[nn.Module] = []
        size = flat_size(convs, in_shape)
        for out in fc_sizes:
            layers += [nn.Linear(size, out), nn.ReLU()]
            size = out
        self.fc = nn.Sequential(*layers)
        self.output_size = size
        channels_last(orthogonal_all(self))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convs(obs.float() / 255.0).flatten(1))


def model_a(in_shape: tuple[int, ...]) -> _ConvEncoder:
    """Model A (Burda et al.'s RND policy): 8×8/4 32 → 3×3/2 64 → 3×3/1 64 → FC 448 → FC 448."""
    c = in_shape[0]
    convs = nn.Sequential(
        nn.Conv2d(c, 32, 8, 4), nn.ReLU(),
        nn.Conv2d(32, 64, 3, 2), nn.ReLU(),
        nn.Conv2d(64, 64, 3, 1), nn.ReLU(),
    )
    return _ConvEncoder(in_shape, convs, [448, 448])


def model_b(in_shape: tuple[int, ...]) -> _ConvEncoder:
    """Model B: model A widened to 64/64/128 channels and FC 800."""
    c = in_shape[0]
    convs = nn.Sequential(
        nn.Conv2d(c, 64, 8, 4), nn.ReLU(),
        nn.Conv2d(64, 64, 3, 2), nn.ReLU(),
        nn.Conv2d(64, 128, 3, 1), nn.ReLU(),
    )
    return _ConvEncoder(in_shape, convs, [800, 800])


def model_c(in_shape: tuple[int, ...]) -> _ConvEncoder:
    """Model C: four 3×3 stride-2 convs (32/64/64/128 channels) → FC 512."""
    c = in_shape[0]
    convs = nn.Sequential(
        nn.Conv2d(c, 32, 3, 2, 1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, 2, 1), nn.ReLU(),
        nn.Conv2d(64, 128, 3, 2, 1), nn.ReLU(),
    )
    return _ConvEncoder(in_shape, convs, [512])


class _SpatialAttention(nn.Module):
    """Single-head self-attention across the positions of a feature map, added residually."""

    def __init__(self, channels: int):
        super().__init__()
        self.query = nn.Conv2d(channels, channels, 1)
        self.key = nn.Conv2d(channels, channels, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.scale = channels ** -0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # [B, HW, C]
        k = self.key(x).flatten(2)  # [B, C, HW]
        v = self.value(x).flatten(2).transpose(1, 2)
        attention = torch.softmax(q @ k * self.scale, dim=-1)
        return x + (attention @ v).transpose(1, 2).reshape(b, c, h, w)


class _Residual1x1(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.conv(x))


class ModelD(nn.Module):
    """Model D: an 8×8/8 patch conv (128 ch), then two (attention + residual 1×1) blocks, FC 512."""

    def __init__(self, in_shape: tuple[int, ...]):
        super().__init__()
        channels = 128
        self.patches = nn.Sequential(nn.Conv2d(in_shape[0], channels, 8, 8), nn.ReLU())
        self.blocks = nn.Sequential(
            _SpatialAttention(channels), _Residual1x1(channels),
            _SpatialAttention(channels), _Residual1x1(channels),
        )
        size = flat_size(self.patches, in_shape)
        self.fc = nn.Sequential(nn.Linear(size, 512), nn.ReLU())
        self.output_size = 512
        channels_last(orthogonal_all(self))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.patches(obs.float() / 255.0))
        return self.fc(x.flatten(1))


ATARI_MODELS = {"A": model_a, "B": model_b, "C": model_c, "D": ModelD}


def rnd_convs(in_channels: int) -> nn.Sequential:
    """The RND target/predictor trunk of the seed: 3×3/2 convs of 16, 32, 64 ch, then 3×3/1 64 ch."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, 2), nn.ELU(),
        nn.Conv2d(16, 32, 3, 2), nn.ELU(),
        nn.Conv2d(32, 64, 3, 2), nn.ELU(),
        nn.Conv2d(64, 64, 3, 1), nn.ELU(),
        nn.Flatten(),
    )


def rnd_networks(in_shape: tuple[int, ...], feature_size: int = 512) -> tuple[nn.Module, nn.Module]:
    """(target, predictor): target = convs + linear 512; predictor = convs + FC 512 → 512 → 512."""
    target, predictor = distillation_pair(lambda: rnd_convs(in_shape[0]), in_shape, [512, 512], feature_size)
    return channels_last(target), channels_last(predictor)


__all__ = ["ATARI_MODELS", "ModelD", "model_a", "model_b", "model_c", "rnd_networks"]
