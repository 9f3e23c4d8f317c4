"""MiniGrid networks: RIDE's convolutional encoder over one-hot cells, and RND's target/predictor.

MiniGrid observations are grids of categorical cells (object index, colour index, state), so the
encoder one-hot encodes each channel instead of feeding the raw indices as intensities.
"""

from __future__ import annotations

import torch
from torch import nn

from wanderlust.nets.init import distillation_pair, flat_size, orthogonal_all

# minigrid's encoding: 11 object types, 6 colours, 3 door states (4 agent directions in full view).
CELL_VALUES = (11, 6, 4)


_PLANE_OFFSETS = torch.tensor([0, CELL_VALUES[0], CELL_VALUES[0] + CELL_VALUES[1]])


def one_hot_cells(obs: torch.Tensor) -> torch.Tensor:
    """uint8 [B, W, H, 3] cell indices → float [B, 21, W, H] one-hot planes.

    One scatter into a zero tensor: ten times faster on CPU than three F.one_hot calls and a cat,
    which took a fifth of the encoder's forward and backward pass."""
    index = obs.long() + _PLANE_OFFSETS.to(obs.device)
    planes = torch.zeros(*obs.shape[:-1], sum(CELL_VALUES), device=obs.device)
    return planes.scatter_(-1, index, 1.0).permute(0, 3, 1, 2)


def ride_convs(in_channels: int, channels: tuple[int, int, int]) -> nn.Sequential:
    """RIDE's trunk: three 3×3 stride-2 convs with padding 1 and ELU (7×7 → 1×1)."""
    c1, c2, c3 = channels
    return nn.Sequential(
        nn.Conv2d(in_channels, c1, 3, 2, 1), nn.ELU(),
        nn.Conv2d(c1, c2, 3, 2, 1), nn.ELU(),
        nn.Conv2d(c2, c3, 3, 2, 1), nn.ELU(),
        nn.Flatten(),
    )


class MiniGridEncoder(nn.Module):
    """RIDE's policy encoder: one-hot cells → three 3×3/2 convs (32 ch, ELU) → FC → FC.

    RIDE uses FC sizes of 1024; `hidden_size` defaults smaller in the config for speed on CPUs.
    """

    def __init__(self, obs_shape: tuple[int, ...], hidden_size: int = 256):
        super().__init__()
        self.convs = ride_convs(sum(CELL_VALUES), (32, 32, 32))
        flat = flat_size(self.convs, (sum(CELL_VALUES), obs_shape[0], obs_shape[1]))
        self.fc = nn.Sequential(
            nn.Linear(flat, hidden_size), nn.ReLU(),
            nn.Linear(hidden_size, hidden_size), nn.ReLU(),
        )
        self.output_size = hidden_size
        orthogonal_all(self)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convs(one_hot_cells(obs)))


def rnd_networks(obs_shape: tuple[int, ...], feature_size: int = 128) -> tuple[nn.Module, nn.Module]:
    """(target, predictor) on normalised float cells [B, 3, W, H]; convs 32/32/128 as RIDE's φ,
    the predictor with FC 256 → 256 before its output."""
    in_shape = (obs_shape[2], obs_shape[0], obs_shape[1])
    return distillation_pair(lambda: ride_convs(in_shape[0], (32, 32, 128)), in_shape, [256, 256], feature_size)
