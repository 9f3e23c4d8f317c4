"""The grid-world encoder: HIMA's 5×5 egocentric window of binary planes → one feature vector."""

from __future__ import annotations

import math

import torch
from torch import nn

from wanderlust.nets.init import orthogonal_all


class GridWorldEncoder(nn.Module):
    """Flattens the binary planes uint8 [B, 5, 5, C] (walls, out of bounds, goal, floor colours) and
    reads them with two fully connected layers (ReLU). The window is 25 cells, small enough that an
    MLP sees all of it at once; no convolution is needed."""

    def __init__(self, obs_shape: tuple[int, ...], hidden_size: int = 256):
        super().__init__()
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(obs_shape), hidden_size), nn.ReLU(),
            nn.Linear(hidden_size, hidden_size), nn.ReLU(),
        )
        self.output_size = hidden_size
        orthogonal_all(self)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.fc(obs.float())
