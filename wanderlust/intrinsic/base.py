"""The interface every intrinsic reward implements, and the rollout it reads.

A bonus is an nn.Module that owns its networks, its optimiser and its normalisers. PPO calls, per
rollout: `reward(rollout)` (no gradients) to fill the intrinsic stream before returns and
advantages are computed, then `update(rollout)` to train the bonus's own networks. Per step it calls
`reset(new_episode)` and `observe(...)` so that bonuses with episodic state (RIDE's and NovelD's
visit counts, E3B's covariance) can keep it; bonuses without episodic state inherit the no-ops.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Rollout:
    """One rollout of T steps from N environments, on the training device.

    `obs[t]` is the observation the action `actions[t]` was taken in and `next_obs[t]` the one it
    led to. With next-step auto-reset the step after an episode's end is a reset step: its action is
    ignored and `valid[t]` is False there; such steps are left out of every loss.
    """

    obs: torch.Tensor  # [T, N, *obs_shape] uint8
    next_obs: torch.Tensor  # [T, N, *obs_shape] uint8
    actions: torch.Tensor  # [T, N] int64
    dones: torch.Tensor  # [T, N] bool: the episode ended at this step (terminated or truncated)
    valid: torch.Tensor  # [T, N] bool: a real transition (not an auto-reset step)

    @property
    def num_steps(self) -> int:
        return self.obs.shape[0]

    @property
    def num_envs(self) -> int:
        return self.obs.shape[1]


@dataclass(frozen=True)
class BonusSpec:
    """What a bonus needs to know about the environment it will score."""

    obs_shape: tuple[int, ...]  # one observation: MiniGrid [W, H, 3], Atari [stack, H, W], Procgen [3, H, W]
    num_actions: int
    num_envs: int
    family: str  # "minigrid", "atari" or "procgen" (see wanderlust.envs)
    gamma_int: float = 0.99  # discount of the intrinsic stream, for return-std normalisers


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of values over the True entries of a bool mask of the same shape; 0-d, no device sync."""
    return (values * mask).sum() / mask.sum().clamp(min=1)


class StepRecorder:
    """Per-step values of an episodic bonus, [N] per `observe` call, handed over as [T, N].

    Episodic bonuses score a transition when it happens (the episode's memory at that moment
    decides it), so they record in `observe` and `reward` takes the last T records.
    """

    def __init__(self) -> None:
        self._steps: list[torch.Tensor] = []

    def append(self, values: torch.Tensor) -> None:
        self._steps.append(values)

    def take(self, num_steps: int) -> torch.Tensor:
        if len(self._steps) < num_steps:
            raise RuntimeError(f"an episodic bonus observed {len(self._steps)} steps of a {num_steps}-step rollout")
        out = torch.stack(self._steps[-num_steps:])
        self._steps = []
        return out


class IntrinsicReward(nn.Module):
    """Base class. Subclasses set `name` and `requires`, and override what they use."""

    name = "base"
    requires: frozenset[str] = frozenset()
    # Random-action steps per environment whose observations warm up normalisers before training.
    warmup_steps = 0
    # The observation families (wanderlust.envs) whose observations this bonus's networks read.
    families: tuple[str, ...] = ("minigrid", "atari", "procgen")
    # What `features` returns, in words (the axis and title text of `wanderlust analyze features`);
    # None: the bonus computes its novelty from no feature space.
    feature_space: str | None = None

    def reward(self, rollout: Rollout) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """The features float32 [B, D] this bonus computes its novelty from, for uint8 observations
        [B, *obs_shape] on its device, preprocessed as its reward path preprocesses them. Changes no
        state (no normaliser updates, no counts). Bonuses with `feature_space` None raise ValueError."""
        raise ValueError(f"the {self.name} bonus has no feature space to project")

    # A bonus's optimiser state travels inside its state_dict, so checkpoints need no special case.
    def get_extra_state(self) -> dict:
        optimizer = getattr(self, "optimizer", None)
        return {"optimizer": optimizer.state_dict()} if optimizer is not None else {}

    def set_extra_state(self, state: dict) -> None:
        if "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])

    def update(self, rollout: Rollout) -> dict[str, float]:
        return {}

    def warmup(self, next_obs: torch.Tensor) -> None:
        """Observations [T, N, ...] from the random-action warm-up."""

    def reset(self, new_episode: torch.Tensor) -> None:
        """Called once per environment step, before `observe`, with a bool [N] mask of the
        environments whose `next_obs` begins a new episode (clear episodic state there)."""

    def observe(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> None:
        """Called once per environment step with that step's [N, ...] tensors."""


class NoBonus(IntrinsicReward):
    """No intrinsic reward (plain PPO). The intrinsic stream is all zeros."""

    name = "none"

    def __init__(self, config: None = None, spec: BonusSpec | None = None):
        super().__init__()

    def reward(self, rollout: Rollout) -> torch.Tensor:
        return torch.zeros(rollout.num_steps, rollout.num_envs, device=rollout.obs.device)
