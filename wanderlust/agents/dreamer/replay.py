"""Uniform replay of fixed-length sequences for DreamerV3, and the train ratio.

Each of N environments writes into its own ring of `capacity // N` steps, preallocated per field.
A sample picks an environment and a start time uniformly among the windows of `length` steps that
lie inside what that ring currently holds, so a window is always contiguous in time and never
crosses the ring's write head (where the oldest and newest steps meet). Windows may span episode
boundaries; `is_first` marks them, and the world model resets its state there (official
`embodied/replay`: sequences are cut from each worker's stream regardless of episodes, and the
sampler sets `is_first[0] = True`, which `mark_first` reproduces).

Step layout (the official driver's, and `WorldModel.loss`'s): step t holds observation t, the
`reward` and `is_terminal` that arrived with it, `is_first` (observation t starts an episode), and
the `action` chosen *from* observation t.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

DEFAULT_FIELDS: dict[str, tuple[tuple[int, ...], torch.dtype]] = {
    "action": ((), torch.int64),
    "reward": ((), torch.float32),
    "is_first": ((), torch.bool),
    "is_terminal": ((), torch.bool),
}
"""Fields every replay stores; observation fields are added by the caller, e.g.
`{"image": ((64, 64, 3), torch.uint8)}`."""


class SequenceReplay:
    """Preallocated per-environment rings of steps; uniform sampling of [T, B] windows.

    Memory: (capacity rounded down to a multiple of N) × bytes per step; a 64×64×3 uint8 image plus
    the default fields is 12,288 + 8 + 4 + 1 + 1 = 12,302 bytes, so capacity 1e6 (official
    `replay_size: 1e6`) is 12.3 GB and 1e5 is 1.23 GB. `state_dict` carries the stored steps, so a
    checkpoint with replay is that large."""

    def __init__(self, capacity: int, num_envs: int,
                 observations: Mapping[str, tuple[tuple[int, ...], torch.dtype]],
                 seed: int = 0, mark_first: bool = True, device: str | torch.device = "cpu"):
        if capacity < num_envs:
            raise ValueError("capacity must hold at least one step per environment")
        self.num_envs = num_envs
        self.env_capacity = capacity // num_envs
        self.mark_first = mark_first
        self.device = torch.device(device)
        self.fields = {**{k: (tuple(s), d) for k, (s, d) in observations.items()}, **DEFAULT_FIELDS}
        self.storage = {
            name: torch.zeros((num_envs, self.env_capacity, *shape), dtype=dtype)
            for name, (shape, dtype) in self.fields.items()
        }
        self.steps_added = 0
        """Steps written per environment since creation (every `add` writes one per env)."""
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        """Steps stored, over all environments."""
        return self.stored_per_env * self.num_envs

    @property
    def stored_per_env(self) -> int:
        return min(self.steps_added, self.env_capacity)

    def add(self, step: Mapping[str, object]) -> None:
        """Write one step for all N environments: each field [N, ...] (tensors or arrays)."""
        slot = self.steps_added % self.env_capacity
        missing = set(self.fields) - set(step)
        if missing:
            raise KeyError(f"step is missing fields {sorted(missing)}")
        for name, (shape, dtype) in self.fields.items():
            value = step[name]
            value = value if torch.is_tensor(value) else torch.as_tensor(np.asarray(value))
            if value.shape != (self.num_envs, *shape):
                raise ValueError(f"{name}: expected shape {(self.num_envs, *shape)}, got {tuple(value.shape)}")
            self.storage[name][:, slot] = value.to(dtype)
        self.steps_added += 1

    def sample(self, batch: int, length: int) -> dict[str, torch.Tensor]:
        """`batch` windows of `length` consecutive steps -> {field: [length, batch, ...]} on `device`.
        Environments and start times are uniform over all valid windows (every env holds the same
        number of steps)."""
        stored = self.stored_per_env
        if stored < length:
            raise ValueError(f"replay holds {stored} steps per env, fewer than the length {length}")
        envs = torch.randint(self.num_envs, (batch,), generator=self.generator)
        oldest = self.steps_added - stored
        starts = oldest + torch.randint(stored - length + 1, (batch,), generator=self.generator)
        slots = (starts.unsqueeze(0) + torch.arange(length).unsqueeze(1)) % self.env_capacity  # [T, B]
        out = {name: data[envs.unsqueeze(0), slots].to(self.device) for name, data in self.storage.items()}
        if self.mark_first:
            out["is_first"][0] = True
        return out

    def state_dict(self) -> dict[str, object]:
        """Everything needed to resume: the stored part of the arrays (up to the capacity, see the
        class docstring), the write count and the sampler's generator state. Loads with
        `torch.load(weights_only=True)`."""
        stored = self.stored_per_env  # the ring fills from slot 0, so the stored part is a prefix
        return {
            "storage": {k: v[:, :stored].clone() for k, v in self.storage.items()},
            "steps_added": self.steps_added,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        storage = state["storage"]
        if set(storage) != set(self.storage):
            raise KeyError(f"fields differ: {sorted(storage)} vs {sorted(self.storage)}")
        for name, data in storage.items():
            own = self.storage[name]
            if data.shape[0] != own.shape[0] or data.shape[1] > own.shape[1] or data.shape[2:] != own.shape[2:] \
                    or data.dtype != own.dtype:
                raise ValueError(f"{name}: shape or dtype differs from this replay's")
            own[:, :data.shape[1]].copy_(data)
        self.steps_added = int(state["steps_added"])
        self.generator.set_state(state["generator"])


def train_ratio_updates(train_ratio: float, batch_size: int, batch_length: int) -> float:
    """Gradient updates per environment step so that `train_ratio` replayed steps are trained on per
    environment (policy) step: train_ratio / (batch_size · batch_length) (official
    `embodied.when.Ratio(train_ratio / batch_steps)` in `run/train.py`, batch_steps = batch_size ×
    batch_length; one environment step is one policy step, after action repeat). Official 2023
    `configs.yaml`: `train_ratio: 32` by default, 64 for Atari (200M frames) and DMLab, 1024 for
    Atari100k and bsuite, 512 for Crafter, DMC and loconav, 16 for Minecraft; batch 16 × 64.
    E.g. 512 / (16 · 64) = 0.5: one update every second environment step."""
    if train_ratio <= 0 or batch_size <= 0 or batch_length <= 0:
        raise ValueError("train_ratio, batch_size and batch_length must be positive")
    return train_ratio / (batch_size * batch_length)


class TrainRatio:
    """Counts how many updates are due as environment steps arrive, carrying the fractional part
    (official `embodied.when.Ratio`): `due(env_steps)` returns the integer number of updates to do
    now, so that updates / env steps → `updates_per_step` over time."""

    def __init__(self, updates_per_step: float):
        if updates_per_step < 0:
            raise ValueError("updates_per_step must be non-negative")
        self.updates_per_step = updates_per_step
        self.credit = 0.0

    def due(self, env_steps: int) -> int:
        self.credit += env_steps * self.updates_per_step
        updates = int(self.credit)
        self.credit -= updates
        return updates

    def state_dict(self) -> dict[str, float]:
        return {"credit": self.credit}

    def load_state_dict(self, state: Mapping[str, float]) -> None:
        self.credit = float(state["credit"])
