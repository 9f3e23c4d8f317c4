"""Random network distillation (Burda et al. 2018), as the SND seed runs it.

A fixed random target network f and a trained predictor g; the bonus for reaching s' is
½‖g(s') − f(s')‖², summed over features. Both networks see only the newest frame (Atari) or the
whole grid (MiniGrid), normalised by running observation statistics and clipped to ±5. The bonus
is divided by the running std of its per-environment discounted return (running_stats.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from wanderlust.intrinsic.base import BonusSpec, IntrinsicReward, Rollout
from wanderlust.intrinsic.running_stats import DiscountedReturnNormalizer, RunningMeanStd
from wanderlust.nets import atari as atari_nets
from wanderlust.nets import minigrid as minigrid_nets


@dataclass
class RNDConfig:
    learning_rate: float = 1e-4
    """Adam learning rate of the predictor (the seed's 1e-4)."""
    update_proportion: float = 0.0
    """Keep-probability of each predictor-loss element; 0 means the seed's rule min(1, 32 / num_envs)."""
    obs_norm: str = "meanstd"
    """"meanstd" whitens observations (Burda et al.); "mean" subtracts the mean only (the SND seed);
    "none" feeds raw pixels / cell indices."""
    obs_clip: float = 5.0
    warmup_steps: int = 128
    """Random-action steps per environment that warm up the observation statistics. These frames
    count towards the frame budget (the seed uses 50 × 128 on Atari)."""
    epochs: int = 4
    minibatches: int = 4
    max_grad_norm: float = 0.5
    feature_size: int = 0
    """Output size of target and predictor; 0 means 512 on Atari, 128 on MiniGrid."""
    return_normalization: bool = True
    """Divide the bonus by the running std of its per-environment discounted return (Burda et al.)."""


class RND(IntrinsicReward):
    name = "rnd"
    requires = frozenset({"next_obs"})
    families = ("minigrid", "atari", "procgen", "gridworld")
    feature_space = "RND target network output (random, frozen)"

    def __init__(self, config: RNDConfig, spec: BonusSpec):
        super().__init__()
        self.config = config
        self.warmup_steps = config.warmup_steps
        obs_shape, num_envs, gamma_int = spec.obs_shape, spec.num_envs, spec.gamma_int
        self.pixels = spec.family in ("atari", "procgen")
        if self.pixels:  # the newest frame only: Atari [stack, H, W] → [1, H, W]; Procgen's RGB [3, H, W]
            self.frame_channels = 1 if spec.family == "atari" else obs_shape[0]
            input_shape = (self.frame_channels, obs_shape[1], obs_shape[2])
            self.target, self.predictor = atari_nets.rnd_networks(input_shape, config.feature_size or 512)
        else:  # MiniGrid cells [W, H, 3] → [3, W, H]; grid worlds' binary planes [5, 5, C] alike
            input_shape = (obs_shape[2], obs_shape[0], obs_shape[1])
            self.target, self.predictor = minigrid_nets.rnd_networks(obs_shape, config.feature_size or 128)
        self.target.requires_grad_(False)
        self.obs_stats = RunningMeanStd(input_shape)
        self.reward_normalizer = DiscountedReturnNormalizer(num_envs, gamma_int)
        self.update_proportion = config.update_proportion or min(1.0, 32.0 / num_envs)
        self.optimizer = torch.optim.Adam(self.predictor.parameters(), lr=config.learning_rate)
        self._last_raw_mean = float("nan")

    def _select(self, obs: torch.Tensor) -> torch.Tensor:
        """uint8 [B, ...] observations → float network input [B, C, H, W] (not yet normalised)."""
        if self.pixels:  # frames in [0, 1], as the seed feeds them
            return obs[:, -self.frame_channels :].float() / 255.0
        return obs.permute(0, 3, 1, 2).float()

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        mode = self.config.obs_norm
        if mode == "none":
            return x
        x = x - self.obs_stats.mean.float()
        if mode == "meanstd":
            x = x / (self.obs_stats.std.float() + 1e-8)
        return x.clamp(-self.config.obs_clip, self.config.obs_clip)

    def _inputs(self, obs: torch.Tensor) -> torch.Tensor:
        """uint8 observations [B, ...] → normalised network inputs [B, C, H, W]."""
        return self._normalise(self._select(obs))

    def prediction_error(self, obs: torch.Tensor) -> torch.Tensor:
        """Per-element squared error [B, F] of the predictor on uint8 observations [B, ...]."""
        x = self._inputs(obs)
        return (self.predictor(x) - self.target(x)).pow(2)

    @torch.no_grad()
    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """The target's output f(s) [B, F], on the inputs the predictor sees."""
        return self.target(self._inputs(obs)).float()

    @torch.no_grad()
    def raw_reward(self, obs: torch.Tensor, chunk: int = 512) -> torch.Tensor:
        """½ Σ_features (g(s') − f(s'))² for uint8 observations [B, ...]; chunked to bound memory."""
        return torch.cat([0.5 * self.prediction_error(part).sum(1) for part in obs.split(chunk)])

    @torch.no_grad()
    def reward(self, rollout: Rollout) -> torch.Tensor:
        next_obs = rollout.next_obs.flatten(0, 1)
        raw = self.raw_reward(next_obs).reshape(rollout.num_steps, rollout.num_envs)
        self._last_raw_mean = raw.mean().item()
        return self.reward_normalizer(raw) if self.config.return_normalization else raw

    @torch.no_grad()
    def warmup(self, next_obs: torch.Tensor) -> None:
        self.obs_stats.update(self._select(next_obs.flatten(0, 1)))

    def update(self, rollout: Rollout) -> dict[str, float]:
        self.warmup(rollout.next_obs)  # fold this rollout into the observation statistics
        cfg = self.config
        with torch.no_grad():  # the target is fixed: its features are computed once per rollout
            inputs = self._inputs(rollout.next_obs.flatten(0, 1))
            targets = torch.cat([self.target(part) for part in inputs.split(512)])
        batch_size = inputs.shape[0]
        minibatch = max(1, batch_size // cfg.minibatches)
        total_loss, updates = torch.zeros((), device=inputs.device), 0
        for _ in range(cfg.epochs):
            order = torch.randperm(batch_size, device=inputs.device)
            for start in range(0, batch_size, minibatch):
                index = order[start : start + minibatch]
                error = (self.predictor(inputs[index]) - targets[index]).pow(2)
                # The seed trains on a random subset of elements so that the predictor does not
                # learn faster with more environments (keep-probability ≈ 32 / num_envs).
                keep = (torch.rand_like(error) < self.update_proportion).float()
                loss = (error * keep).sum() / keep.sum().clamp(min=1.0)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self.predictor.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                total_loss += loss.detach()
                updates += 1
        return {
            "rnd/predictor_loss": total_loss.item() / updates,
            "rnd/raw_reward": self._last_raw_mean,
            "rnd/return_std": self.reward_normalizer.stats.std.item(),
        }
