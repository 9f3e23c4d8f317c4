"""NovelD (Zhang et al. 2021): the novelty difference between consecutive states, paid once per episode.

With novelty n(s) = ‖g(s) − f(s)‖₂, the L2 norm of RND's prediction error (predictor g, fixed
random target f), the bonus for a transition s → s' is

    max(n(s') − α·n(s), 0) · 𝟙[N_ep(s') = 1]

so the agent is paid for stepping from familiar into less familiar states (the frontier of what
it has explored), and only the first time a state is reached in an episode. N_ep counts visits in
the current episode, keyed on the exact observation (MiniGrid) or its SimHash (pixels).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from wanderlust.intrinsic.base import BonusSpec, IntrinsicReward, Rollout, StepRecorder
from wanderlust.intrinsic.counts import EpisodicCounts, observation_keys
from wanderlust.intrinsic.rnd import RND, RNDConfig
from wanderlust.intrinsic.running_stats import DiscountedReturnNormalizer


@dataclass
class NovelDConfig:
    alpha: float = 0.5
    """α, the weight of the previous state's novelty (NovelD's paper and code, `scale_fac`)."""
    hash: str = "auto"
    """Keys of the episodic first-visit gate: "exact" (64-bit hash of the whole observation, as the
    NovelD code keys its dictionary), "simhash" (SimHash of the newest frame), "auto" (exact on
    MiniGrid, SimHash on Atari and Procgen, where exact frames rarely repeat)."""
    simhash_bits: int = 256
    """SimHash code length k for the gate on pixels (Tang et al.'s pixel-SimHash on Atari)."""
    simhash_size: int = 52
    """Side of the downsampled frame that SimHash projects (Tang et al.'s 52×52 on Atari)."""
    return_normalization: bool = False
    """Divide by the running std of the per-env discounted intrinsic return; the NovelD code does
    not normalise its MiniGrid bonus."""
    learning_rate: float = 1e-4
    """Adam learning rate of the RND predictor (the NovelD code's `predictor_learning_rate`)."""
    update_proportion: float = 1.0
    """Keep-probability of each predictor-loss element; the NovelD code trains on every element
    (0 means the SND seed's rule min(1, 32 / num_envs))."""
    obs_norm: str = "auto"
    """RND's input normalisation: "auto" is "none" on MiniGrid (the NovelD code feeds raw cells) and
    "meanstd" on pixels (Burda et al.'s RND on Atari); or "meanstd", "mean", "none"."""
    obs_clip: float = 5.0
    """Clip of normalised observations (Burda et al.)."""
    warmup_steps: int = -1
    """Random-action steps per environment that warm up the observation statistics; -1 means none
    when `obs_norm` resolves to "none" and 128 otherwise (as RND's default)."""
    epochs: int = 4
    """Passes over the rollout per predictor update (as PPO's; the NovelD code takes one IMPALA step)."""
    minibatches: int = 4
    """Minibatches per pass (as PPO's)."""
    max_grad_norm: float = 40.0
    """Gradient-norm clip of the predictor (the NovelD code's `max_grad_norm`)."""
    feature_size: int = 0
    """Output size of target and predictor; 0 means RND's: 128 on MiniGrid (as NovelD), 512 on pixels."""


class NovelD(IntrinsicReward):
    """NovelD on top of wanderlust's RND, which supplies the networks, their training and the
    observation statistics; NovelD adds the novelty difference and the episodic gate."""

    name = "noveld"
    requires = frozenset({"obs", "next_obs"})
    feature_space = "NovelD's RND target network output (random, frozen)"

    def __init__(self, config: NovelDConfig, spec: BonusSpec):
        super().__init__()
        self.config = config
        obs_norm = config.obs_norm
        if obs_norm == "auto":
            obs_norm = "none" if spec.family == "minigrid" else "meanstd"
        warmup_steps = config.warmup_steps
        if warmup_steps < 0:
            warmup_steps = 0 if obs_norm == "none" else 128
        self.warmup_steps = warmup_steps
        rnd_config = RNDConfig(
            learning_rate=config.learning_rate,
            update_proportion=config.update_proportion,
            obs_norm=obs_norm,
            obs_clip=config.obs_clip,
            warmup_steps=warmup_steps,
            epochs=config.epochs,
            minibatches=config.minibatches,
            max_grad_norm=config.max_grad_norm,
            feature_size=config.feature_size,
        )
        self.rnd = RND(rnd_config, spec)
        self.hasher = observation_keys(spec, config.hash, config.simhash_bits, config.simhash_size)
        self.episodic_counts = EpisodicCounts(spec.num_envs)
        self.first_visits = StepRecorder()
        self.reward_normalizer = DiscountedReturnNormalizer(spec.num_envs, spec.gamma_int)
        self._metrics: dict[str, float] = {}

    def reset(self, new_episode: torch.Tensor) -> None:
        self.episodic_counts.reset(new_episode)

    def observe(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> None:
        # The gate is decided when the step happens: the episode's memory at that moment.
        self.first_visits.append(self.episodic_counts.add(self.hasher(next_obs)) == 1)

    @torch.no_grad()
    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """The target's output f(s) [B, F] of the RND that measures novelty."""
        return self.rnd.features(obs)

    @torch.no_grad()
    def novelty(self, obs: torch.Tensor, chunk: int = 512) -> torch.Tensor:
        """n(s) = ‖g(s) − f(s)‖₂ for uint8 observations [B, ...] → float [B]."""
        return torch.cat([self.rnd.prediction_error(part).sum(1).sqrt() for part in obs.split(chunk)])

    @torch.no_grad()
    def reward(self, rollout: Rollout) -> torch.Tensor:
        steps, envs = rollout.num_steps, rollout.num_envs
        first_visit = self.first_visits.take(steps)
        # PPO's rollout stores one sequence of observations, so obs[t + 1] is next_obs[t]: then
        # n(s) for all but the first step is already in n(s'), which halves the network passes.
        if steps > 1 and torch.equal(rollout.obs[1:], rollout.next_obs[:-1]):
            sequence = torch.cat([rollout.obs[:1], rollout.next_obs]).flatten(0, 1)
            novelty = self.novelty(sequence).reshape(steps + 1, envs)
            novelty_before, novelty_after = novelty[:-1], novelty[1:]
        else:
            novelty_before = self.novelty(rollout.obs.flatten(0, 1)).reshape(steps, envs)
            novelty_after = self.novelty(rollout.next_obs.flatten(0, 1)).reshape(steps, envs)
        raw = (novelty_after - self.config.alpha * novelty_before).clamp(min=0.0) * first_visit
        self._metrics = {
            "noveld/raw_reward": raw.mean().item(),
            "noveld/novelty": novelty_after.mean().item(),
            "noveld/first_visit_fraction": first_visit.float().mean().item(),
        }
        if not self.config.return_normalization:
            return raw
        rewards = self.reward_normalizer(raw)
        self._metrics["noveld/return_std"] = self.reward_normalizer.stats.std.item()
        return rewards

    @torch.no_grad()
    def warmup(self, next_obs: torch.Tensor) -> None:
        self.rnd.warmup(next_obs)

    def update(self, rollout: Rollout) -> dict[str, float]:
        rnd_metrics = self.rnd.update(rollout)
        return {**self._metrics, "noveld/predictor_loss": rnd_metrics["rnd/predictor_loss"]}
