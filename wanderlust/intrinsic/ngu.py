"""Never Give Up's intrinsic reward (Badia, Sprechmann et al. 2020): episodic novelty × life-long novelty.

Episodic part. An embedding f of the controllable state is trained only through an inverse-dynamics
model. Each environment keeps the embeddings of its episode's states in a memory M. Reaching s'
earns, from the k nearest neighbours of f(s') in M (squared distances d²), normalised by the running
mean d²_m of all such neighbour distances:

    K_i = ε / (max(d²_i / d²_m − ξ, 0) + ε),   s = √(Σ_i K_i) + c,   r_episodic = 1/s, or 0 if s > s_m,

then f(s') joins M. The sum of kernels is a pseudo-count of s' within the episode.

Life-long part. RND's prediction error err(s') (rnd.py), standardised by its running mean and std,
gives α = 1 + (err − μ_err) / σ_err, and the reward is r = r_episodic · min(max(α, 1), L).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from wanderlust.intrinsic.base import BonusSpec, IntrinsicReward, Rollout, StepRecorder, masked_mean
from wanderlust.intrinsic.dynamics import DynamicsModels, train_inverse_model
from wanderlust.intrinsic.rnd import RND, RNDConfig
from wanderlust.intrinsic.running_stats import DiscountedReturnNormalizer, RunningMeanStd


@dataclass
class NGUConfig:
    num_neighbors: int = 10
    """k nearest neighbours in the episodic memory (NGU, Appendix F)."""
    kernel_epsilon: float = 1e-4
    """ε of the kernel ε / (d²/d²_m + ε) (NGU, Appendix F; also rlax's default)."""
    cluster_distance: float = 0.008
    """ξ: normalised distances are lowered by ξ and floored at 0, so near neighbours count fully (NGU)."""
    pseudo_count_constant: float = 1e-3
    """c in s = √ΣK + c (NGU)."""
    max_similarity: float = 8.0
    """s_m: the episodic reward is 0 when s > s_m (NGU). With k = 10, s ≤ √10 + c, so it never binds."""
    max_multiplier: float = 5.0
    """L: the life-long multiplier is clipped to [1, L] (NGU)."""
    memory_capacity: int = 30_000
    """Embeddings kept per environment and episode (NGU); the oldest are overwritten beyond it.
    Storage grows with the longest episode, so short episodes never allocate the full capacity."""
    feature_size: int = 32
    """Size of the controllable-state embedding f (NGU)."""
    hidden_size: int = 128
    """Hidden width of the inverse-dynamics head (NGU: 2·32 → 128 → |A|)."""
    learning_rate: float = 5e-4
    """Adam learning rate of f and the inverse model (NGU, Appendix F)."""
    adam_epsilon: float = 1e-4
    """Adam ε (NGU, Appendix F)."""
    weight_decay: float = 1e-5
    """L2 weight of the action-prediction networks (NGU, Appendix F), applied as Adam's weight decay."""
    minibatch_size: int = 640
    """Transitions per Adam step of f and the inverse model. NGU trains them on replayed R2D2 batches,
    which PPO lacks; this uses E3B's rate (one step per 640 transitions)."""
    epochs: int = 1
    """Passes over each rollout for f and the inverse model."""
    max_grad_norm: float = 40.0
    """Gradient-norm clip of f and the inverse model (NGU's Adam clip norm, Appendix F)."""
    return_normalization: bool = True
    """Divide the reward by the running std of its per-environment discounted return. NGU's R2D2
    learner has no such normaliser; it rescales its value targets with an invertible h instead, which
    PPO lacks, and without either a novel state's ≈ 30 per step swamps the intrinsic critic."""
    rnd_learning_rate: float = 5e-4
    """Adam learning rate of the RND predictor that measures life-long novelty (NGU, Appendix F). RND's
    other settings are rnd.py's defaults (the SND seed's)."""
    rnd_feature_size: int = 128
    """Output size of RND's target and predictor (NGU)."""
    warmup_steps: int = 128
    """Random-action steps per environment that warm up RND's observation statistics (rnd.py's
    default). These frames count towards the frame budget."""


def episodic_novelty(sq_distances: torch.Tensor, mean_sq_distance: torch.Tensor, config: NGUConfig) -> torch.Tensor:
    """r_episodic [N] from the squared distances [N, k] to the k nearest neighbours (+inf where an
    environment has fewer than k stored) and the running mean d²_m."""
    rate = sq_distances.double() / mean_sq_distance.double().clamp(min=1e-12)
    rate = (rate - config.cluster_distance).clamp(min=0.0)
    kernel = config.kernel_epsilon / (rate + config.kernel_epsilon)  # 0 where the distance is +inf
    similarity = kernel.sum(1).sqrt() + config.pseudo_count_constant
    reward = torch.where(similarity > config.max_similarity, 0.0, 1.0 / similarity)
    return reward.to(sq_distances.dtype)


def lifelong_multiplier(
    errors: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, max_multiplier: float
) -> torch.Tensor:
    """min(max(α, 1), L) with α = 1 + (err − μ) / σ. Values below 1 go to 1 and values above L go
    to L (PITFALLS 5: a peer set values above L to 1)."""
    alpha = 1.0 + (errors.double() - mean) / (std + 1e-8)
    return alpha.clamp(1.0, max_multiplier).to(errors.dtype)


class EpisodicMemory(nn.Module):
    """Per-environment episodic memories of embeddings: storage [N, slots, F] and counts [N].

    An environment's memory holds its last min(count, capacity) embeddings, written as a ring. Storage
    starts small and doubles as the longest episode grows, up to `capacity`. Nothing here is saved
    in checkpoints: a resumed run starts new episodes.
    """

    def __init__(self, num_envs: int, feature_size: int, capacity: int, initial_slots: int = 256):
        super().__init__()
        self.capacity = capacity
        slots = min(capacity, initial_slots)
        self.register_buffer("embeddings", torch.zeros(num_envs, slots, feature_size), persistent=False)
        self.register_buffer("counts", torch.zeros(num_envs, dtype=torch.long), persistent=False)

    @property
    def lengths(self) -> torch.Tensor:
        return self.counts.clamp(max=self.capacity)

    def reset(self, mask: torch.Tensor) -> None:
        self.counts.masked_fill_(mask, 0)

    def query_then_add(self, features: torch.Tensor, num_neighbors: int, add: torch.Tensor) -> torch.Tensor:
        """Squared distances [N, min(k, longest memory)] from each env's features [N, F] to its k
        nearest stored embeddings, ascending, +inf where it stores fewer; then stores the features of
        the environments in the bool mask `add`."""
        num_envs = features.shape[0]
        longest = int(self.counts.max().clamp(max=self.capacity))  # the step's one device sync
        if longest == 0:
            sq_distances = features.new_zeros(num_envs, 0)
        else:
            # The difference form, not ‖a‖² + ‖b‖² − 2a·b: a repeated embedding must lie at exactly 0.
            sq_distances = torch.sub(self.embeddings[:, :longest], features.unsqueeze(1)).square_().sum(2)
            slots = torch.arange(longest, device=features.device)
            empty = slots.unsqueeze(0) >= self.lengths.unsqueeze(1)
            sq_distances = sq_distances.masked_fill_(empty, math.inf)
            sq_distances = sq_distances.topk(min(num_neighbors, longest), dim=1, largest=False).values
        self._make_room(longest + 1)
        rows = torch.arange(num_envs, device=features.device)
        slot = self.counts % self.capacity
        kept = self.embeddings[rows, slot]
        self.embeddings[rows, slot] = torch.where(add.unsqueeze(1), features, kept)
        self.counts += add.long()
        return sq_distances

    def _make_room(self, needed: int) -> None:
        slots = self.embeddings.shape[1]
        if needed <= slots or slots >= self.capacity:
            return
        grown = min(self.capacity, max(2 * slots, needed))
        # Allocated outside inference mode: PPO observes under torch.inference_mode, and an inference
        # tensor could not be written to in place later (tests, evaluation).
        with torch.inference_mode(False):
            storage = self.embeddings.new_zeros(self.embeddings.shape[0], grown, self.embeddings.shape[2])
            storage[:, :slots] = self.embeddings
        self.embeddings = storage


class NGU(IntrinsicReward):
    name = "ngu"
    requires = frozenset({"obs", "actions", "next_obs", "valid"})
    feature_space = "NGU controllable-state embedding f(s) (trained by inverse dynamics; episodic kNN memory)"

    def __init__(self, config: NGUConfig, spec: BonusSpec):
        super().__init__()
        self.config = config
        self.dynamics = DynamicsModels(spec, config.feature_size, config.hidden_size, forward_model=False)
        self.optimizer = torch.optim.Adam(
            self.dynamics.parameters(), lr=config.learning_rate, eps=config.adam_epsilon,
            weight_decay=config.weight_decay,
        )
        # Composed, not inherited: RND keeps its own networks, optimiser and observation statistics,
        # and its state (extra state included) travels inside this module's state_dict.
        rnd_config = RNDConfig(
            learning_rate=config.rnd_learning_rate, feature_size=config.rnd_feature_size,
            warmup_steps=config.warmup_steps,
        )
        self.rnd = RND(rnd_config, spec)
        self.warmup_steps = config.warmup_steps
        self.error_stats = RunningMeanStd(())
        # The running mean d²_m of neighbour distances is life-long: it is saved with the bonus.
        self.register_buffer("distance_sum", torch.zeros((), dtype=torch.float64))
        self.register_buffer("distance_count", torch.zeros((), dtype=torch.float64))
        self.reward_normalizer = DiscountedReturnNormalizer(spec.num_envs, spec.gamma_int)
        self.memory = EpisodicMemory(spec.num_envs, config.feature_size, config.memory_capacity)
        self.register_buffer("episode_start", torch.zeros(spec.num_envs, dtype=torch.bool), persistent=False)
        self.recorder = StepRecorder()
        self._observed = False
        self._reward_metrics: dict[str, torch.Tensor] = {}

    @property
    def mean_sq_distance(self) -> torch.Tensor:
        return self.distance_sum / self.distance_count.clamp(min=1.0)

    @torch.no_grad()
    def warmup(self, next_obs: torch.Tensor) -> None:
        self.rnd.warmup(next_obs)

    @torch.no_grad()
    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """f(s) [B, F], the embedding the episodic memory stores and searches (not RND's life-long part)."""
        return self.dynamics.embedding(obs).float()

    @torch.no_grad()
    def reset(self, new_episode: torch.Tensor) -> None:
        new_episode = new_episode.to(self.episode_start.device, torch.bool)
        self.memory.reset(new_episode)
        self.episode_start.copy_(new_episode)

    @torch.no_grad()
    def observe(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> None:
        continuing = ~self.episode_start
        if not self._observed:
            # No reset step precedes the first episode, whose first state is `obs`: store it here, so
            # that the first real step is not scored against an empty memory (which pays 1/c).
            self.memory.query_then_add(self.dynamics.embedding(obs), 0, continuing)
            self._observed = True
        features = self.dynamics.embedding(next_obs)
        sq_distances = self.memory.query_then_add(features, self.config.num_neighbors, torch.ones_like(continuing))
        finite = torch.isfinite(sq_distances)
        self.distance_sum += sq_distances.double().masked_fill(~finite, 0.0).sum()
        self.distance_count += finite.sum()
        novelty = episodic_novelty(sq_distances, self.mean_sq_distance, self.config)
        # On a reset step s' is the new episode's first state, which no action reached: it is stored
        # and earns nothing.
        self.recorder.append(torch.where(continuing, novelty, 0.0))

    @torch.no_grad()
    def reward(self, rollout: Rollout) -> torch.Tensor:
        episodic = self.recorder.take(rollout.num_steps)
        errors = self.rnd.raw_reward(rollout.next_obs.flatten(0, 1)).reshape(rollout.num_steps, rollout.num_envs)
        valid = rollout.valid
        if valid.any():
            self.error_stats.update(errors[valid])
        stats = self.error_stats
        multiplier = lifelong_multiplier(errors, stats.mean, stats.std, self.config.max_multiplier)
        rewards = episodic * multiplier
        self._reward_metrics.update(
            episodic_reward=masked_mean(episodic, valid),
            lifelong_multiplier=masked_mean(multiplier, valid),
            multiplier_at_one=masked_mean((multiplier <= 1.0).float(), valid),
            multiplier_at_cap=masked_mean((multiplier >= self.config.max_multiplier).float(), valid),
            rnd_error=masked_mean(errors, valid),
            raw_reward=masked_mean(rewards, valid),
        )
        if not self.config.return_normalization:
            return rewards
        normalised = self.reward_normalizer(rewards)
        self._reward_metrics["return_std"] = self.reward_normalizer.stats.std.float()
        return normalised

    def update(self, rollout: Rollout) -> dict[str, float]:
        cfg = self.config
        metrics = train_inverse_model(
            self.dynamics, self.optimizer, rollout, cfg.minibatch_size, cfg.epochs, cfg.max_grad_norm
        )
        metrics["rnd_predictor_loss"] = self.rnd.update(rollout)["rnd/predictor_loss"]
        metrics["mean_sq_distance"] = self.mean_sq_distance.item()
        metrics["memory_length"] = self.memory.lengths.float().mean().item()
        metrics.update({key: value.item() for key, value in self._reward_metrics.items()})
        metrics.setdefault("raw_reward", math.nan)
        return {f"{self.name}/{key}": value for key, value in metrics.items()}
