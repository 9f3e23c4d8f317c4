"""The Ballet encoder (the egocentric image and the instruction token → one feature vector) and
the decoder of the reconstruction losses (features → that observation)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from wanderlust.envs.ballet import INSTRUCTIONS, VIEW_SIZE, unpack
from wanderlust.nets.init import flat_size, orthogonal_all

INSTRUCTION_EMBEDDING = 32


def cell_size_of(obs_shape: tuple[int, ...]) -> int:
    """The cell size of packed Ballet observations [11·cell, 11·cell, 4]; raises on anything else."""
    if len(obs_shape) != 3 or obs_shape[2] != 4 or obs_shape[0] != obs_shape[1] or obs_shape[0] % VIEW_SIZE:
        raise ValueError(f"Ballet observations are [11·cell, 11·cell, 4] arrays, got {tuple(obs_shape)}")
    return obs_shape[0] // VIEW_SIZE


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
        cell_size = cell_size_of(obs_shape)
        self.convs = nn.Sequential(
            nn.Conv2d(3, 32, cell_size, cell_size), nn.ReLU(),
            nn.Conv2d(32, 64, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, 2, 1), nn.ReLU(),
            nn.Flatten(),
        )
        image_features = flat_size(self.convs, (3, obs_shape[0], obs_shape[1]))
        self.image_fc = nn.Sequential(nn.Linear(image_features, hidden_size), nn.ReLU())
        self.instruction = nn.Embedding(len(INSTRUCTIONS), INSTRUCTION_EMBEDDING)
        self.fc = nn.Sequential(nn.Linear(hidden_size + INSTRUCTION_EMBEDDING, hidden_size), nn.ReLU())
        self.output_size = hidden_size
        orthogonal_all(self)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        images, tokens = unpack(obs)
        pixels = images.permute(0, 3, 1, 2).float() / 255.0
        return self.fc(torch.cat([self.image_fc(self.convs(pixels)), self.instruction(tokens.long())], dim=-1))


class BalletDecoder(nn.Module):
    """Decodes the current observation from the features the heads read: the auxiliary
    reconstruction losses of the HCAM paper's agent, which "decodes outputs for self-supervised and
    RL losses" (Lampinen et al. 2021, figure 1d).

    The image: a linear layer to a 32 × 6 × 6 map, a stride-2 transposed 3 × 3 convolution to the
    11 × 11 cell grid, and a 3 × 3 convolution to 3·cell² channels that a pixel shuffle lays out as
    each cell's pixels (the encoder read backwards); its loss is the mean squared error over pixels
    and channels in [0, 1], so its scale does not depend on the cell size. The instruction: a
    linear layer to logits over the instruction tokens, with a cross-entropy loss. The paper
    decodes with a ResNet and a word LSTM; the sizes here are ours, kept small for CPU runs.
    """

    def __init__(self, feature_size: int, obs_shape: tuple[int, ...]):
        super().__init__()
        cell_size = cell_size_of(obs_shape)
        self.grid = (32, 6, 6)
        self.fc = nn.Sequential(nn.Linear(feature_size, 32 * 6 * 6), nn.ReLU())
        self.image = nn.Sequential(
            nn.ConvTranspose2d(32, 32, 3, 2, 1), nn.ReLU(),  # 6 × 6 → 11 × 11
            nn.Conv2d(32, 3 * cell_size * cell_size, 3, 1, 1),
            nn.PixelShuffle(cell_size),
        )
        self.instruction = nn.Linear(feature_size, len(INSTRUCTIONS))
        orthogonal_all(self)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """features [B, F] → (image [B, 3, H, W] in pixel units of [0, 1], instruction logits [B, I])."""
        image = self.image(self.fc(features).reshape(-1, *self.grid))
        return image, self.instruction(features)

    def losses(self, features: torch.Tensor, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample (image loss [B], instruction loss [B]) of reconstructing packed `obs` [B, H, W, 4]."""
        images, tokens = unpack(obs)
        target = images.permute(0, 3, 1, 2).float() / 255.0
        image, logits = self(features)
        image_loss = (image - target).pow(2).flatten(1).mean(1)
        return image_loss, F.cross_entropy(logits, tokens.long(), reduction="none")
