"""DreamerV3's network pieces in PyTorch: MLP, image/vector encoder and decoder, a normalised GRU
cell, and the model-size presets.

Conventions (paper appendix "Network architecture" and official danijar/dreamerv3 `nets.py`):
every hidden layer is linear (no bias, since a norm follows) → normalisation → SiLU; images are
channels-first here (PyTorch) where the official code is channels-last. "2023 release" and
"current release" name the two versions of the official code, as in `distributions.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from wanderlust.agents.dreamer.distributions import symlog


@dataclass
class DreamerSize:
    """The sizes that the official `size*` presets set (current release `configs.yaml`: `.*\\.rssm:
    {deter, hidden, classes}`, `.*\\.depth`, `.*\\.units`); `stoch` and `blocks` are the official
    defaults, which the presets leave alone."""

    deter: int
    """Width of the GRU's deterministic state h."""
    hidden: int
    """Width of the RSSM's hidden layers (input projections, prior and posterior MLPs)."""
    stoch: int
    """Groups of the categorical stochastic state z (official default 32)."""
    classes: int
    """Classes per group (the paper's 32 × 32; the current release sets 16 for size12m, 24 for
    size25m)."""
    depth: int
    """Channels of the first conv stage of the encoder (the decoder mirrors it)."""
    units: int
    """Width of every MLP: vector encoder/decoder, reward, continue, actor and critic heads."""
    blocks: int = 8
    """Diagonal blocks of the GRU's weights (current release `rssm.blocks: 8`; 1 is the paper's
    dense GRU)."""


SIZES: dict[str, DreamerSize] = {
    "debug": DreamerSize(deter=64, hidden=32, stoch=4, classes=4, depth=4, units=32, blocks=2),
    "size1m": DreamerSize(deter=512, hidden=64, stoch=32, classes=4, depth=4, units=64),
    "size12m": DreamerSize(deter=2048, hidden=256, stoch=32, classes=16, depth=16, units=256),
    "size25m": DreamerSize(deter=3072, hidden=384, stoch=32, classes=24, depth=24, units=384),
}
"""`debug` is ours (tiny, for tests and smoke runs; the official `debug` shrinks further). The
others are the official presets of the same names (current release `configs.yaml`); `size1m` is
the smallest, for CPU budgets."""


def make_norm(kind: str, size: int) -> nn.Module:
    """"layer" (LayerNorm with affine scale and offset, ε = 1e-3: the paper and the 2023 release's
    `norm: layer`), "rms" (RMSNorm with a scale, ε = 1e-4: the current release's `norm: rms`), or
    "none"."""
    if kind == "layer":
        return nn.LayerNorm(size, eps=1e-3)
    if kind == "rms":
        return nn.RMSNorm(size, eps=1e-4)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'layer', 'rms' or 'none', not {kind!r}")


class ChannelNorm(nn.Module):
    """A norm over the channels of each pixel of [N, C, H, W] maps (the official Conv2D normalises
    the last, channel, axis of its NHWC maps)."""

    def __init__(self, kind: str, channels: int):
        super().__init__()
        self.norm = make_norm(kind, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = self.norm
        if isinstance(norm, nn.LayerNorm) and x.shape[1] < 8:
            # The same LayerNorm, taken across axis 1: at 4 channels (size1m's first stage) torch's
            # kernel over a last axis that short was 2.5–4× slower, forward and backward, on CPU.
            centred = x - x.mean(1, keepdim=True)
            scale = torch.rsqrt(centred.square().mean(1, keepdim=True) + norm.eps)
            return centred * scale * norm.weight[:, None, None] + norm.bias[:, None, None]
        return norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def init_weights(module: nn.Module) -> None:
    """Truncated-normal weights with variance 1/fan_avg, truncated at 2 std (the 2023 release's
    `winit: normal, fan: avg`), zero biases; applied to every Linear and (transposed) conv."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(layer.weight)
            if isinstance(layer, nn.ConvTranspose2d):
                fan_in, fan_out = fan_out, fan_in
            # 0.8796 is the std of a unit normal truncated at ±2; dividing by it restores variance 1.
            std = math.sqrt(2.0 / (fan_in + fan_out)) / 0.87962566103423978
            nn.init.trunc_normal_(layer.weight, 0.0, std, -2.0 * std, 2.0 * std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def dense_layer(in_features: int, out_features: int, norm: str = "layer") -> nn.Sequential:
    """Linear → norm → SiLU; the linear has a bias only without a norm (official `Linear`)."""
    return nn.Sequential(
        nn.Linear(in_features, out_features, bias=norm == "none"),
        make_norm(norm, out_features),
        nn.SiLU(),
    )


class MLP(nn.Module):
    """`layers` × (Linear → norm → SiLU) of width `units`, then an optional output Linear (official
    `MLP` + `Dist`). `zero_output` starts the output layer at zero, as the official reward and
    value heads do (`outscale: 0.0`), so they first predict exactly 0."""

    def __init__(
        self,
        in_features: int,
        units: int,
        layers: int,
        out_features: int | None = None,
        norm: str = "layer",
        zero_output: bool = False,
    ):
        super().__init__()
        sizes = [in_features] + [units] * layers
        self.hidden = nn.Sequential(*[dense_layer(a, b, norm) for a, b in zip(sizes[:-1], sizes[1:])])
        self.out = nn.Linear(sizes[-1], out_features) if out_features is not None else None
        init_weights(self)
        if self.out is not None and zero_output:
            nn.init.zeros_(self.out.weight)
        self.out_features = out_features if out_features is not None else sizes[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hidden(x)
        return self.out(x) if self.out is not None else x


class GRUCell(nn.Module):
    """DreamerV3's normalised GRU (official 2023 release `RSSM._gru`; current release `_core`):

        r, c, u = split(norm(W [h, x]))      no bias, the norm follows
        c = tanh(σ(r) ⊙ c);  u = σ(u − 1)    the −1 biases the cell toward keeping h
        h' = u ⊙ c + (1 − u) ⊙ h

    With `blocks` > 1 the weights are block-diagonal in h (current release `blockgru`, `blocks: 8`):
    block g computes its own slice of the gates from its own slice of h and the whole input x,
    which divides the recurrent weights by `blocks` and makes deter = 2048–8192 affordable."""

    def __init__(self, input_size: int, hidden_size: int, blocks: int = 1, norm: str = "layer"):
        super().__init__()
        if hidden_size % blocks:
            raise ValueError("hidden_size must be divisible by blocks")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.blocks = blocks
        block = hidden_size // blocks
        self.weight = nn.Parameter(torch.empty(blocks, block + input_size, 3 * block))
        self.norm = make_norm(norm, 3 * hidden_size)
        fan_in, fan_out = block + input_size, 3 * block
        std = math.sqrt(2.0 / (fan_in + fan_out)) / 0.87962566103423978
        nn.init.trunc_normal_(self.weight, 0.0, std, -2.0 * std, 2.0 * std)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """x [..., input_size], h [..., hidden_size] -> h' [..., hidden_size]."""
        groups = h.reshape(*h.shape[:-1], self.blocks, -1)
        inputs = x.unsqueeze(-2).expand(*x.shape[:-1], self.blocks, x.shape[-1])
        gates = torch.einsum("...gi,gio->...go", torch.cat([groups, inputs], -1), self.weight)
        # [..., g, 3, block] -> [..., 3, g·block]: each gate lays out its blocks in h's order.
        gates = gates.reshape(*gates.shape[:-1], 3, -1).transpose(-3, -2)
        gates = self.norm(gates.reshape(*h.shape[:-1], 3 * self.hidden_size))
        reset, candidate, update = gates.split(self.hidden_size, -1)
        candidate = torch.tanh(torch.sigmoid(reset) * candidate)
        update = torch.sigmoid(update - 1.0)
        return update * candidate + (1.0 - update) * h


@dataclass
class ConvConfig:
    depth: int = 32
    """Channels of the first stage; stage i has depth·mults[i] (the presets set this)."""
    mults: tuple[int, ...] = (1, 2, 4, 8)
    """Channel multipliers per stage: doubling, as the 2023 release's encoder (`depth *= 2` per
    stage). The current release uses (2, 3, 4, 4) with kernel 5."""
    kernel: int = 4
    """Kernel of every strided conv (2023 release: 4, stride 2)."""
    minres: int = 4
    """Resolution after the last stage (official `minres: 4`): 64 → 32 → 16 → 8 → 4."""
    norm: str = "layer"
    """Norm over channels after each conv (see `make_norm`)."""


def _stages(resolution: int, conv: ConvConfig) -> int:
    minres, mults = conv.minres, conv.mults
    if conv.kernel % 2:
        raise ValueError("the stride-2 convs need an even kernel to halve the resolution exactly")
    stages = round(math.log2(resolution / minres))
    if resolution != minres * 2**stages:
        raise ValueError(f"image size {resolution} must be minres {minres} times a power of 2")
    if stages != len(mults):
        raise ValueError(f"{stages} stages from {resolution} to {minres} need {stages} mults, got {len(mults)}")
    return stages


class Encoder(nn.Module):
    """Observation → embedding (official `MultiEncoder`/`SimpleEncoder`).

    Image [..., C, H, W] in [0, 1] (uint8 is divided by 255): shifted to [−0.5, 0.5], then strided
    convs (kernel 4, stride 2, padding 1: each halves the resolution), each → channel norm → SiLU,
    down to minres × minres, flattened. Vector [..., vector_size]: symlog (paper: symlog on vector
    inputs; official `symlog_inputs: True`) → MLP. Both embeddings are concatenated."""

    def __init__(
        self,
        image_shape: tuple[int, int, int] | None = (3, 64, 64),
        vector_size: int = 0,
        conv: ConvConfig | None = None,
        units: int = 256,
        layers: int = 3,
        norm: str = "layer",
    ):
        super().__init__()
        if image_shape is None and vector_size <= 0:
            raise ValueError("the encoder needs an image, a vector, or both")
        self.image_shape = tuple(image_shape) if image_shape is not None else None
        self.vector_size = vector_size
        self.out_features = 0
        self.convs = None
        if self.image_shape is not None:
            conv = conv or ConvConfig()
            channels, height, width = self.image_shape
            if height != width:
                raise ValueError("the encoder expects square images")
            _stages(height, conv)
            layers_ = []
            in_channels = channels
            for mult in conv.mults:
                out_channels = conv.depth * mult
                layers_ += [
                    nn.Conv2d(in_channels, out_channels, conv.kernel, 2, conv.kernel // 2 - 1,
                              bias=conv.norm == "none"),
                    ChannelNorm(conv.norm, out_channels),
                    nn.SiLU(),
                ]
                in_channels = out_channels
            self.convs = nn.Sequential(*layers_)
            self.out_features += in_channels * conv.minres**2
        self.mlp = None
        if vector_size > 0:
            self.mlp = MLP(vector_size, units, layers, norm=norm)
            self.out_features += units
        init_weights(self)

    def forward(self, image: torch.Tensor | None = None, vector: torch.Tensor | None = None) -> torch.Tensor:
        """image [..., C, H, W] and/or vector [..., vector_size] -> [..., out_features]."""
        outputs = []
        if self.convs is not None:
            if image is None:
                raise ValueError("this encoder was built for images")
            if image.dtype == torch.uint8:
                image = image.float() / 255.0
            batch = image.shape[:-3]
            x = self.convs(image.reshape(-1, *self.image_shape) - 0.5)
            outputs.append(x.reshape(*batch, -1))
        if self.mlp is not None:
            if vector is None:
                raise ValueError("this encoder was built for vectors")
            outputs.append(self.mlp(symlog(vector)))
        return torch.cat(outputs, -1)


class Decoder(nn.Module):
    """Latent features → reconstructions (official `MultiDecoder`/`SimpleDecoder`).

    Image: Linear → [depth·mults[−1], minres, minres] → channel norm → SiLU, then transposed convs
    (kernel 4, stride 2) mirroring the encoder, the last straight to image channels without norm,
    then a sigmoid so predictions lie in (0, 1) (current release `sigmoid: True`; the 2023 release
    added 0.5 instead). Vector: MLP → Linear predicting symlog(vector) (official `symlog_mse`)."""

    def __init__(
        self,
        in_features: int,
        image_shape: tuple[int, int, int] | None = (3, 64, 64),
        vector_size: int = 0,
        conv: ConvConfig | None = None,
        units: int = 256,
        layers: int = 3,
        norm: str = "layer",
    ):
        super().__init__()
        if image_shape is None and vector_size <= 0:
            raise ValueError("the decoder needs an image, a vector, or both")
        self.image_shape = tuple(image_shape) if image_shape is not None else None
        self.conv = None
        if self.image_shape is not None:
            conv = conv or ConvConfig()
            channels, height, _ = self.image_shape
            _stages(height, conv)
            self.conv = conv
            depths = [conv.depth * mult for mult in conv.mults]
            self.project = nn.Linear(in_features, depths[-1] * conv.minres**2, bias=conv.norm == "none")
            self.project_norm = nn.Sequential(ChannelNorm(conv.norm, depths[-1]), nn.SiLU())
            padding = conv.kernel // 2 - 1
            layers_ = []
            for in_channels, out_channels in zip(depths[::-1][:-1], depths[::-1][1:]):
                layers_ += [
                    nn.ConvTranspose2d(in_channels, out_channels, conv.kernel, 2, padding,
                                       bias=conv.norm == "none"),
                    ChannelNorm(conv.norm, out_channels),
                    nn.SiLU(),
                ]
            layers_.append(nn.ConvTranspose2d(depths[0], channels, conv.kernel, 2, padding))
            self.deconvs = nn.Sequential(*layers_)
        self.mlp = None
        if vector_size > 0:
            self.mlp = MLP(in_features, units, layers, out_features=vector_size, norm=norm)
        init_weights(self)

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """features [..., in_features] -> {"image": [..., C, H, W] in (0, 1),
        "vector": [..., vector_size] in symlog space}; only the parts this decoder was built for."""
        outputs = {}
        batch = features.shape[:-1]
        flat = features.reshape(-1, features.shape[-1])
        if self.conv is not None:
            x = self.project(flat).reshape(-1, self.conv.depth * self.conv.mults[-1], self.conv.minres,
                                           self.conv.minres)
            # Channels-last maps, as the encoder's (its images arrive [..., H, W, C]): size1m's decoder
            # trained about 1.2× faster on CPU so, and its loss compares tensors of one layout.
            x = self.deconvs(self.project_norm(x.contiguous(memory_format=torch.channels_last)))
            outputs["image"] = torch.sigmoid(x).reshape(*batch, *self.image_shape)
        if self.mlp is not None:
            outputs["vector"] = self.mlp(flat).reshape(*batch, -1)
        return outputs


def image_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error summed over pixels and channels, per image [...] (official `MSEDist(mode, 3,
    'sum')`); targets in [0, 1] (uint8 is divided by 255)."""
    if target.dtype == torch.uint8:
        target = target.float() / 255.0
    # mse_loss's backward is one pass; (p − t).square()'s is three (measured 2× faster on CPU).
    return F.mse_loss(prediction, target, reduction="none").sum((-3, -2, -1))


def vector_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Symlog squared error, summed over dimensions [...]: (f(x) − symlog(y))² (paper eq. 9-10's
    symlog loss for vector observations; official `symlog_mse`)."""
    return (prediction - symlog(target)).square().sum(-1)


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters of a module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
