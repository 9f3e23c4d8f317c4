"""Exploration via Elliptical Episodic Bonuses (E3B; Henaff, Raileanu, Jiang and Rocktäschel 2022).

An embedding φ is trained only through an inverse-dynamics model, so that it keeps what the agent
controls. Each environment keeps the inverse of its episode's covariance C = λI + Σ φφᵀ over the
states seen so far in the episode. Reaching s' earns the elliptical bonus

    b = φ(s')ᵀ C⁻¹ φ(s'),

and s' then joins C by the Sherman–Morrison update C⁻¹ ← C⁻¹ − uuᵀ / (1 + b) with u = C⁻¹φ(s'),
so the same state earns less each time it recurs in an episode. C⁻¹ returns to I/λ when an episode
begins. φ is evaluated per step with the current network, as the official code's actors do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from wanderlust.intrinsic.base import BonusSpec, IntrinsicReward, Rollout, StepRecorder, masked_mean
from wanderlust.intrinsic.dynamics import DynamicsModels, train_inverse_model
from wanderlust.intrinsic.running_stats import DiscountedReturnNormalizer, RunningMeanStd


@dataclass
class E3BConfig:
    ridge: float = 0.1
    """λ: each episode's covariance starts as λI, so C⁻¹ starts as I/λ (the paper and the official
    code's --ridge 0.1)."""
    feature_size: int = 128
    """Size of φ: RIDE's 128 on MiniGrid. The official code's MiniHack encoder outputs 1024 (288 on
    VizDoom); the official code has no MiniGrid encoder."""
    hidden_size: int = 256
    """Hidden width of the inverse model (the official code's inverse-dynamics net: 2F → 256 → |A|)."""
    learning_rate: float = 1e-4
    """Adam learning rate of φ and the inverse model (the official --predictor_learning_rate)."""
    minibatch_size: int = 640
    """Transitions per Adam step. The official learner takes one step per batch of 8 × 80 = 640
    transitions; with one epoch this keeps its ratio of steps to frames at any rollout size."""
    epochs: int = 1
    """Passes over each rollout (the official code uses each transition once)."""
    max_grad_norm: float = 0.5
    """Gradient-norm clip of φ and the inverse model together. The official code clips at 40 a loss
    summed over its 80-step unroll; on the per-transition mean used here that is 40 / 80 = 0.5."""
    reward_std_normalization: bool = True
    """Divide the bonus by the running std of the bonus itself (the official --reward_norm int, which
    the paper's MiniHack runs use; its VizDoom runs use none)."""
    return_normalization: bool = False
    """Divide the bonus by the running std of its per-environment discounted return instead (not in
    the official code). At most one of the two normalisations may be on."""


def elliptical_bonus(cov_inverse: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """b = φᵀC⁻¹φ per environment for C⁻¹ [N, F, F] and φ [N, F]; then folds φ into C in place by
    Sherman–Morrison. A zero φ leaves C⁻¹ unchanged, which masks environments out."""
    # C⁻¹ is symmetric, so u = C⁻¹φ = (φᵀC⁻¹)ᵀ; the row-vector product is 5× faster on CPU.
    u = torch.bmm(features.unsqueeze(1), cov_inverse).squeeze(1)
    bonus = (features * u).sum(1)
    scaled = u / (1.0 + bonus).sqrt().unsqueeze(1)
    cov_inverse.addcmul_(scaled.unsqueeze(2), scaled.unsqueeze(1), value=-1.0)
    return bonus


class E3B(IntrinsicReward):
    name = "e3b"
    requires = frozenset({"obs", "actions", "next_obs", "valid"})
    feature_space = "E3B embedding φ(s) (trained by inverse dynamics; elliptical bonus)"

    def __init__(self, config: E3BConfig, spec: BonusSpec):
        super().__init__()
        if config.reward_std_normalization and config.return_normalization:
            raise ValueError("e3b: turn on at most one of reward_std_normalization and return_normalization")
        self.config = config
        self.dynamics = DynamicsModels(spec, config.feature_size, config.hidden_size, forward_model=False)
        self.optimizer = torch.optim.Adam(self.dynamics.parameters(), lr=config.learning_rate)
        self.reward_stats = RunningMeanStd(())
        self.reward_normalizer = DiscountedReturnNormalizer(spec.num_envs, spec.gamma_int)
        # Episodic state: buffers so that it follows .to(device), not persistent because a resumed run
        # starts new episodes.
        initial = torch.eye(config.feature_size) / config.ridge
        self.register_buffer("initial_cov_inverse", initial, persistent=False)
        self.register_buffer("cov_inverse", initial.repeat(spec.num_envs, 1, 1), persistent=False)
        self.register_buffer("episode_start", torch.zeros(spec.num_envs, dtype=torch.bool), persistent=False)
        self.recorder = StepRecorder()
        self._observed = False
        self._reward_metrics: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """φ(s) [B, F], the embedding the elliptical bonus φᵀC⁻¹φ reads."""
        return self.dynamics.embedding(obs).float()

    @torch.no_grad()
    def reset(self, new_episode: torch.Tensor) -> None:
        new_episode = new_episode.to(self.cov_inverse.device, torch.bool)
        # torch.where instead of boolean indexing: no device sync on the per-step path.
        self.cov_inverse.copy_(torch.where(new_episode.view(-1, 1, 1), self.initial_cov_inverse, self.cov_inverse))
        self.episode_start.copy_(new_episode)

    @torch.no_grad()
    def observe(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> None:
        if not self._observed:
            # No reset step precedes the first episode, whose first state is `obs`: fold it in here, so
            # that every episode's C holds its first state.
            continuing = (~self.episode_start).unsqueeze(1)
            elliptical_bonus(self.cov_inverse, self.dynamics.embedding(obs) * continuing)
            self._observed = True
        bonus = elliptical_bonus(self.cov_inverse, self.dynamics.embedding(next_obs))
        # On a reset step s' is the new episode's first state, which no action reached: it joins C
        # and earns nothing (the official code also pays 0 for an episode's first state).
        self.recorder.append(torch.where(self.episode_start, 0.0, bonus))

    @torch.no_grad()
    def reward(self, rollout: Rollout) -> torch.Tensor:
        raw = self.recorder.take(rollout.num_steps)
        valid = rollout.valid
        self._reward_metrics["raw_reward"] = masked_mean(raw, valid)
        if self.config.reward_std_normalization:
            if valid.any():
                self.reward_stats.update(raw[valid])
            std = self.reward_stats.std.float()
            self._reward_metrics["normalizer_std"] = std
            return raw / (std + 1e-8)
        if self.config.return_normalization:
            normalised = self.reward_normalizer(raw)
            self._reward_metrics["normalizer_std"] = self.reward_normalizer.stats.std.float()
            return normalised
        return raw

    def update(self, rollout: Rollout) -> dict[str, float]:
        cfg = self.config
        metrics = train_inverse_model(
            self.dynamics, self.optimizer, rollout, cfg.minibatch_size, cfg.epochs, cfg.max_grad_norm
        )
        metrics.update({key: value.item() for key, value in self._reward_metrics.items()})
        metrics.setdefault("raw_reward", math.nan)
        return {f"{self.name}/{key}": value for key, value in metrics.items()}
