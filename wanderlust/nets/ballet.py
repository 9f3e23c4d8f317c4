"""The Ballet encoder: the egocentric image and the instruction token → one feature vector."""

from __future__ import annotations

import torch
from torch import nn

from wanderlust.envs.ballet import INSTRUCTIONS, VIEW_SIZE, unpack
from wanderlust.nets.init import flat_size, orthogonal_all

INSTRUCTION_EMBEDDING = 32


class BalletEncoder(nn.Module):
    """Reads the packed observation uint8 [B, H, W, 4] (`wanderlust.envs.ballet.InstructionPlane`).

    The image is 11 × 11 cells of `cell_size` pixels: a first convolution with kernel and stride
    `cell_size` reads each cell into 32 features (so any cell size gives the same 11 × 11 grid),
    then two 3 × 3 convolutions (64 channels, the second of stride 2) and a linear layer to
    `hidden_size`, ReLU throughout. The instruction token gets a learned 32-d embedding,
    concatenated with the image features before a last linear layer. The paper's agent reads its
    image with a ResNet and its instruction with an LSTM over words; an instruction of one token
    needs only an embedding, and the smaller image network keeps CPU runs affordable.
    """

    def __init__(self, obs_shape: tuple[int, ...], hidden_size: int = 256):
        super().__init__()
        height, width, channels = obs_shape
        if channels != 4 or height != width or height % VIEW_SIZE:
            raise ValueError(f"Ballet observations are [11·cell, 11·cell, 4] arrays, got {tuple(obs_shape)}")
        cell_size = height // VIEW_SIZE
        self.convs = nn.Sequential(
            nn.Conv2d(3, 32, cell_size, cell_size), nn.ReLU(),
            nn.Conv2d(32, 64, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, 2, 1), nn.ReLU(),
            nn.Flatten(),
        )
        self.image_fc = nn.Sequential(nn.Linear(flat_size(self.convs, (3, height, width)), hidden_size), nn.ReLU())
        self.instruction = nn.Embedding(len(INSTRUCTIONS), INSTRUCTION_EMBEDDING)
        self.fc = nn.Sequential(nn.Linear(hidden_size + INSTRUCTION_EMBEDDING, hidden_size), nn.ReLU())
        self.output_size = hidden_size
        orthogonal_all(self)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        images, tokens = unpack(obs)
        pixels = images.permute(0, 3, 1, 2).float() / 255.0
        return self.fc(torch.cat([self.image_fc(self.convs(pixels)), self.instruction(tokens.long())], dim=-1))
