"""RIDE (Raileanu & Rocktäschel 2020) and its two ablations, as the RIDE code runs them.

RIDE rewards a transition for how far it moves the learned embedding, discounted by how often the
agent has already seen the new observation in this episode:

    r = ‖φ(s') − φ(s)‖₂ / √N_ep(s')

φ is trained as curiosity's is (icm.py: forward and inverse losses, weights 10 and 0.1). N_ep(s')
counts the visits of the exact observation s' in the current episode, this visit included (PITFALLS
4: exact counts, not a pseudo-count). The paper's ablations: "ride-no-episodic" drops the count,
"episodic-count" keeps only 1/√N_ep(s') and has no networks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from wanderlust.intrinsic.base import BonusSpec, IntrinsicReward, Rollout, StepRecorder
from wanderlust.intrinsic.counts import EpisodicCounts, ObservationHash
from wanderlust.intrinsic.icm import ICMConfig, LearnedDynamicsBonus, valid_mean
from wanderlust.intrinsic.running_stats import DiscountedReturnNormalizer


@dataclass
class RIDEConfig(ICMConfig):
    """RIDE trains φ with the losses, weights and optimiser of curiosity in the RIDE code, so it has
    the same fields and defaults as ICMConfig (see there)."""


@dataclass
class EpisodicCountConfig:
    return_normalization: bool = False
    """Divide the bonus by the running std of its per-environment discounted return. The RIDE code
    does not normalise; it clips the weighted total reward to ±1 instead (PPO's int_reward_clip)."""


class EpisodicVisits(nn.Module):
    """N_ep(s') per environment: visits of the exact observation s' within the current episode,
    counting the visit being recorded. The RIDE code keys its count on the whole partial view
    (MiniGrid's 7×7×3 cells); here the key is ObservationHash's 64-bit hash of all bytes.

    `observe` records one [N] row of counts per environment step; `take(T)` hands the last T rows
    over as [T, N]. The hash weights are a buffer (they follow `.to(device)`); the counts themselves
    are episodic and are not checkpointed: a resumed run starts new episodes.
    """

    def __init__(self, spec: BonusSpec):
        super().__init__()
        self.hash = ObservationHash(spec.obs_shape)
        self.counts = EpisodicCounts(spec.num_envs)
        self.recorder = StepRecorder()

    def reset(self, new_episode: torch.Tensor) -> None:
        # PITFALLS 6: a uint8 mask once changed RIDE's results silently; insist on bool.
        if new_episode.dtype != torch.bool:
            raise TypeError(f"the new-episode mask must be bool, got {new_episode.dtype}")
        self.counts.reset(new_episode)

    def observe(self, next_obs: torch.Tensor) -> None:
        self.recorder.append(self.counts.add(self.hash(next_obs)))

    def take(self, num_steps: int) -> torch.Tensor:
        return self.recorder.take(num_steps)


class RIDE(LearnedDynamicsBonus):
    """r = ‖φ(s') − φ(s)‖₂ / √N_ep(s'), with φ trained by the forward and inverse losses."""

    name = "ride"
    episodic = True
    feature_space = "RIDE embedding φ(s) (trained by inverse and forward dynamics)"

    def __init__(self, config: RIDEConfig, spec: BonusSpec):
        super().__init__(config, spec)
        self.visits = EpisodicVisits(spec) if self.episodic else None

    def reset(self, new_episode: torch.Tensor) -> None:
        if self.visits is not None:
            self.visits.reset(new_episode)

    def observe(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> None:
        if self.visits is not None:
            self.visits.observe(next_obs)

    @torch.no_grad()
    def transition_bonus(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """The embedding change ‖φ(s') − φ(s)‖₂ [B]."""
        features, next_features = self.dynamics.embedding(torch.cat([obs, next_obs])).chunk(2)
        change = (next_features - features).norm(dim=1)
        # Equal observations embed equally in exact arithmetic, but batched kernels (GPU, oneDNN)
        # need not reproduce that bit for bit: pin a no-op transition to exactly zero.
        return change * (obs != next_obs).flatten(1).any(1)

    def rollout_bonus(self, rollout: Rollout) -> torch.Tensor:
        change = super().rollout_bonus(rollout)
        self._reward_metrics["embedding_change"] = valid_mean(change, rollout.valid)
        if self.visits is None:
            return change
        counts = self.visits.take(rollout.num_steps)
        self._reward_metrics["episodic_count"] = valid_mean(counts, rollout.valid)
        return change * counts.rsqrt()


class RIDENoEpisodic(RIDE):
    """The paper's "no episodic counts" ablation: r = ‖φ(s') − φ(s)‖₂."""

    name = "ride-no-episodic"
    episodic = False
    feature_space = "RIDE (no episodic counts) embedding φ(s) (trained by inverse and forward dynamics)"


class EpisodicCount(IntrinsicReward):
    """The paper's "only episodic counts" ablation: r = 1/√N_ep(s'), no networks (so no feature
    space: `features` raises)."""

    name = "episodic-count"
    requires = frozenset({"next_obs", "valid"})

    def __init__(self, config: EpisodicCountConfig, spec: BonusSpec):
        super().__init__()
        self.config = config
        self.visits = EpisodicVisits(spec)
        self.reward_normalizer = (
            DiscountedReturnNormalizer(spec.num_envs, spec.gamma_int) if config.return_normalization else None
        )
        self._reward_metrics: dict[str, torch.Tensor] = {}

    def reset(self, new_episode: torch.Tensor) -> None:
        self.visits.reset(new_episode)

    def observe(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> None:
        self.visits.observe(next_obs)

    @torch.no_grad()
    def reward(self, rollout: Rollout) -> torch.Tensor:
        counts = self.visits.take(rollout.num_steps)
        raw = counts.rsqrt() * rollout.valid  # reset steps earn nothing and stay out of the normaliser
        self._reward_metrics = {
            "raw_bonus": valid_mean(raw, rollout.valid),
            "episodic_count": valid_mean(counts, rollout.valid),
        }
        return raw if self.reward_normalizer is None else self.reward_normalizer(raw)

    def update(self, rollout: Rollout) -> dict[str, float]:
        metrics = {f"{self.name}/{key}": value.item() for key, value in self._reward_metrics.items()}
        if self.reward_normalizer is not None:
            metrics[f"{self.name}/return_std"] = self.reward_normalizer.stats.std.item()
        return metrics
