"""Visit counts: hashing observations to keys, and episodic counts keyed on them.

The count bonuses (RIDE's episodic counts, NovelD's first-visit gate, the global count) key on the
exact observation (PITFALLS 4: not a kNN pseudo-count). An observation's key is a 64-bit linear hash
of its bytes, Σ_i w_i·x_i mod 2⁶⁴ with fixed random odd weights: two different observations share
a key with probability about 2⁻⁶³, so on discrete observations the counts are exact in practice.
"""

from __future__ import annotations

import torch
from torch import nn


class ObservationHash(nn.Module):
    """uint8 observations [B, *shape] → int64 keys [B]; the weights are a buffer, so keys survive
    checkpoints and `.to(device)`."""

    def __init__(self, obs_shape: tuple[int, ...], seed: int = 0):
        super().__init__()
        size = 1
        for dim in obs_shape:
            size *= dim
        generator = torch.Generator().manual_seed(seed)
        weights = torch.randint(-(2**62), 2**62, (size,), generator=generator, dtype=torch.int64) * 2 + 1
        self.register_buffer("weights", weights)

    @torch.no_grad()
    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        # int64 arithmetic wraps modulo 2⁶⁴, which is the hash's definition.
        return (obs.flatten(1).long() * self.weights).sum(1)


class EpisodicCounts:
    """Per-environment visit counts of keys within the current episode.

    `reset(mask)` clears the environments in the bool mask; `add(keys)` counts one visit of each
    env's key and returns the counts after the visit (1 on a first visit). Episodic counts are not
    saved in checkpoints: a resumed run starts new episodes.
    """

    def __init__(self, num_envs: int):
        self._counts: list[dict[int, int]] = [{} for _ in range(num_envs)]

    def reset(self, mask: torch.Tensor) -> None:
        for env in torch.nonzero(mask.cpu()).flatten().tolist():
            self._counts[env].clear()

    def add(self, keys: torch.Tensor) -> torch.Tensor:
        out = []
        for counts, key in zip(self._counts, keys.tolist()):
            counts[key] = counts.get(key, 0) + 1
            out.append(counts[key])
        return torch.tensor(out, dtype=torch.float32, device=keys.device)
