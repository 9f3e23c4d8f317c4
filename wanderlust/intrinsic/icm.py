"""Curiosity (ICM; Pathak et al. 2017) as the RIDE code runs it, and the training it shares with RIDE.

An embedding φ is trained with two heads: an inverse model that predicts the action from
(φ(s), φ(s')), and a forward model that predicts φ(s') from (φ(s), a). The bonus for a transition
is the forward model's error ‖f(φ(s), a) − φ(s')‖₂: transitions it cannot yet predict pay most.
RIDE (ride.py) trains the same three networks with the same losses and reads a different bonus
off them, so the training lives here in `LearnedDynamicsBonus`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from wanderlust.intrinsic.base import BonusSpec, IntrinsicReward, Rollout
from wanderlust.intrinsic.dynamics import DynamicsLosses, DynamicsModels
from wanderlust.intrinsic.running_stats import DiscountedReturnNormalizer

# Input bytes per network pass: bounds activation memory on pixels (≈ 900 Atari transitions per pass);
# a whole MiniGrid rollout fits in one pass.
_PASS_BYTES = 2**25


@dataclass
class ICMConfig:
    forward_loss_coef: float = 10.0
    """Weight of the forward loss ‖f(φ(s), a) − φ(s')‖₂ (the RIDE code's default, used for its curiosity
    baseline and for RIDE alike)."""
    inverse_loss_coef: float = 0.1
    """Weight of the inverse model's cross-entropy (the RIDE code's default)."""
    learning_rate: float = 1e-4
    """RMSProp learning rate of φ and both models (the RIDE code). Constant: the RIDE code decays only
    the policy's learning rate, never these."""
    rmsprop_alpha: float = 0.99
    """RMSProp smoothing constant (the RIDE code)."""
    rmsprop_eps: float = 1e-5
    """RMSProp ε (the RIDE code)."""
    max_grad_norm: float = 40.0
    """Gradient-norm clip, applied to φ, the forward and the inverse model separately (the RIDE code,
    which keeps torchbeast's default of 40)."""
    feature_size: int = 128
    """Size of φ (the RIDE code on MiniGrid, where the 7×7 view ends at 1×1×128)."""
    hidden_size: int = 256
    """Hidden width of the forward and inverse models (the RIDE code)."""
    return_normalization: bool = False
    """Divide the bonus by the running std of its per-environment discounted return. The RIDE code
    does not normalise; it clips the weighted total reward to ±1 instead (PPO's int_reward_clip)."""


def valid_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of values [T, N] over the real transitions (`valid`), as a 0-d tensor (no device sync)."""
    return (values * valid).sum() / valid.sum().clamp(min=1)


def forward_distance(terms: DynamicsLosses) -> torch.Tensor:
    """‖f(φ(s), a) − φ(s')‖₂ per sample [B], the unsquared distance the RIDE code uses both as the
    curiosity bonus and as the forward loss; DynamicsModels reports ½‖·‖². The floor keeps the
    gradient of the square root finite where the prediction is exact."""
    return (2.0 * terms.forward).clamp_min(1e-12).sqrt()


class LearnedDynamicsBonus(IntrinsicReward):
    """φ, forward and inverse model trained as the RIDE code trains them; subclasses define the bonus.

    Each `update` takes one RMSProp step on the whole rollout, as the RIDE code takes one per learner
    batch. Its loss is the RIDE code's: per step, the mean over environments of
    forward_loss_coef · ‖f(φ(s), a) − φ(s')‖₂ + inverse_loss_coef · CE(g(φ(s), φ(s')), a), summed over
    the rollout's steps. Nothing is stopped: the forward loss trains φ through both φ(s) and φ(s'),
    the inverse loss trains φ too, and neither loss reaches the other head. Reset steps (not
    `valid`) are left out of the loss.
    """

    requires = frozenset({"obs", "actions", "next_obs", "valid"})
    feature_space = "embedding φ(s) (trained by inverse and forward dynamics)"

    def __init__(self, config: ICMConfig, spec: BonusSpec):
        super().__init__()
        self.config = config
        self.dynamics = DynamicsModels(spec, config.feature_size, config.hidden_size)
        # One RMSProp over the three networks is the RIDE code's three: RMSProp's state is per parameter.
        self.optimizer = torch.optim.RMSprop(
            self.dynamics.parameters(), lr=config.learning_rate, alpha=config.rmsprop_alpha, eps=config.rmsprop_eps
        )
        self.reward_normalizer = (
            DiscountedReturnNormalizer(spec.num_envs, spec.gamma_int) if config.return_normalization else None
        )
        self.pass_size = max(1, _PASS_BYTES // math.prod(spec.obs_shape))
        # Means over the last rewarded rollout's valid steps, reported by the next `update`.
        self._reward_metrics: dict[str, torch.Tensor] = {}

    def transition_bonus(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """The network part of the bonus [B] for uint8 obs and next_obs [B, ...], int64 actions [B]."""
        raise NotImplementedError

    @torch.no_grad()
    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """φ(s) [B, F], the embedding both the forward and the inverse model read."""
        return self.dynamics.embedding(obs).float()

    def rollout_bonus(self, rollout: Rollout) -> torch.Tensor:
        """The raw bonus [T, N] of a rollout, before normalisation and before reset steps are zeroed."""
        return self._per_transition(rollout, self.transition_bonus)

    @torch.no_grad()
    def _per_transition(
        self, rollout: Rollout, score: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """Applies `score` to the rollout's transitions in passes of at most `pass_size`; [T, N]."""
        obs, next_obs, actions = rollout.obs.flatten(0, 1), rollout.next_obs.flatten(0, 1), rollout.actions.flatten()
        passes = [slice(start, start + self.pass_size) for start in range(0, obs.shape[0], self.pass_size)]
        parts = [score(obs[part], actions[part], next_obs[part]) for part in passes]
        return torch.cat(parts).reshape(rollout.num_steps, rollout.num_envs)

    @torch.no_grad()
    def reward(self, rollout: Rollout) -> torch.Tensor:
        raw = self.rollout_bonus(rollout) * rollout.valid  # reset steps earn nothing and stay out of the normaliser
        self._reward_metrics["raw_bonus"] = valid_mean(raw, rollout.valid)
        return raw if self.reward_normalizer is None else self.reward_normalizer(raw)

    def update(self, rollout: Rollout) -> dict[str, float]:
        cfg = self.config
        obs, next_obs, actions = rollout.obs.flatten(0, 1), rollout.next_obs.flatten(0, 1), rollout.actions.flatten()
        weights = rollout.valid.flatten().float()
        self.optimizer.zero_grad(set_to_none=True)
        totals = torch.zeros(3, device=obs.device)
        # Gradients accumulate over the passes, so the step is the one the whole rollout would give.
        for start in range(0, obs.shape[0], self.pass_size):
            part = slice(start, start + self.pass_size)
            terms = self.dynamics.losses(obs[part], actions[part], next_obs[part])
            distance = forward_distance(terms)
            per_sample = cfg.forward_loss_coef * distance + cfg.inverse_loss_coef * terms.inverse
            (per_sample @ weights[part] / rollout.num_envs).backward()
            totals += torch.stack([distance, terms.inverse, terms.inverse_accuracy]).detach() @ weights[part]
        for network in (self.dynamics.embedding, self.dynamics.forward_model, self.dynamics.inverse_model):
            nn.utils.clip_grad_norm_(network.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        forward, inverse, accuracy = (totals / weights.sum().clamp(min=1.0)).tolist()
        metrics = {"forward_loss": forward, "inverse_loss": inverse, "inverse_accuracy": accuracy}
        metrics.update({key: value.item() for key, value in self._reward_metrics.items()})
        if self.reward_normalizer is not None:
            metrics["return_std"] = self.reward_normalizer.stats.std.item()
        return {f"{self.name}/{key}": value for key, value in metrics.items()}


class ICM(LearnedDynamicsBonus):
    """Curiosity: r = ‖f(φ(s), a) − φ(s')‖₂, the forward model's error in the learned embedding."""

    name = "icm"
    feature_space = "ICM embedding φ(s) (trained by inverse and forward dynamics)"

    @torch.no_grad()
    def transition_bonus(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        return forward_distance(self.dynamics.losses(obs, actions, next_obs))
