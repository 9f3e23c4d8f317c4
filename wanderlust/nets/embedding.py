"""The state embedding φ that learned-feature bonuses share (ICM, RIDE, E3B, NGU, disagreement, RE3).

On MiniGrid it is RIDE's φ: one-hot cells → three 3×3/2 convs (32, 32, 128 ch, ELU), 128 features
for the 7×7 view. On pixels it reads the whole observation (Atari's frame stack, so that motion is
visible to inverse models; Procgen's RGB frame), scaled to [0, 1], through the RND trunk of the SND
seed (3×3/2 convs 16, 32, 64, then 3×3/1 64, ELU), then a linear layer to `feature_size`.
"""

from __future__ import annotations

import torch
from torch import nn

from wanderlust.nets.atari import rnd_convs
from wanderlust.nets.init import channels_last, flat_size, orthogonal_all
from wanderlust.nets.minigrid import CELL_VALUES, one_hot_cells, ride_convs


class Embedding(nn.Module):
    """uint8 observations [B, *obs_shape] → features [B, feature_size]."""

    def __init__(self, obs_shape: tuple[int, ...], family: str, feature_size: int = 128):
        super().__init__()
        self.grid = family == "minigrid"
        if self.grid:
            trunk = ride_convs(sum(CELL_VALUES), (32, 32, 128))
            in_shape = (sum(CELL_VALUES), obs_shape[0], obs_shape[1])
        else:
            trunk = rnd_convs(obs_shape[0])
            in_shape = tuple(obs_shape)
        flat = flat_size(trunk, in_shape)
        # RIDE's φ on the 7×7 view ends at 128 features with no linear layer; add one otherwise.
        head = nn.Identity() if flat == feature_size else nn.Linear(flat, feature_size)
        self.net = orthogonal_all(nn.Sequential(trunk, head))
        if not self.grid:
            channels_last(self.net)
        self.output_size = feature_size

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = one_hot_cells(obs) if self.grid else obs.float() / 255.0
        return self.net(x)
